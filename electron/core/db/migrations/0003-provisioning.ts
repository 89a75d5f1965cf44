import type { Migration } from './index';

/**
 * Provisioning: host labels (selectors), runs recorded step by step, the offline store's index
 * (the bytes live in <dataDir>/store/objects/<sha256>), imported playbooks, and signed as-built
 * attestations.
 */
export const m0003: Migration = {
  version: 3,
  name: '0003-provisioning',
  up(db) {
    db.exec(`
      ALTER TABLE hosts ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';   -- JSON array of label strings

      CREATE TABLE playbooks (
        name TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        body TEXT NOT NULL,               -- the validated playbook JSON
        digest TEXT NOT NULL,             -- SHA-256 of its canonical JSON
        imported_at TEXT NOT NULL,
        imported_by TEXT NOT NULL
      ) STRICT;

      CREATE TABLE provision_runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('plan', 'apply', 'drift')),
        playbook TEXT NOT NULL,
        playbook_version TEXT NOT NULL,
        playbook_digest TEXT NOT NULL,
        playbook_body TEXT NOT NULL,      -- the playbook as run, so a resume runs the same steps
        params TEXT NOT NULL,             -- per-step overrides, JSON
        actor TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        owner TEXT                        -- '<pid>:<process start>' of the process running it, while running
      ) STRICT;
      CREATE INDEX provision_runs_started ON provision_runs(started_at);

      CREATE TABLE provision_hosts (
        run_id TEXT NOT NULL REFERENCES provision_runs(id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        message TEXT,
        started_at TEXT,
        finished_at TEXT,
        attestation_id TEXT,
        PRIMARY KEY (run_id, host)
      ) STRICT;

      CREATE TABLE provision_steps (
        run_id TEXT NOT NULL,
        host TEXT NOT NULL,
        idx INTEGER NOT NULL,
        step_id TEXT NOT NULL,
        type TEXT NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'ok', 'changed', 'would-change', 'failed', 'cancelled', 'interrupted', 'skipped')),
        phase TEXT CHECK (phase IN ('check', 'apply', 'verify')),
        changes TEXT NOT NULL DEFAULT '[]',
        output TEXT NOT NULL DEFAULT '',
        exit_code INTEGER,
        started_at TEXT,
        finished_at TEXT,
        duration_ms INTEGER,
        message TEXT,
        error_code TEXT,
        transfer TEXT,                    -- JSON {sent, done, total}
        facts TEXT,                       -- JSON: what verify proved (goes into the attestation)
        PRIMARY KEY (run_id, host, idx),
        FOREIGN KEY (run_id, host) REFERENCES provision_hosts(run_id, host) ON DELETE CASCADE
      ) STRICT;

      CREATE TABLE store_objects (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        imported_at TEXT NOT NULL,
        imported_by TEXT NOT NULL
      ) STRICT;

      CREATE TABLE store_debs (
        sha256 TEXT PRIMARY KEY REFERENCES store_objects(sha256),
        package TEXT NOT NULL,
        version TEXT NOT NULL,
        arch TEXT NOT NULL,
        file TEXT NOT NULL,               -- the file name on the media (name_version_arch.deb)
        UNIQUE (package, version, arch)
      ) STRICT;

      CREATE TABLE store_models (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        path TEXT NOT NULL,               -- relative path of the file inside the model version
        sha256 TEXT NOT NULL REFERENCES store_objects(sha256),
        size INTEGER NOT NULL,
        imported_at TEXT NOT NULL,
        PRIMARY KEY (name, version, path)
      ) STRICT;

      CREATE TABLE attestations (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        run_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        playbook TEXT NOT NULL,
        body TEXT NOT NULL,               -- canonical JSON of the attestation
        digest TEXT NOT NULL,             -- SHA-256 of body
        signature TEXT NOT NULL,          -- Ed25519 over body, base64
        key_fingerprint TEXT NOT NULL
      ) STRICT;
      CREATE INDEX attestations_host ON attestations(host, created_at);
      -- Attestations are evidence: never edited or deleted.
      CREATE TRIGGER attestations_no_update BEFORE UPDATE ON attestations BEGIN SELECT RAISE(ABORT, 'attestations are append-only'); END;
      CREATE TRIGGER attestations_no_delete BEFORE DELETE ON attestations BEGIN SELECT RAISE(ABORT, 'attestations are append-only'); END;
    `);
  },
};

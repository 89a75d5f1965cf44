import type { Migration } from './index';

/**
 * Re-keying GPU hosts' models directories (keys/models-rekey.ts), journaled like the SSH identity
 * rotation (jobs/journal.ts): a re-key job, its hosts, each host's steps (stage, the five host
 * steps of keys/fscrypt-rekey.ts, promote).
 *
 * Per host the row keeps what a crash must not lose: the old key's id and fscrypt identifier
 * (the key itself stays in `data_keys`, and `models_keys` keeps naming it, until promote), the
 * new key's id and identifier (its `data_keys` row is made in the same transaction as these
 * columns, before anything is sent to the host), the SHA-256 of every model file as read from the
 * old directory at `prepare` (what `verify` checks the new copy against), and when the new key
 * was promoted.
 */
export const m0014: Migration = {
  version: 14,
  name: '0014-models-rekey',
  up(db) {
    db.exec(`
      CREATE TABLE models_rekeys (
        id TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        concurrency INTEGER NOT NULL CHECK (concurrency BETWEEN 1 AND 64),
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        owner TEXT                         -- '<pid>:<process start>:<nonce>' of the process running it, while running
      ) STRICT;
      CREATE INDEX models_rekeys_started ON models_rekeys(started_at);

      CREATE TABLE models_rekey_hosts (
        rekey_id TEXT NOT NULL REFERENCES models_rekeys(id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        message TEXT,
        started_at TEXT,
        finished_at TEXT,
        dir TEXT,                          -- the host's models directory (from models_keys)
        old_key_id TEXT,                   -- the models data key the host was encrypted under
        old_identifier TEXT CHECK (old_identifier IS NULL OR length(old_identifier) = 32),
        new_key_id TEXT,                   -- the staged key (data_keys row made with this column)
        new_identifier TEXT CHECK (new_identifier IS NULL OR length(new_identifier) = 32),
        expected TEXT,                     -- JSON {relative path: sha256} of the old directory, read at prepare
        promoted_at TEXT,                  -- when models_keys named the new key and the old one was deleted
        PRIMARY KEY (rekey_id, host)
      ) STRICT;

      CREATE TABLE models_rekey_steps (
        rekey_id TEXT NOT NULL,
        host TEXT NOT NULL,
        idx INTEGER NOT NULL,
        step TEXT NOT NULL CHECK (step IN ('stage', 'prepare', 'copy', 'verify', 'swap', 'cleanup', 'promote')),
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
        message TEXT,
        started_at TEXT,
        finished_at TEXT,
        PRIMARY KEY (rekey_id, host, idx),
        FOREIGN KEY (rekey_id, host) REFERENCES models_rekey_hosts(rekey_id, host) ON DELETE CASCADE
      ) STRICT;
    `);
  },
};

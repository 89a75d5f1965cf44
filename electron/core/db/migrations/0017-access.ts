import type { Migration } from './index';

/**
 * Principals, grants, enclaves and the signed gate policy (issue 13, models/access/).
 *
 * - `access_principals`: applications, teams and team members. An application's or member's
 *   credential is never stored, only its SHA-256 (high-entropy: `alk_` + 32 random bytes, so a
 *   plain hash is the right one). `uid` is a random identity: a principal removed and created
 *   again with the same id is another object, so an approval bound to the first cannot run for it.
 * - `access_team_members`: team → member principal.
 * - `access_grants`: principal × model × version (NULL = latest approved) × actions × expiry ×
 *   rate limit; `phi_allowed` says it passed the two-person rule (models:grantPhi); revocation
 *   is recorded, never deleted.
 * - `access_enclaves` (with `general`, non-PHI, where unassigned hosts are) and
 *   `access_host_enclaves` (host → enclave; goes with the host).
 * - `access_policies`: every policy version issued, append-only (triggers): its canonical bytes,
 *   their SHA-256, the signature, the signer's fingerprint, and the SHA-256 of its content without
 *   version and date (a new version is issued only when that changes).
 * - `access_deliveries`: per host, the last known state of the policy there.
 *
 * `console_keys` is rebuilt to admit the new own-key purpose `policy.signing` (SQLite cannot alter
 * a CHECK); rows and indexes are kept as they were.
 */
export const m0017: Migration = {
  version: 17,
  name: '0017-access',
  foreignKeysOff: true,
  up(db) {
    db.exec(`
      CREATE TABLE console_keys_v17 (
        purpose      TEXT NOT NULL CHECK (purpose IN ('ssh.identity', 'audit.signing', 'audit.hmac', 'attest.signing', 'policy.signing')),
        version      INTEGER NOT NULL CHECK (version >= 1),
        kek_version  INTEGER NOT NULL REFERENCES console_keks (version),
        sealed       BLOB,
        public       TEXT,
        fingerprint  TEXT,
        staged_for   TEXT,
        created_at   TEXT NOT NULL,
        retired_at   TEXT,
        PRIMARY KEY (purpose, version),
        CHECK ((sealed IS NULL) = (retired_at IS NOT NULL)),
        CHECK (staged_for IS NULL OR (purpose = 'ssh.identity' AND retired_at IS NULL))
      ) STRICT;
      INSERT INTO console_keys_v17 SELECT purpose, version, kek_version, sealed, public, fingerprint, staged_for, created_at, retired_at FROM console_keys;
      DROP TABLE console_keys;
      ALTER TABLE console_keys_v17 RENAME TO console_keys;
      CREATE UNIQUE INDEX console_keys_current ON console_keys (purpose) WHERE retired_at IS NULL AND staged_for IS NULL;
      CREATE UNIQUE INDEX console_keys_staged ON console_keys (staged_for) WHERE staged_for IS NOT NULL;

      CREATE TABLE access_principals (
        id                     TEXT PRIMARY KEY CHECK (id GLOB 'app:?*' OR id GLOB 'team:?*' OR id GLOB 'user:?*'),
        kind                   TEXT NOT NULL CHECK (kind IN ('application', 'team', 'user')),
        name                   TEXT NOT NULL,
        description            TEXT NOT NULL DEFAULT '',
        uid                    TEXT NOT NULL UNIQUE CHECK (length(uid) = 32),
        credential_sha256      TEXT CHECK (credential_sha256 IS NULL OR (length(credential_sha256) = 64 AND credential_sha256 NOT GLOB '*[^0-9a-f]*')),
        credential_issued_at   TEXT,
        credential_generation  INTEGER NOT NULL DEFAULT 0 CHECK (credential_generation >= 0),
        created_at             TEXT NOT NULL,
        created_by             TEXT NOT NULL,
        disabled_at            TEXT,
        disabled_by            TEXT,
        disabled_reason        TEXT,
        CHECK (id = (CASE kind WHEN 'application' THEN 'app' ELSE kind END) || ':' || name),
        CHECK ((kind = 'team') = (credential_sha256 IS NULL)),
        CHECK ((disabled_at IS NULL) = (disabled_by IS NULL))
      ) STRICT;
      CREATE UNIQUE INDEX access_principals_credential ON access_principals (credential_sha256) WHERE credential_sha256 IS NOT NULL;
      CREATE TRIGGER access_principals_identity BEFORE UPDATE OF id, kind, name, uid ON access_principals
        BEGIN SELECT RAISE(ABORT, 'a principal''s id, kind, name and uid never change'); END;

      CREATE TABLE access_team_members (
        team    TEXT NOT NULL REFERENCES access_principals (id) CHECK (team GLOB 'team:*'),
        member  TEXT NOT NULL REFERENCES access_principals (id) CHECK (member GLOB 'user:*'),
        PRIMARY KEY (team, member)
      ) STRICT;

      CREATE TABLE access_grants (
        id                   TEXT PRIMARY KEY CHECK (id GLOB 'gr-[0-9a-f]*' AND length(id) = 19),
        principal            TEXT NOT NULL REFERENCES access_principals (id),
        model                TEXT NOT NULL REFERENCES models (name),
        version              TEXT,
        actions              TEXT NOT NULL CHECK (actions IN ('pull', 'invoke', 'invoke,pull')),
        expires_at           TEXT,
        requests_per_minute  INTEGER CHECK (requests_per_minute IS NULL OR requests_per_minute BETWEEN 1 AND 1000000),
        phi_allowed          INTEGER NOT NULL CHECK (phi_allowed IN (0, 1)),
        approval_id          INTEGER,
        reason               TEXT,
        created_at           TEXT NOT NULL,
        created_by           TEXT NOT NULL,
        revoked_at           TEXT,
        revoked_by           TEXT,
        revoked_reason       TEXT,
        CHECK ((revoked_at IS NULL) = (revoked_by IS NULL) AND (revoked_at IS NULL) = (revoked_reason IS NULL))
      ) STRICT;
      CREATE INDEX access_grants_principal ON access_grants (principal);
      CREATE INDEX access_grants_model ON access_grants (model);
      -- A grant is what it was granted as; only its revocation is ever written afterwards.
      CREATE TRIGGER access_grants_frozen BEFORE UPDATE OF id, principal, model, version, actions, expires_at, requests_per_minute, phi_allowed, approval_id, reason, created_at, created_by ON access_grants
        BEGIN SELECT RAISE(ABORT, 'a grant never changes: revoke it and add another'); END;
      CREATE TRIGGER access_grants_revoke_once BEFORE UPDATE OF revoked_at ON access_grants WHEN OLD.revoked_at IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'a grant is revoked once'); END;
      CREATE TRIGGER access_grants_no_delete BEFORE DELETE ON access_grants
        BEGIN SELECT RAISE(ABORT, 'grants are never deleted: revoke them'); END;

      CREATE TABLE access_enclaves (
        name         TEXT PRIMARY KEY CHECK (name GLOB '[a-z0-9]*' AND length(name) <= 64),
        phi          INTEGER NOT NULL CHECK (phi IN (0, 1)),
        description  TEXT NOT NULL DEFAULT '',
        created_at   TEXT NOT NULL,
        created_by   TEXT NOT NULL
      ) STRICT;
      INSERT INTO access_enclaves (name, phi, description, created_at, created_by)
        VALUES ('general', 0, 'Hosts not assigned to an enclave', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'airlock');
      CREATE TRIGGER access_enclaves_phi_fixed BEFORE UPDATE OF name, phi ON access_enclaves
        BEGIN SELECT RAISE(ABORT, 'an enclave''s name and PHI flag never change: create another and move the hosts'); END;

      CREATE TABLE access_host_enclaves (
        host_id      INTEGER PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
        enclave      TEXT NOT NULL REFERENCES access_enclaves (name),
        assigned_at  TEXT NOT NULL,
        assigned_by  TEXT NOT NULL
      ) STRICT;

      CREATE TABLE access_policies (
        version         INTEGER PRIMARY KEY CHECK (version >= 1),
        sha256          TEXT NOT NULL CHECK (length(sha256) = 64),
        content_sha256  TEXT NOT NULL CHECK (length(content_sha256) = 64),
        body            TEXT NOT NULL,
        signature       TEXT NOT NULL,
        issuer          TEXT NOT NULL,
        issued_at       TEXT NOT NULL,
        issued_by       TEXT NOT NULL
      ) STRICT;
      CREATE TRIGGER access_policies_next BEFORE INSERT ON access_policies
        WHEN NEW.version <> (SELECT coalesce(max(version), 0) + 1 FROM access_policies)
        BEGIN SELECT RAISE(ABORT, 'policy versions are consecutive'); END;
      CREATE TRIGGER access_policies_no_update BEFORE UPDATE ON access_policies
        BEGIN SELECT RAISE(ABORT, 'an issued policy never changes'); END;
      CREATE TRIGGER access_policies_no_delete BEFORE DELETE ON access_policies
        BEGIN SELECT RAISE(ABORT, 'issued policies are kept'); END;

      CREATE TABLE access_deliveries (
        host_id            INTEGER PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
        state              TEXT NOT NULL CHECK (state IN ('ok', 'pending', 'unreachable', 'rejected')),
        delivered_version  INTEGER,
        delivered_sha256   TEXT,
        enforcing_version  INTEGER,
        since              TEXT NOT NULL,
        last_error         TEXT,
        checked_at         TEXT NOT NULL
      ) STRICT;
    `);
  },
};

import type { Migration } from './index';

/**
 * Airlock's own keys as entries of the key registry (issue 12, keys/console-keys.ts).
 *
 * `console_keks`: the versions of the `console` KEK, each wrapped under the vault key (which every
 * user's vault slot unwraps), so the console's own keys open after an ordinary sign-in and a
 * restart never needs officers. They exist from first-run setup on, before any genesis; genesis
 * wraps the same versions under the root too (kek_versions), for recovery without any slot.
 *
 * `console_keys`: one row per version of each own key. The private part is sealed under a
 * console KEK version; the public part and fingerprint are in the clear so status and old
 * signatures are readable without a session. A retired version keeps its public part and loses
 * its private part (`sealed` NULL). `staged_for` names the SSH rotation (keys/ssh-rotation.ts)
 * that staged a not-yet-current SSH identity. One current version per purpose.
 */
export const m0013: Migration = {
  version: 13,
  name: '0013-console-keys',
  up(db) {
    db.exec(`
      CREATE TABLE console_keks (
        version        INTEGER PRIMARY KEY CHECK (version >= 1),
        vault_wrapped  BLOB NOT NULL,
        kcv            TEXT NOT NULL,
        created_at     TEXT NOT NULL
      ) STRICT;
      CREATE TABLE console_keys (
        purpose      TEXT NOT NULL CHECK (purpose IN ('ssh.identity', 'audit.signing', 'audit.hmac', 'attest.signing')),
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
      CREATE UNIQUE INDEX console_keys_current ON console_keys (purpose) WHERE retired_at IS NULL AND staged_for IS NULL;
      CREATE UNIQUE INDEX console_keys_staged ON console_keys (staged_for) WHERE staged_for IS NOT NULL;
    `);
  },
};

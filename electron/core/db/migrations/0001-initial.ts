import type { Migration } from './index';

export const m0001: Migration = {
  version: 1,
  name: '0001-initial',
  up(db) {
    db.exec(`
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;

      CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        roles TEXT NOT NULL,               -- JSON array of roles
        password_hash TEXT NOT NULL,       -- Argon2id PHC string
        created_at TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
      ) STRICT;

      -- LUKS-style key slots: the vault key wrapped under a key derived from each user's password.
      CREATE TABLE vault_slots (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        kdf TEXT NOT NULL,                 -- JSON: algorithm and parameters
        salt BLOB NOT NULL,
        wrapped_key BLOB NOT NULL,         -- iv || ciphertext || tag (AES-256-GCM)
        created_at TEXT NOT NULL
      ) STRICT;

      -- Secrets sealed with AES-256-GCM under the vault key; the name is bound as AAD.
      CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        sealed BLOB NOT NULL,
        updated_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE hosts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL,
        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        user TEXT NOT NULL,
        fingerprint TEXT,                  -- pinned SHA256 host key fingerprint; NULL = unconfirmed
        key_type TEXT,
        added_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'unknown',
        last_error TEXT,
        last_seen_at TEXT,
        inventory TEXT                     -- JSON, validated against the contract on read
      ) STRICT;
      CREATE UNIQUE INDEX hosts_endpoint ON hosts(address, port);

      -- Append-only: triggers refuse UPDATE and DELETE, so only a raw file edit can change history,
      -- and the hash chain shows it.
      CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,               -- copies of body fields, for filtering only
        channel TEXT NOT NULL,
        body TEXT NOT NULL,                -- canonical JSON of the event (RFC 8785)
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_by_channel ON audit_events(channel, seq);
      CREATE INDEX audit_by_actor ON audit_events(actor, seq);
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
    `);
  },
};

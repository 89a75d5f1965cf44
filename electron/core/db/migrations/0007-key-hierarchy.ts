import type { Migration } from './index';

/**
 * The customer-managed key hierarchy (issue 12, electron/core/keys): the root's share record and
 * canary (never the root), who holds which share, the KEK versions of each domain wrapped by the
 * root, and the data keys wrapped by a KEK version. Nothing here opens without the root, which
 * is only in memory while officers have unsealed the hierarchy.
 *
 * Foreign keys: a KEK version belongs to a declared domain, a data key to an existing KEK
 * version, so a version in use cannot be deleted from under its keys. The domain list is a CHECK
 * (keys/hierarchy.ts KEY_DOMAINS): a new domain is a new migration.
 */
export const m0007: Migration = {
  version: 7,
  name: '0007-key-hierarchy',
  up(db) {
    db.exec(`
      CREATE TABLE key_hierarchy (
        singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
        hierarchy_id  TEXT NOT NULL,
        threshold     INTEGER NOT NULL CHECK (threshold >= 2),
        share_count   INTEGER NOT NULL CHECK (share_count >= threshold AND share_count <= 16),
        share_record  TEXT NOT NULL,
        root_canary   BLOB NOT NULL,
        root_kcv      TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        epoch         INTEGER NOT NULL DEFAULT 1 CHECK (epoch >= 1)
      );
      CREATE TABLE key_share_holders (
        share_index          INTEGER PRIMARY KEY CHECK (share_index BETWEEN 1 AND 16),
        officer              TEXT NOT NULL UNIQUE,
        sealing_fingerprint  TEXT,
        issued_at            TEXT NOT NULL
      );
      CREATE TABLE kek_domains (
        domain                  TEXT PRIMARY KEY CHECK (domain IN ('models', 'datasets', 'host-secrets', 'console')),
        current_version         INTEGER NOT NULL CHECK (current_version >= 1),
        min_decryption_version  INTEGER NOT NULL CHECK (min_decryption_version >= 1 AND min_decryption_version <= current_version)
      );
      CREATE TABLE kek_versions (
        domain      TEXT NOT NULL REFERENCES kek_domains (domain),
        version     INTEGER NOT NULL CHECK (version >= 1),
        wrapped     BLOB NOT NULL,
        kcv         TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        retired_at  TEXT,
        PRIMARY KEY (domain, version)
      );
      CREATE TABLE data_keys (
        domain      TEXT NOT NULL,
        id          TEXT NOT NULL,
        version     INTEGER NOT NULL,
        wrapped     BLOB NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (domain, id),
        FOREIGN KEY (domain, version) REFERENCES kek_versions (domain, version)
      );
      CREATE INDEX data_keys_by_version ON data_keys (domain, version);
    `);
  },
};

import type { Migration } from './index';

/**
 * Keys imported from known_hosts that are not (yet) a host: hashed entries (`|1|salt|hash`, whose
 * address cannot be read back: matched when a host is added by address) and `@revoked` keys
 * (refused at enrolment, confirmation and every connection, for every host).
 */
export const m0005: Migration = {
  version: 5,
  name: '0005-known-host-keys',
  up(db) {
    db.exec(`
      CREATE TABLE known_host_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        marker TEXT NOT NULL CHECK (marker IN ('hashed', 'revoked')),
        salt TEXT,                        -- hashed: base64 HMAC-SHA1 key (20 bytes)
        hash TEXT,                        -- hashed: base64 HMAC-SHA1(salt, host or [host]:port)
        hosts TEXT NOT NULL,              -- revoked: the line's host field, for display; hashed: |1|salt|hash
        key_type TEXT NOT NULL,
        public_key TEXT NOT NULL,         -- the key blob, base64
        fingerprint TEXT NOT NULL,        -- SHA256:… of the blob
        source_line INTEGER NOT NULL,     -- line in the imported file
        imported_at TEXT NOT NULL,
        CHECK ((marker = 'hashed') = (salt IS NOT NULL AND hash IS NOT NULL)),
        UNIQUE (marker, hosts, fingerprint)
      ) STRICT;
      CREATE INDEX known_host_keys_fingerprint ON known_host_keys(fingerprint, marker);
    `);
  },
};

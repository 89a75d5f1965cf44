import type { Migration } from './index';

/**
 * Model weights at rest (issue 12, keys/models-handlers.ts): which `models` data key encrypts which
 * host's models directory. One row per inventory host name (a host re-added under the same name
 * finds its key again); the key itself stays in `data_keys`, wrapped by the `models` KEK.
 * `identifier` is the fscrypt key identifier the host's policy names (safe to show: it names the
 * key, it does not open it), so a status can say whether the host holds Airlock's key.
 * `protected_at` is set once the host confirmed the directory encrypted under that key: a row
 * without it is a protection that stopped half-way, which keys:protectModels finishes with the
 * same key. Crypto-shredding the data key takes its row with it (ON DELETE CASCADE).
 */
export const m0010: Migration = {
  version: 10,
  name: '0010-models-keys',
  up(db) {
    db.exec(`
      CREATE TABLE models_keys (
        host          TEXT PRIMARY KEY,
        domain        TEXT NOT NULL DEFAULT 'models' CHECK (domain = 'models'),
        key_id        TEXT NOT NULL UNIQUE,
        identifier    TEXT NOT NULL CHECK (length(identifier) = 32),
        dir           TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        protected_at  TEXT,
        FOREIGN KEY (domain, key_id) REFERENCES data_keys (domain, id) ON DELETE CASCADE
      );
    `);
  },
};

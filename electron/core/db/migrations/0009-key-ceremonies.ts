import type { Migration } from './index';

/**
 * Key ceremonies (keys/ceremony.ts): one row per ceremony, its script with who acknowledged each
 * step, and its signed transcript once completed. Shares are never stored here (or anywhere).
 * Rows are kept: a ceremony's record is evidence, like the audit trail (which also has every step).
 */
export const m0009: Migration = {
  version: 9,
  name: '0009-key-ceremonies',
  up(db) {
    db.exec(`
      CREATE TABLE key_ceremonies (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('genesis', 'unseal', 'verify-shares', 'rotate-kek', 'reshare', 'rotate-root')),
        nonce TEXT NOT NULL UNIQUE,
        script_version TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'completed', 'cancelled', 'failed')),
        -- The console process holding the ceremony's in-memory state (jobs/owner.ts): only it may go on.
        owner TEXT,
        administrator TEXT NOT NULL,
        participants TEXT NOT NULL,
        steps TEXT NOT NULL,
        params TEXT NOT NULL,
        before_state TEXT,
        after_state TEXT,
        contributors TEXT NOT NULL DEFAULT '[]',
        started_at TEXT NOT NULL,
        finished_at TEXT,
        message TEXT,
        transcript TEXT
      );
      CREATE INDEX key_ceremonies_started ON key_ceremonies (started_at);
      -- At most one open ceremony at a time: a room runs one script.
      CREATE UNIQUE INDEX key_ceremonies_one_open ON key_ceremonies (status) WHERE status = 'open';
    `);
  },
};

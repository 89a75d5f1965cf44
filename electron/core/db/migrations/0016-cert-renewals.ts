import type { Migration } from './index';

/**
 * Host-certificate renewal as a journaled operation (keys/cert-renewal.ts), on the same job journal
 * as the SSH identity rotation and the models re-key (jobs/journal.ts): a renewal, its hosts, each
 * host's steps (keygen, csr, issue, install, verify, promote, retire).
 *
 * Per host the row keeps what a crash must not lose: the certificate being replaced, the public key
 * the host's CSR carried (never a private key: the host's key never leaves it), the serial of the
 * certificate issued for it (recorded in the same transaction as the certificate itself), and when
 * the store made it current.
 *
 * `certificates.renewal_id` marks a certificate issued for a renewal that is not yet promoted:
 * on record (so it can be revoked) but not the host's current certificate.
 */
export const m0016: Migration = {
  version: 16,
  name: '0016-cert-renewals',
  up(db) {
    db.exec(`
      CREATE TABLE cert_renewals (
        id TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        window_days INTEGER NOT NULL CHECK (window_days BETWEEN 0 AND 3650),
        concurrency INTEGER NOT NULL CHECK (concurrency BETWEEN 1 AND 64),
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        owner TEXT                         -- '<pid>:<process start>:<nonce>' of the process running it, while running
      ) STRICT;
      CREATE INDEX cert_renewals_started ON cert_renewals(started_at);

      CREATE TABLE cert_renewal_hosts (
        renewal_id TEXT NOT NULL REFERENCES cert_renewals(id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
        message TEXT,
        started_at TEXT,
        finished_at TEXT,
        old_serial TEXT,                   -- the certificate being replaced (current until promote); set with the row
        csr_spki TEXT,                     -- base64 SPKI of the key the host made (from its checked CSR)
        new_serial TEXT,                   -- the certificate issued for that key (recorded with it, one transaction)
        promoted_at TEXT,                  -- when the new certificate became current and the old one superseded
        PRIMARY KEY (renewal_id, host)
      ) STRICT;

      CREATE TABLE cert_renewal_steps (
        renewal_id TEXT NOT NULL,
        host TEXT NOT NULL,
        idx INTEGER NOT NULL,
        step TEXT NOT NULL CHECK (step IN ('keygen', 'csr', 'issue', 'install', 'verify', 'promote', 'retire')),
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
        message TEXT,
        started_at TEXT,
        finished_at TEXT,
        PRIMARY KEY (renewal_id, host, idx),
        FOREIGN KEY (renewal_id, host) REFERENCES cert_renewal_hosts(renewal_id, host) ON DELETE CASCADE
      ) STRICT;

      ALTER TABLE certificates ADD COLUMN renewal_id TEXT;  -- issued for this renewal, not yet current
    `);
  },
};

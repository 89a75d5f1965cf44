import type { Migration } from './index';

/**
 * The internal CA's records (keys/cert-store.ts): every certificate it issued, the root and the
 * issuing CA included, and every CRL it published. Private keys are not here: `key_ref` names the
 * data key that seals one (the key hierarchy's), NULL when the key lives elsewhere (a host's own).
 * Certificates are never deleted: a revoked or expired one stays, so a CRL can be rebuilt and an
 * old signature's signer looked up.
 */
export const m0008: Migration = {
  version: 8,
  name: '0008-certificates',
  up(db) {
    db.exec(`
      CREATE TABLE certificates (
        serial TEXT PRIMARY KEY CHECK (length(serial) BETWEEN 2 AND 40 AND serial NOT GLOB '*[^0-9a-f]*'),
        profile TEXT NOT NULL CHECK (profile IN ('root-ca', 'issuing-ca', 'host-tls', 'bundle-signing', 'registry-token', 'release-signing')),
        subject TEXT NOT NULL,
        issuer_serial TEXT NOT NULL REFERENCES certificates(serial),  -- the root names itself
        host TEXT,                        -- host-tls: the host name it was issued to (no FK: the record outlives the host)
        cert_pem TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,      -- AB:CD:… as openssl prints it
        key_ref TEXT,                     -- the data key sealing its private key; NULL if Airlock does not hold it
        not_before TEXT NOT NULL,
        not_after TEXT NOT NULL,
        revoked_at TEXT,
        revoke_reason TEXT CHECK (revoke_reason IN ('unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn')),
        created_at TEXT NOT NULL,
        CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
        CHECK ((profile = 'root-ca') = (issuer_serial = serial)),
        CHECK (not_after > not_before)
      ) STRICT;
      CREATE INDEX certificates_expiry ON certificates(not_after);
      CREATE INDEX certificates_issuer ON certificates(issuer_serial, revoked_at);
      CREATE INDEX certificates_host ON certificates(host) WHERE host IS NOT NULL;

      CREATE TABLE ca_crls (
        issuer_serial TEXT NOT NULL REFERENCES certificates(serial),
        crl_number INTEGER NOT NULL CHECK (crl_number >= 0),
        crl_pem TEXT NOT NULL,
        this_update TEXT NOT NULL,
        next_update TEXT NOT NULL,
        CHECK (next_update > this_update),
        PRIMARY KEY (issuer_serial, crl_number)
      ) STRICT;
    `);
  },
};

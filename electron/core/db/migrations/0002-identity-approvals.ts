import type { Migration } from './index';

/** The two-person policy as first installed; changing it later is itself a two-person operation. */
export const DEFAULT_POLICY: ReadonlyArray<{ operation: string; description: string; approverRoles: string[] }> = [
  { operation: 'users:grantAdmin', description: 'Create a user with the admin role, add the admin role to a user, or re-enable an admin', approverRoles: ['admin', 'officer'] },
  { operation: 'approvals:setPolicy', description: 'Change the two-person policy itself', approverRoles: ['admin', 'officer'] },
  { operation: 'hosts:disableEgressLockdown', description: "Disable a host's egress lockdown", approverRoles: ['officer'] },
  { operation: 'models:grantPhi', description: 'Grant access to a model classified PHI', approverRoles: ['officer'] },
  { operation: 'keys:rotateRoot', description: 'Rotate the root customer-managed key', approverRoles: ['officer'] },
  { operation: 'keys:reshareRoot', description: 'Reshare the root key among new custodians', approverRoles: ['officer'] },
  { operation: 'audit:delete', description: 'Delete audit data (never possible; declared so the rule exists)', approverRoles: ['officer'] },
];

export const m0002: Migration = {
  version: 2,
  name: '0002-identity-approvals',
  up(db) {
    db.exec(`
      -- Who made the account, and the identity counter values (meta 'identity.seq') of the events
      -- the two-person rule cares about: an approver's account, roles and credentials must all
      -- predate the request (counters, not clock times, so a clock change cannot reorder them).
      ALTER TABLE users ADD COLUMN created_by INTEGER REFERENCES users(id) ON DELETE SET NULL;
      ALTER TABLE users ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE users ADD COLUMN roles_seq INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE users ADD COLUMN cred_seq INTEGER NOT NULL DEFAULT 0;         -- password/TOTP set by someone else
      ALTER TABLE users ADD COLUMN auth_epoch INTEGER NOT NULL DEFAULT 0;       -- bumped to end every live session
      ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1));
      ALTER TABLE users ADD COLUMN password_changed_at TEXT;
      ALTER TABLE users ADD COLUMN last_login_at TEXT;
      ALTER TABLE users ADD COLUMN disabled_at TEXT;

      -- TOTP seeds, sealed under the vault key with the user id as additional data; never in the clear.
      CREATE TABLE user_totp (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        sealed_secret BLOB,                -- the active seed; NULL while only an enrolment is pending
        enrolled_at TEXT,
        last_step INTEGER NOT NULL DEFAULT -1,  -- highest RFC 6238 time step accepted: replay guard
        pending_secret BLOB,               -- enrolment in progress (totp:begin → totp:confirm)
        pending_at TEXT
      ) STRICT;

      -- Single-use recovery codes: SHA-256 of 80-bit random codes, bound to the user.
      CREATE TABLE recovery_codes (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        code_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        used_at TEXT,
        PRIMARY KEY (user_id, code_hash)
      ) STRICT;

      -- Sign-in throttling, per user name and per source, shared by every shell on this database.
      CREATE TABLE auth_throttle (
        key TEXT PRIMARY KEY,              -- 'user:NAME' or 'source:SHELL:SOURCE'
        failures INTEGER NOT NULL,
        locked_until INTEGER NOT NULL DEFAULT 0,   -- Unix ms
        last_failure_at INTEGER NOT NULL           -- Unix ms
      ) STRICT;

      CREATE TABLE approval_policy (
        operation TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        approver_roles TEXT NOT NULL,      -- JSON array of roles
        expiry_minutes INTEGER NOT NULL CHECK (expiry_minutes > 0),
        required INTEGER NOT NULL DEFAULT 1 CHECK (required IN (0, 1)),
        updated_at TEXT NOT NULL,
        updated_by TEXT
      ) STRICT;

      CREATE TABLE approval_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        operation TEXT NOT NULL,
        channel TEXT NOT NULL,
        summary TEXT NOT NULL,
        input_public TEXT NOT NULL,        -- JSON, secret fields replaced by "[sealed]"
        input_sealed BLOB NOT NULL,        -- the exact parsed input, sealed under the vault key (AAD binds the id)
        input_digest TEXT NOT NULL,        -- HMAC-SHA256 (key derived from the vault key) of channel + canonical input
        reason TEXT NOT NULL,
        requested_by INTEGER NOT NULL,     -- user id; no foreign key: the record outlives the account
        requested_by_name TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        identity_seq INTEGER NOT NULL,     -- identity counter when filed
        approver_roles TEXT NOT NULL,      -- JSON, copied from the policy when filed
        expires_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired', 'executing', 'executed', 'failed')),
        decided_by INTEGER,
        decided_by_name TEXT,
        decided_at TEXT,
        decision_reason TEXT,
        executed_at TEXT,
        result_code TEXT
      ) STRICT;
      CREATE INDEX approval_requests_by_status ON approval_requests(status, id);
    `);
    const insert = db.prepare(
      "INSERT INTO approval_policy (operation, description, approver_roles, expiry_minutes, required, updated_at) VALUES (?, ?, ?, 1440, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    );
    for (const p of DEFAULT_POLICY) insert.run(p.operation, p.description, JSON.stringify(p.approverRoles));
  },
};

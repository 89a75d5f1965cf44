import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ApprovalOperations } from '../../../../shared/contract/approvals';
import { m0001 } from './0001-initial';
import { DEFAULT_POLICY, m0002 } from './0002-identity-approvals';
import { RENAMED_OPERATIONS } from './0006-operation-names';

function v1WithUser() {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  m0001.up(db);
  db.prepare("INSERT INTO users (id, name, roles, password_hash, created_at) VALUES (1, 'alice', '[\"admin\"]', 'h', 'then')").run();
  return db;
}

describe('migration 0002-identity-approvals', () => {
  it('upgrades a v1 database in place: existing users keep working with neutral defaults', () => {
    const db = v1WithUser();
    m0002.up(db);
    expect(db.prepare('SELECT * FROM users').get()).toMatchObject({
      name: 'alice',
      created_by: null,
      created_seq: 0,
      roles_seq: 0,
      cred_seq: 0,
      auth_epoch: 0,
      must_change_password: 0,
      last_login_at: null,
    });
  });

  it('creates its tables STRICT', () => {
    const db = v1WithUser();
    m0002.up(db);
    const tables = db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ('user_totp', 'recovery_codes', 'auth_throttle', 'approval_policy', 'approval_requests')")
      .all() as Array<{ name: string; sql: string }>;
    expect(tables).toHaveLength(5);
    for (const t of tables) expect(t.sql, t.name).toMatch(/\)\s*STRICT$/);
    expect(() => db.prepare("INSERT INTO auth_throttle VALUES ('k', 'many', 0, 0)").run()).toThrow();
  });

  it('declares every two-person operation of the contract, each required, 24 h expiry', () => {
    const db = v1WithUser();
    m0002.up(db);
    const rows = db.prepare('SELECT operation, approver_roles, expiry_minutes, required FROM approval_policy ORDER BY operation').all() as Array<{
      operation: string;
      approver_roles: string;
      expiry_minutes: number;
      required: number;
    }>;
    // As first installed: later migrations rename (0006), so compare under today's names.
    const renamed = new Map(RENAMED_OPERATIONS);
    const today = (op: string) => renamed.get(op) ?? op;
    // Operations declared later by their own migration (0015: models:approvePhi) are not here.
    const later = new Set(['models:approvePhi']);
    const declared = ApprovalOperations.filter((op) => !later.has(op)).sort();
    expect(rows.map((r) => today(r.operation)).sort()).toEqual(declared);
    expect(DEFAULT_POLICY.map((p) => today(p.operation)).sort()).toEqual(declared);
    for (const r of rows) {
      expect(r.expiry_minutes).toBe(1440);
      expect(r.required).toBe(1);
      expect(JSON.parse(r.approver_roles).length).toBeGreaterThan(0);
    }
  });

  it("removes a user's TOTP and recovery codes with the user, keeps requests, and forgets the creator", () => {
    const db = v1WithUser();
    m0002.up(db);
    db.prepare("INSERT INTO users (id, name, roles, password_hash, created_at, created_by) VALUES (2, 'bob', '[\"officer\"]', 'h', 'now', 1)").run();
    db.prepare("INSERT INTO user_totp (user_id, sealed_secret) VALUES (2, x'01')").run();
    db.prepare("INSERT INTO recovery_codes VALUES (2, 'hash', 'now', NULL)").run();
    db.prepare(
      `INSERT INTO approval_requests (operation, channel, summary, input_public, input_sealed, input_digest, reason, requested_by,
        requested_by_name, requested_at, identity_seq, approver_roles, expires_at, status)
       VALUES ('users:grantAdmin', 'users:create', 's', '{}', x'00', 'd', 'r', 2, 'bob', 'now', 1, '[]', 'later', 'pending')`,
    ).run();
    db.prepare('DELETE FROM users WHERE id = 2').run();
    expect(db.prepare('SELECT count(*) AS n FROM user_totp').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM recovery_codes').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM approval_requests').get()).toEqual({ n: 1 });
    expect(() => db.prepare("UPDATE approval_requests SET status = 'maybe'").run()).toThrow(/CHECK/);
    db.prepare("INSERT INTO users (id, name, roles, password_hash, created_at, created_by) VALUES (3, 'carol', '[\"auditor\"]', 'h', 'now', 1)").run();
    db.prepare('DELETE FROM users WHERE id = 1').run();
    expect(db.prepare('SELECT created_by FROM users WHERE id = 3').get()).toEqual({ created_by: null });
  });
});

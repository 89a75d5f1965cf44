import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ApprovalOperations } from '../../../../shared/contract/approvals';
import { m0001 } from './0001-initial';
import { m0002 } from './0002-identity-approvals';
import { m0003 } from './0003-provisioning';
import { m0004 } from './0004-account-identity';
import { m0005 } from './0005-known-host-keys';
import { m0006 } from './0006-operation-names';

function v5() {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  for (const m of [m0001, m0002, m0003, m0004, m0005]) m.up(db);
  return db;
}

const file = (db: Database.Database, operation: string, channel: string, status: string, target: unknown) =>
  Number(
    db
      .prepare(
        `INSERT INTO approval_requests (operation, channel, summary, input_public, input_sealed, input_digest, reason,
           requested_by, requested_by_uid, requested_by_name, requested_at, identity_seq, approver_roles, expires_at, status, target)
         VALUES (?, ?, 's', '{}', x'', 'd', 'r', 1, 'u1', 'alice', 'then', 0, '["officer"]', 'later', ?, ?)`,
      )
      .run(operation, channel, status, target === null ? null : JSON.stringify(target)).lastInsertRowid,
  );

describe('migration 0006-operation-names', () => {
  it('renames the egress operation in the policy and in requests, keeping its settings', () => {
    const db = v5();
    db.prepare("UPDATE approval_policy SET approver_roles = '[\"admin\"]', expiry_minutes = 60 WHERE operation = 'hosts:disableEgressLockdown'").run();
    const req = file(db, 'hosts:disableEgressLockdown', 'provision:disableEgressLockdown', 'pending', { kind: 'host', name: 'gpu1' });
    m0006.up(db);
    const ops = (db.prepare('SELECT operation FROM approval_policy').all() as { operation: string }[]).map((r) => r.operation);
    expect(ops).toContain('provision:disableEgressLockdown');
    expect(ops).not.toContain('hosts:disableEgressLockdown');
    // Every operation in the policy is one the contract declares.
    for (const op of ops) expect(ApprovalOperations).toContain(op);
    expect(db.prepare("SELECT approver_roles, expiry_minutes FROM approval_policy WHERE operation = 'provision:disableEgressLockdown'").get()).toEqual({
      approver_roles: '["admin"]',
      expiry_minutes: 60,
    });
    // The request keeps its status: its digest covers channel and input, which did not change.
    expect(db.prepare('SELECT operation, status FROM approval_requests WHERE id = ?').get(req)).toEqual({
      operation: 'provision:disableEgressLockdown',
      status: 'pending',
    });
  });

  it('cancels only open policy changes that name the renamed operation', () => {
    const db = v5();
    const open = file(db, 'approvals:setPolicy', 'approvals:setPolicy', 'approved', { kind: 'policy', name: 'hosts:disableEgressLockdown' });
    const other = file(db, 'approvals:setPolicy', 'approvals:setPolicy', 'pending', { kind: 'policy', name: 'users:grantAdmin' });
    const done = file(db, 'approvals:setPolicy', 'approvals:setPolicy', 'executed', { kind: 'policy', name: 'hosts:disableEgressLockdown' });
    m0006.up(db);
    const status = (id: number) => (db.prepare('SELECT status FROM approval_requests WHERE id = ?').get(id) as { status: string }).status;
    expect([status(open), status(other), status(done)]).toEqual(['cancelled', 'pending', 'executed']);
  });
});

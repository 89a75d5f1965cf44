import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, schemaVersion } from '../db';
import { migrations } from './index';
import { m0001 } from './0001-initial';
import { m0002 } from './0002-identity-approvals';
import { m0003 } from './0003-provisioning';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * A database as Airlock wrote it before migration 0004 (schema 3, on a real file): alice (1),
 * bob (2, created by alice, with a vault slot, TOTP and recovery codes), carol (3, removed), and
 * approval requests that remember removed accounts 4 (an approver) and 5 (a requester).
 */
function oldDatabase(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-m0004-'));
  dirs.push(d);
  const file = path.join(d, 'airlock.db');
  const db = openDatabase(file, [m0001, m0002, m0003]);
  expect(schemaVersion(db)).toBe(3);
  const user = db.prepare("INSERT INTO users (id, name, roles, password_hash, created_at, created_by, auth_epoch) VALUES (?, ?, ?, 'h', 'then', ?, ?)");
  user.run(1, 'alice', '["admin"]', null, 0);
  user.run(2, 'bob', '["officer"]', 1, 3);
  user.run(3, 'carol', '["auditor"]', 1, 0);
  db.prepare("INSERT INTO vault_slots VALUES (2, '{}', x'01', x'02', 'then')").run();
  db.prepare("INSERT INTO user_totp (user_id, sealed_secret) VALUES (2, x'03')").run();
  db.prepare("INSERT INTO recovery_codes VALUES (2, 'code-hash', 'then', NULL)").run();
  db.prepare('DELETE FROM users WHERE id = 3').run();
  const request = db.prepare(
    `INSERT INTO approval_requests (operation, channel, summary, input_public, input_sealed, input_digest, reason, requested_by,
       requested_by_name, requested_at, identity_seq, approver_roles, expires_at, status, decided_by, decided_by_name)
     VALUES ('users:grantAdmin', 'users:setRoles', 's', '{"name":"bob"}', x'00', 'd', 'r', ?, ?, 'then', 1, '["officer"]', '2999-01-01T00:00:00.000Z', ?, ?, ?)`,
  );
  request.run(5, 'eve', 'executed', 4, 'dan');
  request.run(1, 'alice', 'approved', 2, 'bob');
  request.run(1, 'alice', 'pending', null, null);
  db.close();
  return file;
}

describe('migration 0004-account-identity', () => {
  it('rebuilds users with AUTOINCREMENT and a uid, keeping ids, columns and every foreign key', () => {
    const file = oldDatabase();
    const db = openDatabase(file);
    expect(schemaVersion(db)).toBe(migrations.length);
    const sql = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'users'").pluck().get() as string;
    expect(sql).toMatch(/id INTEGER PRIMARY KEY AUTOINCREMENT/);
    expect(sql).toMatch(/\)\s*STRICT$/);
    const rows = db.prepare('SELECT id, uid, name, created_by, auth_epoch FROM users ORDER BY id').all() as Array<{ id: number; uid: string; name: string; created_by: number | null; auth_epoch: number }>;
    expect(rows.map((r) => [r.id, r.name, r.created_by, r.auth_epoch])).toEqual([
      [1, 'alice', null, 0],
      [2, 'bob', 1, 3],
    ]);
    for (const r of rows) expect(r.uid).toMatch(UUID_V4);
    expect(new Set(rows.map((r) => r.uid)).size).toBe(2);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    // The children still point at users and still cascade / set null.
    expect(db.prepare('SELECT count(*) FROM vault_slots WHERE user_id = 2').pluck().get()).toBe(1);
    db.prepare('DELETE FROM users WHERE id = 1').run();
    expect(db.prepare('SELECT created_by FROM users WHERE id = 2').pluck().get()).toBeNull();
    db.prepare('DELETE FROM users WHERE id = 2').run();
    for (const t of ['vault_slots', 'user_totp', 'recovery_codes']) expect(db.prepare(`SELECT count(*) FROM ${t}`).pluck().get(), t).toBe(0);
    db.close();
  });

  it('starts ids above every id the database remembers, removed accounts included, and never reuses one', () => {
    const file = oldDatabase();
    let db = openDatabase(file);
    expect(db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'users'").pluck().get()).toBe(5);
    const insert = "INSERT INTO users (name, roles, password_hash, created_at) VALUES (?, '[\"auditor\"]', 'h', 'now')";
    expect(Number(db.prepare(insert).run('frank').lastInsertRowid)).toBe(6);
    db.prepare("DELETE FROM users WHERE name = 'frank'").run();
    db.close();
    // After a restart (and with the migration already applied), still never 6 again.
    db = openDatabase(file);
    const id = Number(db.prepare(insert).run('gina').lastInsertRowid);
    expect(id).toBe(7);
    expect(db.prepare('SELECT uid FROM users WHERE id = ?').pluck().get(id)).toMatch(UUID_V4);
    // Identity is immutable.
    expect(() => db.prepare("UPDATE users SET uid = '00000000-0000-4000-8000-000000000000' WHERE id = ?").run(id)).toThrow(/never change/);
    expect(() => db.prepare('UPDATE users SET id = 99 WHERE id = ?').run(id)).toThrow(/never change/);
    db.prepare("UPDATE users SET roles = '[\"officer\"]' WHERE id = ?").run(id);
    db.close();
  });

  it('cancels open requests that carry no identities, keeps decided ones, and adds the identity columns', () => {
    const db = openDatabase(oldDatabase());
    const rows = db.prepare('SELECT status, decision_reason, requested_by_uid, decided_by_uid, target FROM approval_requests ORDER BY id').all() as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.status)).toEqual(['executed', 'cancelled', 'cancelled']);
    expect(rows[1]!.decision_reason).toMatch(/migration 0004/);
    for (const r of rows) expect([r.requested_by_uid, r.decided_by_uid, r.target]).toEqual([null, null, null]);
    db.close();
  });

  it('is all or nothing: a broken reference aborts it and leaves schema 3 untouched', () => {
    const file = oldDatabase();
    const raw = new Database(file);
    raw.pragma('foreign_keys = OFF');
    raw.prepare("INSERT INTO vault_slots VALUES (42, '{}', x'01', x'02', 'then')").run(); // a slot of nobody
    raw.close();
    expect(() => openDatabase(file)).toThrow(/would break a reference/);
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(3);
    expect(after.prepare("SELECT sql FROM sqlite_master WHERE name = 'users'").pluck().get()).not.toMatch(/AUTOINCREMENT/);
    expect(after.prepare('SELECT count(*) FROM users').pluck().get()).toBe(2);
    after.close();
  });
});

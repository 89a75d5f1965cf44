import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, schemaVersion } from '../db';
import { migrations } from './index';
import { m0017 } from './0017-access';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function dbAt(version: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm0017-'));
  dirs.push(dir);
  const db = new Database(path.join(dir, 'airlock.db'));
  db.pragma('foreign_keys = ON');
  migrate(db, migrations.slice(0, version));
  return db;
}

const T = '2026-12-08T00:00:00.000Z';
const principal = (db: Database.Database, id: string, kind: string, name: string, sha: string | null, uid = 'a'.repeat(31) + id.length.toString(16).slice(-1)) =>
  db.prepare('INSERT INTO access_principals (id, kind, name, uid, credential_sha256, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)').run(id, kind, name, uid, sha, T, 'alice');

describe('migration 0017-access', () => {
  it('keeps console_keys rows and admits policy.signing; the access tables are new and STRICT', () => {
    const db = dbAt(m0017.version - 1);
    db.prepare("INSERT INTO console_keks (version, vault_wrapped, kcv, created_at) VALUES (1, x'00', 'k', ?)").run(T);
    db.prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, public, fingerprint, created_at) VALUES ('audit.signing', 1, 1, x'01', 'pem', 'fp', ?)").run(T);
    expect(() => db.prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, created_at) VALUES ('policy.signing', 1, 1, x'01', ?)").run(T)).toThrow(/CHECK/);
    migrate(db, migrations);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(m0017.version);
    expect(db.prepare('SELECT purpose, version, public FROM console_keys').all()).toEqual([{ purpose: 'audit.signing', version: 1, public: 'pem' }]);
    db.prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, created_at) VALUES ('policy.signing', 1, 1, x'01', ?)").run(T);
    // Still one current version per purpose.
    expect(() => db.prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, created_at) VALUES ('policy.signing', 2, 1, x'01', ?)").run(T)).toThrow(/UNIQUE/);
    expect(() => db.prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, created_at) VALUES ('other', 1, 1, x'01', ?)").run(T)).toThrow(/CHECK/);
    const names = ['access_principals', 'access_team_members', 'access_grants', 'access_enclaves', 'access_host_enclaves', 'access_policies', 'access_deliveries', 'console_keys'];
    const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN (${names.map(() => '?').join(',')})`).all(...names) as Array<{ name: string; sql: string }>;
    expect(rows.map((r) => r.name).sort()).toEqual([...names].sort());
    for (const r of rows) expect(r.sql, r.name).toMatch(/\)\s*STRICT$/);
    expect(db.prepare('SELECT name, phi FROM access_enclaves').all()).toEqual([{ name: 'general', phi: 0 }]);
  });

  it('refuses a team with a credential, an application without one, ids that do not match kind and name, and changed identities', () => {
    const db = dbAt(m0017.version);
    expect(() => principal(db, 'team:ward', 'team', 'ward', 'f'.repeat(64))).toThrow(/CHECK/);
    expect(() => principal(db, 'app:bot', 'application', 'bot', null)).toThrow(/CHECK/);
    expect(() => principal(db, 'app:bot', 'application', 'other', 'f'.repeat(64))).toThrow(/CHECK/);
    expect(() => principal(db, 'app:bot', 'application', 'bot', 'F'.repeat(64))).toThrow(/CHECK/);
    principal(db, 'app:bot', 'application', 'bot', 'f'.repeat(64));
    expect(() => principal(db, 'app:bot2', 'application', 'bot2', 'f'.repeat(64), 'b'.repeat(32))).toThrow(/UNIQUE/);
    expect(() => db.prepare("UPDATE access_principals SET uid = ? WHERE id = 'app:bot'").run('c'.repeat(32))).toThrow(/never change/);
    db.prepare("UPDATE access_principals SET credential_sha256 = ?, credential_generation = 2 WHERE id = 'app:bot'").run('e'.repeat(64));
  });

  it('grants are frozen but for one revocation, never deleted; policies are consecutive and append-only', () => {
    const db = dbAt(m0017.version);
    principal(db, 'app:bot', 'application', 'bot', 'f'.repeat(64));
    db.prepare("INSERT INTO models (name, description, owner, created_at, created_by) VALUES ('triage', '', 'ml', ?, 'alice')").run(T);
    const add = db.prepare("INSERT INTO access_grants (id, principal, model, version, actions, phi_allowed, created_at, created_by) VALUES (?, 'app:bot', 'triage', '1.0', ?, 0, ?, 'alice')");
    expect(() => add.run('gr-0123456789abcdef', 'pull,invoke', T)).toThrow(/CHECK/);
    expect(() => add.run('gr-nothex', 'pull', T)).toThrow(/CHECK/);
    add.run('gr-0123456789abcdef', 'invoke,pull', T);
    expect(() => db.prepare("UPDATE access_grants SET version = '2.0'").run()).toThrow(/never changes/);
    expect(() => db.prepare("UPDATE access_grants SET revoked_at = ?").run(T)).toThrow(/CHECK/);
    db.prepare("UPDATE access_grants SET revoked_at = ?, revoked_by = 'alice', revoked_reason = 'done'").run(T);
    expect(() => db.prepare("UPDATE access_grants SET revoked_at = ?, revoked_by = 'bob', revoked_reason = 'again'").run(T)).toThrow(/revoked once/);
    expect(() => db.prepare('DELETE FROM access_grants').run()).toThrow(/never deleted/);

    const pol = db.prepare("INSERT INTO access_policies (version, sha256, content_sha256, body, signature, issuer, issued_at, issued_by) VALUES (?, ?, ?, '{}', 's', 'i', ?, 'alice')");
    expect(() => pol.run(2, 'a'.repeat(64), 'b'.repeat(64), T)).toThrow(/consecutive/);
    pol.run(1, 'a'.repeat(64), 'b'.repeat(64), T);
    pol.run(2, 'c'.repeat(64), 'd'.repeat(64), T);
    expect(() => db.prepare("UPDATE access_policies SET body = '[]'").run()).toThrow(/never changes/);
    expect(() => db.prepare('DELETE FROM access_policies').run()).toThrow(/kept/);
  });

  it('host enclave and delivery rows go with their host', () => {
    const db = dbAt(m0017.version);
    const id = Number(db.prepare("INSERT INTO hosts (name, address, port, user, added_at) VALUES ('gpu1', '10.0.0.1', 22, 'root', ?)").run(T).lastInsertRowid);
    db.prepare("INSERT INTO access_enclaves (name, phi, created_at, created_by) VALUES ('ward-a', 1, ?, 'alice')").run(T);
    db.prepare("INSERT INTO access_host_enclaves (host_id, enclave, assigned_at, assigned_by) VALUES (?, 'ward-a', ?, 'alice')").run(id, T);
    db.prepare("INSERT INTO access_deliveries (host_id, state, since, checked_at) VALUES (?, 'pending', ?, ?)").run(id, T, T);
    expect(() => db.prepare("UPDATE access_enclaves SET phi = 0 WHERE name = 'ward-a'").run()).toThrow(/never change/);
    db.prepare('DELETE FROM hosts WHERE id = ?').run(id);
    expect(db.prepare('SELECT count(*) FROM access_host_enclaves').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM access_deliveries').pluck().get()).toBe(0);
  });
});

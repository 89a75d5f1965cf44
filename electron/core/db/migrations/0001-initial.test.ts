import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0001 } from './0001-initial';

function fresh() {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  m0001.up(db);
  return db;
}

describe('migration 0001-initial', () => {
  it('creates every table STRICT', () => {
    const db = fresh();
    const tables = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string; sql: string }>;
    expect(tables.map((t) => t.name).sort()).toEqual(['audit_events', 'hosts', 'meta', 'secrets', 'users', 'vault_slots']);
    for (const t of tables) expect(t.sql, t.name).toMatch(/\)\s*STRICT$/);
    // STRICT means a wrong type is an error, not a silent conversion.
    expect(() => db.prepare("INSERT INTO hosts (name, address, port, user, added_at) VALUES ('a', 'b', 'x', 'root', 'now')").run()).toThrow();
  });

  it('makes the audit table append-only', () => {
    const db = fresh();
    db.prepare("INSERT INTO audit_events VALUES (1, 't', 'a', 'c', '{}', 'p', 'h')").run();
    expect(() => db.prepare("UPDATE audit_events SET body = '{\"x\":1}'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_events').run()).toThrow(/append-only/);
    expect(db.prepare('SELECT count(*) AS n FROM audit_events').get()).toEqual({ n: 1 });
  });

  it('removes a user’s vault slot with the user and keeps endpoints unique', () => {
    const db = fresh();
    db.prepare("INSERT INTO users (id, name, roles, password_hash, created_at) VALUES (1, 'u', '[\"admin\"]', 'h', 'now')").run();
    db.prepare("INSERT INTO vault_slots VALUES (1, '{}', x'00', x'00', 'now')").run();
    db.prepare('DELETE FROM users WHERE id = 1').run();
    expect(db.prepare('SELECT count(*) AS n FROM vault_slots').get()).toEqual({ n: 0 });
    db.prepare("INSERT INTO hosts (name, address, port, user, added_at) VALUES ('a', '10.0.0.1', 22, 'root', 'now')").run();
    expect(() => db.prepare("INSERT INTO hosts (name, address, port, user, added_at) VALUES ('b', '10.0.0.1', 22, 'root', 'now')").run()).toThrow(/UNIQUE/);
  });
});

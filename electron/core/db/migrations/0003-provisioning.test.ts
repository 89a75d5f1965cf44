import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0001 } from './0001-initial';
import { m0002 } from './0002-identity-approvals';
import { m0003 } from './0003-provisioning';

function v2WithHost() {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  m0001.up(db);
  m0002.up(db);
  db.prepare("INSERT INTO hosts (name, address, port, user, added_at) VALUES ('gpu1', '10.0.0.1', 22, 'root', 'then')").run();
  return db;
}

describe('migration 0003-provisioning', () => {
  it('upgrades a v2 database in place: existing hosts get no labels', () => {
    const db = v2WithHost();
    m0003.up(db);
    expect(db.prepare('SELECT name, labels FROM hosts').get()).toEqual({ name: 'gpu1', labels: '[]' });
  });

  it('creates its tables STRICT', () => {
    const db = v2WithHost();
    m0003.up(db);
    const names = ['playbooks', 'provision_runs', 'provision_hosts', 'provision_steps', 'store_objects', 'store_debs', 'store_models', 'attestations'];
    const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN (${names.map(() => '?').join(',')})`).all(...names) as Array<{ name: string; sql: string }>;
    expect(rows.map((r) => r.name).sort()).toEqual([...names].sort());
    for (const r of rows) expect(r.sql, r.name).toMatch(/\)\s*STRICT$/);
  });

  it('refuses unknown step and run states, and keeps attestations append-only', () => {
    const db = v2WithHost();
    m0003.up(db);
    db.prepare(
      "INSERT INTO provision_runs (id, kind, playbook, playbook_version, playbook_digest, playbook_body, params, actor, status, started_at) VALUES ('r', 'apply', 'p', '1', 'd', '{}', '{}', 'alice', 'running', 'now')",
    ).run();
    expect(() => db.prepare("UPDATE provision_runs SET status = 'done-ish' WHERE id = 'r'").run()).toThrow();
    db.prepare("INSERT INTO provision_hosts (run_id, host, status) VALUES ('r', 'gpu1', 'pending')").run();
    expect(() => db.prepare("INSERT INTO provision_steps (run_id, host, idx, step_id, type, title, status) VALUES ('r', 'gpu1', 0, 's', 't', 'T', 'maybe')").run()).toThrow();
    expect(() => db.prepare("INSERT INTO provision_steps (run_id, host, idx, step_id, type, title, status) VALUES ('r', 'nohost', 0, 's', 't', 'T', 'pending')").run()).toThrow();
    db.prepare("INSERT INTO attestations VALUES ('att-1', 'gpu1', 'r', 'now', 'p', '{}', 'd', 's', 'k')").run();
    expect(() => db.prepare("UPDATE attestations SET body = '{\"x\":1}'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM attestations').run()).toThrow(/append-only/);
  });
});

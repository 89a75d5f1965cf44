import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, schemaVersion } from '../db';
import { migrations } from './index';
import { m0014 } from './0014-models-rekey';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A database file migrated up to (and including) `version`. */
function dbAt(version: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm0014-'));
  dirs.push(dir);
  const db = new Database(path.join(dir, 'airlock.db'));
  db.pragma('foreign_keys = ON');
  migrate(db, migrations.slice(0, version));
  return db;
}

describe('migration 0014-models-rekey', () => {
  it('upgrades a database in place: models_keys untouched, the re-key tables new and STRICT', () => {
    const before = m0014.version - 1;
    const db = dbAt(before);
    const keys = db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'models_keys'`).pluck().get();
    migrate(db, migrations);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(m0014.version);
    expect(db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'models_keys'`).pluck().get()).toBe(keys);
    const names = ['models_rekeys', 'models_rekey_hosts', 'models_rekey_steps'];
    const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN (${names.map(() => '?').join(',')})`).all(...names) as Array<{ name: string; sql: string }>;
    expect(rows.map((r) => r.name).sort()).toEqual([...names].sort());
    for (const r of rows) expect(r.sql, r.name).toMatch(/\)\s*STRICT$/);
  });

  it('refuses unknown states and steps, bad identifiers, and steps of a host not in the re-key', () => {
    const db = dbAt(m0014.version);
    db.prepare(`INSERT INTO models_rekeys (id, actor, concurrency, status, started_at) VALUES ('mrk-1', 'alice', 4, 'running', 'now')`).run();
    expect(() => db.prepare(`UPDATE models_rekeys SET status = 'half-done' WHERE id = 'mrk-1'`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`UPDATE models_rekeys SET concurrency = 0 WHERE id = 'mrk-1'`).run()).toThrow(/CHECK/);
    db.prepare(`INSERT INTO models_rekey_hosts (rekey_id, host, status) VALUES ('mrk-1', 'gpu1', 'pending')`).run();
    expect(() => db.prepare(`UPDATE models_rekey_hosts SET new_identifier = 'abc' WHERE host = 'gpu1'`).run()).toThrow(/CHECK/);
    db.prepare(`INSERT INTO models_rekey_steps (rekey_id, host, idx, step, status) VALUES ('mrk-1', 'gpu1', 0, 'stage', 'pending')`).run();
    expect(() => db.prepare(`INSERT INTO models_rekey_steps (rekey_id, host, idx, step, status) VALUES ('mrk-1', 'gpu1', 1, 'reboot', 'pending')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO models_rekey_steps (rekey_id, host, idx, step, status) VALUES ('mrk-1', 'gpu1', 1, 'copy', 'maybe')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO models_rekey_steps (rekey_id, host, idx, step, status) VALUES ('mrk-1', 'nohost', 0, 'stage', 'pending')`).run()).toThrow(/FOREIGN KEY/);
  });
});

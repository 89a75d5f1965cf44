import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, schemaVersion } from '../db';
import { migrations } from './index';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A database file migrated up to (and including) `version`. */
function dbAt(version: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm0011-'));
  dirs.push(dir);
  const db = new Database(path.join(dir, 'airlock.db'));
  db.pragma('foreign_keys = ON');
  migrate(db, migrations.slice(0, version));
  return db;
}

describe('migration 0011-ssh-rotation', () => {
  it('upgrades a database in place: the current SSH identity keeps its names, the rotation tables are new and STRICT', () => {
    const db = dbAt(9);
    db.prepare(`INSERT INTO meta (key, value) VALUES ('ssh.identity.public', 'ssh-ed25519 AAAA airlock@alice')`).run();
    migrate(db, migrations);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(11);
    expect(db.prepare(`SELECT value FROM meta WHERE key = 'ssh.identity.public'`).pluck().get()).toBe('ssh-ed25519 AAAA airlock@alice');
    const names = ['ssh_rotations', 'ssh_rotation_hosts', 'ssh_rotation_steps'];
    const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN (${names.map(() => '?').join(',')})`).all(...names) as Array<{ name: string; sql: string }>;
    expect(rows.map((r) => r.name).sort()).toEqual([...names].sort());
    for (const r of rows) expect(r.sql, r.name).toMatch(/\)\s*STRICT$/);
  });

  it('refuses unknown states and steps, and steps of a host not in the rotation', () => {
    const db = dbAt(11);
    db.prepare(
      `INSERT INTO ssh_rotations (id, actor, old_public, old_fingerprint, new_public, new_fingerprint, status, started_at) VALUES ('rot-1', 'alice', 'o', 'fo', 'n', 'fn', 'running', 'now')`,
    ).run();
    expect(() => db.prepare(`UPDATE ssh_rotations SET status = 'half-done' WHERE id = 'rot-1'`).run()).toThrow(/CHECK/);
    db.prepare(`INSERT INTO ssh_rotation_hosts (rotation_id, host, status) VALUES ('rot-1', 'gpu1', 'pending')`).run();
    db.prepare(`INSERT INTO ssh_rotation_steps (rotation_id, host, idx, step, status) VALUES ('rot-1', 'gpu1', 0, 'add', 'pending')`).run();
    expect(() => db.prepare(`INSERT INTO ssh_rotation_steps (rotation_id, host, idx, step, status) VALUES ('rot-1', 'gpu1', 1, 'reboot', 'pending')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO ssh_rotation_steps (rotation_id, host, idx, step, status) VALUES ('rot-1', 'gpu1', 1, 'verify', 'maybe')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO ssh_rotation_steps (rotation_id, host, idx, step, status) VALUES ('rot-1', 'nohost', 0, 'add', 'pending')`).run()).toThrow(/FOREIGN KEY/);
  });
});

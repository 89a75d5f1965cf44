import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ApprovalOperations } from '../../../../shared/contract/approvals';
import { migrate, schemaVersion } from '../db';
import { migrations } from './index';
import { m0015 } from './0015-models-catalog-ops';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function dbAt(version: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm0015-'));
  dirs.push(dir);
  const db = new Database(path.join(dir, 'airlock.db'));
  db.pragma('foreign_keys = ON');
  migrate(db, migrations.slice(0, version));
  return db;
}
const D = `sha256:${'a'.repeat(64)}`;

describe('migration 0015-models-catalog-ops', () => {
  it('upgrades in place: the catalog untouched, the new tables STRICT, the models:approvePhi policy row for officers', () => {
    const db = dbAt(m0015.version - 1);
    const versions = db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'model_versions'`).pluck().get();
    migrate(db, migrations);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(m0015.version);
    expect(db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'model_versions'`).pluck().get()).toBe(versions);
    const names = ['model_media', 'model_publications', 'model_registry'];
    const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?)`).all(...names) as Array<{ name: string; sql: string }>;
    expect(rows.map((r) => r.name).sort()).toEqual(names);
    for (const r of rows) expect(r.sql, r.name).toMatch(/\)\s*STRICT$/);
    expect(db.prepare(`SELECT approver_roles, required FROM approval_policy WHERE operation = 'models:approvePhi'`).get()).toEqual({ approver_roles: '["officer"]', required: 1 });
    // With every migration, the policy has a row for every operation of the contract.
    expect((db.prepare('SELECT operation FROM approval_policy ORDER BY operation').pluck().all() as string[]).sort()).toEqual([...ApprovalOperations].sort());
  });

  it('keeps publications to real versions with digests, one registry row, known formats', () => {
    const db = dbAt(m0015.version);
    db.prepare("INSERT INTO models VALUES ('m', '', 'o', 'now', 'alice')").run();
    db.prepare("INSERT INTO model_versions (model, version, classification, license, format, source, imported_at, imported_by, files, total_bytes, status_at, status_by) VALUES ('m', 'v1', 'public', 'mit', 'directory', 'usb', 'now', 'alice', 1, 3, 'now', 'alice')").run();
    const pub = db.prepare('INSERT INTO model_publications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)');
    expect(() => pub.run('m', 'v2', 'http://r', 'models/m', 'v2', D, D, 0, 'now', 'bob')).toThrow(/FOREIGN KEY/);
    expect(() => pub.run('m', 'v1', 'http://r', 'models/m', 'v1', 'md5:x', D, 0, 'now', 'bob')).toThrow(/CHECK/);
    pub.run('m', 'v1', 'http://r', 'models/m', 'v1', D, D, 0, 'now', 'bob');
    expect(() => db.prepare("INSERT INTO model_media VALUES ('m', 'v1', 'zip', '/media/x')").run()).toThrow(/CHECK/);
    db.prepare("INSERT INTO model_media VALUES ('m', 'v1', 'modelkit', '/media/x.tar')").run();
    db.prepare("INSERT INTO model_registry VALUES (1, 'http://r', 'now', 'bob')").run();
    expect(() => db.prepare("INSERT INTO model_registry VALUES (2, 'http://s', 'now', 'bob')").run()).toThrow(/CHECK/);
  });
});

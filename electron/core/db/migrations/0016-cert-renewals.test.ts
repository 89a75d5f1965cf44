import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, schemaVersion } from '../db';
import { migrations } from './index';
import { m0016 } from './0016-cert-renewals';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A database file migrated up to (and including) `version`. */
function dbAt(version: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm0016-'));
  dirs.push(dir);
  const db = new Database(path.join(dir, 'airlock.db'));
  db.pragma('foreign_keys = ON');
  migrate(db, migrations.slice(0, version));
  return db;
}

const ROOT = `INSERT INTO certificates (serial, profile, subject, issuer_serial, cert_pem, sha256, not_before, not_after, created_at)
  VALUES ('aa', 'root-ca', 'CN=root', 'aa', 'pem', 'AA:BB', '2026-01-01', '2036-01-01', '2026-01-01')`;

describe('migration 0016-cert-renewals', () => {
  it('upgrades a database in place: certificates on record keep every field and are current (no renewal), the renewal tables are new and STRICT', () => {
    const db = dbAt(m0016.version - 1);
    db.prepare(ROOT).run();
    migrate(db, migrations);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(m0016.version);
    expect(db.prepare(`SELECT serial, subject, renewal_id FROM certificates`).all()).toEqual([{ serial: 'aa', subject: 'CN=root', renewal_id: null }]);
    const names = ['cert_renewals', 'cert_renewal_hosts', 'cert_renewal_steps'];
    const rows = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN (${names.map(() => '?').join(',')})`).all(...names) as Array<{ name: string; sql: string }>;
    expect(rows.map((r) => r.name).sort()).toEqual([...names].sort());
    for (const r of rows) expect(r.sql, r.name).toMatch(/\)\s*STRICT$/);
  });

  it('refuses unknown states and steps, and steps of a host not in the renewal', () => {
    const db = dbAt(m0016.version);
    db.prepare(`INSERT INTO cert_renewals (id, actor, window_days, concurrency, status, started_at) VALUES ('crn-1', 'alice', 30, 4, 'running', 'now')`).run();
    expect(() => db.prepare(`UPDATE cert_renewals SET status = 'half-done' WHERE id = 'crn-1'`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO cert_renewals (id, actor, window_days, concurrency, status, started_at) VALUES ('crn-2', 'alice', 9999, 4, 'running', 'now')`).run()).toThrow(/CHECK/);
    db.prepare(`INSERT INTO cert_renewal_hosts (renewal_id, host, status, old_serial) VALUES ('crn-1', 'gpu1', 'pending', 'ab')`).run();
    expect(() => db.prepare(`INSERT INTO cert_renewal_hosts (renewal_id, host, status, old_serial) VALUES ('crn-9', 'gpu2', 'pending', 'ab')`).run()).toThrow(/FOREIGN KEY/);
    db.prepare(`INSERT INTO cert_renewal_steps (renewal_id, host, idx, step, status) VALUES ('crn-1', 'gpu1', 0, 'keygen', 'pending')`).run();
    expect(() => db.prepare(`INSERT INTO cert_renewal_steps (renewal_id, host, idx, step, status) VALUES ('crn-1', 'gpu1', 1, 'reboot', 'pending')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO cert_renewal_steps (renewal_id, host, idx, step, status) VALUES ('crn-1', 'gpu1', 1, 'csr', 'maybe')`).run()).toThrow(/CHECK/);
    expect(() => db.prepare(`INSERT INTO cert_renewal_steps (renewal_id, host, idx, step, status) VALUES ('crn-1', 'nohost', 0, 'keygen', 'pending')`).run()).toThrow(/FOREIGN KEY/);
    // Deleting a renewal takes its hosts and steps with it.
    db.prepare(`DELETE FROM cert_renewals WHERE id = 'crn-1'`).run();
    expect(db.prepare(`SELECT COUNT(*) FROM cert_renewal_steps`).pluck().get()).toBe(0);
  });
});

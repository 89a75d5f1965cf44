import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate, schemaVersion } from '../db';
import { migrations } from './index';

/** A database migrated up to (and including) `version`. */
function dbAt(version: number) {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  migrate(db, migrations.slice(0, version));
  return db;
}
const kek = (db: Database.Database, v: number) => db.prepare("INSERT INTO console_keks VALUES (?, x'00', 'kcv', 't')").run(v);
const entry = (db: Database.Database, purpose: string, version: number, o: { kek?: number; sealed?: boolean; staged?: string | null; retired?: boolean } = {}) =>
  db
    .prepare('INSERT INTO console_keys (purpose, version, kek_version, sealed, staged_for, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run(purpose, version, o.kek ?? 1, o.sealed === false ? null : Buffer.from([1]), o.staged ?? null, 't', o.retired ? 't' : null);

describe('migration 0013-console-keys', () => {
  it('upgrades a database in place: the vault secrets stay (the registry migrates them at sign-in), the new tables are empty', () => {
    const db = dbAt(12);
    db.prepare("INSERT INTO secrets (name, sealed, updated_at) VALUES ('audit.signing.private', x'00', 't')").run();
    migrate(db, migrations);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(13);
    expect(db.prepare('SELECT name FROM secrets').pluck().all()).toEqual(['audit.signing.private']);
    expect(db.prepare('SELECT count(*) FROM console_keks').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM console_keys').pluck().get()).toBe(0);
  });

  it('an entry names an own key purpose and an existing KEK version; one current and one staged per rotation; retired means no private part', () => {
    const db = dbAt(13);
    expect(() => entry(db, 'audit.signing', 1)).toThrow(/FOREIGN KEY/);
    kek(db, 1);
    expect(() => entry(db, 'tls.private', 1)).toThrow(/CHECK/);
    entry(db, 'audit.signing', 1);
    expect(() => entry(db, 'audit.signing', 2)).toThrow(/UNIQUE/);
    expect(() => entry(db, 'audit.signing', 2, { staged: 'r1' })).toThrow(/CHECK/);
    entry(db, 'ssh.identity', 1);
    entry(db, 'ssh.identity', 2, { staged: 'r1' });
    expect(() => entry(db, 'ssh.identity', 3, { staged: 'r1' })).toThrow(/UNIQUE/);
    expect(() => entry(db, 'attest.signing', 1, { retired: true })).toThrow(/CHECK/);
    expect(() => entry(db, 'attest.signing', 1, { sealed: false })).toThrow(/CHECK/);
    entry(db, 'attest.signing', 1, { retired: true, sealed: false });
    expect(() => db.prepare('DELETE FROM console_keks WHERE version = 1').run()).toThrow(/FOREIGN KEY/);
  });
});

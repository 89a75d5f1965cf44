import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { checkMigrationList, openDatabase, schemaVersion } from './db';
import { migrations } from './migrations';

const dirs: string[] = [];
const tmpFile = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-db-'));
  dirs.push(d);
  return path.join(d, 'airlock.db');
};
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('openDatabase', () => {
  it('creates a WAL database with foreign keys at the latest schema version', () => {
    const db = openDatabase(tmpFile());
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(schemaVersion(db)).toBe(migrations.length);
    db.close();
  });

  it('refuses a database from a newer Airlock and leaves it untouched', () => {
    const file = tmpFile();
    openDatabase(file).close();
    const raw = new Database(file);
    raw.pragma(`user_version = ${migrations.length + 1}`);
    raw.close();
    const before = fs.readFileSync(file);
    let err: unknown;
    try {
      openDatabase(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AirlockError);
    expect((err as AirlockError).code).toBe('DB_TOO_NEW');
    expect((err as AirlockError).message).toMatch(/newer than this Airlock/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('rolls a failing migration back entirely and keeps the earlier version', () => {
    const file = tmpFile();
    const broken = [
      ...migrations,
      { version: migrations.length + 1, name: 'broken', up: (db: Database.Database) => db.exec('CREATE TABLE half (x INTEGER) STRICT; SELECT no_such_function();') },
    ];
    expect(() => openDatabase(file, broken)).toThrow(/no_such_function/);
    const db = openDatabase(file);
    expect(schemaVersion(db)).toBe(migrations.length);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    db.close();
  });

  it('rejects a migration list with a gap or repeat', () => {
    expect(() => checkMigrationList([{ version: 2, name: 'x', up: () => {} }])).toThrow(/expected 1/);
    expect(() => checkMigrationList(migrations)).not.toThrow();
  });
});

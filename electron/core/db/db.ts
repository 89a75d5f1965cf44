import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';
import { migrations, type Migration } from './migrations';

export type Db = Database.Database;

/**
 * Opens the installation's one database: WAL, foreign keys, numbered migrations
 * applied one transaction each. A database written by a newer Airlock is refused
 * rather than half-understood.
 */
export function openDatabase(file: string, list: readonly Migration[] = migrations): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    // Another shell (CLI while serve runs) may hold the write lock briefly.
    db.pragma('busy_timeout = 5000');
    migrate(db, list);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

export function migrate(db: Db, list: readonly Migration[]): void {
  checkMigrationList(list);
  const latest = list.length === 0 ? 0 : list[list.length - 1]!.version;
  const current = schemaVersion(db);
  if (current > latest) {
    throw new AirlockError(
      'DB_TOO_NEW',
      `This database is at schema version ${current}, newer than this Airlock understands (${latest}). ` +
        'Open it with the newer Airlock that wrote it; nothing was changed.',
    );
  }
  for (const m of list) {
    if (m.version <= current) continue;
    // PRAGMA foreign_keys is a no-op inside a transaction: switched off before, back after.
    const fkWas = db.pragma('foreign_keys', { simple: true }) as number;
    if (m.foreignKeysOff) db.pragma('foreign_keys = OFF');
    try {
      db.transaction(() => {
        m.up(db);
        if (m.foreignKeysOff) {
          const broken = db.pragma('foreign_key_check') as Array<{ table: string; rowid: number; parent: string }>;
          if (broken.length > 0) {
            const b = broken[0]!;
            throw new AirlockError('INTERNAL', `Migration ${m.name} would break a reference (${b.table} row ${b.rowid} → ${b.parent}); nothing was changed.`);
          }
        }
        db.pragma(`user_version = ${m.version}`);
      }).immediate();
    } finally {
      if (m.foreignKeysOff && fkWas) db.pragma('foreign_keys = ON');
    }
  }
}

/** Migrations are numbered 1, 2, 3… with no gap or repeat: a bad list is a programming error. */
export function checkMigrationList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} has version ${m.version}, expected ${i + 1}`);
  });
}

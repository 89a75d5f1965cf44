import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0009 } from './0009-key-ceremonies';

const insert = (db: Database.Database, id: string, nonce: string, status: string) =>
  db
    .prepare(
      `INSERT INTO key_ceremonies (id, kind, nonce, script_version, status, administrator, participants, steps, params, started_at)
       VALUES (?, 'genesis', ?, 'v1', ?, 'alice', '[]', '[]', '{}', 'now')`,
    )
    .run(id, nonce, status);

describe('migration 0009-key-ceremonies', () => {
  it('keeps one open ceremony at a time, any number of finished ones, and unique nonces', () => {
    const db = new Database(':memory:');
    m0009.up(db);
    insert(db, 'cer-1', 'n1', 'open');
    expect(() => insert(db, 'cer-2', 'n2', 'open')).toThrow(/UNIQUE/);
    insert(db, 'cer-3', 'n3', 'completed');
    insert(db, 'cer-4', 'n4', 'completed');
    expect(() => insert(db, 'cer-5', 'n3', 'cancelled')).toThrow(/UNIQUE/);
    expect(() => insert(db, 'cer-6', 'n6', 'bogus')).toThrow(/CHECK/);
    expect((db.prepare('SELECT COUNT(*) AS n FROM key_ceremonies').get() as { n: number }).n).toBe(3);
  });
});

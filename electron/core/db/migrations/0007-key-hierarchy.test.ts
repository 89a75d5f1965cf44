import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0001 } from './0001-initial';
import { m0002 } from './0002-identity-approvals';
import { m0003 } from './0003-provisioning';
import { m0004 } from './0004-account-identity';
import { m0005 } from './0005-known-host-keys';
import { m0006 } from './0006-operation-names';
import { m0007 } from './0007-key-hierarchy';

function v7() {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  for (const m of [m0001, m0002, m0003, m0004, m0005, m0006, m0007]) m.up(db);
  return db;
}
const hierarchy = (db: Database.Database, threshold = 3, count = 5) =>
  db
    .prepare("INSERT INTO key_hierarchy (singleton, hierarchy_id, threshold, share_count, share_record, root_canary, root_kcv, created_at) VALUES (1, 'h', ?, ?, '{}', x'00', 'k', 't')")
    .run(threshold, count);

describe('migration 0007-key-hierarchy', () => {
  it('creates the hierarchy tables, empty', () => {
    const db = v7();
    for (const t of ['key_hierarchy', 'key_share_holders', 'kek_domains', 'kek_versions', 'data_keys']) {
      expect(db.prepare(`SELECT count(*) AS n FROM ${t}`).get()).toEqual({ n: 0 });
    }
  });

  it('one hierarchy only, with 2 ≤ m ≤ n ≤ 16', () => {
    const db = v7();
    expect(() => hierarchy(db, 1, 5)).toThrow(/CHECK/);
    expect(() => hierarchy(db, 4, 3)).toThrow(/CHECK/);
    expect(() => hierarchy(db, 2, 17)).toThrow(/CHECK/);
    hierarchy(db);
    expect(() => hierarchy(db)).toThrow(/UNIQUE|PRIMARY/);
    expect(db.prepare('SELECT epoch FROM key_hierarchy').get()).toEqual({ epoch: 1 });
  });

  it('KEK versions belong to a declared domain; data keys to an existing version, which cannot then be deleted', () => {
    const db = v7();
    expect(() => db.prepare("INSERT INTO kek_domains VALUES ('weights', 1, 1)").run()).toThrow(/CHECK/);
    expect(() => db.prepare("INSERT INTO kek_domains VALUES ('models', 1, 2)").run()).toThrow(/CHECK/);
    expect(() => db.prepare("INSERT INTO kek_versions (domain, version, wrapped, kcv, created_at) VALUES ('models', 1, x'00', 'k', 't')").run()).toThrow(/FOREIGN KEY/);
    db.prepare("INSERT INTO kek_domains VALUES ('models', 1, 1)").run();
    db.prepare("INSERT INTO kek_versions (domain, version, wrapped, kcv, created_at) VALUES ('models', 1, x'00', 'k', 't')").run();
    expect(() => db.prepare("INSERT INTO data_keys VALUES ('models', 'gpu-1', 2, x'00', 't')").run()).toThrow(/FOREIGN KEY/);
    db.prepare("INSERT INTO data_keys VALUES ('models', 'gpu-1', 1, x'00', 't')").run();
    expect(() => db.prepare("INSERT INTO data_keys VALUES ('models', 'gpu-1', 1, x'01', 't')").run()).toThrow(/UNIQUE|PRIMARY/);
    expect(() => db.prepare("DELETE FROM kek_versions WHERE domain = 'models' AND version = 1").run()).toThrow(/FOREIGN KEY/);
  });

  it('a share index is 1..16 and an officer holds one share', () => {
    const db = v7();
    expect(() => db.prepare("INSERT INTO key_share_holders VALUES (0, 'alice', null, 't')").run()).toThrow(/CHECK/);
    db.prepare("INSERT INTO key_share_holders VALUES (1, 'alice', 'abcd-abcd-abcd-abcd', 't')").run();
    expect(() => db.prepare("INSERT INTO key_share_holders VALUES (2, 'alice', null, 't')").run()).toThrow(/UNIQUE/);
  });
});

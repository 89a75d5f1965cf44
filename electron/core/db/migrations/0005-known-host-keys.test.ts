import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0001 } from './0001-initial';
import { m0002 } from './0002-identity-approvals';
import { m0003 } from './0003-provisioning';
import { m0004 } from './0004-account-identity';
import { m0005 } from './0005-known-host-keys';

function v4() {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  for (const m of [m0001, m0002, m0003, m0004]) m.up(db);
  db.prepare("INSERT INTO hosts (name, address, port, user, added_at) VALUES ('gpu1', '10.0.0.1', 22, 'root', 'then')").run();
  return db;
}

const insert = (db: Database.Database, marker: string, salt: string | null, hash: string | null, hosts = '*') =>
  db
    .prepare('INSERT INTO known_host_keys (marker, salt, hash, hosts, key_type, public_key, fingerprint, source_line, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)')
    .run(marker, salt, hash, hosts, 'ssh-ed25519', 'AAAA', 'SHA256:x', 'now');

describe('migration 0005-known-host-keys', () => {
  it('upgrades a v4 database in place, keeping its hosts, with a STRICT table', () => {
    const db = v4();
    m0005.up(db);
    expect(db.prepare('SELECT name FROM hosts').all()).toEqual([{ name: 'gpu1' }]);
    const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'known_host_keys'").get() as { sql: string }).sql;
    expect(sql).toMatch(/\)\s*STRICT$/);
  });

  it('refuses unknown markers, a hashed row without salt and hash, and duplicates', () => {
    const db = v4();
    m0005.up(db);
    insert(db, 'hashed', 's', 'h', '|1|s|h');
    insert(db, 'revoked', null, null);
    expect(() => insert(db, 'cert-authority', null, null)).toThrow(/CHECK/);
    expect(() => insert(db, 'hashed', null, null, 'x')).toThrow(/CHECK/);
    expect(() => insert(db, 'revoked', 's', 'h', 'y')).toThrow(/CHECK/);
    expect(() => insert(db, 'revoked', null, null)).toThrow(/UNIQUE/);
  });
});

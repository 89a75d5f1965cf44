import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0001 } from './0001-initial';
import { m0002 } from './0002-identity-approvals';
import { m0003 } from './0003-provisioning';
import { m0004 } from './0004-account-identity';
import { m0005 } from './0005-known-host-keys';
import { m0006 } from './0006-operation-names';
import { m0008 } from './0008-certificates';

/** 0008 depends on nothing 0007 adds (the key hierarchy's tables): it is tested on a v6 database. */
function before() {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  for (const m of [m0001, m0002, m0003, m0004, m0005, m0006]) m.up(db);
  db.prepare("INSERT INTO hosts (name, address, port, user, added_at) VALUES ('gpu1', '10.0.0.1', 22, 'root', 'then')").run();
  return db;
}

const cert = (db: Database.Database, serial: string, profile: string, issuer: string, extra: { revokedAt?: string | null; reason?: string | null; notAfter?: string } = {}) =>
  db
    .prepare(
      `INSERT INTO certificates (serial, profile, subject, issuer_serial, host, cert_pem, sha256, key_ref, not_before, not_after, revoked_at, revoke_reason, created_at)
       VALUES (?, ?, 'CN=x', ?, NULL, 'pem', ?, NULL, '2026-01-01T00:00:00.000Z', ?, ?, ?, 'now')`,
    )
    .run(serial, profile, issuer, `fp-${serial}`, extra.notAfter ?? '2027-01-01T00:00:00.000Z', extra.revokedAt ?? null, extra.reason ?? null);

describe('migration 0008-certificates', () => {
  it('upgrades a database in place, keeping its hosts, with STRICT tables', () => {
    const db = before();
    m0008.up(db);
    expect(db.prepare('SELECT name FROM hosts').all()).toEqual([{ name: 'gpu1' }]);
    for (const t of ['certificates', 'ca_crls']) {
      const sql = (db.prepare('SELECT sql FROM sqlite_master WHERE name = ?').get(t) as { sql: string }).sql;
      expect(sql).toMatch(/\)\s*STRICT$/);
    }
  });

  it('holds a chain together: the root names itself, others name a recorded issuer', () => {
    const db = before();
    m0008.up(db);
    cert(db, '4a01', 'root-ca', '4a01');
    cert(db, '4a02', 'issuing-ca', '4a01');
    cert(db, '4a03', 'host-tls', '4a02');
    expect(() => cert(db, '4a04', 'host-tls', '4aff')).toThrow(/FOREIGN KEY/);
    expect(() => cert(db, '4a05', 'root-ca', '4a01')).toThrow(/CHECK/);
    expect(() => cert(db, '4a06', 'host-tls', '4a06')).toThrow(/CHECK/);
    expect(() => cert(db, '4a03', 'host-tls', '4a02')).toThrow(/UNIQUE|PRIMARY/);
  });

  it('refuses unknown profiles and reasons, upper-case serials, a revocation without its reason, and an empty validity', () => {
    const db = before();
    m0008.up(db);
    cert(db, '4b01', 'root-ca', '4b01');
    expect(() => cert(db, '4b02', 'ssh-ca', '4b01')).toThrow(/CHECK/);
    expect(() => cert(db, '4B03', 'host-tls', '4b01')).toThrow(/CHECK/);
    expect(() => cert(db, '4b04', 'host-tls', '4b01', { revokedAt: 'now', reason: null })).toThrow(/CHECK/);
    expect(() => cert(db, '4b05', 'host-tls', '4b01', { revokedAt: 'now', reason: 'bored' })).toThrow(/CHECK/);
    expect(() => cert(db, '4b06', 'host-tls', '4b01', { notAfter: '2025-01-01T00:00:00.000Z' })).toThrow(/CHECK/);
    cert(db, '4b07', 'host-tls', '4b01', { revokedAt: 'now', reason: 'keyCompromise' });
  });

  it('keeps one CRL per issuer and number, for a recorded issuer', () => {
    const db = before();
    m0008.up(db);
    cert(db, '4c01', 'root-ca', '4c01');
    const crl = (issuer: string, n: number, next = '2026-02-01') =>
      db.prepare("INSERT INTO ca_crls (issuer_serial, crl_number, crl_pem, this_update, next_update) VALUES (?, ?, 'pem', '2026-01-01', ?)").run(issuer, n, next);
    crl('4c01', 1);
    crl('4c01', 2);
    expect(() => crl('4c01', 2)).toThrow(/UNIQUE|PRIMARY/);
    expect(() => crl('4cff', 1)).toThrow(/FOREIGN KEY/);
    expect(() => crl('4c01', -1)).toThrow(/CHECK/);
    expect(() => crl('4c01', 3, '2025-12-31')).toThrow(/CHECK/);
  });
});

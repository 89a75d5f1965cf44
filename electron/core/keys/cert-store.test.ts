import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../db/db';
import { migrations, type Migration } from '../db/migrations';
import { m0008 } from '../db/migrations/0008-certificates';
import { certInfo, createCrl, createIssuingCa, createRootCa, issueCertificate, type CaKeyPair } from './ca';
import { CertStore } from './cert-store';

/**
 * Until 0007 (the key hierarchy's migration, another branch) is merged, a no-op stands in for it so
 * the list stays numbered without a gap; 0008 uses nothing of 0007.
 */
const list: readonly Migration[] = migrations.some((m) => m.version === 8)
  ? migrations
  : [...migrations, ...(migrations.some((m) => m.version === 7) ? [] : [{ version: 7, name: '0007-stand-in', up() {} }]), m0008];

const random = (n: number) => crypto.randomBytes(n);
const DAY = 86_400_000;
const start = new Date();

let dir: string;
let root: CaKeyPair;
let issuing: CaKeyPair;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-certstore-'));
  root = await createRootCa({ commonName: 'Store Root CA', validityDays: 3650, now: start, random });
  issuing = await createIssuingCa(root, { commonName: 'Store Issuing CA', validityDays: 1825, now: start, random });
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  root.privateKeyPkcs8.fill(0);
  issuing.privateKeyPkcs8.fill(0);
});

/** A store on a fresh database file, with a clock the test moves. */
function store(): { db: Db; certs: CertStore; clock: { now: Date } } {
  const db = openDatabase(path.join(dir, `${crypto.randomBytes(4).toString('hex')}.db`), list);
  const clock = { now: start };
  return { db, certs: new CertStore({ db, now: () => clock.now }), clock };
}

const host = async (name: string, validityDays = 90, now = start) =>
  (await issueCertificate(issuing, { profile: 'host-tls', commonName: name, dnsNames: [name], validityDays, now, random })).certPem;

describe('CertStore', () => {
  it('records a chain read from the certificates themselves, and lists it by expiry', async () => {
    const { db, certs } = store();
    const r = certs.record({ certPem: root.certPem, keyRef: 'dk-root' });
    expect(r).toMatchObject({ profile: 'root-ca', subject: 'CN=Store Root CA', issuerSerial: r.serial, keyRef: 'dk-root', revokedAt: null });
    const i = certs.record({ certPem: issuing.certPem, issuerSerial: r.serial, keyRef: 'dk-issuing' });
    const long = certs.record({ certPem: await host('gpu1', 200), issuerSerial: i.serial, host: 'gpu1' });
    const short = certs.record({ certPem: await host('gpu2', 30), issuerSerial: i.serial, host: 'gpu2' });
    expect(long.sha256).toBe(certInfo(long.certPem).sha256);
    expect(certs.listByExpiry().map((c) => c.serial)).toEqual([short.serial, long.serial, i.serial, r.serial]);
    expect(certs.listByExpiry({ profile: 'host-tls', host: 'gpu1' }).map((c) => c.serial)).toEqual([long.serial]);
    expect(certs.get(long.serial.toUpperCase())?.host).toBe('gpu1');
    db.close();
    // A real file: reopened, the records are there.
    const again = openDatabase(db.name, list);
    expect(new CertStore({ db: again, now: () => start }).listByExpiry()).toHaveLength(4);
    again.close();
  });

  it('refuses an issuer not on record, the wrong issuer, a duplicate, and a root named as issued by another', async () => {
    const { db, certs } = store();
    const leaf = await host('gpu3');
    expect(() => certs.record({ certPem: leaf, issuerSerial: 'abcd' })).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    const r = certs.record({ certPem: root.certPem });
    expect(() => certs.record({ certPem: leaf, issuerSerial: r.serial })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', message: expect.stringMatching(/was issued by CN=Store Issuing CA/) }));
    const i = certs.record({ certPem: issuing.certPem, issuerSerial: r.serial });
    certs.record({ certPem: leaf, issuerSerial: i.serial });
    expect(() => certs.record({ certPem: leaf, issuerSerial: i.serial })).toThrow(expect.objectContaining({ code: 'CONFLICT' }));
    expect(() => certs.record({ certPem: issuing.certPem })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expect(() => certs.record({ certPem: root.certPem, issuerSerial: i.serial })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', message: expect.stringMatching(/its own issuer/) }));
    db.close();
  });

  it('revokes once, lists revoked certificates for the CRL, and the CRL it records fails the certificate in openssl', async () => {
    const { db, certs, clock } = store();
    const r = certs.record({ certPem: root.certPem });
    const i = certs.record({ certPem: issuing.certPem, issuerSerial: r.serial });
    const bad = certs.record({ certPem: await host('gpu4'), issuerSerial: i.serial, host: 'gpu4' });
    const good = certs.record({ certPem: await host('gpu5'), issuerSerial: i.serial, host: 'gpu5' });
    expect(certs.latestCrl(i.serial)).toBeNull();
    clock.now = new Date(start.getTime() + 1000);
    const revoked = certs.revoke(bad.serial, 'keyCompromise');
    expect(revoked).toMatchObject({ serial: bad.serial, revokeReason: 'keyCompromise' });
    expect(() => certs.revoke(bad.serial, 'superseded')).toThrow(expect.objectContaining({ code: 'CONFLICT' }));
    expect(() => certs.revoke('4fff', 'superseded')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(() => certs.revoke(good.serial, 'bored' as never)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expect(certs.listByExpiry().map((c) => c.serial)).not.toContain(bad.serial);
    expect(certs.listByExpiry({ includeRevoked: true }).find((c) => c.serial === bad.serial)?.revokedAt).toBe(revoked.revokedAt);
    const entries = certs.revokedBy(i.serial);
    expect(entries.map((e) => [e.serial, e.reason])).toEqual([[bad.serial, 'keyCompromise']]);
    expect(certs.revokedBy(r.serial)).toEqual([]);

    const n = certs.nextCrlNumber(i.serial);
    expect(n).toBe(1);
    const thisUpdate = new Date(Date.now() - 60_000);
    const nextUpdate = new Date(Date.now() + 7 * DAY);
    const crlPem = await createCrl(issuing, entries, { thisUpdate, nextUpdate, crlNumber: n });
    certs.recordCrl({ issuerSerial: i.serial, crlNumber: n, crlPem, thisUpdate, nextUpdate });
    expect(() => certs.recordCrl({ issuerSerial: i.serial, crlNumber: n, crlPem, thisUpdate, nextUpdate })).toThrow(expect.objectContaining({ code: 'CONFLICT' }));
    expect(certs.nextCrlNumber(i.serial)).toBe(2);
    certs.recordCrl({ issuerSerial: i.serial, crlNumber: 2, crlPem, thisUpdate, nextUpdate });
    expect(certs.latestCrl(i.serial)?.crlNumber).toBe(2);

    const latest = certs.latestCrl(i.serial)!;
    const caFile = path.join(dir, 'store-ca.pem');
    fs.writeFileSync(caFile, issuing.certPem + root.certPem + latest.crlPem);
    const verify = (pem: string) =>
      new Promise<number>((resolve) => {
        const f = path.join(dir, `${crypto.randomBytes(4).toString('hex')}.pem`);
        fs.writeFileSync(f, pem);
        execFile('openssl', ['verify', '-crl_check', '-CAfile', caFile, f], (err) => resolve(err ? 1 : 0));
      });
    expect(await verify(bad.certPem)).toBe(1);
    expect(await verify(good.certPem)).toBe(0);
    db.close();
  });

  it('finds certificates due for renewal, once, until a successor is recorded', async () => {
    const { db, certs, clock } = store();
    const r = certs.record({ certPem: root.certPem });
    const i = certs.record({ certPem: issuing.certPem, issuerSerial: r.serial });
    const old = certs.record({ certPem: await host('gpu6', 60), issuerSerial: i.serial, host: 'gpu6' });
    const end = new Date(old.notAfter).getTime();
    clock.now = new Date(end - 40 * DAY);
    expect(certs.dueForRenewal(30)).toEqual([]);
    clock.now = new Date(end - 20 * DAY);
    expect(certs.dueForRenewal(30).map((c) => c.serial)).toEqual([old.serial]);
    certs.record({ certPem: await host('gpu6', 90, clock.now), issuerSerial: i.serial, host: 'gpu6' });
    expect(certs.dueForRenewal(30)).toEqual([]);
    db.close();
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCrl, createIssuingCa, createRootCa, issueCertificate, type CaKeyPair } from './ca';
import { hostPublicKeyFromCsr } from './ca-ops';
import { csrScript, HostRefused, installScript, ISSUE_STAGE, keygenScript, parseMarker, RENEWAL_STAGE, retireScript, verifyScript } from './cert-renewal-scripts';

/**
 * The renewal's host scripts, run by /bin/sh with the real openssl on a temporary "TLS directory"
 * (the lab's real hosts: test/integration/keys-cert-renewal.test.ts). Each is run again after
 * being cut off at its worst point, and the pair a reader gets always matches.
 */
const random = (n: number) => crypto.randomBytes(n);
const now = new Date();
let root: CaKeyPair;
let issuing: CaKeyPair;
let chain: string;
let crl: string;
beforeAll(async () => {
  root = await createRootCa({ commonName: 'Test Root', validityDays: 3650, now, random });
  issuing = await createIssuingCa(root, { commonName: 'Test Issuing', validityDays: 1825, now, random });
  chain = issuing.certPem + root.certPem;
  crl = await createCrl(issuing, [], { thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000), crlNumber: 1 });
});

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
function tlsDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-tls-'));
  dirs.push(d);
  return path.join(d, 'tls');
}
const sh = (script: string) => {
  const r = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ok = (script: string, words: string[]) => parseMarker(sh(script), words);

async function certFor(spki: Buffer, name = 'gpu1'): Promise<{ pem: string; serial: string }> {
  const c = await issueCertificate(issuing, { profile: 'host-tls', commonName: name, dnsNames: [name], publicKey: spki, validityDays: 90, now, random });
  return { pem: c.certPem, serial: new crypto.X509Certificate(c.certPem).serialNumber.toLowerCase() };
}
const pub = (pemFile: string) => execFileSync('openssl', ['pkey', '-in', pemFile, '-pubout'], { encoding: 'utf8' });
const certPub = (pemFile: string) => execFileSync('openssl', ['x509', '-in', pemFile, '-noout', '-pubkey'], { encoding: 'utf8' });
const servedSerial = (d: string) => new crypto.X509Certificate(fs.readFileSync(path.join(d, 'host.crt'))).serialNumber.toLowerCase();
/** What a TLS server opening host.key and host.crt gets: a matching pair. */
const pairMatches = (d: string) => pub(path.join(d, 'host.key')) === certPub(path.join(d, 'host.crt'));

/** keygen, csr, a certificate for the CSR's key, staged as the console stages it. */
async function staged(d: string) {
  expect(ok(keygenScript(d), ['made', 'kept']).word).toBe('made');
  const csr = sh(csrScript(d));
  expect(csr.code, csr.stderr).toBe(0);
  const spki = await hostPublicKeyFromCsr(csr.stdout);
  const c = await certFor(spki);
  fs.writeFileSync(path.join(d, RENEWAL_STAGE.crt), c.pem);
  fs.writeFileSync(path.join(d, RENEWAL_STAGE.chain), chain);
  fs.writeFileSync(path.join(d, RENEWAL_STAGE.crl), crl);
  return c;
}

describe('the renewal host scripts', () => {
  it('keygen keeps a key it made before it was cut off, and never the current key', async () => {
    const d = tlsDir();
    expect(ok(keygenScript(d), ['made', 'kept']).word).toBe('made');
    const first = fs.readFileSync(path.join(d, RENEWAL_STAGE.key), 'utf8');
    expect(fs.statSync(path.join(d, RENEWAL_STAGE.key)).mode & 0o777).toBe(0o600);
    expect(ok(keygenScript(d), ['made', 'kept']).word).toBe('kept');
    expect(fs.readFileSync(path.join(d, RENEWAL_STAGE.key), 'utf8')).toBe(first);
    // The staged key is the current one (copied by hand): a new one is made.
    fs.copyFileSync(path.join(d, RENEWAL_STAGE.key), path.join(d, 'host.key'));
    expect(ok(keygenScript(d), ['made', 'kept']).word).toBe('made');
    expect(fs.readFileSync(path.join(d, RENEWAL_STAGE.key), 'utf8')).not.toBe(first);
    // A half-written temporary file from a cut-off run is not a key: it is replaced.
    fs.writeFileSync(path.join(d, RENEWAL_STAGE.key), 'garbage');
    expect(ok(keygenScript(d), ['made', 'kept']).word).toBe('made');
  });

  it('install converts the earlier two-file layout, switches with one rename, and is safe to run again at every point', async () => {
    const d = tlsDir();
    // The earlier layout: regular host.key / host.crt of a first certificate.
    fs.mkdirSync(d, { recursive: true });
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path.join(d, 'host.key')]);
    const spki0 = execFileSync('openssl', ['pkey', '-in', path.join(d, 'host.key'), '-pubout', '-outform', 'DER']);
    const old = await certFor(spki0);
    fs.writeFileSync(path.join(d, 'host.crt'), old.pem);
    fs.writeFileSync(path.join(d, 'chain.pem'), chain);
    fs.writeFileSync(path.join(d, 'crl.pem'), crl);

    const next = await staged(d);
    // Cut off after building a half pair directory: it is rebuilt, the old pair still served.
    fs.mkdirSync(path.join(d, 'pairs', `${next.serial}.tmp`), { recursive: true });
    fs.writeFileSync(path.join(d, 'pairs', `${next.serial}.tmp`, 'host.key'), 'half');
    expect(servedSerial(d)).toBe(old.serial);
    expect(ok(installScript(next.serial, { dir: d }), ['installed']).word).toBe('installed');
    expect(servedSerial(d)).toBe(next.serial);
    expect(pairMatches(d)).toBe(true);
    expect(fs.readlinkSync(path.join(d, 'live'))).toBe(`pairs/${next.serial}`);
    expect(fs.readlinkSync(path.join(d, 'host.key'))).toBe('live/host.key');
    // The old pair was kept (a reader that resolved it still reads a whole pair) until retire.
    expect(fs.existsSync(path.join(d, 'pairs', old.serial, 'host.key'))).toBe(true);
    // Again: nothing changes.
    expect(ok(installScript(next.serial, { dir: d }), ['installed']).word).toBe('installed');
    expect(servedSerial(d)).toBe(next.serial);

    // A newer CRL of the same issuer on the host (sent meanwhile by another renewal) is not replaced by the staged older one.
    const newer = await createCrl(issuing, [], { thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000), crlNumber: 5 });
    fs.writeFileSync(path.join(d, 'crl.pem'), newer);
    fs.writeFileSync(path.join(d, RENEWAL_STAGE.crl), crl);
    expect(ok(installScript(next.serial, { dir: d }), ['installed']).word).toBe('installed');
    expect(fs.readFileSync(path.join(d, 'crl.pem'), 'utf8')).toBe(newer);
    const newest = await createCrl(issuing, [], { thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000), crlNumber: 16 });
    fs.writeFileSync(path.join(d, RENEWAL_STAGE.crl), newest);
    expect(ok(installScript(next.serial, { dir: d }), ['installed']).word).toBe('installed');
    expect(fs.readFileSync(path.join(d, 'crl.pem'), 'utf8')).toBe(newest);

    const v = ok(verifyScript(d), ['verified']);
    expect(v.serial).toBe(next.serial);

    expect(ok(retireScript(next.serial, d), ['retired']).word).toBe('retired');
    expect(fs.readdirSync(path.join(d, 'pairs'))).toEqual([next.serial]);
    expect(fs.existsSync(path.join(d, RENEWAL_STAGE.key))).toBe(false);
    expect(pairMatches(d)).toBe(true);
    expect(ok(retireScript(next.serial, d), ['retired']).word).toBe('retired');
  });

  it('refuses a certificate for another key, one that does not chain, and a retire of a pair not live, changing nothing', async () => {
    const d = tlsDir();
    const next = await staged(d);
    // The staged certificate is for some other key: no pair is built.
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const wrong = await certFor(other);
    fs.writeFileSync(path.join(d, RENEWAL_STAGE.crt), wrong.pem);
    expect(() => ok(installScript(wrong.serial, { dir: d }), ['installed'])).toThrow(/do not match/);
    expect(fs.existsSync(path.join(d, 'live'))).toBe(false);
    // A chain of another CA: refused.
    fs.writeFileSync(path.join(d, RENEWAL_STAGE.crt), next.pem);
    const foreign = await createRootCa({ commonName: 'Other Root', validityDays: 365, now, random });
    fs.writeFileSync(path.join(d, RENEWAL_STAGE.chain), foreign.certPem);
    expect(() => ok(installScript(next.serial, { dir: d }), ['installed'])).toThrow(/does not verify/);
    expect(fs.existsSync(path.join(d, 'live'))).toBe(false);
    fs.writeFileSync(path.join(d, RENEWAL_STAGE.chain), chain);
    expect(ok(installScript(next.serial, { dir: d }), ['installed']).word).toBe('installed');
    expect(() => ok(retireScript('ab', d), ['retired'])).toThrow(/not the live one/);
    expect(pairMatches(d)).toBe(true);
    expect(() => installScript('../x')).toThrow(/not a certificate serial/);
  });

  it('an immediate issue installs through the same pair switch and leaves no staged file', async () => {
    const d = tlsDir();
    fs.mkdirSync(d, { recursive: true });
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path.join(d, ISSUE_STAGE.key)]);
    const c = await certFor(execFileSync('openssl', ['pkey', '-in', path.join(d, ISSUE_STAGE.key), '-pubout', '-outform', 'DER']));
    fs.writeFileSync(path.join(d, ISSUE_STAGE.crt), c.pem);
    fs.writeFileSync(path.join(d, ISSUE_STAGE.chain), chain);
    fs.writeFileSync(path.join(d, ISSUE_STAGE.crl), crl);
    expect(ok(installScript(c.serial, { dir: d, stage: ISSUE_STAGE, removeStaged: true }), ['installed']).word).toBe('installed');
    expect(servedSerial(d)).toBe(c.serial);
    expect(fs.readdirSync(d).filter((f) => f.includes('airlock-new'))).toEqual([]);
    expect(ok(verifyScript(d), ['verified']).serial).toBe(c.serial);
    // Issued again, twice: the new pair and the one it replaced are kept, older ones deleted.
    const serials = [c.serial];
    for (let i = 0; i < 2; i++) {
      execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path.join(d, ISSUE_STAGE.key)]);
      const n = await certFor(execFileSync('openssl', ['pkey', '-in', path.join(d, ISSUE_STAGE.key), '-pubout', '-outform', 'DER']));
      fs.writeFileSync(path.join(d, ISSUE_STAGE.crt), n.pem);
      expect(ok(installScript(n.serial, { dir: d, stage: ISSUE_STAGE, removeStaged: true }), ['installed']).word).toBe('installed');
      serials.push(n.serial);
      expect(servedSerial(d)).toBe(n.serial);
      expect(pairMatches(d)).toBe(true);
    }
    expect(fs.readdirSync(path.join(d, 'pairs')).sort()).toEqual(serials.slice(1).sort());
  });

  it('reads only the one marker line it expects', () => {
    expect(parseMarker({ code: 0, stdout: 'AIRLOCK-CERT made\n', stderr: '' }, ['made'])).toMatchObject({ word: 'made' });
    expect(() => parseMarker({ code: 0, stdout: 'AIRLOCK-CERT made\nmore', stderr: '' }, ['made'])).toThrow(HostRefused);
    expect(() => parseMarker({ code: 0, stdout: 'AIRLOCK-CERT installed', stderr: '' }, ['made'])).toThrow(/not understood/);
    expect(() => parseMarker({ code: 0, stdout: 'AIRLOCK-CERT verified', stderr: '' }, ['verified'])).toThrow(/which certificate/);
    expect(() => parseMarker({ code: 0, stdout: 'AIRLOCK-CERT made', stderr: '', truncated: true }, ['made'])).toThrow(/not understood/);
    expect(() => parseMarker({ code: 6, stdout: 'AIRLOCK-CERT mismatch', stderr: '' }, ['installed'])).toThrow(/do not match/);
    const esc = parseMarker.bind(null, { code: 1, stdout: '', stderr: 'boom\x1b[31m red' }, ['made']);
    expect(esc).toThrow(/not understood \(exit 1\)/);
    try {
      esc();
    } catch (e) {
      expect((e as Error).message).not.toContain('\x1b');
    }
  });
});

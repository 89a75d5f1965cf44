/**
 * The internal CA on real lab hosts (issue #12): host TLS certificates whose keys are made on the
 * host, checked there by the host's own openssl over SSH; revocation and the CRL published to
 * every holder (checked by openssl on the hosts and here, on copies); renewal with new keys, the
 * old certificates revoked as superseded; a host cut off during publication left pending, then
 * sent the CRL once it is back.
 */
import crypto from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../electron/shells/cli';
import { connect, type SshConnection } from '../../electron/core/ssh/connection';
import { shellQuote } from '../../electron/core/ssh/quote';
import { authorizeKey, cutLink, labDown, labUp, restoreLink, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

const LAB = 'icaops';
const TLS = '/etc/airlock/tls';
let lab: Lab;
let t: TestCore;
let c: TestClient;
let work: string;
/** The test's own SSH key (not Airlock's): it reads and checks the hosts as an outsider would. */
let sshKey: string;
const conns = new Map<string, SshConnection>();

async function onHost(name: string, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let conn = conns.get(name);
  if (!conn) {
    const h = lab.hosts.find((x) => x.name === name)!;
    conn = await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: sshKey }, { timeoutMs: 10_000, signal: new AbortController().signal });
    conns.set(name, conn);
  }
  return conn.exec(`/bin/sh -c ${shellQuote(script)}`, { timeoutMs: 20_000 });
}

/** The serial a host's installed certificate carries, as the CA writes serials (lowercase hex). */
async function installedSerial(name: string): Promise<string> {
  const r = await onHost(name, `openssl x509 -noout -serial -in ${TLS}/host.crt`);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().replace(/^serial=/, '').toLowerCase();
}

/** `openssl verify -crl_check` here, on copies of what the host holds: exit status and output. */
function verifyLocally(name: string, files: { crt: string; chain: string; crl: string }) {
  const dir = fs.mkdtempSync(path.join(work, `${name}-`));
  fs.writeFileSync(path.join(dir, 'host.crt'), files.crt);
  fs.writeFileSync(path.join(dir, 'bundle.pem'), files.chain + files.crl);
  const r = spawnSync('openssl', ['verify', '-crl_check', '-CAfile', path.join(dir, 'bundle.pem'), path.join(dir, 'host.crt')], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

async function hostFiles(name: string) {
  const read = async (f: string) => {
    const r = await onHost(name, `cat ${TLS}/${f}`);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  return { crt: await read('host.crt'), chain: await read('chain.pem'), crl: await read('crl.pem') };
}

const VERIFY_WITH_CRL = `set -e; t=$(mktemp); cat ${TLS}/chain.pem ${TLS}/crl.pem > "$t"; openssl verify -crl_check -CAfile "$t" ${TLS}/host.crt; rm -f "$t"`;

beforeAll(async () => {
  lab = await labUp({ id: LAB, hosts: 2 });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-caops-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'caops-test', '-f', path.join(work, 'id')]);
  sshKey = fs.readFileSync(path.join(work, 'id'), 'utf8');
  await authorizeKey(lab, fs.readFileSync(path.join(work, 'id.pub'), 'utf8').trim());
  // No pooled connections: a host cut off and restored is reached afresh.
  t = await testCore({ sshTimeoutMs: 5000, sshPoolIdleMs: 0, stepUpMinutes: 600 });
  c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  let cer = await c.ok('keys:begin', { kind: 'genesis', officers: ['Ann', 'Ben', 'Cy'], witnesses: ['Wanda'], threshold: 2 });
  cer = await c.ok('keys:acknowledge', { ceremony: cer.id, step: 1, by: 'alice' });
  cer = await c.ok('keys:acknowledge', { ceremony: cer.id, step: 2, by: 'Wanda' });
  await c.ok('keys:genesis', { ceremony: cer.id });
  expect((await c.ok('keys:status', {})).sealed).toBe(false);
}, 240_000);

afterAll(async () => {
  for (const conn of conns.values()) conn.close();
  await t?.close();
  await labDown({ id: LAB });
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the internal CA on lab hosts', () => {
  const first: Record<string, string> = {};

  it('issues each host a certificate for a key made on the host, which the host verifies with its own openssl', async () => {
    for (const h of lab.hosts) {
      const cert = await c.ok('keys:issueHostCertificate', { host: h.name });
      expect(cert).toMatchObject({ profile: 'host-tls', host: h.name, subject: `CN=${h.name}`, revokedAt: null, renewalDue: false });
      expect(cert.daysLeft).toBeGreaterThan(30);
      first[h.name] = cert.serial;
      expect(await installedSerial(h.name)).toBe(cert.serial);
      const v = await onHost(h.name, `openssl verify -CAfile ${TLS}/chain.pem ${TLS}/host.crt`);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      expect(v.stdout).toContain(': OK');
      // SANs: the host's name and address; the key is P-256 and readable by root only.
      const text = (await onHost(h.name, `openssl x509 -noout -ext subjectAltName -in ${TLS}/host.crt`)).stdout;
      expect(text).toContain(`DNS:${h.name}`);
      expect(text).toMatch(new RegExp(`IP Address:${h.address.replace(/\./g, '\\.')}|DNS:${h.address.replace(/\./g, '\\.')}`));
      const mode = await onHost(h.name, `stat -L -c %a ${TLS}/host.key; openssl pkey -in ${TLS}/host.key -noout -text | grep -c 'NIST CURVE: P-256'; ls ${TLS}`);
      expect(mode.stdout.split('\n').slice(0, 2)).toEqual(['600', '1']);
      expect(mode.stdout).not.toContain('airlock-new');
    }
    const listed = await c.ok('keys:certificates', {});
    expect(listed.certificates.filter((x) => x.profile === 'host-tls').map((x) => x.host).sort()).toEqual(['host1', 'host2']);
    // By expiry: the soonest first.
    const ends = listed.certificates.map((x) => x.notAfter);
    expect([...ends].sort()).toEqual(ends);
  });

  it("never puts a host's private key in the console's database", async () => {
    const dbBytes = Buffer.concat(
      fs
        .readdirSync(t.dir)
        .filter((f) => f.startsWith('airlock.db'))
        .map((f) => fs.readFileSync(path.join(t.dir, f))),
    );
    for (const h of lab.hosts) {
      const pem = (await onHost(h.name, `cat ${TLS}/host.key`)).stdout;
      const key = crypto.createPrivateKey(pem);
      const der = key.export({ format: 'der', type: 'pkcs8' });
      const scalar = Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
      expect(scalar.length).toBe(32);
      expect(dbBytes.includes(scalar)).toBe(false);
      expect(dbBytes.includes(der)).toBe(false);
      for (const line of pem.split('\n').filter((l) => l.length > 40)) expect(dbBytes.includes(Buffer.from(line))).toBe(false);
    }
  });

  it("revoking host1's certificate publishes a CRL to both hosts: host1's fails -crl_check, host2's passes (on the hosts and here)", async () => {
    const r = await c.ok('keys:revokeCertificate', { serial: first.host1!, reason: 'keyCompromise' });
    expect(r.certificate).toMatchObject({ serial: first.host1, revokeReason: 'keyCompromise' });
    expect(r.crl.published).toEqual(['host1', 'host2']);
    expect(r.crl.pending).toEqual([]);
    const crl = await c.ok('keys:crl', {});
    expect(crl.crlNumber).toBe(r.crl.crlNumber);
    for (const h of ['host1', 'host2']) expect((await hostFiles(h)).crl).toBe(crl.pem);
    // The CRL lists host1's serial with its reason.
    const listing = execFileSync('openssl', ['crl', '-noout', '-text'], { input: crl.pem!, encoding: 'utf8' });
    expect(listing.toLowerCase()).toContain(first.host1!.toLowerCase());
    expect(listing).toContain('Key Compromise');

    const v1 = await onHost('host1', VERIFY_WITH_CRL);
    expect(v1.code).not.toBe(0);
    expect(v1.stdout + v1.stderr).toContain('certificate revoked');
    const v2 = await onHost('host2', VERIFY_WITH_CRL);
    expect(v2.code, v2.stdout + v2.stderr).toBe(0);

    const l1 = verifyLocally('host1', await hostFiles('host1'));
    expect(l1.code).not.toBe(0);
    expect(l1.out).toContain('certificate revoked');
    const l2 = verifyLocally('host2', await hostFiles('host2'));
    expect(l2.code, l2.out).toBe(0);

    const listed = await c.ok('keys:certificates', { includeRevoked: true, host: 'host1' });
    expect(listed.certificates.map((x) => [x.serial, x.revokeReason])).toEqual([[first.host1, 'keyCompromise']]);
    expect((await c.ok('keys:certificates', { host: 'host1' })).certificates).toEqual([]);
  });

  it('renewal with a large window gives every host a new key and certificate, and revokes the old ones as superseded', async () => {
    const again = await c.ok('keys:issueHostCertificate', { host: 'host1' });
    const before = { host1: again.serial, host2: first.host2! };
    const oldKeys = { host1: (await onHost('host1', `cat ${TLS}/host.key`)).stdout, host2: (await onHost('host2', `cat ${TLS}/host.key`)).stdout };
    const due = await c.ok('keys:certificates', {});
    expect(due.certificates.filter((x) => x.profile === 'host-tls').every((x) => !x.renewalDue)).toBe(true);

    const r = await c.ok('keys:renewCertificates', { windowDays: 3650 });
    expect(r.failed).toEqual([]);
    expect(r.renewed.map((x) => [x.host, x.oldSerial]).sort()).toEqual([
      ['host1', before.host1],
      ['host2', before.host2],
    ]);
    for (const x of r.renewed) {
      expect(x.newSerial).not.toBe(x.oldSerial);
      expect(await installedSerial(x.host!)).toBe(x.newSerial);
      expect((await onHost(x.host!, `cat ${TLS}/host.key`)).stdout).not.toBe(oldKeys[x.host as 'host1' | 'host2']);
      const v = await onHost(x.host!, VERIFY_WITH_CRL);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }
    const all = await c.ok('keys:certificates', { includeRevoked: true });
    for (const s of Object.values(before)) expect(all.certificates.find((x) => x.serial === s)?.revokeReason).toBe('superseded');
    // Both hosts hold the CRL that lists the superseded certificates.
    const crl = (await c.ok('keys:crl', {})).pem!;
    for (const h of ['host1', 'host2']) expect((await hostFiles(h)).crl).toBe(crl);
    const listing = execFileSync('openssl', ['crl', '-noout', '-text'], { input: crl, encoding: 'utf8' });
    for (const s of Object.values(before)) expect(listing.toLowerCase()).toContain(s);
    expect(listing).toContain('Superseded');
  });

  it('a host cut off while the CRL is published is left pending, and gets it on the retry after its link is back', async () => {
    const current = (await c.ok('keys:certificates', { host: 'host1' })).certificates[0]!;
    await cutLink(lab, 'host2');
    let r;
    try {
      r = await c.ok('keys:revokeCertificate', { serial: current.serial, reason: 'cessationOfOperation' });
      expect(r.crl.published).toEqual(['host1']);
      expect(r.crl.pending.map((p) => p.host)).toEqual(['host2']);
      const listed = await c.ok('keys:certificates', {});
      expect(listed.crlPending).toEqual([expect.objectContaining({ host: 'host2', issuers: [r.crl.issuerSerial] })]);
      expect(listed.schedule.blocked).toBeNull(); // unsealed, and this officer's session armed it
    } finally {
      await restoreLink(lab, 'host2');
    }
    conns.get('host2')?.close();
    conns.delete('host2');
    expect((await hostFiles('host2')).crl).not.toBe((await c.ok('keys:crl', {})).pem);

    const retry = await c.ok('keys:renewCertificates', { windowDays: 0 });
    expect(retry.renewed).toEqual([]);
    expect(retry.crls.flatMap((x) => x.published)).toContain('host2');
    expect(retry.crls.flatMap((x) => x.pending)).toEqual([]);
    const latest = await c.ok('keys:crl', {});
    expect(latest.crlNumber).toBe(r.crl.crlNumber);
    expect((await hostFiles('host2')).crl).toBe(latest.pem);
    expect((await c.ok('keys:certificates', {})).crlPending).toEqual([]);
    // host1's certificate is revoked in the CRL host2 now holds.
    const l = verifyLocally('host1-late', { ...(await hostFiles('host1')), crl: (await hostFiles('host2')).crl });
    expect(l.out).toContain('certificate revoked');
  });
});

describe('the CA on a lab host from the CLI (each command its own sealed console process)', () => {
  it('issue-host-cert and revoke-cert unseal with --share; certificates lists by expiry; crl --out writes what the host holds', async () => {
    const data = fs.mkdtempSync(path.join(work, 'cli-data-'));
    const airlock = async (args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli([...args, '--data', data], {
        stdout: (x) => (stdout += x),
        stderr: (x) => (stderr += x),
        env: { AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' },
        prompt: null,
        rendererDir: data,
        version: 'test',
      });
      return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
    };
    const h = lab.hosts[0]!;
    expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
    await authorizeKey(lab, (await airlock(['identity', 'show', '--json'])).json().publicKey as string);
    const add = await airlock(['hosts', 'add', h.name, '--address', h.address, '--port', String(h.port), '--user', h.user, '--fingerprint', h.fingerprint]);
    expect(add.code, add.stderr).toBe(EXIT.ok);
    const g = await airlock(['keys', 'genesis', '--threshold', '2', '--shares', '3', '--share-dir', path.join(data, 'shares'), '--witness', 'Wanda', '--json']);
    expect(g.code, g.stderr + g.stdout).toBe(EXIT.ok);
    const shares = (g.json().shareFiles as string[]).slice(0, 2).flatMap((f) => ['--share', f]);

    // Without shares the process is sealed: a usage error, nothing issued.
    expect((await airlock(['keys', 'issue-host-cert', h.name])).code).toBe(EXIT.usage);
    const issued = await airlock(['keys', 'issue-host-cert', h.name, ...shares, '--json']);
    expect(issued.code, issued.stderr + issued.stdout).toBe(EXIT.ok);
    const serial = issued.json().serial as string;
    expect(await installedSerial(h.name)).toBe(serial);

    const list = await airlock(['keys', 'certificates', '--host', h.name]);
    expect(list.code).toBe(EXIT.ok);
    expect(list.stdout).toContain(serial);
    expect(list.stdout).toMatch(/host-tls\s+CN=host1 \(host1\)\s+until \S+ \(\d+ days\)\s+ok/);

    const revoked = await airlock(['keys', 'revoke-cert', serial, '--reason', 'keyCompromise', ...shares]);
    expect(revoked.code, revoked.stderr + revoked.stdout).toBe(EXIT.ok);
    expect(revoked.stdout).toMatch(new RegExp(`Revoked ${serial} \\(keyCompromise\\)`));
    expect(revoked.stdout).toContain('sent to host1');
    const out = path.join(work, 'cli-crl.pem');
    expect((await airlock(['keys', 'crl', '--out', out])).code).toBe(EXIT.ok);
    expect((await hostFiles(h.name)).crl).toBe(fs.readFileSync(out, 'utf8'));
    const v = await onHost(h.name, VERIFY_WITH_CRL);
    expect(v.stdout + v.stderr).toContain('certificate revoked');
    expect((await airlock(['keys', 'certificates', '--host', h.name, '--include-revoked'])).stdout).toContain('REVOKED keyCompromise');
  });
});

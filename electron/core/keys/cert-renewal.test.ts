import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { openDatabase } from '../db/db';
import { HostsService } from '../hosts/service';
import type { SshConnection } from '../ssh/connection';
import { Vault } from '../vault/vault';
import { createKeysArea } from './area';
import { issueCertificate } from './ca';
import { CaOps, HOST_TLS } from './ca-ops';
import { CertRenewals } from './cert-renewal';

/**
 * The renewal's state machine on a real database, CA and key hierarchy, against "hosts" that are
 * temporary directories: the real host scripts run there under /bin/sh with the real openssl (the
 * lab's real sshd: test/integration/keys-cert-renewal.test.ts, which also kills at every boundary).
 */
const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const random = (n: number) => crypto.randomBytes(n);
const cleanup: Array<() => void> = [];
afterEach(() => cleanup.splice(0).forEach((f) => f()));
const tmp = (p: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  cleanup.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};

async function setup(names: string[]) {
  const d = tmp('airlock-crn-');
  const db = openDatabase(path.join(d, 'airlock.db'));
  const vault = new Vault({ db, kdf: KDF, random, now: () => new Date().toISOString() });
  const vaultKey = vault.newVaultKey();
  const inventory = new HostsService({ db, now: () => new Date(), timeoutMs: 2000, concurrency: 2, poolIdleMs: 0 });
  const area = createKeysArea({ db, vault, random, now: () => new Date(), kdf: KDF, workers: false, hosts: inventory, renewal: { intervalMs: 0 } });
  cleanup.push(() => {
    area.stop();
    area.close();
    inventory.close();
    db.close();
  });
  let cer = area.ceremonies.begin({ kind: 'genesis', officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 2 }, 'alice');
  cer = await area.ceremonies.acknowledge(cer.id, 1, 'alice', 'alice', vaultKey);
  cer = await area.ceremonies.acknowledge(cer.id, 2, 'Wanda', 'alice', vaultKey);
  await area.ceremonies.genesis(cer.id, {}, vaultKey);

  const dirs: Record<string, string> = {};
  const unreachable = new Set<string>();
  const hooks: { exec?: (host: string, script: string) => Promise<void> | void } = {};
  const hosts = {
    get(name: string) {
      if (!dirs[name]) throw new AirlockError('NOT_FOUND', `No host named "${name}".`);
      return { name, address: `10.0.0.${Object.keys(dirs).indexOf(name) + 1}`, user: 'root' };
    },
    async lease(name: string) {
      if (unreachable.has(name)) throw new AirlockError('HOST_UNREACHABLE', `${name} did not answer.`);
      const exec = async (cmd: string, o: { stdin?: string } = {}) => {
        // The host's /etc/airlock/tls is its own directory here.
        const script = cmd.replaceAll(HOST_TLS.dir, dirs[name]!);
        await hooks.exec?.(name, script);
        const r = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', ...(o.stdin !== undefined ? { input: o.stdin } : {}) });
        return { code: r.status, signal: null, stdout: r.stdout, stderr: r.stderr, truncated: false };
      };
      return { exec, close() {} } as unknown as SshConnection;
    },
  };
  const issuing = area.certs.listByExpiry({ profile: 'issuing-ca' })[0]!;
  // Each host: a key of its own and a certificate 5 days from its end, in the earlier two-file layout.
  for (const n of names) {
    const dir = path.join(tmp(`crn-${n}-`), 'tls');
    fs.mkdirSync(dir, { recursive: true });
    dirs[n] = dir;
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path.join(dir, 'host.key')]);
    const spki = execFileSync('openssl', ['pkey', '-in', path.join(dir, 'host.key'), '-pubout', '-outform', 'DER']);
    const caKey = area.ca.openCaKey(vaultKey, issuing.serial);
    const c = await issueCertificate({ certPem: issuing.certPem, privateKeyPkcs8: caKey }, { profile: 'host-tls', commonName: n, dnsNames: [n], publicKey: spki, validityDays: 5, now: new Date(), random });
    caKey.fill(0);
    area.certs.record({ certPem: c.certPem, issuerSerial: issuing.serial, host: n });
    fs.writeFileSync(path.join(dir, 'host.crt'), c.certPem);
  }
  const ops = new CaOps({ ca: area.ca, certs: area.certs, hosts, random, now: () => new Date() });
  const make = (owner?: string) =>
    new CertRenewals({ db, now: () => new Date(), random, ops, certs: area.certs, sealed: () => area.service.status().sealed, tlsDir: (h) => dirs[h]!, ...(owner ? { owner } : {}) });
  const cred = { vaultKey, auth: {}, signal: new AbortController().signal };
  /** What a TLS server reading host.key and host.crt gets: its serial, and whether the key matches. */
  const served = (n: string) => {
    const dir = dirs[n]!;
    const key = execFileSync('openssl', ['pkey', '-in', path.join(dir, 'host.key'), '-pubout'], { encoding: 'utf8' });
    const crt = execFileSync('openssl', ['x509', '-in', path.join(dir, 'host.crt'), '-noout', '-pubkey'], { encoding: 'utf8' });
    return { serial: new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'host.crt'))).serialNumber.toLowerCase(), matches: key === crt };
  };
  return { db, area, dirs, unreachable, hooks, make, cred, served };
}

type S = Awaited<ReturnType<typeof setup>>;
const steps = (r: { hosts: Array<{ host: string; steps: Array<{ step: string; status: string }> }> }, host: string) => r.hosts.find((h) => h.host === host)!.steps.map((s) => `${s.step}:${s.status}`);
const ALL_DONE = ['keygen:done', 'csr:done', 'issue:done', 'install:done', 'verify:done', 'promote:done', 'retire:done'];

/** The store's current certificate of each host is the one it serves, the one replaced is superseded and in the host's CRL. */
function renewedOk(s: S, host: string, oldSerial: string) {
  const cur = s.area.certs.currentForHost(host)!;
  expect(cur.serial).not.toBe(oldSerial);
  expect(s.served(host)).toEqual({ serial: cur.serial, matches: true });
  expect(s.area.certs.get(oldSerial)).toMatchObject({ revokeReason: 'superseded' });
  const crl = execFileSync('openssl', ['crl', '-in', path.join(s.dirs[host]!, 'crl.pem'), '-noout', '-text'], { encoding: 'utf8' });
  expect(crl.toLowerCase()).toContain(oldSerial);
  expect(fs.readdirSync(path.join(s.dirs[host]!, 'pairs'))).toEqual([cur.serial]);
  expect(fs.readdirSync(s.dirs[host]!).filter((f) => f.endsWith('.next'))).toEqual([]);
}

describe('host certificate renewal (journaled)', () => {
  it('renews every host due: a new pair served, the store naming it current, the old one superseded and in the CRL; nothing is due after', async () => {
    const s = await setup(['gpu1', 'gpu2']);
    const old = { gpu1: s.served('gpu1').serial, gpu2: s.served('gpu2').serial };
    const r = (await s.make().start(s.cred, 'alice', 30))!;
    expect(r, JSON.stringify(r.hosts.map((h) => h.message))).toMatchObject({ status: 'succeeded', pendingHosts: [], actor: 'alice', windowDays: 30 });
    for (const h of ['gpu1', 'gpu2'] as const) {
      expect(steps(r, h)).toEqual(ALL_DONE);
      expect(r.hosts.find((x) => x.host === h)).toMatchObject({ oldSerial: old[h], serving: 'new', promoted: true, next: null });
      renewedOk(s, h, old[h]);
    }
    expect(await s.make().start(s.cred, 'alice', 30)).toBeNull();
    expect(s.make().list(10).map((x) => x.id)).toEqual([r.id]);
  });

  it('an unreachable host keeps its old certificate, pending; it is in no second renewal, and the next run completes it', async () => {
    const s = await setup(['gpu1', 'gpu2']);
    const old2 = s.served('gpu2').serial;
    s.unreachable.add('gpu2');
    const m = s.make();
    const r = (await m.start(s.cred, 'alice', 30))!;
    expect(r).toMatchObject({ status: 'failed', pendingHosts: ['gpu2'] });
    const h2 = r.hosts.find((h) => h.host === 'gpu2')!;
    expect(h2).toMatchObject({ status: 'failed', next: 'keygen', serving: 'old', newSerial: null, pending: true });
    expect(h2.message).toMatch(/keygen failed: gpu2 did not answer\. The host keeps serving its old certificate/);
    expect(s.area.certs.currentForHost('gpu2')!.serial).toBe(old2);
    expect(s.served('gpu2')).toEqual({ serial: old2, matches: true });
    // Still due, but in an unfinished renewal: no second one.
    expect(s.area.certs.dueForRenewal(30).map((c) => c.host)).toEqual(['gpu2']);
    expect(await m.start(s.cred, 'alice', 30)).toBeNull();
    s.unreachable.delete('gpu2');
    // A renewal run (the channel's, the schedule's) resumes it.
    const out = await m.renewDue(s.cred, 'alice', 30);
    expect(out.renewed).toEqual([{ host: 'gpu2', oldSerial: old2, newSerial: expect.any(String) }]);
    expect(out.failed).toEqual([]);
    expect(out.renewals.map((x) => [x.id, x.status, x.attempts])).toEqual([[r.id, 'succeeded', 2]]);
    renewedOk(s, 'gpu2', old2);
  });

  it('a console that dies mid-install leaves the renewal interrupted, the host serving a matching pair; another process resumes it without issuing again', async () => {
    const s = await setup(['gpu1']);
    const old = s.served('gpu1').serial;
    let hang = true;
    let reached = false;
    s.hooks.exec = (_h, script) => {
      if (hang && script.includes('installed')) {
        reached = true;
        return new Promise<void>(() => {});
      }
    };
    void s.make(`${process.pid}:?:dead`).start(s.cred, 'alice', 30);
    await expect.poll(() => reached).toBe(true);
    hang = false;
    const next = s.make();
    const id = s.db.prepare('SELECT id FROM cert_renewals').pluck().get() as string;
    const seen = next.get(id);
    expect(seen.status).toBe('interrupted');
    expect(steps(seen, 'gpu1').slice(0, 4)).toEqual(['keygen:done', 'csr:done', 'issue:done', 'install:interrupted']);
    const issued = seen.hosts[0]!.newSerial!;
    // On record, not current; the host still serves its old pair.
    expect(s.area.certs.get(issued)).toMatchObject({ renewalId: id, revokedAt: null });
    expect(s.area.certs.currentForHost('gpu1')!.serial).toBe(old);
    expect(s.served('gpu1')).toEqual({ serial: old, matches: true });
    const done = await next.resume(s.cred, id);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(done.hosts[0]!.newSerial).toBe(issued);
    expect(s.area.certs.listByExpiry({ host: 'gpu1', includeRevoked: true })).toHaveLength(2);
    renewedOk(s, 'gpu1', old);
  });

  it('refuses while sealed and an unknown renewal, before anything is recorded or any host touched', async () => {
    const s = await setup(['gpu1']);
    let execs = 0;
    s.hooks.exec = () => void execs++;
    const m = s.make();
    expect((await m.resume(s.cred, 'crn-0123456789abcdef').catch((e: AirlockError) => e)) as AirlockError).toMatchObject({ code: 'NOT_FOUND' });
    s.area.close();
    expect((await m.start(s.cred, 'alice', 30).catch((e: AirlockError) => e)) as AirlockError).toMatchObject({ code: 'KEY_UNAVAILABLE', message: expect.stringMatching(/sealed/) });
    expect(s.db.prepare('SELECT COUNT(*) FROM cert_renewals').pluck().get()).toBe(0);
    expect(execs).toBe(0);
  });
});

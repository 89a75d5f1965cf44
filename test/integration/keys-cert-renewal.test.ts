/**
 * Host certificate renewal as a journaled state machine (keys/cert-renewal.ts) on a real lab (real
 * sshd, the hosts' own openssl): a host cut off during a renewal keeps its old certificate and is
 * pending, and completes when it is back; then the kill test — a console process SIGKILLed at every
 * step boundary of a renewal (the test-only hook AIRLOCK_TEST_KILL_AT), the renewal resumed by a new
 * console process on the same data directory — and after every kill, every host still serves a
 * matching pair that chains to the CA; after every resume, the store's current certificate of
 * every host is the one the host serves (same serial and fingerprint), it verifies with `openssl
 * verify -crl_check`, and the certificate it replaced is revoked as superseded.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertRenewal } from '../../shared/contract/keys';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import { connect } from '../../electron/core/ssh/connection/connect';
import type { SshConnection } from '../../electron/core/ssh/connection/types';
import { shellQuote as q } from '../../electron/core/ssh/quote';
import { EXIT, runCli } from '../../electron/shells/cli';
import { authorizeKey, cutLink, labDown, labUp, restoreLink, type Lab } from '../lab/lab';

const LAB_ID = 'kcrenew';
const TLS = '/etc/airlock/tls';
const ALICE = 'correct horse battery staple';
const T = 60_000;

let lab: Lab;
let data: string;
let work: string;
let shares: string[] = [];
const conns = new Map<string, SshConnection>();
const cliEnv = { AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, AIRLOCK_TOTP_POLICY: 'off' };
const withShares = () => shares.slice(0, 2).flatMap((f) => ['--share', f]);

/** The CLI in this process (setup, and commands that are not killed). */
async function airlock(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli([...args, '--data', data], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env: cliEnv, prompt: null, rendererDir: data, version: 'test' });
  return { code, stdout, stderr, json: <J>() => JSON.parse(stdout) as J };
}
async function ok(args: string[]) {
  const r = await airlock(args);
  expect(r.code, `airlock ${args.join(' ')}\n${r.stderr}${r.stdout}`).toBe(EXIT.ok);
  return r;
}

/** A console process of its own (the CLI under node + tsx), so that its SIGKILL ends only it. */
function child(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...cliEnv, ...env };
    delete childEnv.SSH_AUTH_SOCK;
    if (!env.AIRLOCK_TEST_KILL_AT) delete childEnv.AIRLOCK_TEST_KILL_AT;
    // The generic CLI entry of the SSH rotation's kill test: runCli on argv, exit with its code.
    const p = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/integration/keys-ssh-rotation.child.ts'), ...args, '--data', data], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A command on a host over the test's own SSH key (not Airlock's): it reads the hosts as an outsider. */
async function sh(host: string, script: string) {
  return conns.get(host)!.exec(`/bin/sh -c ${q(script)}`, { timeoutMs: T });
}
async function must(host: string, script: string): Promise<string> {
  const r = await sh(host, script);
  if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

interface Cert {
  serial: string;
  sha256: string;
  cert_pem: string;
  profile: string;
  host: string | null;
  revoked_at: string | null;
  revoke_reason: string | null;
  renewal_id: string | null;
}
/** The store, read from the database file (a console never needs to be running for this). */
function store<R>(fn: (db: Database.Database) => R): R {
  const db = new Database(path.join(data, 'airlock.db'), { readonly: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
const certBySerial = (serial: string) => store((db) => db.prepare('SELECT * FROM certificates WHERE serial = ?').get(serial) as Cert | undefined);
/** The store's current certificate of a host: live, host-tls, not waiting for its renewal's promotion. */
const currentOf = (host: string) =>
  store((db) => db.prepare(`SELECT * FROM certificates WHERE profile = 'host-tls' AND host = ? AND revoked_at IS NULL AND renewal_id IS NULL ORDER BY not_after DESC, serial DESC`).all(host) as Cert[]);

/**
 * What a TLS server on the host reading host.key and host.crt gets, checked on the host and here.
 * Read as docs/keys-ca.md tells a careful reader to: `live` resolved once, both files read from that
 * pair directory (a host script of a killed console may still be running, switching `live` while
 * this reads; a reader opening the two paths at two moments could straddle that switch). host.key
 * and host.crt must be the links into `live` (or, in the earlier layout, regular files equal to it).
 */
async function served(host: string, why: string): Promise<{ serial: string; sha256: string }> {
  const out = await sh(
    host,
    [
      `T=${TLS}`,
      'if [ -L "$T/live" ]; then d=$(realpath "$T/live"); for f in host.key host.crt; do if [ -L "$T/$f" ]; then [ "$(readlink "$T/$f")" = "live/$f" ] || { echo "link $f"; exit 1; }; else cmp -s "$T/$f" "$d/$f" || { echo "copy $f"; exit 1; }; fi; done; else d=$T; fi',
      '[ "$(openssl pkey -in "$d/host.key" -pubout)" = "$(openssl x509 -in "$d/host.crt" -noout -pubkey)" ] || { echo mismatch; exit 1; }',
      'openssl verify -CAfile "$T/chain.pem" "$d/host.crt" >/dev/null || { echo chain; exit 1; }',
      'cat "$d/host.crt"',
    ].join('; '),
  );
  expect(out.code, `${why}: ${host} has no matching pair that chains: ${out.stdout}${out.stderr}`).toBe(0);
  const x = new crypto.X509Certificate(out.stdout);
  // Here too, with the real openssl: the served certificate chains to the CA the store holds.
  const root = store((db) => db.prepare(`SELECT cert_pem FROM certificates WHERE profile = 'root-ca'`).pluck().get() as string);
  const issuer = certBySerial(store((db) => db.prepare('SELECT issuer_serial FROM certificates WHERE serial = ?').pluck().get(x.serialNumber.toLowerCase()) as string));
  const dir = fs.mkdtempSync(path.join(work, `${host}-`));
  fs.writeFileSync(path.join(dir, 'root.pem'), root);
  fs.writeFileSync(path.join(dir, 'issuing.pem'), issuer?.cert_pem ?? '');
  fs.writeFileSync(path.join(dir, 'host.crt'), out.stdout);
  const v = spawnSync('openssl', ['verify', '-CAfile', path.join(dir, 'root.pem'), '-untrusted', path.join(dir, 'issuing.pem'), path.join(dir, 'host.crt')], { encoding: 'utf8' });
  expect(v.status, `${why}: ${host}: ${v.stdout}${v.stderr}`).toBe(0);
  return { serial: x.serialNumber.toLowerCase(), sha256: x.fingerprint256 };
}

/** During a renewal (killed anywhere): each host serves a matching pair that chains, and it is a certificate on record, not revoked. */
async function noPairLost(why: string) {
  for (const h of lab.hosts) {
    const s = await served(h.name, why);
    const rec = certBySerial(s.serial);
    expect(rec, `${why}: ${h.name} serves ${s.serial}, which is not on record`).toBeDefined();
    expect(rec!.revoked_at, `${why}: ${h.name} serves ${s.serial}, which is revoked`).toBeNull();
    expect(rec!.sha256, why).toBe(s.sha256);
  }
}

/** After a finished renewal: the store's one current certificate of each host is what it serves; the one it replaced is superseded; nothing staged is left. */
async function finished(r: CertRenewal, why: string) {
  expect(r, why).toMatchObject({ status: 'succeeded', pendingHosts: [] });
  for (const h of r.hosts) {
    expect(h, `${why}: ${h.host}`).toMatchObject({ status: 'succeeded', promoted: true, serving: 'new', next: null });
    const s = await served(h.host, why);
    const cur = currentOf(h.host);
    expect(cur.map((c) => c.serial), `${why}: ${h.host}'s current certificates`).toEqual([h.newSerial]);
    expect(s, `${why}: ${h.host} serves the store's current certificate`).toEqual({ serial: cur[0]!.serial, sha256: cur[0]!.sha256 });
    expect(certBySerial(h.oldSerial), `${why}: ${h.oldSerial}`).toMatchObject({ revoke_reason: 'superseded' });
    // The CRL the host holds lists the superseded certificate and passes the current one.
    const crl = await sh(h.host, `t=$(mktemp); cat ${TLS}/chain.pem ${TLS}/crl.pem > "$t"; openssl verify -crl_check -CAfile "$t" ${TLS}/host.crt; openssl crl -in ${TLS}/crl.pem -noout -text; rm -f "$t"`);
    expect(crl.code, `${why}: ${h.host}: ${crl.stdout}${crl.stderr}`).toBe(0);
    expect(crl.stdout.toLowerCase(), `${why}: ${h.host}'s CRL lists ${h.oldSerial}`).toContain(h.oldSerial);
    const files = (await must(h.host, `ls -A ${TLS} ${TLS}/pairs`)).split(/\s+/).filter(Boolean);
    expect(files.filter((f) => /\.next$|\.tmp$|airlock-new/.test(f)), `${why}: ${h.host} has staged files left`).toEqual([]);
    expect((await must(h.host, `ls -A ${TLS}/pairs`)).split('\n').filter(Boolean), `${why}: ${h.host}'s pairs`).toEqual([h.newSerial]);
    expect((await must(h.host, `stat -L -c %a ${TLS}/host.key`)).trim(), why).toBe('600');
  }
}

/**
 * Resumes a renewal until no host is pending. On this shared 2-core machine an SSH connection
 * is now and then dropped before its handshake; that host is then pending like an unreachable one
 * (its pair still matching, checked), and the next resume — what the schedule would do — finishes
 * it. Any other reason a host is left pending fails the test.
 */
async function resumeUntilDone(id: string, why: string): Promise<CertRenewal> {
  for (let attempt = 1; ; attempt++) {
    const r = await airlock(['keys', 'resume-cert-renewal', id, ...withShares(), '--json']);
    if (r.code === EXIT.ok) return r.json<CertRenewal>();
    expect(r.code, `${why}: ${r.stderr}${r.stdout}`).toBe(1);
    const v = r.json<CertRenewal>();
    const transient = v.hosts.filter((h) => h.pending).every((h) => /SSH error|Connection lost|timed out|TIMEOUT|HOST_UNREACHABLE|did not answer/i.test(h.message ?? ''));
    expect(transient && attempt < 3, `${why}: still pending after attempt ${attempt}: ${JSON.stringify(v.hosts.map((h) => [h.host, h.message]))}`).toBe(true);
    await noPairLost(`${why}, pending after attempt ${attempt}`);
  }
}

beforeAll(async () => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kcrenew-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kcrenew-work-'));
  lab = await labUp({ id: LAB_ID, hosts: 2 });
  await ok(['init', '--admin', 'alice']);
  await authorizeKey(lab, (await ok(['identity', 'show'])).stdout.trim());
  const mine = generateIdentity('airlock-kcrenew-test');
  await authorizeKey(lab, mine.publicKey);
  for (const h of lab.hosts) {
    await ok(['hosts', 'add', h.name, '--address', h.address, '--port', String(h.port), '--user', h.user, '--fingerprint', h.fingerprint]);
    conns.set(h.name, await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: mine.privateKey }, { timeoutMs: 30_000 }));
  }
  const g = await ok(['keys', 'genesis', '--threshold', '2', '--shares', '3', '--share-dir', path.join(work, 'shares'), '--json']);
  shares = g.json<{ shareFiles: string[] }>().shareFiles.map((f) => path.resolve(f));
  // Every host starts with a certificate in the earlier two-file layout (regular host.key and host.crt), as hosts issued before the pair switch have.
  for (const h of lab.hosts) {
    await ok(['keys', 'issue-host-cert', h.name, ...withShares()]);
    await must(h.name, `cd ${TLS} && cp --remove-destination "$(realpath host.key)" host.key && cp --remove-destination "$(realpath host.crt)" host.crt && rm -rf live pairs && [ ! -L host.key ]`);
  }
  await noPairLost('before any renewal');
}, 300_000);

afterAll(async () => {
  for (const c of conns.values()) c.close();
  await labDown({ id: LAB_ID });
  for (const d of [data, work]) if (d) fs.rmSync(d, { recursive: true, force: true });
}, 180_000);

describe('journaled host certificate renewal (2 lab hosts)', () => {
  it('refuses while sealed, before any host is touched', async () => {
    const r = await airlock(['keys', 'resume-cert-renewal', 'crn-0123456789abcdef']);
    expect(r.code).toBe(EXIT.usage);
    expect(store((db) => db.prepare('SELECT COUNT(*) FROM cert_renewals').pluck().get())).toBe(0);
  });

  it('a host cut off during a renewal keeps its old certificate and is pending; back, the renewal completes', async () => {
    const before = await served('host2', 'before the cut');
    await cutLink(lab, 'host2');
    let r: CertRenewal;
    try {
      const run = await airlock(['keys', 'renew-certs', '--window-days', '3650', ...withShares(), '--json']);
      expect(run.code, run.stderr).toBe(1);
      const out = run.json<{ renewals: CertRenewal[]; failed: Array<{ host: string }> }>();
      expect(out.failed.map((f) => f.host)).toEqual(['host2']);
      r = out.renewals[0]!;
      expect(r.status).toBe('failed');
      expect(r.pendingHosts).toEqual(['host2']);
      expect(r.hosts.find((h) => h.host === 'host1')).toMatchObject({ status: 'succeeded', promoted: true, serving: 'new' });
      expect(r.hosts.find((h) => h.host === 'host2')).toMatchObject({ status: 'failed', pending: true, next: 'keygen', serving: 'old', newSerial: null, oldSerial: before.serial });
      expect(r.hosts.find((h) => h.host === 'host2')!.message).toMatch(/keeps serving its old certificate/);
      const listed = (await ok(['keys', 'cert-renewals', '--json'])).json<CertRenewal[]>();
      expect(listed[0]).toMatchObject({ id: r.id, pendingHosts: ['host2'] });
    } finally {
      await restoreLink(lab, 'host2');
    }
    // Back: it still serves its old pair, which is still the store's current certificate.
    expect(await served('host2', 'host2 pending')).toEqual(before);
    expect(currentOf('host2').map((c) => c.serial)).toEqual([before.serial]);
    const done = await airlock(['keys', 'resume-cert-renewal', r.id, ...withShares(), '--json']);
    expect(done.code, done.stderr + done.stdout).toBe(EXIT.ok);
    const v = done.json<CertRenewal>();
    expect(v.attempts).toBe(2);
    await finished(v, 'after the resume');
  }, 300_000);

  it('kills the console at every step boundary, restarts, resumes: no host ever loses its pair, and the store always ends naming what each host serves', async () => {
    let kills = 0;
    for (let at = 0; ; at++) {
      const run = await child(['keys', 'renew-certs', '--window-days', '3650', ...withShares(), '--json'], { AIRLOCK_TEST_KILL_AT: String(at) });
      if (run.signal !== 'SIGKILL') {
        // Past the last boundary: this renewal ran to its end.
        expect(run.code, run.stderr + run.stdout).toBe(0);
        await finished((JSON.parse(run.stdout) as { renewals: CertRenewal[] }).renewals[0]!, `unkilled run ${at}`);
        break;
      }
      kills++;
      await noPairLost(`killed at boundary ${at}`);
      const id = store((db) => db.prepare('SELECT id FROM cert_renewals ORDER BY rowid DESC LIMIT 1').pluck().get() as string);
      // A new console process sees the dead one's renewal as interrupted.
      const shown = (await ok(['keys', 'cert-renewal', id, '--json'])).json<CertRenewal>();
      expect(shown.status, `boundary ${at}`).toBe('interrupted');
      await finished(await resumeUntilDone(id, `boundary ${at}`), `resumed after boundary ${at}`);
    }
    // created + per host 7 steps × (started, acted, recorded).
    expect(kills).toBe(1 + lab.hosts.length * 7 * 3);
  }, 1_800_000);
});

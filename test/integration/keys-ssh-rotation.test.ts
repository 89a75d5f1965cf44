import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshRotation } from '../../shared/contract/keys';
import { fingerprintOfPrivateKey } from '../../electron/core/identity/ssh-key';
import { ConsoleKeyStore, openConsoleKek, openEntry } from '../../electron/core/keys/console-keys';
import { connect } from '../../electron/core/ssh/connection';
import { fingerprintOfLine } from '../../electron/core/ssh/fingerprint';
import { Vault } from '../../electron/core/vault/vault';
import { authorizeKey, cutLink, labDown, labUp, restoreLink, type Lab, type LabHost } from '../lab/lab';
import { ADMIN, TEST_KDF, testCore, type TestClient, type TestCore } from '../support/core';

/**
 * Rotation of Airlock's own SSH identity on real lab hosts (real sshd, real authorized_keys): a
 * normal rotation, one with a host cut off (pending, old key kept, then resumed), and the kill
 * test: a console process SIGKILLed at every step boundary of a rotation (the test-only hook
 * AIRLOCK_TEST_KILL_AT, keys/ssh-rotation.ts), then a new process on the same data directory
 * resumes it. After every kill and every resume, every host accepts a key the vault holds, and no
 * host accepts a key of Airlock's that is not in the vault: zero hosts lost.
 */
const LAB = 'isshrot';
let lab: Lab;
const dirs: string[] = [];

beforeAll(async () => {
  lab = await labUp({ id: LAB, hosts: 3 });
}, 240_000);

afterAll(async () => {
  await labDown({ id: LAB });
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const keysFile = (h: LabHost) => path.join(h.dir, 'fs', 'root', '.ssh', 'authorized_keys');
/** The fingerprints of the keys a host's sshd accepts (its authorized_keys). */
const accepted = (h: LabHost) =>
  fs
    .readFileSync(keysFile(h), 'utf8')
    .split('\n')
    .map((l) => fingerprintOfLine(l)?.fingerprint)
    .filter((f): f is string => !!f);

/** Every SSH identity in a data directory's vault (current and staged), read as alice with her password. */
async function vaultSshKeys(dataDir: string): Promise<{ current: string; all: Array<{ name: string; privateKey: string; fingerprint: string }> }> {
  const db = new Database(path.join(dataDir, 'airlock.db'), { readonly: true });
  try {
    const vault = new Vault({ db, kdf: { alg: 'argon2id', parallelism: 1, ...TEST_KDF }, random: crypto.randomBytes, now: () => new Date().toISOString() });
    const uid = db.prepare(`SELECT id FROM users WHERE name = ?`).pluck().get(ADMIN.admin) as number;
    const vk = await vault.unlock(uid, ADMIN.password);
    // The SSH identities the console holds: entries of the console domain with a private part (retired versions have none).
    const store = new ConsoleKeyStore(db);
    const all = store
      .entries('ssh.identity')
      .filter((e) => e.sealed !== null)
      .map((e) => {
        const kek = openConsoleKek(vk, store.kek(e.kekVersion)!);
        const privateKey = openEntry(kek, e).toString('utf8');
        kek.fill(0);
        return { name: e.stagedFor ? `staged:${e.stagedFor}` : 'current', privateKey, fingerprint: fingerprintOfPrivateKey(privateKey) };
      });
    vk.fill(0);
    const current = all.find((k) => k.name === 'current');
    if (!current) throw new Error('no current SSH identity in the vault');
    return { current: current.privateKey, all };
  } finally {
    db.close();
  }
}

/** Logs in to a lab host with this key alone (ssh2, host key pinned from the lab): true, or false when sshd refuses the key. */
async function logsIn(h: LabHost, privateKey: string): Promise<boolean> {
  try {
    const c = await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey, agent: null }, { timeoutMs: 10_000 });
    try {
      return (await c.exec('echo in', { timeoutMs: 10_000 })).stdout.trim() === 'in';
    } finally {
      c.close();
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'SSH_AUTH_FAILED') return false;
    throw e;
  }
}

/**
 * Zero hosts lost: each accepts only keys in the vault, and one of them really logs in — the
 * current key once a rotation is finished (`current`); in the middle of one (`some`), a host that
 * has had the old key removed accepts only the staged new key, which the vault also holds.
 */
async function noHostLost(dataDir: string, hosts: LabHost[], why: string, which: 'current' | 'some' = 'current') {
  const v = await vaultSshKeys(dataDir);
  const inVault = v.all.map((k) => k.fingerprint);
  for (const h of hosts) {
    const acc = accepted(h);
    expect(acc.length, `${why}: ${h.name} accepts no key`).toBeGreaterThan(0);
    for (const f of acc) expect(inVault, `${why}: ${h.name} accepts ${f}, which is not in the vault`).toContain(f);
    if (which === 'current') expect(await logsIn(h, v.current), `${why}: the current key logs in to ${h.name}`).toBe(true);
    else {
      const ins: boolean[] = [];
      for (const k of v.all) ins.push(await logsIn(h, k.privateKey));
      expect(ins.some(Boolean), `${why}: no key in the vault logs in to ${h.name}`).toBe(true);
    }
  }
  return v;
}

describe('SSH identity rotation in a console (3 lab hosts)', () => {
  let t: TestCore;
  let c: TestClient;
  beforeAll(async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-sshrot-a-'));
    dirs.push(dataDir);
    t = await testCore({ dataDir, sshTimeoutMs: 3000, stepUpMinutes: 600 });
    c = t.client();
    await c.ok('session:setup', ADMIN);
    await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
    for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('rotates every host: afterwards sshd refuses the old key everywhere, the new one logs in, and only it is in the vault', async () => {
    const before = await vaultSshKeys(t.dir);
    const r = await c.ok('keys:rotateSshIdentity', { hosts: ['all'] });
    expect(r, JSON.stringify(r.hosts.map((h) => [h.host, h.message]))).toMatchObject({ status: 'succeeded', promoted: true, pendingHosts: [] });
    expect(r.hosts.map((h) => h.steps.map((s) => `${s.step}:${s.status}`).join(' '))).toEqual(Array(3).fill('add:done verify:done remove:done'));
    const after = await noHostLost(t.dir, lab.hosts, 'after the rotation');
    expect(after.all).toHaveLength(1);
    expect(after.all[0]!.fingerprint).toBe(r.newFingerprint);
    expect(r.oldFingerprint).toBe(fingerprintOfPrivateKey(before.current));
    for (const h of lab.hosts) {
      expect(await logsIn(h, before.current), `old key on ${h.name}`).toBe(false);
      expect(accepted(h)).toEqual([r.newFingerprint]);
    }
    // What identity:show gives an operator to authorize is the new key.
    expect(fingerprintOfLine((await c.ok('identity:show', {})).publicKey)?.fingerprint).toBe(r.newFingerprint);
    // And the console's own operations use it.
    expect((await c.ok('hosts:scan', { names: ['host1'] }))[0]).toMatchObject({ name: 'host1', ok: true });
  });

  it('a host cut off during the rotation is pending and keeps the old key (so do the others); restored and resumed, it is done', async () => {
    const before = await vaultSshKeys(t.dir);
    await cutLink(lab, 'host2');
    let r: SshRotation;
    try {
      r = await c.ok('keys:rotateSshIdentity', { hosts: ['all'] });
      expect(r).toMatchObject({ status: 'failed', promoted: false });
      expect(r.pendingHosts).toContain('host2');
      expect(r.hosts.find((h) => h.host === 'host2')).toMatchObject({ status: 'failed', next: 'add', pending: true });
      const mid = await vaultSshKeys(t.dir);
      expect(mid.all).toHaveLength(2); // the old key stays while a host needs it
      expect(mid.current).toBe(before.current);
      // No host had the old key removed: the current key still works on every reachable host.
      for (const h of [lab.hosts[0]!, lab.hosts[2]!]) {
        expect(await logsIn(h, before.current), h.name).toBe(true);
        expect(accepted(h).sort()).toEqual([r.oldFingerprint, r.newFingerprint].sort());
      }
      expect(accepted(lab.hosts[1]!)).toEqual([r.oldFingerprint]);
      expect((await c.ok('keys:sshRotation', { id: r.id })).pendingHosts).toEqual(r.pendingHosts);
      // The list names it too, newest first, with the same pending hosts (what the Keys page's history reads).
      const listed = await c.ok('keys:sshRotations', {});
      expect(listed[0]).toMatchObject({ id: r.id, pendingHosts: r.pendingHosts });
    } finally {
      await restoreLink(lab, 'host2');
    }
    const done = await c.ok('keys:resumeSshRotation', { id: r.id });
    expect(done).toMatchObject({ status: 'succeeded', promoted: true, pendingHosts: [], attempts: 2 });
    const after = await noHostLost(t.dir, lab.hosts, 'after the resume');
    expect(after.all).toHaveLength(1);
    for (const h of lab.hosts) expect(await logsIn(h, before.current), `old key on ${h.name}`).toBe(false);
  });

  it('refuses a selection that leaves a host out (it would lose the key)', async () => {
    expect(await c.call('keys:rotateSshIdentity', { hosts: ['host1'] })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: expect.stringMatching(/not selected: host2, host3/) } });
  });
});

/** A console process (the CLI) on `dataDir`; resolves with how it ended. */
function airlock(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, AIRLOCK_USER: ADMIN.admin, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off', ...env };
    delete childEnv.SSH_AUTH_SOCK;
    if (!env.AIRLOCK_TEST_KILL_AT) delete childEnv.AIRLOCK_TEST_KILL_AT;
    // node itself (tsx as a loader), so that the SIGKILL the console sends itself is what ends this process.
    const p = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/integration/keys-ssh-rotation.child.ts'), ...args, '--data', dataDir], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('the kill test: a console SIGKILLed at every step boundary (2 lab hosts)', () => {
  let dataDir: string;
  let hosts: LabHost[];
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-sshrot-b-'));
    dirs.push(dataDir);
    hosts = lab.hosts.slice(0, 2);
    const t = await testCore({ dataDir, sshTimeoutMs: 5000 });
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    const pub = (await c.ok('identity:show', {})).publicKey;
    // These hosts accept this console's key alone (whatever the tests above left there).
    for (const h of hosts) fs.writeFileSync(keysFile(h), `${pub}\n`, { mode: 0o600 });
    for (const h of hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
    await t.close();
  }, 120_000);

  it('kills, restarts and resumes at every boundary; no host is ever lost, and every retired key is refused', async () => {
    const retired: string[] = [];
    let kills = 0;
    for (let at = 0; ; at++) {
      const before = await vaultSshKeys(dataDir);
      const run = await airlock(dataDir, ['keys', 'rotate-ssh-identity', 'all', '--json'], { AIRLOCK_TEST_KILL_AT: String(at) });
      if (run.signal !== 'SIGKILL') {
        // Past the last boundary: this rotation ran to its end.
        expect(run.code, run.stderr + run.stdout).toBe(0);
        expect((JSON.parse(run.stdout) as SshRotation).status).toBe('succeeded');
        retired.push(before.current);
        break;
      }
      kills++;
      await noHostLost(dataDir, hosts, `killed at boundary ${at}`, 'some');
      const db = new Database(path.join(dataDir, 'airlock.db'), { readonly: true });
      const id = db.prepare('SELECT id FROM ssh_rotations ORDER BY rowid DESC LIMIT 1').pluck().get() as string;
      db.close();
      // A new console process sees the dead one's rotation as interrupted (or finished, if only its release was left).
      const shown = await airlock(dataDir, ['keys', 'ssh-rotation', id, '--json']);
      expect(shown.code, shown.stderr).toBe(0);
      expect(['interrupted', 'succeeded'], `boundary ${at}`).toContain((JSON.parse(shown.stdout) as SshRotation).status);
      const resumed = await airlock(dataDir, ['keys', 'resume-ssh-rotation', id, '--json']);
      expect(resumed.code, `boundary ${at}: ${resumed.stderr}${resumed.stdout}`).toBe(0);
      expect(JSON.parse(resumed.stdout) as SshRotation).toMatchObject({ status: 'succeeded', promoted: true, pendingHosts: [] });
      const after = await noHostLost(dataDir, hosts, `resumed after boundary ${at}`);
      expect(after.all, `boundary ${at}`).toHaveLength(1);
      retired.push(before.current);
    }
    // created + per host 3 steps × (started, acted, recorded) + promote start and recorded.
    expect(kills).toBe(1 + hosts.length * 3 * 3 + 2);
    for (const h of hosts) for (const k of retired) expect(await logsIn(h, k), `a retired key on ${h.name}`).toBe(false);
  }, 900_000);
});

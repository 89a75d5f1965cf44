/**
 * Re-keying hosts' models directories from the console (keys/models-rekey.ts) on a real lab whose
 * hosts have an ext4 models filesystem with the encrypt feature (real sshd, real fscrypt in the
 * hosts' kernel): a host cut off mid-re-key stays pending with its old key and its files readable,
 * and a resume finishes it once it is back; then the kill test — a console process SIGKILLed at
 * every step boundary of a re-key (the test-only hook AIRLOCK_TEST_KILL_AT), a new process on the
 * same data directory resuming it — and after every kill and every resume, every model file on
 * every host reads back with its SHA-256, and the raw images hold no plaintext. Last, the hosts
 * scan: a protected host locked as by a reboot is reported locked, and unlocked by the scan's
 * models probe once the hierarchy is unsealed.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelsRekey } from '../../shared/contract/keys';
import type { ScanOutcome } from '../../shared/contract/hosts';
import { openDatabase } from '../../electron/core/db/db';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import { lockModels } from '../../electron/core/keys/fscrypt';
import { modelsScanProbe } from '../../electron/core/keys/models-rekey-scan';
import { KeyService } from '../../electron/core/keys/service';
import { connect } from '../../electron/core/ssh/connection/connect';
import type { SshConnection } from '../../electron/core/ssh/connection/types';
import { shellQuote as q } from '../../electron/core/ssh/quote';
import { EXIT, runCli } from '../../electron/shells/cli';
import { authorizeKey, cutLink, hostModelsImage, labDown, labUp, MODELS_FS_MOUNT, restoreLink, type Lab } from '../lab/lab';

const LAB_ID = 'kmrekey';
const DIR = '/srv/models';
const ALICE = 'correct horse battery staple';
const T = 60_000;

let lab: Lab;
let data: string;
let work: string;
let shares: string[] = [];
const conns = new Map<string, SshConnection>();
/** Every model file written, per host: relative path → { sha256, marker }. */
const files = new Map<string, Map<string, { sha: string; marker: string }>>();

const cliEnv = { AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, AIRLOCK_TOTP_POLICY: 'off' };

/** The CLI in this process (setup, and commands that are not killed). */
async function airlock(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli([...args, '--data', data], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env: cliEnv, prompt: null, rendererDir: data, version: 'test' });
  return { code, stdout, stderr, json: <T>() => JSON.parse(stdout) as T };
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

async function sh(host: string, script: string, stdin?: string) {
  return conns.get(host)!.exec(`/bin/sh -c ${q(script)}`, { timeoutMs: T, ...(stdin === undefined ? {} : { stdin }) });
}
async function must(host: string, script: string, stdin?: string): Promise<string> {
  const r = await sh(host, script, stdin);
  if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const withShares = () => shares.slice(0, 2).flatMap((f) => ['--share', f]);
const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/** Model files as provisioning leaves them: the weights, a config, and the manifest of their SHA-256s. */
async function writeModels(host: string) {
  const mine = new Map<string, { sha: string; marker: string }>();
  const base = 'llm/7';
  const parts: Array<[string, string]> = [];
  for (const name of ['weights-00001.bin', 'weights-00002.bin', 'config.json']) {
    const marker = `AIRLOCK-REKEY-${host}-${name}-${crypto.randomBytes(6).toString('hex')}`;
    const content = marker.repeat(name.endsWith('.bin') ? 3000 : 20);
    await must(host, `mkdir -p ${q(`${DIR}/${base}`)} && cat > ${q(`${DIR}/${base}/${name}`)}`, content);
    mine.set(`${base}/${name}`, { sha: sha(content), marker });
    parts.push([name, sha(content)]);
  }
  const manifest = parts.map(([n, h]) => `${h}  ${n}\n`).join('');
  await must(host, `cat > ${q(`${DIR}/${base}/.airlock-manifest.sha256`)}`, manifest);
  mine.set(`${base}/.airlock-manifest.sha256`, { sha: sha(manifest), marker: '' });
  files.set(host, mine);
}

/** Every model file of every host reads back through /srv/models with its SHA-256 (zero files lost). */
async function everyFileReads(why: string) {
  for (const h of lab.hosts) {
    for (const [rel, f] of files.get(h.name)!) {
      const out = await sh(h.name, `sha256sum ${q(`${DIR}/${rel}`)}`);
      expect(out.code, `${why}: ${h.name}:${rel}: ${out.stderr}`).toBe(0);
      expect(out.stdout.split(' ')[0], `${why}: ${h.name}:${rel}`).toBe(f.sha);
    }
  }
}

/** The raw filesystem image holds no plaintext of any weights file. */
async function noPlaintext(host: string, why: string) {
  await must(host, `sync -f ${q(MODELS_FS_MOUNT)}`);
  const img = fs.readFileSync(await hostModelsImage(lab, host));
  for (const f of files.get(host)!.values()) if (f.marker) expect(img.includes(f.marker), `${why}: ${host}'s raw image holds ${f.marker}`).toBe(false);
}

type Status = { host: string; state: string; keyId: string | null; identifier: string | null };

/** After a finished re-key: the host's directory is under the new key Airlock holds, only that directory is left, the old data key is gone. */
async function finished(r: ModelsRekey, why: string) {
  expect(r, why).toMatchObject({ status: 'succeeded', pendingHosts: [] });
  for (const h of r.hosts) {
    const st = (await ok(['keys', 'models-status', h.host, '--json'])).json<Status>();
    expect(st, `${why}: ${h.host}`).toMatchObject({ state: 'unlocked', keyId: h.newKeyId });
    expect((await must(h.host, `readlink ${q(DIR)}`)).trim(), why).toBe(`${MODELS_FS_MOUNT}/k-${st.identifier}`);
    expect((await must(h.host, `ls -A ${q(MODELS_FS_MOUNT)}`)).split('\n').filter(Boolean).sort(), `${why}: ${h.host}'s store`).toEqual([`k-${st.identifier}`, 'lost+found']);
  }
  const db = new Database(path.join(data, 'airlock.db'), { readonly: true });
  try {
    for (const h of r.hosts) {
      expect(db.prepare(`SELECT COUNT(*) FROM data_keys WHERE domain = 'models' AND id = ?`).pluck().get(h.oldKeyId), `${why}: ${h.oldKeyId} retired`).toBe(0);
      expect(db.prepare(`SELECT key_id FROM models_keys WHERE host = ?`).pluck().get(h.host), why).toBe(h.newKeyId);
    }
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kmrekey-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kmrekey-work-'));
  lab = await labUp({ id: LAB_ID, hosts: 2, encryptedModels: true });
  await ok(['init', '--admin', 'alice']);
  await authorizeKey(lab, (await ok(['identity', 'show'])).stdout.trim());
  const mine = generateIdentity('airlock-kmrekey-test');
  await authorizeKey(lab, mine.publicKey);
  for (const h of lab.hosts) {
    await ok(['hosts', 'add', h.name, '--address', h.address, '--port', String(h.port), '--user', h.user, '--fingerprint', h.fingerprint]);
    conns.set(h.name, await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: mine.privateKey }, { timeoutMs: 30_000 }));
  }
  const g = await ok(['keys', 'genesis', '--threshold', '2', '--shares', '3', '--share-dir', path.join(work, 'shares'), '--json']);
  shares = g.json<{ shareFiles: string[] }>().shareFiles.map((f) => path.resolve(f));
  for (const h of lab.hosts) {
    await ok(['keys', 'protect-models', h.name, ...withShares()]);
    await writeModels(h.name);
  }
  await everyFileReads('before any re-key');
}, 300_000);

afterAll(async () => {
  for (const c of conns.values()) c.close();
  await labDown({ id: LAB_ID });
  for (const d of [data, work]) if (d) fs.rmSync(d, { recursive: true, force: true });
}, 180_000);

describe('models re-key from the console (2 lab hosts, fscrypt)', () => {
  it('refuses while sealed, before any key is made or any host touched', async () => {
    const r = await airlock(['keys', 'rekey-models', 'all']);
    expect(r.code).toBe(EXIT.failed);
    expect(r.stderr).toMatch(/KEY_UNAVAILABLE/);
    expect(r.stderr).toMatch(/sealed/);
  });

  it('a host cut off mid-re-key stays pending with its old key and its files readable; back and resumed, it is done', async () => {
    const before = (await ok(['keys', 'models-status', 'host2', '--json'])).json<Status>();
    await cutLink(lab, 'host2');
    let r: ModelsRekey;
    try {
      const run = await airlock(['keys', 'rekey-models', 'all', ...withShares(), '--json']);
      expect(run.code, run.stderr).toBe(1);
      r = run.json<ModelsRekey>();
      expect(r.status).toBe('failed');
      expect(r.pendingHosts).toEqual(['host2']);
      expect(r.hosts.find((h) => h.host === 'host1')).toMatchObject({ status: 'succeeded', pending: false, current: 'new', next: null });
      const h2 = r.hosts.find((h) => h.host === 'host2')!;
      // The new key was staged (in the database) before the host was tried; the host still has the old one.
      expect(h2).toMatchObject({ status: 'failed', pending: true, next: 'prepare', current: 'old', oldKeyId: before.keyId });
      expect(h2.newKeyId).toMatch(/^models\.host2\.\d+$/);
      expect(h2.message).toMatch(/keeps its old key/);
      expect((await ok(['keys', 'models-rekey', r.id, '--json'])).json<ModelsRekey>().pendingHosts).toEqual(['host2']);
    } finally {
      await restoreLink(lab, 'host2');
    }
    const still = (await ok(['keys', 'models-status', 'host2', '--json'])).json<Status>();
    expect(still).toMatchObject({ state: 'unlocked', keyId: before.keyId, identifier: before.identifier });
    await everyFileReads('host2 pending');
    const done = await airlock(['keys', 'resume-models-rekey', r.id, ...withShares(), '--json']);
    expect(done.code, done.stderr + done.stdout).toBe(EXIT.ok);
    const v = done.json<ModelsRekey>();
    expect(v.attempts).toBe(2);
    await finished(v, 'after the resume');
    await everyFileReads('after the resume');
    for (const h of lab.hosts) await noPlaintext(h.name, 'after the resume');
  }, 600_000);

  it('a host cut off between its steps (copied, not verified) stays pending under its old key; back and resumed, it is done', async () => {
    const before = (await ok(['keys', 'models-status', 'host2', '--json'])).json<Status>();
    // One host at a time (host1, then host2): boundary 1 + 7 × 3 + 3 × 3 − 1 is host2's copy recorded done.
    const killed = await child(['keys', 'rekey-models', 'all', '--concurrency', '1', ...withShares(), '--json'], { AIRLOCK_TEST_KILL_AT: String(1 + 7 * 3 + 3 * 3 - 1) });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const db = new Database(path.join(data, 'airlock.db'), { readonly: true });
    const id = db.prepare('SELECT id FROM models_rekeys ORDER BY rowid DESC LIMIT 1').pluck().get() as string;
    db.close();
    await cutLink(lab, 'host2');
    let r: ModelsRekey;
    try {
      const run = await child(['keys', 'resume-models-rekey', id, ...withShares(), '--json']);
      expect(run.code, run.stderr).toBe(1);
      r = JSON.parse(run.stdout) as ModelsRekey;
      expect(r.pendingHosts).toEqual(['host2']);
      expect(r.hosts.find((h) => h.host === 'host2')).toMatchObject({ status: 'failed', next: 'verify', current: 'old', oldKeyId: before.keyId });
    } finally {
      await restoreLink(lab, 'host2');
    }
    expect((await ok(['keys', 'models-status', 'host2', '--json'])).json<Status>()).toMatchObject({ state: 'unlocked', keyId: before.keyId, identifier: before.identifier });
    await everyFileReads('host2 pending after its copy');
    const done = await child(['keys', 'resume-models-rekey', r.id, ...withShares(), '--json']);
    expect(done.code, done.stderr + done.stdout).toBe(0);
    await finished(JSON.parse(done.stdout) as ModelsRekey, 'resumed after the cut');
    await everyFileReads('resumed after the cut');
    for (const h of lab.hosts) await noPlaintext(h.name, 'resumed after the cut');
  }, 600_000);

  it('kills the console at every step boundary, restarts, resumes: every file reads back every time, no plaintext on disk', async () => {
    let kills = 0;
    for (let at = 0; ; at++) {
      const run = await child(['keys', 'rekey-models', 'all', ...withShares(), '--json'], { AIRLOCK_TEST_KILL_AT: String(at) });
      if (run.signal !== 'SIGKILL') {
        // Past the last boundary: this re-key ran to its end.
        expect(run.code, run.stderr + run.stdout).toBe(0);
        await finished(JSON.parse(run.stdout) as ModelsRekey, `unkilled run ${at}`);
        break;
      }
      kills++;
      await everyFileReads(`killed at boundary ${at}`);
      const db = new Database(path.join(data, 'airlock.db'), { readonly: true });
      const id = db.prepare('SELECT id FROM models_rekeys ORDER BY rowid DESC LIMIT 1').pluck().get() as string;
      db.close();
      const shown = await child(['keys', 'models-rekey', id, '--json']);
      expect(shown.code, shown.stderr).toBe(0);
      expect(['interrupted', 'succeeded'], `boundary ${at}`).toContain((JSON.parse(shown.stdout) as ModelsRekey).status);
      const resumed = await child(['keys', 'resume-models-rekey', id, ...withShares(), '--json']);
      expect(resumed.code, `boundary ${at}: ${resumed.stderr}${resumed.stdout}`).toBe(0);
      await finished(JSON.parse(resumed.stdout) as ModelsRekey, `resumed after boundary ${at}`);
      await everyFileReads(`resumed after boundary ${at}`);
      for (const h of lab.hosts) await noPlaintext(h.name, `resumed after boundary ${at}`);
    }
    // created + per host 7 steps × (started, acted, recorded).
    expect(kills).toBe(1 + lab.hosts.length * 7 * 3);
  }, 3_600_000);

  it('the hosts scan reports a rebooted host locked; with the hierarchy unsealed its models probe unlocks it', async () => {
    expect((await lockModels(conns.get('host1')!, DIR)).state).toBe('locked');
    const scan = (await ok(['hosts', 'scan', '--json'])).json<ScanOutcome[]>();
    const byName = new Map(scan.map((s) => [s.name, s]));
    expect(byName.get('host1')?.models).toMatchObject({ state: 'locked', unlocked: false, error: null });
    expect(byName.get('host2')?.models).toMatchObject({ state: 'unlocked', unlocked: false });
    // The probe as the console runs it after an unseal (the CLI's every process starts sealed).
    const db = openDatabase(path.join(data, 'airlock.db'));
    try {
      const keys = new KeyService({ db, random: (n) => crypto.randomBytes(n), now: () => new Date(), kdf: { alg: 'argon2id', memoryKiB: 1024, iterations: 1, parallelism: 1 } });
      for (const f of shares.slice(0, 2)) await keys.addShare(fs.readFileSync(f, 'utf8'));
      expect(keys.status().sealed).toBe(false);
      const probe = modelsScanProbe({ db, keys, staged: () => null });
      const host = { name: 'host1', user: lab.hosts[0]!.user } as Parameters<typeof probe>[0];
      const m = await probe(host, conns.get('host1')!, new AbortController().signal);
      expect(m).toMatchObject({ state: 'unlocked', unlocked: true, error: null });
      keys.seal();
    } finally {
      db.close();
    }
    await everyFileReads('after the scan unlocked host1');
  }, 300_000);
});

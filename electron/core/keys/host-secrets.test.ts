/**
 * Host secrets over a real database and a real key service: the inference API key made as a
 * `host-secrets` data key (stable, one per host and unit, kept through a KEK rotation), nothing of
 * it in the database files in the clear, the fail-closed refusal while sealed (the provisioning
 * step's check and redelivery), the plan without a hierarchy, and delivery into a key file (0600,
 * drift found by its hash) by this machine's /bin/sh standing in for a host's. The lab test
 * (test/integration/keys-host-secrets.test.ts) runs it on real hosts with the inference simulator.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rejection } from '../../../test/support/errors';
import { openDatabase, type Db } from '../db/db';
import type { CallContext } from '../dispatch';
import { HostsService } from '../hosts/service';
import { Remote } from '../provision/remote';
import { inferenceService, renderUnit } from '../provision/steps/inference';
import type { StepContext } from '../provision/steps/types';
import type { ExecOptions, ExecResult, SshConnection } from '../ssh/connection/types';
import { apiKeyText, deliverApiKey, ensureApiKey, hostSecretsHandlers, hostSecretsSource, inferenceKeyId, keyFileFromUnit, keyFileState, NO_HIERARCHY_NOTE, parseHostSecretId, sealedApiKey } from './host-secrets';
import { KeyService } from './service';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) if (d.open) d.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** This machine's /bin/sh, as sshd would run the command on a host; records every command and its stdin. */
function localConn(sent: Array<{ cmd: string; stdin: string }>): SshConnection {
  const exec = (cmd: string, opts: ExecOptions) =>
    new Promise<ExecResult>((resolve, reject) => {
      const stdin = typeof opts.stdin === 'string' ? opts.stdin : '';
      sent.push({ cmd, stdin });
      const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.stdin.on('error', () => {});
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, truncated: false }));
      child.stdin.end(stdin);
    });
  return { exec, close: () => {}, closed: false } as unknown as SshConnection;
}

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-hsec-'));
  dirs.push(dir);
  const dbFile = path.join(dir, 'airlock.db');
  const db = openDatabase(dbFile);
  dbs.push(db);
  const now = () => new Date();
  const keys = new KeyService({ db, random: (n) => crypto.randomBytes(n), now, kdf: KDF });
  const hostsService = new HostsService({ db, now, timeoutMs: 5000, concurrency: 4, poolIdleMs: 0 });
  db.prepare("INSERT INTO hosts (name, address, port, user, fingerprint, key_type, added_at, labels) VALUES ('gpu1', '10.0.0.1', 22, 'root', 'SHA256:x', 'ssh-ed25519', 'now', '[]')").run();
  const sent: Array<{ cmd: string; stdin: string }> = [];
  const signal = new AbortController().signal;
  const remote = new Remote(localConn(sent), true, signal, 10_000);
  const unitDir = path.join(dir, 'systemd');
  fs.mkdirSync(unitDir);
  const keyFile = path.join(dir, 'etc-airlock', 'inference.key');
  const hosts = { get: (n: string) => hostsService.get(n), lease: async () => localConn(sent) };
  const h = hostSecretsHandlers({ db, keys, hosts, unitDir, timeoutMs: 10_000 });
  const details: Record<string, unknown>[] = [];
  const ctx = { sshAuth: () => ({ privateKey: 'k' }), signal, auditDetail: (x: Record<string, unknown>) => details.push(x) } as unknown as CallContext;
  const params = inferenceService.params.parse({ model: 'tiny-llm', version: '1', apiKeyFile: keyFile });
  const stepCtx = (withKeys = true): StepContext => ({
    host: { name: 'gpu1', address: '10.0.0.1', port: 22, user: 'root', fingerprint: 'SHA256:x' },
    remote,
    store: {} as StepContext['store'],
    signal,
    extraConnections: async () => [],
    freshConnection: async () => localConn(sent),
    log: () => {},
    transfer: () => {},
    timeoutMs: 10_000,
    ...(withKeys ? { hostSecrets: keys } : {}),
  });
  const genesis = () => keys.genesis({ threshold: 2, officers: [{ name: 'olga' }, { name: 'oscar' }, { name: 'otto' }] });
  return { dir, dbFile, db, keys, h, ctx, details, sent, remote, unitDir, keyFile, params, stepCtx, genesis };
}

describe('host secrets', () => {
  it('ids name a host and a unit; anything else is not a host secret', () => {
    expect(inferenceKeyId('gpu1', 'airlock-inference')).toBe('inference-api-key/gpu1/airlock-inference');
    expect(parseHostSecretId('inference-api-key/gpu1/airlock-inference')).toEqual({ kind: 'inference-api-key', host: 'gpu1', unit: 'airlock-inference' });
    for (const bad of ['models.gpu1.1', 'inference-api-key/gpu1', 'inference-api-key/gpu 1/u', 'inference-api-key/gpu1/U', 'inference-api-key//u']) expect(parseHostSecretId(bad), bad).toBeNull();
    expect(() => inferenceKeyId('gpu1', '../x')).toThrow(/host secret id/);
  });

  it('makes the API key once per host and unit, as a host-secrets data key; a KEK rotation keeps it', async () => {
    const s = setup();
    await s.genesis();
    const a = ensureApiKey(s.keys, 'gpu1', 'airlock-inference');
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const raw = s.keys.openDataKey('host-secrets', 'inference-api-key/gpu1/airlock-inference');
    expect(raw.length).toBe(32);
    expect(apiKeyText(raw)).toBe(a);
    expect(ensureApiKey(s.keys, 'gpu1', 'airlock-inference')).toBe(a);
    const b = ensureApiKey(s.keys, 'gpu1', 'second-server');
    expect(b).not.toBe(a);
    expect(sealedApiKey(s.keys, 'gpu2', 'airlock-inference')).toBeNull();
    const listed = await s.h['keys:hostSecrets'](s.ctx, {});
    expect(listed.map((x) => [x.host, x.unit, x.id, x.kind, x.kekVersion])).toEqual([
      ['gpu1', 'airlock-inference', 'inference-api-key/gpu1/airlock-inference', 'inference-api-key', 1],
      ['gpu1', 'second-server', 'inference-api-key/gpu1/second-server', 'inference-api-key', 1],
    ]);
    expect(JSON.stringify(listed)).not.toContain(a);
    expect(await s.h['keys:hostSecrets'](s.ctx, { host: 'gpu2' })).toEqual([]);

    const r = await s.keys.rotateKek('host-secrets');
    expect(r).toMatchObject({ version: 2, rewrapped: 2 });
    expect(sealedApiKey(s.keys, 'gpu1', 'airlock-inference')).toBe(a);
    expect((await s.h['keys:hostSecrets'](s.ctx, { host: 'gpu1' })).map((x) => x.kekVersion)).toEqual([2, 2]);
    // The list needs no root: it reads ids and versions only.
    s.keys.seal();
    expect((await s.h['keys:hostSecrets'](s.ctx, {})).length).toBe(2);
  });

  it('the database files hold no byte of the key in the clear, neither raw nor as text', async () => {
    const s = setup();
    await s.genesis();
    const text = ensureApiKey(s.keys, 'gpu1', 'airlock-inference');
    const raw = s.keys.openDataKey('host-secrets', inferenceKeyId('gpu1', 'airlock-inference'));
    s.keys.seal();
    s.db.close();
    const files = fs.readdirSync(s.dir).filter((f) => f.startsWith('airlock.db'));
    expect(files).toContain('airlock.db');
    const wrapped = files.map((f) => fs.readFileSync(path.join(s.dir, f)));
    const all = Buffer.concat(wrapped);
    // The data key is there, wrapped: the table has the row.
    expect(all.includes(Buffer.from('inference-api-key/gpu1/airlock-inference'))).toBe(true);
    for (const needle of [raw, raw.subarray(0, 16), raw.subarray(16), Buffer.from(text), Buffer.from(text.slice(0, 20)), Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('base64'))]) {
      expect(all.includes(needle)).toBe(false);
    }
    raw.fill(0);
  });

  it('no hierarchy: the host makes its key and the plan says so; a sealed hierarchy fails closed with KEY_UNAVAILABLE', async () => {
    const s = setup();
    expect(hostSecretsSource(undefined, 'x')).toBe('host');
    expect(hostSecretsSource(s.keys, 'x')).toBe('host');
    const plan = await inferenceService.check(s.stepCtx(), s.params);
    expect(plan.message).toBe(NO_HIERARCHY_NOTE);
    expect(plan.changes.find((c) => c.target === s.keyFile)).toMatchObject({ from: null, to: expect.stringContaining('made on the host') });
    expect((await inferenceService.check(s.stepCtx(false), s.params)).message).toBe(NO_HIERARCHY_NOTE);

    await s.genesis();
    s.keys.seal();
    const sent = s.sent.length;
    const refused = await rejection(inferenceService.check(s.stepCtx(), s.params));
    expect(refused.code).toBe('KEY_UNAVAILABLE');
    expect(refused.message).toMatch(/^The host-secrets key is sealed: unseal the hierarchy \(2 officers\) and run again\./);
    expect(refused.message).toContain('gpu1');
    expect((await rejection(inferenceService.apply(s.stepCtx(), s.params, plan))).code).toBe('KEY_UNAVAILABLE');
    expect((await rejection(inferenceService.verify(s.stepCtx(), s.params))).code).toBe('KEY_UNAVAILABLE');
    // Refused before anything ran on the host, and no key was made.
    expect(s.sent.length).toBe(sent);
    expect(fs.existsSync(s.keyFile)).toBe(false);
    expect(s.keys.status().domains.find((d) => d.domain === 'host-secrets')!.versions[0]!.dataKeys).toBe(0);
  });

  it('delivery writes the sealed key 0600 on stdin; a different key or mode is drift the plan shows', async () => {
    const s = setup();
    await s.genesis();
    // Unsealed, before the first apply: the plan promises a sealed key and makes none (check is read-only).
    const first = await inferenceService.check(s.stepCtx(), s.params);
    expect(first.message).toBeUndefined();
    expect(first.changes.find((c) => c.target === s.keyFile)).toMatchObject({ from: null, to: 'a new API key sealed under the host-secrets KEK (0600)' });
    expect(sealedApiKey(s.keys, 'gpu1', 'airlock-inference')).toBeNull();

    const text = ensureApiKey(s.keys, 'gpu1', 'airlock-inference');
    expect(await keyFileState(s.remote, s.keyFile, text)).toBe('absent');
    s.sent.length = 0;
    await deliverApiKey(s.remote, s.keyFile, text);
    expect(fs.readFileSync(s.keyFile, 'utf8')).toBe(text);
    expect(fs.statSync(s.keyFile).mode & 0o777).toBe(0o600);
    // The key went on stdin, never on a command line; no temporary file is left.
    expect(s.sent.some((x) => x.stdin === text)).toBe(true);
    expect(s.sent.every((x) => !x.cmd.includes(text))).toBe(true);
    expect(fs.readdirSync(path.dirname(s.keyFile))).toEqual(['inference.key']);
    expect(await keyFileState(s.remote, s.keyFile, text)).toBe('matches');
    expect((await inferenceService.check(s.stepCtx(), s.params)).changes.find((c) => c.target === s.keyFile)).toBeUndefined();

    fs.writeFileSync(s.keyFile, 'a key someone else put here');
    expect(await keyFileState(s.remote, s.keyFile, text)).toBe('differs');
    expect((await inferenceService.check(s.stepCtx(), s.params)).changes.find((c) => c.target === s.keyFile)).toMatchObject({ from: expect.stringContaining('drift'), to: 'the API key sealed under the host-secrets KEK (0600)' });
    fs.writeFileSync(s.keyFile, text, { mode: 0o644 });
    fs.chmodSync(s.keyFile, 0o644);
    expect(await keyFileState(s.remote, s.keyFile, text)).toBe('differs');
  });

  it('redelivery: the path from the unit Airlock wrote, the sealed key written once, sealed and foreign ids refused; nothing secret audited', async () => {
    const s = setup();
    const id = inferenceKeyId('gpu1', 'airlock-inference');
    expect((await rejection(s.h['keys:redeliverHostSecret'](s.ctx, { host: 'gpu1', id }) as Promise<unknown>)).message).toMatch(/no key hierarchy yet/);
    await s.genesis();
    expect((await rejection(s.h['keys:redeliverHostSecret'](s.ctx, { host: 'gpu1', id }) as Promise<unknown>)).message).toMatch(/holds no sealed key/);
    const text = ensureApiKey(s.keys, 'gpu1', 'airlock-inference');
    expect((await rejection(s.h['keys:redeliverHostSecret'](s.ctx, { host: 'gpu1', id }) as Promise<unknown>)).message).toMatch(/no airlock-inference unit on gpu1/);
    fs.writeFileSync(path.join(s.unitDir, 'airlock-inference.service'), renderUnit(s.params));

    const r = await s.h['keys:redeliverHostSecret'](s.ctx, { host: 'gpu1', id });
    expect(r).toMatchObject({ host: 'gpu1', unit: 'airlock-inference', id, kekVersion: 1, path: s.keyFile, outcome: 'delivered' });
    expect(fs.readFileSync(s.keyFile, 'utf8')).toBe(text);
    expect(fs.statSync(s.keyFile).mode & 0o777).toBe(0o600);
    const again = await s.h['keys:redeliverHostSecret'](s.ctx, { host: 'gpu1', id });
    expect(again).toMatchObject({ outcome: 'already', restarted: false });
    expect(s.details.map((d) => d.outcome)).toEqual(['delivered', 'already']);
    expect(JSON.stringify(s.details)).not.toContain(text);

    expect((await rejection(s.h['keys:redeliverHostSecret'](s.ctx, { host: 'gpu1', id: inferenceKeyId('gpu2', 'airlock-inference') }) as Promise<unknown>)).code).toBe('INVALID_INPUT');
    expect((await rejection(s.h['keys:redeliverHostSecret'](s.ctx, { host: 'nope', id: inferenceKeyId('nope', 'airlock-inference') }) as Promise<unknown>)).code).toBe('NOT_FOUND');
    s.keys.seal();
    const sealed = await rejection(s.h['keys:redeliverHostSecret'](s.ctx, { host: 'gpu1', id }) as Promise<unknown>);
    expect(sealed).toMatchObject({ code: 'KEY_UNAVAILABLE', message: expect.stringMatching(/unseal the hierarchy \(2 officers\)/) });
  });

  it('reads the key file from a unit Airlock wrote, and refuses one it did not', () => {
    const s = setup();
    expect(keyFileFromUnit(renderUnit(s.params), 'airlock-inference')).toBe(s.keyFile);
    expect(() => keyFileFromUnit(`[Service]\nExecStart=/bin/x --api-key-file /etc/shadow\n`, 'u')).toThrow(/not written by Airlock/);
    expect(() => keyFileFromUnit(`# Written by Airlock\n[Service]\nExecStart=/bin/x\n`, 'u')).toThrow(/no --api-key-file/);
    expect(() => keyFileFromUnit(`# Written by Airlock\nExecStart=/bin/x --api-key-file ../etc/shadow\n`, 'u')).toThrow(/absolute path/);
  });
});

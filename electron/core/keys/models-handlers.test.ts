/**
 * The models handlers over a real database and a real key service: the seal guard, refusals that
 * leave no key behind, a half-done protection finished with the same key, the host selector, and
 * what reaches a host (the key on stdin only). The host program runs for real on this machine's
 * python3 for the status checks; a recording host stands in for a kernel with fscrypt where one is
 * needed (the lab test, test/integration/keys-models.test.ts, runs all of it on real hosts).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { rejection } from '../../../test/support/errors';
import { openDatabase, type Db } from '../db/db';
import type { CallContext } from '../dispatch';
import { HostsService } from '../hosts/service';
import type { ExecOptions, ExecResult, SshConnection } from '../ssh/connection/types';
import { fscryptKeyIdentifier } from './fscrypt';
import { modelsKeysHandlers } from './models-handlers';
import { KeyService } from './service';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function drain(s: Readable | string | undefined): Promise<Buffer> {
  if (s === undefined) return Buffer.alloc(0);
  if (typeof s === 'string') return Buffer.from(s);
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

/** The host program's `encrypt DIR STORE IDENTIFIER` call, at the end of its command line. */
const ENCRYPT = /'encrypt' '([^']+)' '([^']+)' '([0-9a-f]{32})'$/;

type Exec = (cmd: string, opts: ExecOptions) => Promise<ExecResult>;

/** This machine's /bin/sh, as sshd would run the command on a host. */
const local: Exec = (cmd, opts) =>
  new Promise<ExecResult>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.stdin.on('error', () => {});
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, truncated: false }));
    void drain(opts.stdin).then((b) => child.stdin.end(b));
  });

function setup(exec: Exec = local) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-models-'));
  dirs.push(dir);
  const db = openDatabase(path.join(dir, 'airlock.db'));
  dbs.push(db);
  const now = () => new Date();
  const keys = new KeyService({ db, random: (n) => crypto.randomBytes(n), now, kdf: KDF });
  const real = new HostsService({ db, now, timeoutMs: 5000, concurrency: 4, poolIdleMs: 0 });
  const addHost = (name: string, labels: string[] = []) =>
    db
      .prepare("INSERT INTO hosts (name, address, port, user, fingerprint, key_type, added_at, labels) VALUES (?, ?, 22, 'root', 'SHA256:x', 'ssh-ed25519', 'now', ?)")
      .run(name, `10.0.0.${db.prepare('SELECT COUNT(*) AS n FROM hosts').pluck().get() as number}`, JSON.stringify(labels));
  const sent: Array<{ host: string; cmd: string; stdin: Buffer }> = [];
  const leases: string[] = [];
  const hosts = {
    get: (n: string) => real.get(n),
    list: () => real.list(),
    lease: async (name: string) => {
      leases.push(name);
      const conn = {
        exec: async (cmd: string, opts: ExecOptions) => {
          const stdin = await drain(opts.stdin);
          sent.push({ host: name, cmd, stdin });
          return exec(cmd, { ...opts, stdin: stdin.length ? stdin.toString('latin1') : undefined });
        },
        close: () => {},
      };
      return conn as unknown as SshConnection;
    },
  };
  const modelsDir = path.join(dir, 'models');
  const h = modelsKeysHandlers({ db, keys, hosts, now, dir: modelsDir, concurrency: 2 });
  const details: Record<string, unknown>[] = [];
  const ctx = { sshAuth: () => ({ privateKey: 'k' }), signal: new AbortController().signal, auditDetail: (x: Record<string, unknown>) => details.push(x) } as unknown as CallContext;
  const genesis = () => keys.genesis({ threshold: 2, officers: [{ name: 'olga' }, { name: 'oscar' }] });
  const modelsKeys = () => keys.status().domains.find((x) => x.domain === 'models')?.versions.reduce((a, v) => a + v.dataKeys, 0) ?? 0;
  return { db, keys, h, ctx, addHost, sent, leases, details, modelsDir, genesis, modelsKeys };
}

describe('keys models handlers', () => {
  it('status of an absent directory, with no key; protect and unlock refuse while sealed (or before genesis), without connecting', async () => {
    const s = setup();
    s.addHost('gpu1');
    expect(await s.h['keys:modelsStatus'](s.ctx, { host: 'gpu1' })).toEqual({ host: 'gpu1', state: 'absent', keyId: null, identifier: null, dir: s.modelsDir });
    expect((await rejection(s.h['keys:modelsStatus'](s.ctx, { host: 'nope' }) as Promise<unknown>)).code).toBe('NOT_FOUND');
    s.leases.length = 0;
    const none = await rejection(s.h['keys:protectModels'](s.ctx, { host: 'gpu1' }) as Promise<unknown>);
    expect(none).toMatchObject({ code: 'KEY_UNAVAILABLE' });
    expect(none.message).toMatch(/genesis/);
    await s.genesis();
    s.keys.seal();
    const sealed = await rejection(s.h['keys:protectModels'](s.ctx, { host: 'gpu1' }) as Promise<unknown>);
    expect(sealed).toMatchObject({ code: 'KEY_UNAVAILABLE' });
    expect(sealed.message).toMatch(/sealed: 2 officers must unseal it first/);
    const unlock = await rejection(s.h['keys:unlockModels'](s.ctx, { hosts: ['all'] }) as Promise<unknown>);
    expect(unlock).toMatchObject({ code: 'KEY_UNAVAILABLE' });
    expect(s.leases).toEqual([]);
    expect(s.modelsKeys()).toBe(0);
  });

  it('a non-empty plain directory is refused before any key is made, and left as it was', async () => {
    const s = setup();
    s.addHost('gpu1');
    await s.genesis();
    fs.mkdirSync(s.modelsDir);
    fs.writeFileSync(path.join(s.modelsDir, 'weights.bin'), 'plain');
    const e = await rejection(s.h['keys:protectModels'](s.ctx, { host: 'gpu1' }) as Promise<unknown>);
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toMatch(/move (its|the) files away/);
    expect(fs.readFileSync(path.join(s.modelsDir, 'weights.bin'), 'utf8')).toBe('plain');
    expect(s.modelsKeys()).toBe(0);
    expect(s.db.prepare('SELECT COUNT(*) FROM models_keys').pluck().get()).toBe(0);
  });

  it('a protection the host refused half-way is finished later with the same key; the key travels on stdin only', async () => {
    let kernel: 'none' | 'fscrypt' = 'none';
    const s = setup(async (cmd, opts) => {
      const m = ENCRYPT.exec(cmd);
      if (!m) return local(cmd, opts);
      if (kernel === 'none') return { code: 3, signal: null, stdout: JSON.stringify({ ok: false, code: 'ABSENT', detail: m[2] }) + '\n', stderr: '', truncated: false };
      const out = { ok: true, state: 'unlocked', target: `${m[2]}/k-${m[3]}`, id: m[3], detail: null };
      return { code: 0, signal: null, stdout: JSON.stringify(out) + '\n', stderr: '', truncated: false };
    });
    s.addHost('gpu1');
    await s.genesis();
    const first = await rejection(s.h['keys:protectModels'](s.ctx, { host: 'gpu1' }) as Promise<unknown>);
    expect(first.code).toBe('NOT_FOUND');
    expect(first.message).toMatch(/models filesystem/);
    // The key and its host row exist (one transaction), not yet confirmed by the host.
    expect(s.modelsKeys()).toBe(1);
    expect(s.db.prepare('SELECT key_id, protected_at FROM models_keys').all()).toEqual([{ key_id: 'models.gpu1.1', protected_at: null }]);

    kernel = 'fscrypt';
    const ok = await s.h['keys:protectModels'](s.ctx, { host: 'gpu1' });
    expect(s.modelsKeys()).toBe(1);
    const key = s.keys.openDataKey('models', 'models.gpu1.1');
    const id = fscryptKeyIdentifier(key);
    expect(ok).toEqual({ host: 'gpu1', state: 'unlocked', keyId: 'models.gpu1.1', kekVersion: 1, identifier: id, dir: s.modelsDir });
    expect(s.db.prepare('SELECT protected_at FROM models_keys').pluck().get()).not.toBeNull();
    expect(s.details.at(-1)).toMatchObject({ keyId: 'models.gpu1.1', identifier: id, created: false, before: 'absent', after: 'unlocked' });
    const encrypts = s.sent.filter((x) => ENCRYPT.test(x.cmd));
    expect(encrypts).toHaveLength(2);
    for (const x of encrypts) {
      expect(x.stdin.equals(key)).toBe(true);
      expect(x.cmd).not.toContain(key.toString('hex'));
      expect(x.cmd).not.toContain(key.toString('base64'));
    }
    for (const x of s.sent.filter((y) => !ENCRYPT.test(y.cmd))) expect(x.stdin.length).toBe(0);
    key.fill(0);

    // The status names the models KEK version wrapping the host's key, and follows a rotation's rewrap.
    expect(await s.h['keys:modelsStatus'](s.ctx, { host: 'gpu1' })).toMatchObject({ keyId: 'models.gpu1.1', kekVersion: 1 });
    const rotated = await s.keys.rotateKek('models');
    expect(rotated.rewrapped).toBe(1);
    expect(await s.h['keys:modelsStatus'](s.ctx, { host: 'gpu1' })).toMatchObject({ keyId: 'models.gpu1.1', kekVersion: rotated.version });
    expect(rotated.version).toBe(2);
  });

  it('unlock: names, labels and all resolved (unknown refused); a host without a key, or not locked, is skipped and says why', async () => {
    const s = setup();
    s.addHost('gpu1', ['rack-a']);
    s.addHost('gpu2', ['rack-a']);
    await s.genesis();
    expect((await rejection(s.h['keys:unlockModels'](s.ctx, { hosts: ['nope'] }) as Promise<unknown>)).code).toBe('NOT_FOUND');
    expect((await rejection(s.h['keys:unlockModels'](s.ctx, { hosts: ['label:rack-b'] }) as Promise<unknown>)).code).toBe('NOT_FOUND');
    const nothing = await rejection(s.h['keys:unlockModels'](s.ctx, { hosts: ['all'] }) as Promise<unknown>);
    expect(nothing).toMatchObject({ code: 'NOT_FOUND' });
    expect(nothing.message).toMatch(/protect-models/);

    // gpu1 has a key (a protection not finished: its directory is still absent).
    s.keys.putDataKey('models', 'models.gpu1.1', { bytes: 64 });
    const k = s.keys.openDataKey('models', 'models.gpu1.1');
    s.db.prepare("INSERT INTO models_keys (host, key_id, identifier, dir, created_at) VALUES ('gpu1', 'models.gpu1.1', ?, ?, 'now')").run(fscryptKeyIdentifier(k), s.modelsDir);
    k.fill(0);
    const r = await s.h['keys:unlockModels'](s.ctx, { hosts: ['label:rack-a'] });
    expect(r.map((x) => [x.host, x.outcome, x.state, x.code])).toEqual([
      ['gpu1', 'skipped', 'absent', 'CONFLICT'],
      ['gpu2', 'skipped', null, 'NOT_FOUND'],
    ]);
    expect(r[0]!.message).toMatch(/not locked/);
    expect(r[1]!.message).toMatch(/holds no models key for gpu2/);
    // `all`: only hosts Airlock holds a key for.
    expect((await s.h['keys:unlockModels'](s.ctx, { hosts: ['all'] })).map((x) => x.host)).toEqual(['gpu1']);
    expect(s.details.at(-1)).toMatchObject({ hosts: [{ host: 'gpu1', outcome: 'skipped', keyId: 'models.gpu1.1', code: 'CONFLICT' }] });
    expect(s.sent.every((x) => x.stdin.length === 0)).toBe(true);
  });
});

/**
 * The models re-key's state machine over a real database and a real key service: the order of
 * stage / host steps / promote and where each key is at every step, a host that cannot be reached
 * (pending, old key kept, the KEK versions it needs), a console that dies mid-step (another owner
 * sweeps and resumes it), refusals, and the scan probe's silence for unprotected hosts. The host
 * side is a stand-in here (this machine has no fscrypt models filesystem per host); the lab test
 * (test/integration/keys-models-rekey.test.ts) runs the real host steps, killed at every boundary.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rejection } from '../../../test/support/errors';
import { AirlockError } from '../../../shared/domain/errors';
import { openDatabase, type Db } from '../db/db';
import { HostsService } from '../hosts/service';
import type { SshConnection } from '../ssh/connection';
import { fscryptKeyIdentifier } from './fscrypt';
import type { RekeyStep } from './fscrypt-rekey';
import { ModelsRekeys, type RekeyHostOps } from './models-rekey';
import { modelsScanProbe } from './models-rekey-scan';
import { KeyService } from './service';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const FILES = { 'llm/7/weights.bin': 'a'.repeat(64), 'llm/7/config.json': 'b'.repeat(64) };

/** What the stand-in host records: each call with the key identifiers it was given, and what the database held then. */
interface Call {
  host: string;
  op: RekeyStep | 'inventory';
  oldId: string;
  newId: string;
  /** At that moment: is the new key in data_keys, and does models_keys still name the old one? */
  newInDb: boolean;
  oldCurrent: boolean;
}

async function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-mrekey-'));
  dirs.push(dir);
  const db = openDatabase(path.join(dir, 'airlock.db'));
  dbs.push(db);
  const now = () => new Date();
  const keys = new KeyService({ db, random: (n) => crypto.randomBytes(n), now, kdf: KDF });
  await keys.genesis({ threshold: 2, officers: [{ name: 'olga' }, { name: 'oscar' }] });
  const real = new HostsService({ db, now, timeoutMs: 5000, concurrency: 4, poolIdleMs: 0 });
  const unreachable = new Set<string>();
  const leases: string[] = [];
  const hosts = {
    get: (n: string) => real.get(n),
    list: () => real.list(),
    lease: async (name: string) => {
      leases.push(name);
      if (unreachable.has(name)) throw new AirlockError('HOST_UNREACHABLE', `${name} did not answer.`);
      return { host: name, exec: async () => ({ code: 0, signal: null, stdout: '', stderr: '', truncated: false }), close: () => {} } as unknown as SshConnection;
    },
  };
  const addHost = (name: string, protect = true) => {
    db.prepare("INSERT INTO hosts (name, address, port, user, fingerprint, key_type, added_at, labels) VALUES (?, ?, 22, 'root', 'SHA256:x', 'ssh-ed25519', 'now', '[]')").run(
      name,
      `10.0.0.${db.prepare('SELECT COUNT(*) FROM hosts').pluck().get() as number}`,
    );
    if (!protect) return;
    const id = `models.${name}.1`;
    keys.putDataKey('models', id, { bytes: 64 });
    const k = keys.openDataKey('models', id);
    db.prepare("INSERT INTO models_keys (host, key_id, identifier, dir, created_at, protected_at) VALUES (?, ?, ?, '/srv/models', 'now', 'now')").run(name, id, fscryptKeyIdentifier(k));
    k.fill(0);
  };
  const calls: Call[] = [];
  /** Per host, which key its directory is under (the stand-in's "kernel"). */
  const under = new Map<string, 'old' | 'new'>();
  const hooks: { before?: (host: string, op: Call['op']) => Promise<void> | void } = {};
  const record = async (conn: unknown, op: Call['op'], oldKey: Buffer | null, newKey: Buffer | null) => {
    const host = (conn as { host: string }).host;
    const oldId = oldKey ? fscryptKeyIdentifier(oldKey) : '';
    const newId = newKey ? fscryptKeyIdentifier(newKey) : '';
    const row = db.prepare('SELECT new_key_id, old_key_id FROM models_rekey_hosts WHERE host = ? ORDER BY rowid DESC LIMIT 1').get(host) as { new_key_id: string | null; old_key_id: string };
    calls.push({
      host,
      op,
      oldId,
      newId,
      newInDb: row.new_key_id !== null && db.prepare("SELECT COUNT(*) FROM data_keys WHERE domain = 'models' AND id = ?").pluck().get(row.new_key_id) === 1,
      oldCurrent: db.prepare('SELECT key_id FROM models_keys WHERE host = ?').pluck().get(host) === row.old_key_id,
    });
    await hooks.before?.(host, op);
  };
  const ops: RekeyHostOps = {
    async step(conn, step, input) {
      await record(conn, step, input.oldKey, input.newKey);
      const host = (conn as unknown as { host: string }).host;
      if (step === 'swap') under.set(host, 'new'); // the host program reports where dir points after its swap
      const where = under.get(host) === 'new' ? ('swapped' as const) : ('old' as const);
      if (step === 'verify') {
        for (const [p, c] of Object.entries(FILES)) if (input.expected?.[p] !== crypto.createHash('sha256').update(c).digest('hex')) throw new AirlockError('HASH_MISMATCH', `${p} differs.`);
      }
      return { step, where, ...(step === 'copy' ? { copied: 2, skipped: 0 } : {}), ...(step === 'verify' ? { files: 2 } : {}), ...(step === 'cleanup' ? { removed: 'removed' as const } : {}) };
    },
    async inventory(conn) {
      await record(conn, 'inventory', null, null);
      return Object.fromEntries(Object.entries(FILES).map(([p, c]) => [p, crypto.createHash('sha256').update(c).digest('hex')]));
    },
  };
  const make = (owner?: string) => new ModelsRekeys({ db, now, random: (n) => crypto.randomBytes(n), keys, hosts, hostOps: ops, ...(owner ? { owner } : {}) });
  const auth = { privateKey: 'k' };
  const signal = new AbortController().signal;
  return { db, keys, addHost, unreachable, calls, hooks, make, auth, signal, under };
}

const steps = (r: Awaited<ReturnType<ModelsRekeys['get']>>, host: string) => r.hosts.find((h) => h.host === host)!.steps.map((s) => `${s.step}:${s.status}`);

describe('models re-key (journaled)', () => {
  it('stages the new key in the database before the host hears of it, keeps the old one until promote, then retires it', async () => {
    const s = await setup();
    s.addHost('gpu1');
    s.addHost('gpu2');
    const r = await s.make().start('alice', ['all'], s.auth, s.signal);
    expect(r, JSON.stringify(r.hosts.map((h) => h.message))).toMatchObject({ status: 'succeeded', pendingHosts: [], actor: 'alice' });
    for (const h of ['gpu1', 'gpu2']) {
      expect(steps(r, h)).toEqual(['stage:done', 'prepare:done', 'copy:done', 'verify:done', 'swap:done', 'cleanup:done', 'promote:done']);
      const mine = s.calls.filter((c) => c.host === h);
      expect(mine.map((c) => c.op)).toEqual(['prepare', 'inventory', 'copy', 'verify', 'swap', 'cleanup']);
      // Every host step: the new key already durable, the old one still the host's key in Airlock.
      for (const c of mine) expect({ op: c.op, newInDb: c.newInDb, oldCurrent: c.oldCurrent }).toEqual({ op: c.op, newInDb: true, oldCurrent: true });
      const host = r.hosts.find((x) => x.host === h)!;
      expect(host).toMatchObject({ oldKeyId: `models.${h}.1`, newKeyId: `models.${h}.2`, current: 'new', pending: false });
      const k = s.keys.openDataKey('models', host.newKeyId!);
      expect(s.db.prepare('SELECT key_id, identifier FROM models_keys WHERE host = ?').get(h)).toEqual({ key_id: host.newKeyId, identifier: fscryptKeyIdentifier(k) });
      expect(mine[0]!.newId).toBe(fscryptKeyIdentifier(k));
      k.fill(0);
      expect((await rejection(Promise.resolve().then(() => s.keys.openDataKey('models', host.oldKeyId!)))).code).toBe('NOT_FOUND');
    }
    expect(s.make().stillNeeded()).toEqual([]);
  });

  it('an unreachable host stays pending with its old key (and the KEK version it needs); resumed once back, it is done', async () => {
    const s = await setup();
    s.addHost('gpu1');
    s.addHost('gpu2');
    s.unreachable.add('gpu2');
    const m = s.make();
    const r = await m.start('alice', ['all'], s.auth, s.signal);
    expect(r).toMatchObject({ status: 'failed', pendingHosts: ['gpu2'] });
    const h2 = r.hosts.find((h) => h.host === 'gpu2')!;
    expect(h2).toMatchObject({ status: 'failed', next: 'prepare', current: 'old', pending: true, oldKeyId: 'models.gpu2.1', newKeyId: 'models.gpu2.2' });
    expect(h2.message).toMatch(/keeps its old key/);
    expect(steps(r, 'gpu2').slice(0, 2)).toEqual(['stage:done', 'prepare:failed']);
    expect(s.db.prepare('SELECT key_id FROM models_keys WHERE host = ?').pluck().get('gpu2')).toBe('models.gpu2.1');
    expect(m.stillNeeded()).toEqual([1]);
    // A new KEK version rewraps the pending host's keys too: what it needs moves with them, never below.
    await s.keys.rotateKek('models');
    expect(m.stillNeeded()).toEqual([2]);
    expect(s.keys.setMinDecryptionVersion('models', 2, { stillNeeded: m.stillNeeded() }).minDecryptionVersion).toBe(2);
    expect((await rejection(m.start('alice', ['gpu2'], s.auth, s.signal))).message).toMatch(new RegExp(`resume it first .*resume-models-rekey ${r.id}`));
    s.unreachable.delete('gpu2');
    const done = await m.resume(r.id, s.auth, s.signal);
    expect(done).toMatchObject({ status: 'succeeded', pendingHosts: [], attempts: 2 });
    expect(s.db.prepare('SELECT key_id FROM models_keys WHERE host = ?').pluck().get('gpu2')).toBe('models.gpu2.2');
    expect(m.stillNeeded()).toEqual([]);
  });

  it('a console that dies mid-step leaves the re-key interrupted; another process resumes it from that step, with the same staged key', async () => {
    const s = await setup();
    s.addHost('gpu1');
    let hang = true;
    s.hooks.before = (_h, op) => (op === 'copy' && hang ? new Promise<void>(() => {}) : undefined);
    const dead = s.make(`${process.pid}:?:dead`);
    void dead.start('alice', ['gpu1'], s.auth, s.signal);
    await expect.poll(() => s.calls.filter((c) => c.op === 'copy').length).toBe(1);
    const id = s.db.prepare('SELECT id FROM models_rekeys').pluck().get() as string;
    hang = false;
    const next = s.make();
    const seen = next.get(id);
    expect(seen.status).toBe('interrupted');
    expect(steps(seen, 'gpu1').slice(0, 3)).toEqual(['stage:done', 'prepare:done', 'copy:interrupted']);
    const staged = seen.hosts[0]!.newKeyId;
    const done = await next.resume(id, s.auth, s.signal);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(done.hosts[0]!.newKeyId).toBe(staged);
    // Resumed at copy: prepare was not repeated, and the same new key went to the host both times.
    expect(s.calls.map((c) => c.op)).toEqual(['prepare', 'inventory', 'copy', 'copy', 'verify', 'swap', 'cleanup']);
    expect(new Set(s.calls.filter((c) => c.op !== 'inventory').map((c) => c.newId)).size).toBe(1);
  });

  it('a copy that does not verify keeps the host on its old key, pending', async () => {
    const s = await setup();
    s.addHost('gpu1');
    s.hooks.before = (_h, op) => {
      if (op === 'verify') throw new AirlockError('HASH_MISMATCH', 'weights.bin of the new copy does not match the store.');
    };
    const r = await s.make().start('alice', ['gpu1'], s.auth, s.signal);
    expect(r).toMatchObject({ status: 'failed', pendingHosts: ['gpu1'] });
    expect(r.hosts[0]).toMatchObject({ next: 'verify', current: 'old' });
    expect(r.hosts[0]!.message).toMatch(/verify failed: .*does not match.*keeps its old key/);
    expect(s.calls.map((c) => c.op)).not.toContain('swap');
    expect(s.db.prepare('SELECT key_id FROM models_keys WHERE host = ?').pluck().get('gpu1')).toBe('models.gpu1.1');
  });

  it('refuses while sealed, an unprotected host, and an unknown re-key, before anything is made', async () => {
    const s = await setup();
    s.addHost('gpu1');
    s.addHost('plain', false);
    const m = s.make();
    expect((await rejection(m.start('alice', ['plain'], s.auth, s.signal))).message).toMatch(/not protected by Airlock.*protect-models plain/);
    s.keys.seal();
    expect(await rejection(m.start('alice', ['gpu1'], s.auth, s.signal))).toMatchObject({ code: 'KEY_UNAVAILABLE', message: expect.stringMatching(/sealed/) });
    expect((await rejection(m.resume('mrk-0123456789abcdef', s.auth, s.signal))).code).toBe('NOT_FOUND');
    expect(s.db.prepare('SELECT COUNT(*) FROM models_rekeys').pluck().get()).toBe(0);
    expect(s.calls).toEqual([]);
  });

  it('the scan probe runs nothing on a host Airlock did not protect', async () => {
    const s = await setup();
    s.addHost('plain', false);
    let execs = 0;
    const conn = { exec: async () => (execs++, { code: 0, signal: null, stdout: '', stderr: '', truncated: false }), close: () => {} } as unknown as SshConnection;
    const probe = modelsScanProbe({ db: s.db, keys: s.keys, staged: () => null });
    expect(await probe({ name: 'plain', user: 'root' } as Parameters<typeof probe>[0], conn, s.signal)).toBeUndefined();
    expect(execs).toBe(0);
  });
});

/**
 * Key hierarchy benchmark (issue 12): rewrapping 100,000 data keys to a new KEK version through
 * the worker pool (the worker the CLI and Electron ship, dist/node/worker.mjs: `npm run bench`
 * builds it), against the anchor: a raw AES-256-GCM wrap of the same 100,000 keys in one thread
 * (createCipheriv per key, IVs from one randomBytes call, the same AAD length), same run. A
 * rewrap does twice the AES work of the anchor (open the old wrap, seal the new one), so ≥ 50%
 * of the anchor needs the workers to add more than they cost. Context rows: the same rewrap in
 * one thread on the main thread (rewrapDataKeys, what KeyService does without a pool), the
 * longest main-thread stall during the worker rewrap, and a whole KeyService.rotateKek of
 * 100,000 keys on a real SQLite file (read, rewrap in workers, write back in transactions).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { openDatabase } from '../../electron/core/db/db';
import { dataKeyAad, rewrapDataKeys, wrapDataKey, type WrappedDataKey } from '../../electron/core/keys/hierarchy';
import { rewrapInWorkers, workerRewrap } from '../../electron/core/keys/rewrap';
import { KeyService } from '../../electron/core/keys/service';
import { WorkerPool } from '../../electron/core/workers/pool';
import type { BenchRow } from './transfer';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (x: number) => `${Math.round(x).toLocaleString('en-US')} keys/s`;
const ms = (x: number) => `${x.toFixed(1)} ms`;
const root = path.resolve(import.meta.dirname, '../..');

/** Longest gap between 5 ms ticks on this (the main) thread while `f` runs, beyond the 5 ms itself. */
async function withStall<T>(f: () => Promise<T>): Promise<{ value: T; ms: number; stall: number }> {
  let last = performance.now();
  let worst = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
  }, 5);
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  try {
    const value = await f();
    return { value, ms: performance.now() - t0, stall: Math.max(worst, h.max / 1e6) };
  } finally {
    h.disable();
    clearInterval(tick);
  }
}

export async function benchKeys(rows: BenchRow[]) {
  const N = 100_000;
  const random = (n: number) => crypto.randomBytes(n);
  const ctx = { hierarchyId: crypto.randomBytes(16).toString('hex'), domain: 'models' as const };
  const k1 = random(32);
  const k2 = random(32);
  const plain = Array.from({ length: N }, () => random(32));
  const batch: WrappedDataKey[] = plain.map((p, i) => {
    const id = `model-${String(i).padStart(6, '0')}`;
    return { id, version: 1, wrapped: wrapDataKey(k1, p, { ...ctx, version: 1, id }, random) };
  });
  const aads = batch.map((b) => Buffer.from(dataKeyAad({ ...ctx, version: 2, id: b.id }), 'utf8'));

  /** The anchor: a raw AES-256-GCM wrap of each key, one thread. */
  const rawWrap = () => {
    const ivs = crypto.randomBytes(12 * N);
    let sink = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const iv = ivs.subarray(12 * i, 12 * i + 12);
      const c = crypto.createCipheriv('aes-256-gcm', k2, iv);
      c.setAAD(aads[i]!);
      const ct = Buffer.concat([c.update(plain[i]!), c.final()]);
      sink += ct.length + c.getAuthTag().length;
    }
    const t = performance.now() - t0;
    if (sink !== N * 48) throw new Error('keys bench: raw wrap produced the wrong sizes');
    return t;
  };

  const pool = new WorkerPool({ script: pathToFileURL(path.join(root, 'dist/node/worker.mjs')) });
  const check = (out: WrappedDataKey[]) => {
    if (out.length !== N || out.some((o) => o.version !== 2)) throw new Error('keys bench: rewrap returned the wrong keys');
    // Spot-check that the new wraps open to the same keys.
    for (const i of [0, 4242, N - 1]) {
      const d = crypto.createDecipheriv('aes-256-gcm', k2, out[i]!.wrapped.subarray(1, 13));
      d.setAAD(aads[i]!);
      d.setAuthTag(out[i]!.wrapped.subarray(out[i]!.wrapped.length - 16));
      if (!Buffer.concat([d.update(out[i]!.wrapped.subarray(13, out[i]!.wrapped.length - 16)), d.final()]).equals(plain[i]!)) throw new Error('keys bench: a rewrapped key does not open');
    }
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-keys-'));
  try {
    const req = { ...ctx, batch, fromKeks: new Map([[1, k1]]), toKek: { version: 2, key: k2 } };
    check(await rewrapInWorkers(pool, req)); // warm-up: workers started, code compiled
    rawWrap();
    const workers: number[] = [];
    const anchor: number[] = [];
    const single: number[] = [];
    let stall = 0;
    for (let run = 0; run < 5; run++) {
      const r = await withStall(() => rewrapInWorkers(pool, req));
      workers.push(r.ms);
      stall = Math.max(stall, r.stall);
      const out = r.value;
      check(out);
      anchor.push(rawWrap());
      const t1 = performance.now();
      check(rewrapDataKeys(batch, req.fromKeks, req.toKek, ctx, random));
      single.push(performance.now() - t1);
    }
    const w = N / (median(workers) / 1000);
    const a = N / (median(anchor) / 1000);
    const s = N / (median(single) / 1000);
    rows.push({ figure: `rewrap 100,000 data keys to a new KEK version (${pool.size} worker threads)`, value: rate(w), anchor: 'raw AES-256-GCM wrap of the same keys, 1 thread', anchorValue: rate(a), ratio: `${((w / a) * 100).toFixed(0)}%`, goal: '≥ 50,000 keys/s, ≥ 50%' });
    rows.push({ figure: 'longest main-thread stall during the worker rewrap', value: ms(stall), anchor: '-', anchorValue: '-', ratio: '-', goal: 'report' });
    rows.push({ figure: '(context) the same rewrap in one thread (main)', value: rate(s), anchor: 'raw AES-256-GCM wrap, 1 thread', anchorValue: rate(a), ratio: `${((s / a) * 100).toFixed(0)}%`, goal: 'report' });

    // Whole rotation through KeyService on a real database file: the figure an officer waits for.
    const db = openDatabase(path.join(dir, 'airlock.db'));
    const keys = new KeyService({ db, random, now: () => new Date(), rewrap: workerRewrap(pool) });
    await keys.genesis({ threshold: 2, officers: [{ name: 'a' }, { name: 'b' }] });
    db.transaction(() => {
      for (let i = 0; i < N; i++) keys.putDataKey('models', `model-${String(i).padStart(6, '0')}`, { key: plain[i]! });
    })();
    const rot: number[] = [];
    let rotStall = 0;
    for (let run = 0; run < 3; run++) {
      const r = await withStall(() => keys.rotateKek('models'));
      rot.push(r.ms);
      rotStall = Math.max(rotStall, r.stall);
      if (r.value.rewrapped !== N) throw new Error(`keys bench: rotation rewrapped ${r.value.rewrapped} keys`);
    }
    const id = 'model-004242';
    if (!keys.openDataKey('models', id).equals(plain[4242]!)) throw new Error('keys bench: a key does not open after rotation');
    keys.seal();
    db.close();
    const rr = N / (median(rot) / 1000);
    rows.push({ figure: '(context) KeyService.rotateKek, 100,000 keys, SQLite file', value: rate(rr), anchor: 'raw AES-256-GCM wrap, 1 thread', anchorValue: rate(a), ratio: `${((rr / a) * 100).toFixed(0)}%`, goal: 'report' });
    rows.push({ figure: '(context) longest main-thread stall during rotateKek', value: ms(rotStall), anchor: '-', anchorValue: '-', ratio: '-', goal: 'report' });
  } finally {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

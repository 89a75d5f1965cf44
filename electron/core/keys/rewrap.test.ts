import crypto from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { WorkerPool } from '../workers/pool';
import { unwrapDataKey, wrapDataKey } from './hierarchy';
import { REWRAP_CHUNK, rewrapInWorkers } from './rewrap';

const random = (n: number) => crypto.randomBytes(n);
const H = random(16).toString('hex');
const ctx = { hierarchyId: H, domain: 'models' as const };
// Real worker threads running workers/entry.ts from sources (keys.rewrap is in workers/jobs.ts).
const pool = new WorkerPool({ size: 2 });
afterAll(() => pool.close());

describe('rewrap in the worker pool (real worker threads)', () => {
  it('rewraps more than two chunks of keys of two versions to a new version, in order, each to the same key', async () => {
    const k1 = random(32);
    const k2 = random(32);
    const k3 = random(32);
    const n = 2 * REWRAP_CHUNK + 17;
    const plain = Array.from({ length: n }, (_, i) => random(i % 3 === 0 ? 64 : 32));
    const batch = plain.map((p, i) => {
      const version = i % 2 ? 2 : 1;
      const id = `key-${String(i).padStart(6, '0')}`;
      return { id, version, wrapped: wrapDataKey(version === 1 ? k1 : k2, p, { ...ctx, version, id }, random) };
    });
    const out = await rewrapInWorkers(pool, { ...ctx, batch, fromKeks: new Map([[1, k1], [2, k2]]), toKek: { version: 3, key: k3 } });
    expect(out.map((o) => o.id)).toEqual(batch.map((b) => b.id));
    for (let i = 0; i < n; i++) {
      expect(out[i]!.version).toBe(3);
      expect(unwrapDataKey(k3, out[i]!.wrapped, { ...ctx, version: 3, id: out[i]!.id }, 3).equals(plain[i]!)).toBe(true);
    }
    // The workers zero their copies; the caller's KEKs are untouched.
    expect(k1.equals(Buffer.alloc(32))).toBe(false);
    expect(k3.equals(Buffer.alloc(32))).toBe(false);
  });

  it('a batch with a key that does not open fails with KEY_UNAVAILABLE, nothing returned', async () => {
    const k1 = random(32);
    const batch = Array.from({ length: 30 }, (_, i) => ({ id: `k${i}`, version: 1, wrapped: wrapDataKey(k1, random(32), { ...ctx, version: 1, id: `k${i}` }, random) }));
    batch[17] = { ...batch[17]!, id: 'moved' }; // a wrap copied to another id
    const e = await rewrapInWorkers(pool, { ...ctx, batch, fromKeks: new Map([[1, k1]]), toKek: { version: 2, key: random(32) } }, 10).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AirlockError);
    expect((e as AirlockError).code).toBe('KEY_UNAVAILABLE');
    expect((e as AirlockError).message).toContain("'moved'");
  });

  it('keys already at the target version are left out; the others come back rewrapped', async () => {
    const k1 = random(32);
    const k2 = random(32);
    const plain = Array.from({ length: 40 }, () => random(32));
    const batch = plain.map((p, i) => {
      const version = i % 4 === 0 ? 2 : 1;
      const id = `k${String(i).padStart(2, '0')}`;
      return { id, version, wrapped: wrapDataKey(version === 1 ? k1 : k2, p, { ...ctx, version, id }, random) };
    });
    const out = await rewrapInWorkers(pool, { ...ctx, batch, fromKeks: new Map([[1, k1]]), toKek: { version: 2, key: k2 } }, 16);
    expect(out.map((o) => o.id)).toEqual(batch.filter((b) => b.version === 1).map((b) => b.id));
    for (const o of out) expect(unwrapDataKey(k2, o.wrapped, { ...ctx, version: 2, id: o.id }, 1).equals(plain[Number(o.id.slice(1))]!)).toBe(true);
  });
});

import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { keyCheckValue, rewrapDataKeys, rootCanary, rootMatches, safeMinDecryptionVersion, unwrapDataKey, unwrapKek, wrapDataKey, wrapKek, type DataKeyRef } from './hierarchy';

const random = (n: number) => crypto.randomBytes(n);
const H = 'a'.repeat(32);
const thrown = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as AirlockError;
  }
  throw new Error('expected a throw');
};

describe('key hierarchy primitives', () => {
  it('a KCV is 8 bytes of hex, stable for a key and different between keys', () => {
    const k = random(32);
    expect(keyCheckValue(k)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyCheckValue(Buffer.from(k))).toBe(keyCheckValue(k));
    expect(keyCheckValue(random(32))).not.toBe(keyCheckValue(k));
    expect(keyCheckValue(k)).not.toContain(k.toString('hex').slice(0, 16));
  });

  it('the canary opens with the root of its hierarchy only', () => {
    const root = random(32);
    const canary = rootCanary(root, H, random);
    expect(rootMatches(root, H, canary)).toBe(true);
    expect(rootMatches(random(32), H, canary)).toBe(false);
    expect(rootMatches(root, 'b'.repeat(32), canary)).toBe(false);
    expect(rootMatches(root.subarray(0, 31), H, canary)).toBe(false);
    const bad = Buffer.from(canary);
    bad[bad.length - 1]! ^= 1;
    expect(rootMatches(root, H, bad)).toBe(false);
  });

  it('a wrapped KEK opens only at its own place (hierarchy, domain, version)', () => {
    const root = random(32);
    const kek = random(32);
    const w = wrapKek(root, kek, { hierarchyId: H, domain: 'models', version: 1 }, random);
    expect(unwrapKek(root, w, { hierarchyId: H, domain: 'models', version: 1 }).equals(kek)).toBe(true);
    for (const ref of [
      { hierarchyId: H, domain: 'datasets' as const, version: 1 },
      { hierarchyId: H, domain: 'models' as const, version: 2 },
      { hierarchyId: 'c'.repeat(32), domain: 'models' as const, version: 1 },
    ]) {
      const e = thrown(() => unwrapKek(root, w, ref));
      expect(e.code).toBe('KEY_UNAVAILABLE');
      expect(e.message).toContain('does not open');
    }
    expect(thrown(() => unwrapKek(random(32), w, { hierarchyId: H, domain: 'models', version: 1 })).code).toBe('KEY_UNAVAILABLE');
  });

  it('a data key opens with its id and version; below min_decryption_version it is refused with a clear message', () => {
    const kek = random(32);
    const key = random(64);
    const ref: DataKeyRef = { hierarchyId: H, domain: 'models', version: 2, id: 'gpu-1' };
    const w = wrapDataKey(kek, key, ref, random);
    expect(unwrapDataKey(kek, w, ref, 1).equals(key)).toBe(true);
    expect(unwrapDataKey(kek, w, ref, 2).equals(key)).toBe(true);
    const e = thrown(() => unwrapDataKey(kek, w, ref, 3));
    expect(e).toBeInstanceOf(AirlockError);
    expect(e.code).toBe('KEY_UNAVAILABLE');
    expect(e.message).toContain('below the minimum decryption version 3');
    expect(thrown(() => unwrapDataKey(kek, w, { ...ref, id: 'gpu-2' }, 1)).message).toContain('does not open');
    expect(w.includes(key)).toBe(false);
  });

  it('rewrap returns new wraps under the target version only, which open to the same keys', () => {
    const ctx = { hierarchyId: H, domain: 'datasets' as const };
    const k1 = random(32);
    const k2 = random(32);
    const k3 = random(32);
    const keys = new Map([['a', random(32)], ['b', random(32)], ['c', random(32)]]);
    const batch = [
      { id: 'a', version: 1, wrapped: wrapDataKey(k1, keys.get('a')!, { ...ctx, version: 1, id: 'a' }, random) },
      { id: 'b', version: 2, wrapped: wrapDataKey(k2, keys.get('b')!, { ...ctx, version: 2, id: 'b' }, random) },
      { id: 'c', version: 3, wrapped: wrapDataKey(k3, keys.get('c')!, { ...ctx, version: 3, id: 'c' }, random) },
    ];
    const out = rewrapDataKeys(batch, new Map([[1, k1], [2, k2]]), { version: 3, key: k3 }, ctx, random);
    expect(out.map((o) => [o.id, o.version])).toEqual([['a', 3], ['b', 3]]);
    for (const o of out) {
      expect(unwrapDataKey(k3, o.wrapped, { ...ctx, version: 3, id: o.id }, 3).equals(keys.get(o.id)!)).toBe(true);
      expect(o.wrapped.includes(keys.get(o.id)!)).toBe(false);
    }
    // A version it was not given fails the batch: no key is silently left behind.
    expect(thrown(() => rewrapDataKeys(batch, new Map([[1, k1]]), { version: 3, key: k3 }, ctx, random)).message).toContain('version 2');
  });

  it('the safe minimum decryption version is the lowest version still needed', () => {
    expect(safeMinDecryptionVersion(4, [4, 4])).toBe(4);
    expect(safeMinDecryptionVersion(4, [3, 4])).toBe(3);
    expect(safeMinDecryptionVersion(4, [4], [2])).toBe(2);
    expect(safeMinDecryptionVersion(4, [])).toBe(4);
  });
});

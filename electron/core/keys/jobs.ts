/**
 * The key hierarchy's worker-pool job (electron/core/workers): rewrapping a batch of data keys to
 * a new KEK version off the main thread (keys/rewrap.ts chunks a domain into such batches).
 *
 * The batch crosses the thread boundary packed (one buffer of wraps and their lengths, moved, not
 * copied) rather than as 10,000 small objects: structured clone of many small buffers would cost
 * more than the AES itself. The KEKs are copied into the worker and zeroed there when the job
 * ends (best effort: structured clone leaves no other copy the handler can reach). Plaintext data
 * keys exist only inside `rewrapDataKeys`, one at a time, and never leave the worker.
 */
import crypto from 'node:crypto';
import { transferring, defineJob } from '../workers/job';
import { rewrapDataKeys, type KeyDomain, type WrappedDataKey } from './hierarchy';

/** Wrapped data keys, packed: `wraps` is every wrap end to end, `lengths[i]` the bytes of the i-th. */
export interface PackedWraps {
  ids: string[];
  versions: number[];
  lengths: number[];
  wraps: Uint8Array;
}

export interface RewrapJobInput {
  hierarchyId: string;
  domain: KeyDomain;
  batch: PackedWraps;
  fromKeks: Array<{ version: number; key: Uint8Array }>;
  toKek: { version: number; key: Uint8Array };
}

const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * Packs wraps into a buffer of its own (allocUnsafeSlow, never Node's shared small-buffer pool),
 * so it can be transferred: transferring a pooled buffer would detach every other Buffer in it.
 */
export function pack(keys: readonly WrappedDataKey[]): PackedWraps {
  const wraps = Buffer.allocUnsafeSlow(keys.reduce((n, k) => n + k.wrapped.length, 0));
  let at = 0;
  for (const k of keys) at += k.wrapped.copy(wraps, at);
  return { ids: keys.map((k) => k.id), versions: keys.map((k) => k.version), lengths: keys.map((k) => k.wrapped.length), wraps };
}

export function unpack(p: PackedWraps): WrappedDataKey[] {
  const all = buf(p.wraps);
  const out: WrappedDataKey[] = [];
  let at = 0;
  for (let i = 0; i < p.ids.length; i++) {
    const n = p.lengths[i]!;
    out.push({ id: p.ids[i]!, version: p.versions[i]!, wrapped: all.subarray(at, at + n) });
    at += n;
  }
  return out;
}

/** IVs drawn from the CSPRNG in one call per batch, not one per key: the per-call overhead is most of the cost for 12 bytes. */
function pooledRandom(bytes: number): (n: number) => Buffer {
  let pool = crypto.randomBytes(bytes);
  let at = 0;
  return (n) => {
    if (at + n > pool.length) {
      pool = crypto.randomBytes(Math.max(bytes, n));
      at = 0;
    }
    const out = pool.subarray(at, at + n);
    at += n;
    return out;
  };
}

export const rewrap = defineJob('keys.rewrap', (job: RewrapJobInput) => {
  const fromKeks = new Map(job.fromKeks.map((k) => [k.version, buf(k.key)]));
  const toKey = buf(job.toKek.key);
  try {
    const batch = unpack(job.batch);
    const out = rewrapDataKeys(batch, fromKeks, { version: job.toKek.version, key: toKey }, { hierarchyId: job.hierarchyId, domain: job.domain }, pooledRandom(12 * batch.length + 12));
    const packed = pack(out);
    return transferring(packed, [packed.wraps.buffer as ArrayBuffer]);
  } finally {
    for (const k of fromKeks.values()) k.fill(0);
    toKey.fill(0);
  }
});

export const keysJobs = [rewrap] as const;

/**
 * The key hierarchy's worker-pool job (electron/core/workers): rewrapping a batch of data keys to
 * a new KEK version off the main thread (keys/rewrap.ts chunks a domain into such batches).
 *
 * The batch crosses the thread boundary packed (one buffer of wraps and their lengths, moved, not
 * copied) rather than as 10,000 small objects: structured clone of many small buffers would cost
 * more than the AES itself. The KEKs are copied into the worker and zeroed there when the job
 * ends (best effort: structured clone leaves no other copy the handler can reach). Plaintext data
 * keys exist only inside `resealInto` (vault/aead.ts), one at a time, and never leave the worker.
 */
import crypto from 'node:crypto';
import { AirlockError } from '../../../shared/domain/errors';
import { resealInto } from '../vault/aead';
import { transferring, defineJob } from '../workers/job';
import { dataKeyAad, type KeyDomain, type WrappedDataKey } from './hierarchy';

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

/**
 * `rewrapDataKeys` over a packed batch, writing the new wraps straight into one output buffer (a
 * rewrap keeps each wrap's length): the same checks and refusals, without two small allocations
 * and a copy per key. Keys already at the target version are left out.
 */
export function rewrapPacked(job: Omit<RewrapJobInput, 'fromKeks' | 'toKek'>, fromKeks: ReadonlyMap<number, Buffer>, to: { version: number; key: Buffer }): PackedWraps {
  const { ids, versions, lengths } = job.batch;
  const wraps = buf(job.batch.wraps);
  const out = Buffer.allocUnsafeSlow(wraps.length);
  const ivs = crypto.randomBytes(12 * ids.length);
  const res: PackedWraps = { ids: [], versions: [], lengths: [], wraps: out };
  const ctx = { hierarchyId: job.hierarchyId, domain: job.domain };
  let inAt = 0;
  let outAt = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const version = versions[i]!;
    const n = lengths[i]!;
    const sealed = wraps.subarray(inAt, inAt + n);
    inAt += n;
    if (version === to.version) continue;
    const from = fromKeks.get(version);
    if (!from) throw new AirlockError('KEY_UNAVAILABLE', `Data key '${id}' is wrapped by ${job.domain} KEK version ${version}, which this rewrap was not given.`);
    if (!resealInto(from, sealed, dataKeyAad({ ...ctx, version, id }), to.key, dataKeyAad({ ...ctx, version: to.version, id }), ivs.subarray(12 * i, 12 * i + 12), out, outAt)) {
      throw new AirlockError('KEY_UNAVAILABLE', `Data key '${id}' (${job.domain}, KEK version ${version}) does not open: its database row was altered or copied from elsewhere. Nothing was rewrapped.`);
    }
    outAt += n;
    res.ids.push(id);
    res.versions.push(to.version);
    res.lengths.push(n);
  }
  out.fill(0, outAt); // skipped keys leave a tail: never send uninitialised memory
  return res;
}

export const rewrap = defineJob('keys.rewrap', (job: RewrapJobInput) => {
  const fromKeks = new Map(job.fromKeks.map((k) => [k.version, buf(k.key)]));
  const toKey = buf(job.toKek.key);
  try {
    const packed = rewrapPacked(job, fromKeks, { version: job.toKek.version, key: toKey });
    return transferring(packed, [packed.wraps.buffer as ArrayBuffer]);
  } finally {
    for (const k of fromKeks.values()) k.fill(0);
    toKey.fill(0);
  }
});

export const keysJobs = [rewrap] as const;

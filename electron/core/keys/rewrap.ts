import type { WorkerPool } from '../workers/pool';
import type { KeyDomain, WrappedDataKey } from './hierarchy';
import { pack, unpack } from './jobs';

/**
 * Rewrapping a domain's data keys in the worker pool: chunks of REWRAP_CHUNK keys, one job each,
 * run in parallel on the pool's workers (AES-GCM is CPU work; 100,000 keys in one thread would
 * hold the event loop for a noticeable time). Results come back in batch order.
 */

/** Keys per worker job: big enough that a job's fixed cost (messages, KEK import) is noise, small enough to spread over the workers. */
export const REWRAP_CHUNK = 10_000;

export interface RewrapRequest {
  hierarchyId: string;
  domain: KeyDomain;
  batch: readonly WrappedDataKey[];
  /** KEK of each version the batch's keys are wrapped by. */
  fromKeks: ReadonlyMap<number, Buffer>;
  toKek: { version: number; key: Buffer };
}

/** What KeyService calls to rewrap (its `rewrap` option); without one it rewraps in-process. */
export type RewrapFn = (req: RewrapRequest) => Promise<WrappedDataKey[]>;

/** The pool's side of `keys.rewrap`, as much of WorkerPool as this needs. */
export type RewrapPool = Pick<WorkerPool, 'run'>;

/** Jobs in flight at most: the pool's queue is bounded (WORKER_QUEUE_FULL beyond it), a domain is not. */
const IN_FLIGHT = 8;

export async function rewrapInWorkers(pool: RewrapPool, req: RewrapRequest, chunk = REWRAP_CHUNK): Promise<WrappedDataKey[]> {
  const fromKeks = [...req.fromKeks].map(([version, key]) => ({ version, key }));
  const chunks = Math.ceil(req.batch.length / chunk);
  const results: WrappedDataKey[][] = new Array(chunks);
  let next = 0;
  const lane = async () => {
    for (let c = next++; c < chunks; c = next++) {
      const batch = pack(req.batch.slice(c * chunk, (c + 1) * chunk));
      const out = await pool.run('keys.rewrap', { hierarchyId: req.hierarchyId, domain: req.domain, batch, fromKeks, toKek: req.toKek }, { transfer: [batch.wraps.buffer as ArrayBuffer] });
      results[c] = unpack(out);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, chunks) }, lane));
  return results.flat();
}

/** A RewrapFn over a pool, for KeyService's `rewrap` option. */
export const workerRewrap =
  (pool: RewrapPool): RewrapFn =>
  (req) =>
    rewrapInWorkers(pool, req);

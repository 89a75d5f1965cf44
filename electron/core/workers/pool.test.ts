import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { sampleEvent, testTrail } from '../../../test/support/audit';
import type { jobs as testJobs } from './fixtures/test-jobs';
import { defineJob, registry } from './job';
import type { Jobs } from './jobs';
import { WorkerPool, WorkerPoolError, type PoolOptions } from './pool';

// Real worker threads running entry.ts from sources, with the fixture's test-only kinds added.
const fixture = fileURLToPath(new URL('./fixtures/test-jobs.ts', import.meta.url));
const pools: WorkerPool[] = [];
const pool = (o: PoolOptions = {}) => {
  const p = new WorkerPool<Jobs & typeof testJobs>({ preload: [fixture], ...o });
  pools.push(p as WorkerPool);
  return p;
};
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

/** A gate a test.block job waits on, opened from here. */
function gate() {
  const sab = new SharedArrayBuffer(4);
  return {
    sab,
    open() {
      const a = new Int32Array(sab);
      Atomics.store(a, 0, 1);
      Atomics.notify(a, 0);
    },
  };
}
/** Starts a test.block job and resolves once it runs in a worker (it then holds that worker). */
async function blocking(p: ReturnType<typeof pool>, signal?: AbortSignal) {
  const g = gate();
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const result = p.run('test.block', { gate: g.sab }, { signal, onProgress: () => started() });
  await Promise.race([running, result]);
  return { ...g, result };
}
const failure = (promise: Promise<unknown>) => promise.then(
  (v) => {
    throw new Error(`expected a failure, got ${JSON.stringify(v)}`);
  },
  (e: unknown) => e as Error & { code?: string },
);

describe('the worker pool (real worker threads)', () => {
  it('runs jobs of different kinds through one pool: an audit search on a real database and test kinds, with progress', async () => {
    const t = testTrail({ file: true });
    for (let i = 1; i <= 30; i++) t.audit.append({ ...sampleEvent(i), outcome: i % 4 ? 'pending' : 'refused' });
    const options = { limit: 10, target: 'GPU-1', outcome: 'pending' };
    const p = pool({ size: 2 });
    const progress: number[] = [];
    const [listed, echoed, sum] = await Promise.all([
      p.run('audit.list', { dbFile: path.join(t.dir!, 'airlock.db'), options }),
      p.run('test.echo', { text: 'hello' }),
      p.run('test.sum', { values: [1, 2, 3, 4] }, { onProgress: (v) => progress.push(v) }),
    ]);
    expect(listed).toEqual(t.audit.list(options));
    expect(listed.events.map((e) => e.seq)).toEqual([19, 18, 17, 15, 14, 13, 11, 10, 1]);
    expect(echoed.text).toBe('hello');
    expect(sum).toBe(10);
    expect(progress).toEqual([1, 3, 6, 10]);
    expect(p.stats()).toMatchObject({ busy: 0, queued: 0 });
    expect(p.stats().workers).toBeLessThanOrEqual(2);
    t.db.close();
  });

  it('a job that throws fails with its error (an AirlockError keeps its code); the same worker runs the next job', async () => {
    const p = pool({ size: 1 });
    const first = await p.run('test.echo', { text: 'a' });
    const e = await failure(p.run('test.throw', { message: 'out of range' }));
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RangeError');
    expect(e.message).toBe('out of range');
    expect(e.stack).toContain('test-jobs.ts'); // the worker's stack, where it was thrown
    const coded = await failure(p.run('test.throw', { message: 'no such thing', code: 'NOT_FOUND' }));
    expect(coded).toBeInstanceOf(AirlockError);
    expect(coded).toMatchObject({ code: 'NOT_FOUND', message: 'no such thing' });
    const next = await p.run('test.echo', { text: 'b' });
    expect(next).toEqual({ text: 'b', threadId: first.threadId });
  });

  it('a worker that dies mid-job fails only that job, with a clear error; the next job runs on a replacement', async () => {
    const p = pool({ size: 1 });
    const before = await p.run('test.echo', { text: 'a' });
    const e = await failure(p.run('test.exit', { code: 3 }));
    expect(e).toBeInstanceOf(WorkerPoolError);
    expect(e.code).toBe('WORKER_CRASHED');
    expect(e.message).toBe("the worker running job 'test.exit' exited with code 3 before the job finished; the next job runs on a new worker");
    const after = await p.run('test.echo', { text: 'b' });
    expect(after.text).toBe('b');
    expect(after.threadId).not.toBe(before.threadId);
    expect(p.stats().workers).toBe(1);
  });

  it('a worker killed from outside (terminate) fails its job the same way', async () => {
    const p = pool({ size: 1 });
    const job = await blocking(p);
    // The only way in: the pool's own worker, as a crash of the thread would look.
    const slot = [...(p as unknown as { slots: Set<{ worker: { terminate(): Promise<number> } }> }).slots][0]!;
    await slot.worker.terminate();
    const e = await failure(job.result);
    expect(e).toMatchObject({ code: 'WORKER_CRASHED', message: expect.stringContaining("job 'test.block' exited with code 1") });
    expect((await p.run('test.echo', { text: 'again' })).text).toBe('again');
  });

  it('cancels a running job (its blocked worker is terminated and replaced) and drops a queued one', async () => {
    const p = pool({ size: 1 });
    const running = new AbortController();
    const job = await blocking(p, running.signal);
    const queuedAbort = new AbortController();
    let queuedRan = false;
    const queued = p.run('test.sum', { values: [1] }, { signal: queuedAbort.signal, onProgress: () => (queuedRan = true) });
    expect(p.stats()).toEqual({ workers: 1, busy: 1, queued: 1 });
    queuedAbort.abort();
    const q = await failure(queued);
    expect(q).toBeInstanceOf(AirlockError);
    expect(q).toMatchObject({ code: 'CANCELLED', message: "worker job 'test.sum' was cancelled" });
    expect(p.stats().queued).toBe(0);

    running.abort();
    expect(await failure(job.result)).toMatchObject({ code: 'CANCELLED', message: "worker job 'test.block' was cancelled" });
    // The blocked thread is gone (the gate was never opened); the next job gets a new one.
    const next = await p.run('test.echo', { text: 'next' });
    expect(next.text).toBe('next');
    expect(queuedRan).toBe(false);
    expect(p.stats()).toEqual({ workers: 1, busy: 0, queued: 0 });
    // An already aborted signal: not run at all.
    expect(await failure(p.run('test.echo', { text: 'x' }, { signal: AbortSignal.abort() }))).toMatchObject({ code: 'CANCELLED' });
  });

  it('refuses a job beyond the queue bound with WORKER_QUEUE_FULL; the queued ones still run', async () => {
    const p = pool({ size: 1, maxQueued: 2 });
    const job = await blocking(p);
    const waiting = [p.run('test.echo', { text: '1' }), p.run('test.echo', { text: '2' })];
    const e = await failure(p.run('test.echo', { text: '3' }));
    expect(e).toBeInstanceOf(WorkerPoolError);
    expect(e).toMatchObject({
      code: 'WORKER_QUEUE_FULL',
      message: "the worker queue is full (2 jobs waiting for 1 workers): job 'test.echo' was not run; try again when the running jobs are done",
    });
    job.open();
    await job.result;
    expect((await Promise.all(waiting)).map((r) => r.text)).toEqual(['1', '2']);
  });

  it('moves transferred buffers instead of copying them, both ways', async () => {
    const p = pool({ size: 1 });
    const bytes = new Uint8Array([1, 2, 3]).buffer;
    const r = await p.run('test.reverse', { bytes }, { transfer: [bytes] });
    expect(bytes.byteLength).toBe(0); // moved to the worker
    expect(r.received).toBe(3);
    expect([...new Uint8Array(r.bytes)]).toEqual([3, 2, 1]);
  });

  it('says so when an output cannot be sent back, and the worker lives on', async () => {
    const p = pool({ size: 1 });
    const before = await p.run('test.echo', { text: 'a' });
    const e = await failure(p.run('test.unsendable', undefined));
    expect(e.name).toBe('DataCloneError');
    expect(e.message).toMatch(/^worker job 'test.unsendable' returned a value that cannot be sent to the main thread: /);
    expect((await p.run('test.echo', { text: 'b' })).threadId).toBe(before.threadId);
  });

  it('fails the job, not the process, when the worker cannot start', async () => {
    const p = new WorkerPool({ script: new URL('file:///nonexistent/worker.mjs') });
    pools.push(p);
    const e = await failure(p.run('audit.list', { dbFile: '/nonexistent.db', options: { limit: 1 } }));
    expect(e).toMatchObject({ code: 'WORKER_CRASHED', message: expect.stringContaining("the worker running job 'audit.list' failed (Error: Cannot find module") });
  });

  it('close rejects what waits and what runs, and refuses new jobs', async () => {
    const p = pool({ size: 1 });
    const job = await blocking(p);
    const running = failure(job.result);
    const queued = failure(p.run('test.echo', { text: 'q' }));
    await p.close();
    expect(await running).toMatchObject({ code: 'WORKER_POOL_CLOSED' });
    expect(await queued).toMatchObject({ code: 'WORKER_POOL_CLOSED' });
    expect(await failure(p.run('test.echo', { text: 'late' }))).toMatchObject({ code: 'WORKER_POOL_CLOSED', message: "the worker pool is closed: job 'test.echo' was not run" });
    expect(p.stats().workers).toBe(0);
  });

  it('a kind defined twice is refused when the registry is built', () => {
    const a = defineJob('x.same', () => 1);
    const b = defineJob('x.same', () => 2);
    expect(() => registry(a, b)).toThrow("worker job kind 'x.same' is defined twice");
  });
});

// Kinds, inputs and outputs are checked by the compiler (tsc covers the tests): never called.
export function typeChecks(p: WorkerPool) {
  // @ts-expect-error -- no such kind in workers/jobs.ts
  void p.run('audit.nope', {});
  // @ts-expect-error -- the input of audit.list has no `limit` here
  void p.run('audit.list', { dbFile: 'x', options: {} });
  // @ts-expect-error -- test kinds exist only in a pool typed (and preloaded) with the fixture's
  void p.run('test.echo', { text: 'x' });
  void p.run('audit.verifyRange', { dbFile: 'x', from: 1, to: 2, prev: null, publicKeys: {}, progressMs: 100 }, { onProgress: (checked: number) => checked }).then((s) => s.lastSeq);
}

import os from 'node:os';
import type { TransferListItem, Worker } from 'node:worker_threads';
import { AirlockError } from '../../../shared/domain/errors';
import type { InputOf, JobRegistry, OutputOf, ProgressOf } from './job';
import type { Jobs } from './jobs';
import { revivedError, type JobReply } from './protocol';
import { startWorker, workerEntry, type WorkerEntry } from './start';

/**
 * The worker pool: every job that would stall the event loop (the audit verifier today;
 * telemetry ingest and bundle export next) runs in one of a fixed number of worker threads, all
 * running entry.ts, which dispatches by job kind (job.ts, jobs.ts).
 *
 * - Workers start on demand, up to `size`, and one runs one job at a time. An idle worker does
 *   not keep the process alive (unref) and exits after `idleMs`.
 * - Jobs wait in a FIFO queue of at most `maxQueued`; beyond it `run` rejects at once with
 *   WORKER_QUEUE_FULL (no unbounded memory, no silent wait: the caller decides — the audit
 *   verifier then runs in-process).
 * - Cancelling (AbortSignal): a queued job is dropped; a running one has its worker terminated
 *   (a handler may block and cannot be interrupted otherwise) and a replacement starts when the
 *   next job needs it. The job rejects with CANCELLED.
 * - A worker that dies mid-job (an uncaught error, process.exit, out of memory, a script that
 *   cannot load) fails only that job, with WORKER_CRASHED naming the job and the exit, and is
 *   replaced for the next.
 * - A handler's error arrives as that error (an AirlockError keeps its code); the worker lives on.
 */

export interface PoolOptions {
  /** Worker threads at most (default: the CPUs available, at most 4). */
  size?: number;
  /** Jobs waiting for a worker at most (default 64); beyond it `run` rejects with WORKER_QUEUE_FULL. */
  maxQueued?: number;
  /** An idle worker exits after this long (default 30 s). */
  idleMs?: number;
  /** A built entry to run instead of the one start.ts finds (the benchmark measures dist/node/worker.mjs from sources). */
  script?: URL;
  /** Modules each worker loads at start, whose `jobs` registry adds kinds (a test fixture's). */
  preload?: readonly string[];
}

export interface RunOptions<P> {
  signal?: AbortSignal;
  onProgress?: (value: P) => void;
  /** Buffers in the input to move to the worker instead of copying them (they are unusable here after). */
  transfer?: readonly TransferListItem[];
}

export type WorkerPoolErrorCode = 'WORKER_QUEUE_FULL' | 'WORKER_CRASHED' | 'WORKER_POOL_CLOSED';

/** The pool's own failures (a job's failure is the job's error, or CANCELLED). */
export class WorkerPoolError extends Error {
  constructor(
    readonly code: WorkerPoolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WorkerPoolError';
  }
}

interface Task {
  id: number;
  kind: string;
  input: unknown;
  transfer?: readonly TransferListItem[];
  onProgress?: (value: never) => void;
  settle: (e: Error | null, value?: unknown) => void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
  idle: NodeJS.Timeout | null;
  /** What brought the worker down, from its 'error' event (the 'exit' event follows). */
  error: Error | null;
}

export const DEFAULT_POOL_SIZE = Math.max(1, Math.min(4, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length));

export class WorkerPool<R extends JobRegistry = Jobs> {
  readonly size: number;
  readonly maxQueued: number;
  private readonly idleMs: number;
  private readonly entry: WorkerEntry;
  private readonly preload: readonly string[];
  private readonly queue: Task[] = [];
  private readonly slots = new Set<Slot>();
  private nextId = 1;
  private closed = false;

  constructor(o: PoolOptions = {}) {
    this.size = Math.max(1, Math.floor(o.size ?? DEFAULT_POOL_SIZE));
    this.maxQueued = Math.max(0, Math.floor(o.maxQueued ?? 64));
    this.idleMs = o.idleMs ?? 30_000;
    this.entry = o.script ? { script: o.script, eval: false, data: {} } : workerEntry();
    this.preload = o.preload ?? [];
  }

  /** Runs one job in a worker; resolves with its output, rejects with its error (see the class comment for the pool's own). */
  run<K extends keyof R & string>(kind: K, input: InputOf<R[K]>, opts: RunOptions<ProgressOf<R[K]>> = {}): Promise<OutputOf<R[K]>> {
    return new Promise<OutputOf<R[K]>>((resolve, reject) => {
      const { signal } = opts;
      const cancelled = () => new AirlockError('CANCELLED', `worker job '${kind}' was cancelled`);
      if (this.closed) return reject(new WorkerPoolError('WORKER_POOL_CLOSED', `the worker pool is closed: job '${kind}' was not run`));
      if (signal?.aborted) return reject(cancelled());
      if (this.queue.length >= this.maxQueued && !this.idleOrRoom()) {
        return reject(new WorkerPoolError('WORKER_QUEUE_FULL', `the worker queue is full (${this.queue.length} jobs waiting for ${this.size} workers): job '${kind}' was not run; try again when the running jobs are done`));
      }
      const onAbort = () => {
        const queued = this.queue.indexOf(task);
        if (queued >= 0) {
          this.queue.splice(queued, 1);
        } else {
          const slot = [...this.slots].find((s) => s.task === task);
          if (slot) this.retire(slot); // the handler may be blocking: only terminating stops it
        }
        task.settle(cancelled());
        this.pump();
      };
      let done = false;
      const task: Task = {
        id: this.nextId++,
        kind,
        input,
        transfer: opts.transfer,
        onProgress: opts.onProgress as ((value: never) => void) | undefined,
        settle: (e, value) => {
          if (done) return;
          done = true;
          signal?.removeEventListener('abort', onAbort);
          if (e) reject(e);
          else resolve(value as OutputOf<R[K]>);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(task);
      this.pump();
    });
  }

  /** Workers alive, busy, and jobs waiting (for tests and diagnostics). */
  stats(): { workers: number; busy: number; queued: number } {
    let busy = 0;
    for (const s of this.slots) if (s.task) busy++;
    return { workers: this.slots.size, busy, queued: this.queue.length };
  }

  /** Rejects what waits or runs with WORKER_POOL_CLOSED and terminates every worker. */
  async close(): Promise<void> {
    this.closed = true;
    const gone = new WorkerPoolError('WORKER_POOL_CLOSED', 'the worker pool was closed before the job finished');
    for (const t of this.queue.splice(0)) t.settle(gone);
    const workers = [...this.slots].map((s) => {
      s.task?.settle(gone);
      return this.retire(s);
    });
    await Promise.all(workers);
  }

  private idleOrRoom(): boolean {
    if (this.slots.size < this.size) return true;
    for (const s of this.slots) if (!s.task) return true;
    return false;
  }

  private pump() {
    while (this.queue.length > 0 && !this.closed) {
      let slot: Slot | undefined;
      for (const s of this.slots) if (!s.task) slot = s;
      if (!slot && this.slots.size < this.size) slot = this.spawn();
      if (!slot) return;
      this.assign(slot, this.queue.shift()!);
    }
  }

  private spawn(): Slot {
    const worker = startWorker(this.entry, this.preload);
    const slot: Slot = { worker, task: null, idle: null, error: null };
    this.slots.add(slot);
    worker.on('message', (m: JobReply) => this.onReply(slot, m));
    worker.on('error', (e) => {
      slot.error ??= e;
    });
    worker.on('exit', (code) => this.onExit(slot, code));
    worker.on('messageerror', (e) => {
      // A reply that could not be deserialized here: the job cannot be answered; the worker, maybe mid-job, is replaced.
      const task = slot.task;
      void this.retire(slot);
      task?.settle(new Error(`worker job '${task.kind}': its reply could not be read: ${e.message}`, { cause: e }));
      this.pump();
    });
    return slot;
  }

  private assign(slot: Slot, task: Task) {
    if (slot.idle) clearTimeout(slot.idle);
    slot.idle = null;
    slot.task = task;
    slot.worker.ref(); // a running job keeps the process alive, as the work would in-process
    try {
      slot.worker.postMessage({ id: task.id, kind: task.kind, input: task.input }, task.transfer as TransferListItem[] | undefined);
    } catch (e) {
      this.release(slot);
      task.settle(new Error(`worker job '${task.kind}': its input cannot be sent to a worker: ${(e as Error).message}`, { cause: e }));
    }
  }

  private onReply(slot: Slot, m: JobReply) {
    const task = slot.task;
    if (!task || m.id !== task.id) return; // a late message from a job already settled
    if (m.type === 'progress') {
      task.onProgress?.(m.value as never);
      return;
    }
    this.release(slot);
    if (m.type === 'done') task.settle(null, m.output);
    else task.settle(revivedError(m.error));
    this.pump();
  }

  private onExit(slot: Slot, code: number) {
    if (!this.slots.delete(slot)) return; // retired on purpose
    if (slot.idle) clearTimeout(slot.idle);
    const task = slot.task;
    if (task) {
      const why = slot.error ? `failed (${slot.error.name}: ${slot.error.message})` : `exited with code ${code}`;
      task.settle(new WorkerPoolError('WORKER_CRASHED', `the worker running job '${task.kind}' ${why} before the job finished; the next job runs on a new worker`, { cause: slot.error ?? undefined }));
    }
    this.pump();
  }

  /** The worker is idle again: it no longer keeps the process alive, and exits if left idle. */
  private release(slot: Slot) {
    slot.task = null;
    slot.worker.unref();
    if (Number.isFinite(this.idleMs)) {
      slot.idle = setTimeout(() => void this.retire(slot), this.idleMs);
      slot.idle.unref();
    }
  }

  /** Takes the worker out of the pool and terminates it (its exit is then not a crash). */
  private retire(slot: Slot): Promise<number> {
    this.slots.delete(slot);
    if (slot.idle) clearTimeout(slot.idle);
    slot.task = null;
    return slot.worker.terminate();
  }
}

let shared: WorkerPool | null = null;

/** The process's pool (the core's channels and the CLI share it); created on first use, its workers on demand. */
export function sharedPool(): WorkerPool {
  shared ??= new WorkerPool();
  return shared;
}

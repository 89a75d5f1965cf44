import type { TransferListItem } from 'node:worker_threads';

/**
 * Job kinds for the worker pool (pool.ts): a kind names a handler that runs in a worker thread,
 * with its input, output and progress types. An area defines its kinds next to its code
 * (`audit/jobs.ts`) and lists them once in `workers/jobs.ts`, which the worker entry
 * (`entry.ts`) dispatches from; the main thread gets the types only.
 *
 * Inputs, outputs and progress values cross a thread boundary by structured clone: plain data,
 * Buffers/typed arrays, Maps, Dates, errors; no functions, no class instances with behaviour.
 * Large buffers can be moved instead of copied: `transfer` in the pool's run options for the
 * input, `transferring(value, [buffers])` as a handler's return value for the output.
 */

export interface JobContext<P> {
  /** Sends a progress value to the caller's `onProgress` (throttle it: each one is a message). */
  progress(value: P): void;
}

export interface JobDef<K extends string = string, I = unknown, O = unknown, P = unknown> {
  readonly kind: K;
  /** Runs in a worker thread. Blocking is fine (the worker does one job at a time); throwing fails the job with that error. */
  run(input: I, ctx: JobContext<P>): O | Promise<O>;
}

/** Any job: the registry holds jobs of every input and output type. */
export type AnyJob = JobDef<string, any, any, any>;

const TRANSFERRING = Symbol.for('airlock.workers.transferring');

/** A handler's output with the buffers to move (not copy) to the main thread. */
export interface Transferring<T> {
  readonly [TRANSFERRING]: true;
  readonly value: T;
  readonly transfer: readonly TransferListItem[];
}
export const transferring = <T>(value: T, transfer: readonly TransferListItem[]): Transferring<T> => ({ [TRANSFERRING]: true, value, transfer });
/** Recognised by a registered symbol, not a class: a preloaded module may carry its own copy of this file. */
export const isTransferring = (v: unknown): v is Transferring<unknown> => typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[TRANSFERRING] === true;

export function defineJob<K extends string, I, O, P = never>(kind: K, run: (input: I, ctx: JobContext<P>) => O | Promise<O>): JobDef<K, I, O, P> {
  return { kind, run };
}

/** Kind → job, the shape of `workers/jobs.ts` (and of a test fixture's extra kinds). */
export type JobRegistry = { readonly [kind: string]: AnyJob };
export type RegistryOf<D extends readonly AnyJob[]> = { readonly [J in D[number] as J['kind']]: J };

/** Builds a registry from jobs; a kind defined twice is a programming error. */
export function registry<const D extends readonly AnyJob[]>(...defs: D): RegistryOf<D> {
  const out: Record<string, AnyJob> = {};
  for (const d of defs) {
    if (out[d.kind]) throw new Error(`worker job kind '${d.kind}' is defined twice`);
    out[d.kind] = d;
  }
  return out as RegistryOf<D>;
}

export type InputOf<J> = J extends JobDef<string, infer I, unknown, unknown> ? I : never;
export type OutputOf<J> = J extends JobDef<string, unknown, infer O, unknown> ? (Awaited<O> extends Transferring<infer T> ? T : Awaited<O>) : never;
export type ProgressOf<J> = J extends JobDef<string, unknown, unknown, infer P> ? P : never;

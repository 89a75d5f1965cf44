/**
 * The one worker-thread entry: every worker of the pool (pool.ts) runs this file and dispatches
 * each job by its kind to the handler registered in `workers/jobs.ts` (plus the kinds of any
 * `preload` module the pool was given: a test fixture's). Bundled by scripts/build.mjs as
 * dist/node/worker.mjs and dist/electron/worker.mjs; run from this source through tsx's
 * CommonJS hook under vitest and tsx (start.ts says how it is found).
 *
 * One job at a time: a handler may block (the audit verifier does, for seconds). A handler that
 * throws fails its job with that error and the worker takes the next; one that brings the
 * thread down fails its job in the pool, which starts a replacement.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData, type TransferListItem } from 'node:worker_threads';
import { isTransferring, type AnyJob } from './job';
import { jobs } from './jobs';
import { sendableError, type JobReply, type JobRequest } from './protocol';
import type { WorkerData } from './start';

const port = parentPort!;
const handlers = new Map<string, AnyJob>(Object.entries(jobs));

async function load(file: string): Promise<{ jobs?: Record<string, AnyJob> }> {
  // A source file (a test fixture) goes through tsx's CommonJS hook, which the bootstrap registered.
  if (/\.[cm]?ts$/.test(file)) return createRequire(import.meta.url)(file) as { jobs?: Record<string, AnyJob> };
  return (await import(pathToFileURL(file).href)) as { jobs?: Record<string, AnyJob> };
}

const ready = (async () => {
  for (const file of (workerData as WorkerData | null)?.preload ?? []) {
    const mod = await load(file);
    if (!mod.jobs) throw new Error(`worker preload ${file} exports no 'jobs' registry`);
    for (const def of Object.values(mod.jobs)) {
      if (handlers.has(def.kind)) throw new Error(`worker job kind '${def.kind}' (from ${file}) is already defined`);
      handlers.set(def.kind, def);
    }
  }
})();

const reply = (m: JobReply, transfer?: readonly TransferListItem[]) => port.postMessage(m, transfer as TransferListItem[] | undefined);

port.on('message', (m: JobRequest) => void handle(m));

async function handle({ id, kind, input }: JobRequest) {
  let out: unknown;
  try {
    await ready;
    const def = handlers.get(kind);
    if (!def) throw new Error(`the worker has no job kind '${kind}' (it has: ${[...handlers.keys()].join(', ')})`);
    out = await def.run(input, { progress: (value) => reply({ id, type: 'progress', value }) });
  } catch (e) {
    reply({ id, type: 'error', error: sendableError(e) });
    return;
  }
  const [output, transfer] = isTransferring(out) ? [out.value, out.transfer] : [out, undefined];
  try {
    reply({ id, type: 'done', output }, transfer);
  } catch (e) {
    // A function, a class with behaviour, a closed port...: the caller learns why, the worker lives on.
    reply({ id, type: 'error', error: { name: 'DataCloneError', message: `worker job '${kind}' returned a value that cannot be sent to the main thread: ${(e as Error).message}` } });
  }
}

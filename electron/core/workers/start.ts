import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** How a worker thread is started: the script, and whether it is code to eval. */
export interface WorkerEntry {
  script: string | URL;
  eval: boolean;
  data: Record<string, string>;
}

/** The worker's workerData (entry.ts reads `preload`). */
export interface WorkerData {
  preload: readonly string[];
}

/**
 * Where the worker's code is: the one place that knows.
 * - Bundled (dist/node/cli.mjs, dist/electron/main.mjs): scripts/build.mjs writes `worker.mjs`
 *   beside each bundle, and `import.meta.url` is the bundle's, so it is found beside it; inside
 *   an Electron build that is in app.asar, from which Electron ≥ 17.3 loads worker scripts.
 * - From sources (vitest, tsx): a two-line bootstrap registers tsx's CommonJS hook in the worker
 *   and requires entry.ts: Node 20 does not apply `--import` loader hooks to a worker's entry module.
 */
export function workerEntry(): WorkerEntry {
  const here = import.meta.url;
  if (/\.[cm]?ts$/.test(new URL(here).pathname)) {
    return {
      script: "const { workerData } = require('node:worker_threads'); require(workerData.tsx).register(); require(workerData.entry);",
      eval: true,
      data: { tsx: createRequire(here).resolve('tsx/cjs/api'), entry: fileURLToPath(new URL('./entry.ts', here)) },
    };
  }
  return { script: new URL('./worker.mjs', here), eval: false, data: {} };
}

/**
 * Starts one worker thread running entry.ts. `execArgv: []`: the parent's flags (a test runner's
 * loaders, --inspect) are not the worker's. Its stdout and stderr go to the process's.
 */
export function startWorker(entry: WorkerEntry, preload: readonly string[]): Worker {
  const workerData: WorkerData & Record<string, unknown> = { ...entry.data, preload };
  return new Worker(entry.script, { eval: entry.eval, workerData, execArgv: [], stdout: false, stderr: false });
}

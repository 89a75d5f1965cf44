import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ListOptions } from './query';

/** What a worker is asked to do (workerData of worker.ts). */
export type AuditJob =
  | { mode: 'verify'; dbFile: string; from: number; to: number; prev: string | null; publicKeys: Record<string, string>; progressMs: number }
  | { mode: 'list'; dbFile: string; options: ListOptions };

export interface WorkerEntry {
  script: string | URL;
  eval: boolean;
  data: Record<string, string>;
}

/**
 * Where the worker's code is. Bundled (dist/node/cli.mjs, dist/electron/main.mjs) the build
 * writes `audit-worker.mjs` beside the bundle (Electron ≥ 17.3 loads worker scripts from
 * app.asar). From sources (vitest, tsx) a two-line bootstrap registers tsx's CommonJS hook in
 * the worker and requires worker.ts: Node 20 does not apply `--import` loader hooks to a
 * worker's entry module.
 */
export function auditWorkerEntry(): WorkerEntry {
  const here = import.meta.url;
  if (/\.[cm]?ts$/.test(new URL(here).pathname)) {
    return {
      script: "const { workerData } = require('node:worker_threads'); require(workerData.tsx).register(); require(workerData.entry);",
      eval: true,
      data: { tsx: createRequire(here).resolve('tsx/cjs/api'), entry: fileURLToPath(new URL('./worker.ts', here)) },
    };
  }
  return { script: new URL('./audit-worker.mjs', here), eval: false, data: {} };
}

/** Starts one job; `result` rejects if the worker cannot start or dies (callers fall back to in-process). */
export function startAuditWorker<T>(job: AuditJob, entry: WorkerEntry = auditWorkerEntry(), onProgress?: (checked: number) => void): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(entry.script, { eval: entry.eval, workerData: { ...entry.data, ...job }, execArgv: [], stdout: false, stderr: false });
  const result = new Promise<T>((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: { type: 'progress'; checked: number } | { type: 'done'; result: T }) => {
      if (m.type === 'progress') onProgress?.(m.checked);
      else if (!settled) {
        settled = true;
        resolve(m.result);
      }
    });
    worker.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    worker.on('exit', (code) => {
      if (!settled) {
        settled = true;
        reject(new Error(`audit worker exited with code ${code}`));
      }
    });
  });
  return { worker, result };
}

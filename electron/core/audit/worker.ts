/**
 * Worker-thread entry for the audit trail's heavy reads (see workers.ts): verifying a range of
 * the chain, and filtered listing that scans event bodies. Bundled by scripts/build.mjs as
 * dist/node/audit-worker.mjs and dist/electron/audit-worker.mjs; run from this source through
 * tsx's CommonJS hook under vitest and tsx.
 *
 * It opens the database file read-only. A verify job posts `{ type: 'progress', checked }`
 * every `progressMs`, then `{ type: 'done', result }`.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { listEvents } from './query';
import { ChainScanner } from './verify-core';
import type { AuditJob } from './workers';

const job = workerData as AuditJob;
const port = parentPort!;
const db = new Database(job.dbFile, { readonly: true, fileMustExist: true });
try {
  if (job.mode === 'list') {
    port.postMessage({ type: 'done', result: listEvents(db, job.options) });
  } else {
    const scanner = new ChainScanner(db, { from: job.from, to: job.to }, job.prev, job.publicKeys);
    let last = Date.now();
    while (!scanner.step()) {
      const now = Date.now();
      if (now - last >= job.progressMs) {
        last = now;
        port.postMessage({ type: 'progress', checked: scanner.checked });
      }
    }
    port.postMessage({ type: 'done', result: scanner.summary });
  }
} finally {
  db.close();
}

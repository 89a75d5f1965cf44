/**
 * The audit trail's heavy reads as worker-pool jobs (electron/core/workers): verifying a range
 * of the chain, and filtered listing that scans event bodies. Each opens the database file
 * read-only. A verify job reports the events checked so far every `progressMs`.
 */
import Database from 'better-sqlite3';
import { defineJob, type JobContext } from '../workers/job';
import { listEvents, type ListOptions } from './query';
import { ChainScanner, type ScanSummary } from './verify-core';

export interface VerifyRangeInput {
  dbFile: string;
  from: number;
  to: number;
  prev: string | null;
  publicKeys: Record<string, string>;
  /** The handover chain's windows (audit/key-chain.ts) and the keys on record it does not reach. */
  windows?: Record<string, { from: number; to: number | null }> | null;
  untrusted?: Record<string, string>;
  progressMs: number;
}

export const verifyRange = defineJob('audit.verifyRange', (job: VerifyRangeInput, ctx: JobContext<number>): ScanSummary => {
  const db = new Database(job.dbFile, { readonly: true, fileMustExist: true });
  try {
    const scanner = new ChainScanner(db, { from: job.from, to: job.to }, job.prev, job.publicKeys, 2000, false, job.windows ?? null, job.untrusted ?? {});
    let last = Date.now();
    while (!scanner.step()) {
      const now = Date.now();
      if (now - last >= job.progressMs) {
        last = now;
        ctx.progress(scanner.checked);
      }
    }
    return scanner.summary;
  } finally {
    db.close();
  }
});

export const list = defineJob('audit.list', (job: { dbFile: string; options: ListOptions }) => {
  const db = new Database(job.dbFile, { readonly: true, fileMustExist: true });
  try {
    return listEvents(db, job.options);
  } finally {
    db.close();
  }
});

export const auditJobs = [verifyRange, list] as const;

import { auditJobs } from '../audit/jobs';
import { keysJobs } from '../keys/jobs';
import { registry } from './job';

/**
 * Every job kind the pool's workers run, by kind. A new area adds its jobs here (one line), from
 * its own `<area>/jobs.ts`; the worker entry dispatches from this table and the pool takes its
 * types from it. Kinds are `<area>.<verb>`.
 */
export const jobs = registry(...auditJobs, ...keysJobs);
export type Jobs = typeof jobs;

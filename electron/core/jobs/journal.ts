import type { Db } from '../db/db';
import { ownerAlive, ownerId } from './owner';

/**
 * A crash-safe journal of jobs made of ordered steps per target (provisioning: a run, its hosts,
 * each host's steps; key rotation: a rotation, its hosts, each host's steps). Every state change is
 * committed before the next thing happens, so if Airlock or a target dies the record shows exactly
 * which steps finished; a job records the process that owns it while it runs, so a job whose
 * owner is gone is recognised (swept to `interrupted`) and can be claimed and resumed from each
 * target's first unfinished step.
 *
 * The journal owns only the bookkeeping columns; a client keeps its own columns in the same rows
 * (provisioning: the playbook, a step's output, phase and facts) and writes them itself.
 *
 * A client's tables have this shape (provisioning's are made by migration 0003):
 *   jobs:    id TEXT PRIMARY KEY, status TEXT ('running', 'succeeded', 'failed', 'cancelled',
 *            'interrupted'), started_at TEXT, finished_at TEXT, attempts INTEGER DEFAULT 1,
 *            owner TEXT, …the client's columns
 *   targets: <jobRef> TEXT, <targetRef> TEXT, status TEXT ('pending', 'running', 'succeeded',
 *            'failed', 'cancelled', 'interrupted'), message TEXT, started_at TEXT,
 *            finished_at TEXT, …; PRIMARY KEY (<jobRef>, <targetRef>)
 *   steps:   <jobRef> TEXT, <targetRef> TEXT, idx INTEGER, status TEXT ('pending', 'running',
 *            'interrupted', …the client's own: which of them mean done is `doneSteps`),
 *            message TEXT, finished_at TEXT, …; PRIMARY KEY (<jobRef>, <targetRef>, idx)
 */

export type JobStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
export type TargetStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

/** Where a client's job records live. Names are SQL identifiers (checked), never input. */
export interface JobTables {
  jobs: string;
  targets: string;
  steps: string;
  /** The column of `targets` and `steps` naming the job. */
  jobRef: string;
  /** The column of `targets` and `steps` naming the target. */
  targetRef: string;
}

export interface JournalOptions {
  db: Db;
  now: () => Date;
  tables: JobTables;
  /** Step statuses that mean the step is finished and need not run again on resume. */
  doneSteps: ReadonlySet<string>;
  /** What a swept (interrupted) step and target say. */
  interruptedMessage: string;
  /** This journal's owner id; by default this process (`ownerId()`). Tests give another one. */
  owner?: string;
}

/** One step of one target of a job. `idx` is the step's position (0 for a target not started). */
export interface StepAt {
  job: string;
  target: string;
  idx: number;
  /** The step's recorded status (`null` past the last step: every step is done). */
  status: string | null;
}

const IDENT = /^[a-z_][a-z0-9_]*$/;

export class JobJournal {
  readonly owner: string;
  private readonly t: JobTables;

  constructor(private readonly o: JournalOptions) {
    for (const name of Object.values(o.tables)) if (!IDENT.test(name)) throw new Error(`not an SQL identifier: ${name}`);
    this.t = o.tables;
    this.owner = o.owner ?? ownerId();
  }

  private nowIso() {
    return this.o.now().toISOString();
  }

  /**
   * Record a new job, owned by this journal and running, with its targets and their steps pending,
   * in one transaction. `columns` and each step's fields are the client's own columns.
   */
  create(id: string, columns: Record<string, unknown>, targets: Array<{ target: string; steps: Array<Record<string, unknown>> }>): void {
    const { db } = this.o;
    const { jobs, targets: tt, steps, jobRef, targetRef } = this.t;
    const cols = checked(Object.keys(columns));
    db.transaction(() => {
      db.prepare(`INSERT INTO ${jobs} (id, ${cols.map((c) => `${c}, `).join('')}status, started_at, owner) VALUES (?, ${cols.map(() => '?, ').join('')}'running', ?, ?)`).run(
        id,
        ...cols.map((c) => columns[c] as never),
        this.nowIso(),
        this.owner,
      );
      for (const t of targets) {
        db.prepare(`INSERT INTO ${tt} (${jobRef}, ${targetRef}, status) VALUES (?, ?, 'pending')`).run(id, t.target);
        t.steps.forEach((s, idx) => {
          const sc = checked(Object.keys(s));
          db.prepare(`INSERT INTO ${steps} (${jobRef}, ${targetRef}, idx, ${sc.map((c) => `${c}, `).join('')}status) VALUES (?, ?, ?, ${sc.map(() => '?, ').join('')}'pending')`).run(
            id,
            t.target,
            idx,
            ...sc.map((c) => s[c] as never),
          );
        });
      }
    })();
  }

  /** Jobs whose process is gone are interrupted: say so in the record (at start-up and before reads). */
  sweep(): string[] {
    const { db } = this.o;
    const { jobs, targets, steps, jobRef } = this.t;
    const running = db.prepare(`SELECT id, owner FROM ${jobs} WHERE status = 'running'`).all() as Array<{ id: string; owner: string | null }>;
    const swept: string[] = [];
    for (const r of running) {
      if (ownerAlive(r.owner, this.owner)) continue;
      const now = this.nowIso();
      const why = this.o.interruptedMessage;
      db.transaction(() => {
        db.prepare(`UPDATE ${steps} SET status = 'interrupted', message = ?, finished_at = ? WHERE ${jobRef} = ? AND status = 'running'`).run(why, now, r.id);
        db.prepare(`UPDATE ${targets} SET status = 'interrupted', message = ?, finished_at = ? WHERE ${jobRef} = ? AND status IN ('running', 'pending')`).run(why, now, r.id);
        db.prepare(`UPDATE ${jobs} SET status = 'interrupted', finished_at = ?, owner = NULL WHERE id = ?`).run(now, r.id);
      })();
      swept.push(r.id);
    }
    return swept;
  }

  /** A job's bookkeeping fields, or null. */
  job(id: string): { id: string; status: JobStatus; owner: string | null; attempts: number } | null {
    return (this.o.db.prepare(`SELECT id, status, owner, attempts FROM ${this.t.jobs} WHERE id = ?`).get(id) as never) ?? null;
  }

  /**
   * Where a resume starts: for each target that has not succeeded, its first step that is not
   * done (`idx` = the number of steps when all are done, e.g. only the target's last act was left).
   */
  resumePoints(id: string): StepAt[] {
    const { db } = this.o;
    const { targets, steps, jobRef, targetRef } = this.t;
    const rows = db.prepare(`SELECT ${targetRef} AS target, status FROM ${targets} WHERE ${jobRef} = ? ORDER BY ${targetRef}`).all(id) as Array<{ target: string; status: string }>;
    const todo: StepAt[] = [];
    for (const h of rows) {
      if (h.status === 'succeeded') continue;
      const st = db.prepare(`SELECT status FROM ${steps} WHERE ${jobRef} = ? AND ${targetRef} = ? ORDER BY idx`).all(id, h.target) as Array<{ status: string }>;
      const from = st.findIndex((s) => !this.o.doneSteps.has(s.status));
      todo.push({ job: id, target: h.target, idx: from < 0 ? st.length : from, status: from < 0 ? null : st[from]!.status });
    }
    return todo;
  }

  /**
   * Claim a job that is not running (one resumer at a time): it becomes running, owned by this
   * journal, one attempt more. False when it is running (someone else claimed it first, or its
   * owner is alive). Sweep first, so a job whose owner died is claimable.
   */
  claim(id: string): boolean {
    const claimed = this.o.db
      .prepare(`UPDATE ${this.t.jobs} SET status = 'running', owner = ?, attempts = attempts + 1, finished_at = NULL WHERE id = ? AND status != 'running'`)
      .run(this.owner, id);
    return claimed.changes === 1;
  }

  /** A target's final status (its steps are the client's to record). */
  finishTarget(id: string, target: string, status: TargetStatus, message: string | null): void {
    const { targets, jobRef, targetRef } = this.t;
    this.o.db.prepare(`UPDATE ${targets} SET status = ?, message = ?, finished_at = ? WHERE ${jobRef} = ? AND ${targetRef} = ?`).run(status, message, this.nowIso(), id, target);
  }

  /** End the job: succeeded if every target did, cancelled if it was cancelled, else failed. Releases it. */
  settle(id: string, aborted: boolean): JobStatus {
    const hosts = this.o.db.prepare(`SELECT status FROM ${this.t.targets} WHERE ${this.t.jobRef} = ?`).all(id) as Array<{ status: string }>;
    const status: JobStatus = hosts.every((h) => h.status === 'succeeded') ? 'succeeded' : aborted && hosts.some((h) => h.status === 'cancelled') ? 'cancelled' : 'failed';
    this.finish(id, status);
    return status;
  }

  /** End the job with this status and release it. */
  finish(id: string, status: Exclude<JobStatus, 'running'>): void {
    this.o.db.prepare(`UPDATE ${this.t.jobs} SET status = ?, finished_at = ?, owner = NULL WHERE id = ?`).run(status, this.nowIso(), id);
  }

  /** Every step of a target that has started (not pending), the latest first: what an abandon rolls back. */
  startedSteps(id: string, target: string): StepAt[] {
    const { steps, jobRef, targetRef } = this.t;
    const rows = this.o.db.prepare(`SELECT idx, status FROM ${steps} WHERE ${jobRef} = ? AND ${targetRef} = ? AND status != 'pending' ORDER BY idx DESC`).all(id, target) as Array<{
      idx: number;
      status: string;
    }>;
    return rows.map((r) => ({ job: id, target, idx: r.idx, status: r.status }));
  }

  /** The job's targets, in order. */
  targets(id: string): string[] {
    const { targets, jobRef, targetRef } = this.t;
    return (this.o.db.prepare(`SELECT ${targetRef} AS target FROM ${targets} WHERE ${jobRef} = ? ORDER BY ${targetRef}`).all(id) as Array<{ target: string }>).map((r) => r.target);
  }

  /** A step was undone by its rollback hook: it is pending again (the target is as before it ran). */
  rolledBack(at: StepAt): void {
    const { steps, jobRef, targetRef } = this.t;
    this.o.db
      .prepare(`UPDATE ${steps} SET status = 'pending', message = ?, finished_at = ? WHERE ${jobRef} = ? AND ${targetRef} = ? AND idx = ?`)
      .run(`rolled back (was ${at.status})`, this.nowIso(), at.job, at.target, at.idx);
  }
}

function checked(cols: string[]): string[] {
  for (const c of cols) if (!IDENT.test(c)) throw new Error(`not an SQL identifier: ${c}`);
  return cols;
}

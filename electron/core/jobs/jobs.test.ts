import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../db/db';
import { DONE, PROVISION_TABLES } from '../provision/runs';
import { JobJournal, type JobTables, type StepAt } from './journal';
import { ownerAlive, ownerId } from './owner';
import { abandonJob, runJob } from './run';

/**
 * The job journal on a real SQLite file, with the tables a second client (a key rotation) would
 * make. Two "processes" are two journals on two connections to the file, each owned by a real
 * child process (so liveness is checked the way it is in production: signal 0 and the process's
 * start time); killing the child is the owner dying.
 */

const TABLES: JobTables = { jobs: 'rotations', targets: 'rotation_hosts', steps: 'rotation_steps', jobRef: 'rotation_id', targetRef: 'host' };
const SCHEMA = `
  CREATE TABLE rotations (
    id TEXT PRIMARY KEY, key_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    started_at TEXT NOT NULL, finished_at TEXT, attempts INTEGER NOT NULL DEFAULT 1, owner TEXT
  ) STRICT;
  CREATE TABLE rotation_hosts (
    rotation_id TEXT NOT NULL REFERENCES rotations(id), host TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    message TEXT, started_at TEXT, finished_at TEXT, PRIMARY KEY (rotation_id, host)
  ) STRICT;
  CREATE TABLE rotation_steps (
    rotation_id TEXT NOT NULL, host TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
    message TEXT, finished_at TEXT, PRIMARY KEY (rotation_id, host, idx)
  ) STRICT;
`;
const STEP_NAMES = ['add-new-key', 'prove-new-key', 'remove-old-key'];

let dir: string;
let file: string;
const children: ChildProcess[] = [];
const conns: Database.Database[] = [];

/** A live process other than this one (a stand-in for another Airlock). */
async function otherProcess(): Promise<ChildProcess> {
  const p = spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(p);
  await new Promise<void>((resolve, reject) => {
    p.once('spawn', () => resolve());
    p.once('error', reject);
  });
  return p;
}
/** The process dies; wait until it is reaped (a zombie still answers signal 0). */
async function kill(p: ChildProcess) {
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}
function connect(): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  conns.push(db);
  return db;
}
function journal(db: Database.Database, owner: ChildProcess): JobJournal {
  return new JobJournal({ db, now: () => new Date(), tables: TABLES, doneSteps: new Set(['done']), interruptedMessage: 'the owner stopped', owner: ownerId(owner.pid!) });
}
function newJob(j: JobJournal, id: string, hosts: string[]) {
  j.create(
    id,
    { key_name: 'ops' },
    hosts.map((h) => ({ target: h, steps: STEP_NAMES.map((name) => ({ name })) })),
  );
}
/** What the client records of its own steps (the journal only reads them). */
function setStep(db: Database.Database, id: string, host: string, idx: number, status: string) {
  db.prepare('UPDATE rotation_steps SET status = ? WHERE rotation_id = ? AND host = ? AND idx = ?').run(status, id, host, idx);
}
function setHost(db: Database.Database, id: string, host: string, status: string) {
  db.prepare('UPDATE rotation_hosts SET status = ? WHERE rotation_id = ? AND host = ?').run(status, id, host);
}
const stepStatuses = (db: Database.Database, id: string, host: string) =>
  (db.prepare('SELECT status FROM rotation_steps WHERE rotation_id = ? AND host = ? ORDER BY idx').all(id, host) as Array<{ status: string }>).map((r) => r.status);
const hostRow = (db: Database.Database, id: string, host: string) =>
  db.prepare('SELECT status, message FROM rotation_hosts WHERE rotation_id = ? AND host = ?').get(id, host) as { status: string; message: string | null };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobs-'));
  file = path.join(dir, 'jobs.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA);
  db.close();
});
afterEach(() => {
  for (const c of conns.splice(0)) c.close();
  for (const p of children.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('owner liveness', () => {
  it('knows a live process by pid and start time, and a dead one, and an earlier journal of this very process', async () => {
    const p = await otherProcess();
    const theirs = ownerId(p.pid!);
    const mine = ownerId();
    expect(ownerAlive(theirs, mine)).toBe(true);
    expect(ownerAlive(mine, mine)).toBe(true);
    // Same pid, another nonce: a core that this process had before (its jobs cannot still be running).
    expect(ownerAlive(ownerId(), mine)).toBe(false);
    // The same pid with another start time is another process (a pid reused).
    const [pid, , nonce] = theirs.split(':');
    expect(ownerAlive(`${pid}:1:${nonce}`, mine)).toBe(false);
    expect(ownerAlive(null, mine)).toBe(false);
    await kill(p);
    expect(ownerAlive(theirs, mine)).toBe(false);
  });
});

describe('the job journal, two processes on one database file', () => {
  it("does not sweep or let anyone claim a job whose owner is alive", async () => {
    const [pa, pb] = [await otherProcess(), await otherProcess()];
    const a = journal(connect(), pa);
    const bDb = connect();
    const b = journal(bDb, pb);
    newJob(a, 'rot-1', ['h1']);
    setStep(bDb, 'rot-1', 'h1', 0, 'running');

    expect(b.sweep()).toEqual([]);
    expect(b.job('rot-1')).toMatchObject({ status: 'running', owner: a.owner });
    expect(b.claim('rot-1')).toBe(false);
    expect(stepStatuses(bDb, 'rot-1', 'h1')).toEqual(['running', 'pending', 'pending']);
  });

  it("sweeps a dead owner's job to interrupted, and another process can claim and resume it", async () => {
    const [pa, pb] = [await otherProcess(), await otherProcess()];
    const a = journal(connect(), pa);
    const bDb = connect();
    const b = journal(bDb, pb);
    newJob(a, 'rot-1', ['h1', 'h2']);
    setHost(bDb, 'rot-1', 'h1', 'running');
    setStep(bDb, 'rot-1', 'h1', 0, 'done');
    setStep(bDb, 'rot-1', 'h1', 1, 'running');
    await kill(pa);

    expect(b.sweep()).toEqual(['rot-1']);
    expect(b.job('rot-1')).toMatchObject({ status: 'interrupted', owner: null, attempts: 1 });
    expect(stepStatuses(bDb, 'rot-1', 'h1')).toEqual(['done', 'interrupted', 'pending']);
    expect(hostRow(bDb, 'rot-1', 'h1')).toEqual({ status: 'interrupted', message: 'the owner stopped' });
    // A host that had not started is interrupted too (it never ran: it resumes from its first step).
    expect(hostRow(bDb, 'rot-1', 'h2').status).toBe('interrupted');

    expect(b.claim('rot-1')).toBe(true);
    expect(b.job('rot-1')).toMatchObject({ status: 'running', owner: b.owner, attempts: 2 });
    // Now owned by a live process: a third one neither sweeps nor claims it.
    const c = journal(connect(), await otherProcess());
    expect(c.sweep()).toEqual([]);
    expect(c.claim('rot-1')).toBe(false);
  });

  it('a claim is exclusive: of two processes claiming the same interrupted job, one gets it', async () => {
    const [pa, pb, pc] = [await otherProcess(), await otherProcess(), await otherProcess()];
    const a = journal(connect(), pa);
    const b = journal(connect(), pb);
    const c = journal(connect(), pc);
    newJob(a, 'rot-1', ['h1']);
    await kill(pa);
    b.sweep();
    c.sweep();
    expect([b.claim('rot-1'), c.claim('rot-1')]).toEqual([true, false]);
    expect(c.job('rot-1')!.owner).toBe(b.owner);
    expect(c.sweep()).toEqual([]);
  });

  it('resumes each unfinished target at its first unfinished step, skips succeeded targets, and settles the job', async () => {
    const [pa, pb] = [await otherProcess(), await otherProcess()];
    const a = journal(connect(), pa);
    const bDb = connect();
    const b = journal(bDb, pb);
    newJob(a, 'rot-1', ['h1', 'h2', 'h3', 'h4']);
    // h1: stopped during its second step. h2: its second step failed, the third never ran.
    setStep(bDb, 'rot-1', 'h1', 0, 'done');
    setStep(bDb, 'rot-1', 'h1', 1, 'running');
    setStep(bDb, 'rot-1', 'h2', 0, 'done');
    setStep(bDb, 'rot-1', 'h2', 1, 'failed');
    // h3 finished. h4: every step done, but not the target's last act.
    for (const i of [0, 1, 2]) setStep(bDb, 'rot-1', 'h3', i, 'done');
    setHost(bDb, 'rot-1', 'h3', 'succeeded');
    for (const i of [0, 1, 2]) setStep(bDb, 'rot-1', 'h4', i, 'done');
    await kill(pa);
    b.sweep();

    const todo = b.resumePoints('rot-1');
    expect(todo).toEqual([
      { job: 'rot-1', target: 'h1', idx: 1, status: 'interrupted' },
      { job: 'rot-1', target: 'h2', idx: 1, status: 'failed' },
      { job: 'rot-1', target: 'h4', idx: 3, status: null },
    ]);
    expect(b.claim('rot-1')).toBe(true);
    const resumed: StepAt[] = [];
    const status = await runJob(
      b,
      'rot-1',
      todo,
      {
        resume: async (at) => {
          resumed.push(at);
          for (let i = at.idx; i < STEP_NAMES.length; i++) setStep(bDb, at.job, at.target, i, 'done');
          b.finishTarget(at.job, at.target, 'succeeded', null);
        },
      },
      { concurrency: 2, aborted: () => false },
    );
    expect(resumed.map((x) => `${x.target}@${x.idx}`).sort()).toEqual(['h1@1', 'h2@1', 'h4@3']);
    expect(status).toBe('succeeded');
    expect(b.job('rot-1')).toMatchObject({ status: 'succeeded', owner: null });
    expect(stepStatuses(bDb, 'rot-1', 'h1')).toEqual(['done', 'done', 'done']);
  });

  it('a resume hook that throws fails its target only; the job ends failed and can be resumed again', async () => {
    const [pa] = [await otherProcess()];
    const aDb = connect();
    const a = journal(aDb, pa);
    newJob(a, 'rot-1', ['h1', 'h2']);
    const status = await runJob(
      a,
      'rot-1',
      a.resumePoints('rot-1'),
      {
        resume: async (at) => {
          if (at.target === 'h1') throw new Error('connection refused');
          a.finishTarget(at.job, at.target, 'succeeded', null);
        },
      },
      { concurrency: 4, aborted: () => false },
    );
    expect(status).toBe('failed');
    expect(hostRow(aDb, 'rot-1', 'h1')).toEqual({ status: 'failed', message: 'connection refused' });
    expect(hostRow(aDb, 'rot-1', 'h2').status).toBe('succeeded');
    expect(a.resumePoints('rot-1')).toEqual([{ job: 'rot-1', target: 'h1', idx: 0, status: 'pending' }]);
    expect(a.claim('rot-1')).toBe(true);
  });

  it('abandoning a job runs the rollback hook for every started step, latest first, and leaves them pending', async () => {
    const [pa, pb] = [await otherProcess(), await otherProcess()];
    const a = journal(connect(), pa);
    const bDb = connect();
    const b = journal(bDb, pb);
    newJob(a, 'rot-1', ['h1', 'h2']);
    setStep(bDb, 'rot-1', 'h1', 0, 'done');
    setStep(bDb, 'rot-1', 'h1', 1, 'running');
    setStep(bDb, 'rot-1', 'h2', 0, 'done');

    // Not while its owner is alive.
    await expect(abandonJob(b, 'rot-1', { rollback: async () => {} })).rejects.toThrow(/running/);
    await kill(pa);

    const undone: string[] = [];
    const r = await abandonJob(b, 'rot-1', { rollback: async (at) => void undone.push(`${at.target}@${at.idx}:${at.status}`) });
    // The half-done step (interrupted by the sweep) is rolled back too, with its status to judge by.
    expect(undone).toEqual(['h1@1:interrupted', 'h1@0:done', 'h2@0:done']);
    expect(r.rolledBack).toHaveLength(3);
    expect(stepStatuses(bDb, 'rot-1', 'h1')).toEqual(['pending', 'pending', 'pending']);
    expect(hostRow(bDb, 'rot-1', 'h1')).toEqual({ status: 'cancelled', message: 'abandoned: rolled back' });
    expect(b.job('rot-1')).toMatchObject({ status: 'cancelled', owner: null });
  });

  it('a rollback that fails stops the abandon, says where, and an abandon tried again finishes it', async () => {
    const [pb] = [await otherProcess()];
    const bDb = connect();
    const b = journal(bDb, pb);
    newJob(b, 'rot-1', ['h1']);
    for (const i of [0, 1]) setStep(bDb, 'rot-1', 'h1', i, 'done');
    b.finish('rot-1', 'failed');

    const undone: number[] = [];
    await expect(
      abandonJob(b, 'rot-1', {
        rollback: async (at) => {
          if (at.idx === 0) throw new Error('host unreachable');
          undone.push(at.idx);
        },
      }),
    ).rejects.toThrow('host unreachable');
    expect(undone).toEqual([1]);
    expect(stepStatuses(bDb, 'rot-1', 'h1')).toEqual(['done', 'pending', 'pending']);
    expect(hostRow(bDb, 'rot-1', 'h1')).toEqual({ status: 'failed', message: 'rollback of step 0 failed: host unreachable' });
    expect(b.job('rot-1')).toMatchObject({ status: 'failed', owner: null });

    await abandonJob(b, 'rot-1', { rollback: async (at) => void undone.push(at.idx) });
    expect(undone).toEqual([1, 0]);
    expect(b.job('rot-1')!.status).toBe('cancelled');
    // A succeeded job has nothing to abandon.
    newJob(b, 'rot-2', ['h1']);
    b.finishTarget('rot-2', 'h1', 'succeeded', null);
    b.settle('rot-2', false);
    await expect(abandonJob(b, 'rot-2', { rollback: async () => {} })).rejects.toThrow(/succeeded/);
  });

  it('refuses table and column names that are not plain SQL identifiers', async () => {
    const p = await otherProcess();
    expect(() => new JobJournal({ db: connect(), now: () => new Date(), tables: { ...TABLES, jobs: 'rotations; DROP TABLE x' }, doneSteps: new Set(), interruptedMessage: '' })).toThrow(/identifier/);
    const j = journal(connect(), p);
    expect(() => j.create('rot-1', { 'key_name) VALUES (1); --': 'x' }, [])).toThrow(/identifier/);
  });
});

describe("provisioning's tables are a job journal's", () => {
  let db: Db;
  beforeEach(() => {
    db = openDatabase(path.join(dir, 'airlock.db'));
  });
  afterEach(() => db.close());

  it('records a run, sweeps it when its owner dies, and resumes it at the interrupted step', async () => {
    const p = await otherProcess();
    const opts = { db, now: () => new Date(), tables: PROVISION_TABLES, doneSteps: DONE, interruptedMessage: 'Airlock stopped while this ran; resume re-checks it first' };
    const a = new JobJournal({ ...opts, owner: ownerId(p.pid!) });
    const mine = new JobJournal(opts);
    a.create(
      'run-1',
      { kind: 'apply', playbook: 'p', playbook_version: '1', playbook_digest: 'd', playbook_body: '{}', params: '{}', actor: 'alice' },
      [{ target: 'gpu1', steps: ['gpu', 'model'].map((id) => ({ step_id: id, type: 't', title: id })) }],
    );
    db.prepare(`UPDATE provision_steps SET status = 'changed' WHERE run_id = 'run-1' AND idx = 0`).run();
    db.prepare(`UPDATE provision_steps SET status = 'running' WHERE run_id = 'run-1' AND idx = 1`).run();
    expect(mine.sweep()).toEqual([]);
    await kill(p);
    expect(mine.sweep()).toEqual(['run-1']);
    expect(db.prepare(`SELECT status, message FROM provision_steps WHERE run_id = 'run-1' AND idx = 1`).get()).toEqual({
      status: 'interrupted',
      message: 'Airlock stopped while this ran; resume re-checks it first',
    });
    expect(mine.resumePoints('run-1')).toEqual([{ job: 'run-1', target: 'gpu1', idx: 1, status: 'interrupted' }]);
    expect(mine.claim('run-1')).toBe(true);
  });
});

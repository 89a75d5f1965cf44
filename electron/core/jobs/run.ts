import { AirlockError } from '../../../shared/domain/errors';
import type { JobJournal, JobStatus, StepAt } from './journal';

/** What a client does with its steps; the journal does the bookkeeping around it. */
export interface JobHooks {
  /**
   * Carry one target on from this step to its end: idx 0 for a new job; on resume, the target's
   * first unfinished step, which may be half-done (interrupted mid-way), so judge it by the
   * target's real state, never by the record alone. The hook records its steps' outcomes and
   * ends the target (`journal.finishTarget`).
   */
  resume(at: StepAt): Promise<void>;
  /**
   * Undo one started step, for `abandonJob` (the latest first). A step that is not done
   * (interrupted, failed) may be half-done: undo what is there.
   */
  rollback?(at: StepAt): Promise<void>;
  /** A resume hook threw: record it. By default the target failed with the error's message. */
  failed?(at: StepAt, e: unknown): void;
}

/**
 * The common loop: a bounded pool of targets, each carried on by the resume hook; then the job is
 * settled from its targets' outcomes and released. The job must be this journal's (created or
 * claimed by it).
 */
export async function runJob(journal: JobJournal, id: string, todo: StepAt[], hooks: JobHooks, opts: { concurrency: number; aborted: () => boolean }): Promise<JobStatus> {
  const limit = Math.max(1, Math.min(opts.concurrency, todo.length || 1));
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const t = todo[next++]!;
      try {
        await hooks.resume(t);
      } catch (e) {
        // The hook records its own failures; anything reaching here is a bug or the audit trail refusing.
        if (hooks.failed) hooks.failed(t, e);
        else journal.finishTarget(id, t.target, 'failed', e instanceof Error ? e.message : String(e));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: limit }, worker));
  } finally {
    journal.settle(id, opts.aborted());
  }
  return journal.job(id)!.status;
}

/**
 * Abandon a job that did not succeed: claim it, run the rollback hook for every step that started,
 * the latest first, target by target; each undone step is pending again, the targets and the job
 * end `cancelled`. A rollback that fails stops the abandon: its target and the job end `failed`
 * (an abandon can be tried again; the steps already undone stay undone).
 */
export async function abandonJob(journal: JobJournal, id: string, hooks: Required<Pick<JobHooks, 'rollback'>>): Promise<{ rolledBack: StepAt[] }> {
  journal.sweep();
  const job = journal.job(id);
  if (!job) throw new AirlockError('NOT_FOUND', `No job ${id}.`);
  if (job.status === 'succeeded') throw new AirlockError('CONFLICT', `Job ${id} succeeded: there is nothing to abandon.`);
  if (!journal.claim(id)) throw new AirlockError('CONFLICT', `Job ${id} is running.`);
  const done: StepAt[] = [];
  try {
    for (const target of journal.targets(id)) {
      for (const at of journal.startedSteps(id, target)) {
        try {
          await hooks.rollback(at);
        } catch (e) {
          journal.finishTarget(id, target, 'failed', `rollback of step ${at.idx} failed: ${e instanceof Error ? e.message : String(e)}`);
          throw e;
        }
        journal.rolledBack(at);
        done.push(at);
      }
      journal.finishTarget(id, target, 'cancelled', 'abandoned: rolled back');
    }
  } catch (e) {
    journal.finish(id, 'failed');
    throw e;
  }
  journal.finish(id, 'cancelled');
  return { rolledBack: done };
}

import type { Change, HostRun, Run, StepRecord, StepStatus } from '../../../shared/contract/provision';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { JobTables } from '../jobs/journal';

/**
 * A run's records: `provision_runs` (the run), `provision_hosts` (a host of it), `provision_steps`
 * (a host's steps, in order). The bookkeeping (owner, sweep, claim, where a resume starts) is the
 * job journal's (core/jobs); what only provisioning records (the playbook, output, phase, facts)
 * is read and written here.
 */
export const PROVISION_TABLES: JobTables = { jobs: 'provision_runs', targets: 'provision_hosts', steps: 'provision_steps', jobRef: 'run_id', targetRef: 'host' };

/** A step that finished: a resume starts after it. */
export const DONE: ReadonlySet<StepStatus> = new Set(['ok', 'changed']);

export interface RunRow {
  id: string;
  kind: Run['kind'];
  playbook: string;
  playbook_version: string;
  playbook_digest: string;
  playbook_body: string;
  params: string;
  actor: string;
  status: Run['status'];
  started_at: string;
  finished_at: string | null;
  attempts: number;
  owner: string | null;
}
export interface StepRow {
  run_id: string;
  host: string;
  idx: number;
  step_id: string;
  type: string;
  title: string;
  status: StepStatus;
  phase: StepRecord['phase'];
  changes: string;
  output: string;
  exit_code: number | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  message: string | null;
  error_code: string | null;
  transfer: string | null;
  facts: string | null;
}

export class RunRecords {
  constructor(private readonly db: Db) {}

  row(runId: string): RunRow {
    const r = this.db.prepare('SELECT * FROM provision_runs WHERE id = ?').get(runId) as RunRow | undefined;
    if (!r) throw new AirlockError('NOT_FOUND', `No run ${runId}.`);
    return r;
  }

  steps(runId: string, host: string): StepRecord[] {
    return (this.db.prepare('SELECT * FROM provision_steps WHERE run_id = ? AND host = ? ORDER BY idx').all(runId, host) as StepRow[]).map(toStep);
  }

  step(runId: string, host: string, idx: number): StepRecord {
    return toStep(this.db.prepare('SELECT * FROM provision_steps WHERE run_id = ? AND host = ? AND idx = ?').get(runId, host, idx) as StepRow);
  }

  /** What every step's verify proved, for the attestation. */
  facts(runId: string, host: string) {
    return this.db.prepare(`SELECT step_id, type, facts FROM provision_steps WHERE run_id = ? AND host = ? ORDER BY idx`).all(runId, host) as Array<{
      step_id: string;
      type: string;
      facts: string | null;
    }>;
  }

  get(runId: string): Run {
    const r = this.row(runId);
    const hosts = this.db.prepare('SELECT * FROM provision_hosts WHERE run_id = ? ORDER BY host').all(runId) as Array<{
      host: string;
      status: HostRun['status'];
      message: string | null;
      started_at: string | null;
      finished_at: string | null;
      attestation_id: string | null;
    }>;
    return {
      ...runFields(r),
      hosts: hosts.map((h) => ({
        host: h.host,
        status: h.status,
        message: h.message,
        startedAt: h.started_at,
        finishedAt: h.finished_at,
        attestationId: h.attestation_id,
        steps: this.steps(runId, h.host),
      })),
    };
  }

  list(limit: number) {
    const rows = this.db
      .prepare(
        `SELECT r.*, COUNT(h.host) AS host_count, COALESCE(SUM(h.status IN ('failed', 'cancelled', 'interrupted')), 0) AS failed_hosts
         FROM provision_runs r LEFT JOIN provision_hosts h ON h.run_id = r.id
         GROUP BY r.id ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?`,
      )
      .all(limit) as Array<RunRow & { host_count: number; failed_hosts: number }>;
    return rows.map((r) => ({ ...runFields(r), hostCount: r.host_count, failedHosts: r.failed_hosts }));
  }

  hostStatus(runId: string, host: string): HostRun['status'] {
    return (this.db.prepare('SELECT status FROM provision_hosts WHERE run_id = ? AND host = ?').get(runId, host) as { status: HostRun['status'] }).status;
  }

  /** A host starts (or resumes): running, its first start kept. */
  startHost(runId: string, host: string, now: string) {
    this.db.prepare(`UPDATE provision_hosts SET status = 'running', message = NULL, started_at = COALESCE(started_at, ?), finished_at = NULL WHERE run_id = ? AND host = ?`).run(now, runId, host);
  }

  setAttestation(runId: string, host: string, attestationId: string) {
    this.db.prepare(`UPDATE provision_hosts SET attestation_id = ? WHERE run_id = ? AND host = ?`).run(attestationId, runId, host);
  }

  writeStep(runId: string, host: string, idx: number, set: Partial<Record<keyof StepRow, unknown>>) {
    const keys = Object.keys(set);
    if (keys.length === 0) return;
    this.db
      .prepare(`UPDATE provision_steps SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE run_id = ? AND host = ? AND idx = ?`)
      .run(...keys.map((k) => set[k as keyof StepRow] as never), runId, host, idx);
  }
}

/** A run's own fields, as the contract names them. */
export function runFields(r: RunRow): Omit<Run, 'hosts'> {
  return {
    id: r.id,
    kind: r.kind,
    playbook: r.playbook,
    playbookVersion: r.playbook_version,
    playbookDigest: r.playbook_digest,
    actor: r.actor,
    status: r.status,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    attempts: r.attempts,
  };
}

export function toStep(r: StepRow): StepRecord {
  return {
    idx: r.idx,
    stepId: r.step_id,
    type: r.type,
    title: r.title,
    status: r.status,
    phase: r.phase,
    changes: JSON.parse(r.changes) as Change[],
    output: r.output,
    exitCode: r.exit_code,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    message: r.message,
    errorCode: r.error_code,
    transfer: r.transfer ? (JSON.parse(r.transfer) as StepRecord['transfer']) : null,
  };
}

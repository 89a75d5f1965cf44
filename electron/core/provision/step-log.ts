import type { Change, StepRecord, StepStatus } from '../../../shared/contract/provision';
import { AirlockError } from '../../../shared/domain/errors';
import { sanitizeHostLines } from '../ssh/sanitize';
import type { Caller } from './caller';
import { StepFailure } from './remote';
import type { StepRow } from './runs';

const OUTPUT_CAP = 64 * 1024;
const FLUSH_MS = 400;

/** Where a step's record goes: the run records, and the caller's progress events. */
export interface StepSink {
  step(runId: string, host: string, idx: number): StepRecord;
  writeStep(runId: string, host: string, idx: number, set: Partial<Record<keyof StepRow, unknown>>): void;
  emitStep(c: Caller, runId: string, host: string, idx: number, output: string | null): void;
}

/** One step's live record: phase changes are committed at once; output and transfer progress are batched. */
export class StepLog {
  private out = '';
  private pending = '';
  private timer: NodeJS.Timeout | null = null;
  private xfer: { sent: number; done: number; total: number } | null = null;
  private startedAt = '';

  constructor(
    private readonly p: StepSink,
    private readonly c: Caller,
    private readonly runId: string,
    private readonly host: string,
    private readonly idx: number,
  ) {
    const prev = p.step(runId, host, idx);
    // A resumed step keeps what it printed before, marked.
    this.out = prev.output ? `${prev.output}\n--- resumed: re-checking ---\n` : '';
  }

  begin() {
    this.startedAt = new Date().toISOString();
    this.p.writeStep(this.runId, this.host, this.idx, {
      status: 'running',
      phase: 'check',
      started_at: this.startedAt,
      finished_at: null,
      duration_ms: null,
      message: null,
      error_code: null,
      exit_code: null,
      output: this.out,
    });
    this.p.emitStep(this.c, this.runId, this.host, this.idx, null);
  }

  phase(phase: 'apply' | 'verify') {
    this.flush();
    this.p.writeStep(this.runId, this.host, this.idx, { phase });
    this.p.emitStep(this.c, this.runId, this.host, this.idx, null);
  }

  changes(ch: Change[]) {
    this.p.writeStep(this.runId, this.host, this.idx, { changes: JSON.stringify(ch) });
  }

  facts(f: unknown) {
    this.p.writeStep(this.runId, this.host, this.idx, { facts: JSON.stringify(f ?? null) });
  }

  log(text: string) {
    const clean = sanitizeHostLines(text, OUTPUT_CAP);
    if (!clean) return;
    const add = clean.endsWith('\n') ? clean : `${clean}\n`;
    this.out = (this.out + add).slice(-OUTPUT_CAP);
    this.pending += add;
    this.schedule();
  }

  transfer(x: { sent: number; done: number; total: number }) {
    this.xfer = x;
    this.schedule();
  }

  private schedule() {
    if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending && !this.xfer) return;
    this.p.writeStep(this.runId, this.host, this.idx, { output: this.out, ...(this.xfer ? { transfer: JSON.stringify(this.xfer) } : {}) });
    const chunk = this.pending || null;
    this.pending = '';
    this.p.emitStep(this.c, this.runId, this.host, this.idx, chunk);
  }

  finish(status: StepStatus, info: { message?: string | null; errorCode?: string | null; exitCode?: number | null; durationMs: number }) {
    this.flush();
    this.p.writeStep(this.runId, this.host, this.idx, {
      status,
      message: info.message ? sanitizeHostLines(info.message, 4000) : null,
      error_code: info.errorCode ?? null,
      exit_code: info.exitCode ?? null,
      finished_at: new Date().toISOString(),
      duration_ms: info.durationMs,
      output: this.out,
    });
    this.p.emitStep(this.c, this.runId, this.host, this.idx, null);
  }
}

/** What a step's failure records: message, error code, exit code and the output it carried. */
export function failureInfo(e: unknown): { message: string; code: string; exitCode: number | null; output: string } {
  if (e instanceof StepFailure) return { message: e.message, code: e.code, exitCode: e.exitCode, output: e.output };
  if (e instanceof AirlockError) return { message: e.message, code: e.code, exitCode: null, output: '' };
  const err = e as NodeJS.ErrnoException & { code?: unknown };
  return { message: err?.message ?? String(e), code: typeof err?.code === 'string' ? err.code : 'STEP_FAILED', exitCode: null, output: '' };
}

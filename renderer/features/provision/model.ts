/**
 * Pure helpers of the Provisioning view: the live run built from 'provision:progress' events,
 * host selectors, parameter overrides, and formatting. No React, no I/O (unit-tested).
 */
import type { Host } from '../../../shared/contract/hosts';
import type { EventPayload } from '../../../shared/contract/index';
import type { HostRun, PlaybookInfo, Run, StepRecord, StepStatus } from '../../../shared/contract/provision';
import type { AirlockErrorShape } from '../../../shared/domain/errors';

export type Progress = EventPayload<'provision:progress'>;
export type LiveKind = 'plan' | 'apply' | 'resume';

/** What a step looks like before the core has said anything about it. */
export interface StepSkeleton {
  id: string;
  type: string;
  title: string;
}

/**
 * A plan, apply or resume started from this view: shown live from progress events while the call
 * is in flight, then replaced by the run the call returns (the record of truth).
 */
export interface LiveRun {
  kind: LiveKind;
  /** The id passed to the call; ops:cancel names it. */
  requestId: string;
  /** Known from the first progress event (or up front for a resume). */
  runId: string | null;
  playbook: string;
  /** Host names this view expects (null: accept any host of the first run id seen). */
  expect: string[] | null;
  skeleton: StepSkeleton[];
  hosts: HostRun[];
  /** Output appended from progress chunks, by {@link logKey}. */
  logs: Record<string, string>;
  /**
   * `waiting`: the call is on its way (a step-up or approval prompt may be open); `running` from
   * the run's first progress event, the proof the core started it; then `done` or `error`.
   */
  phase: 'waiting' | 'running' | 'done' | 'error';
  cancelling: boolean;
  final: Run | null;
  error: AirlockErrorShape | null;
  /** This browser's clock when the view learnt the run started (both ends of its timer are local). */
  startedAt: number;
}

/** How much live output is kept per step (the core keeps a 64 KiB tail; this is a display bound). */
export const LIVE_LOG_CAP = 256 * 1024;

export const logKey = (host: string, idx: number) => `${host}\n${idx}`;

export function skeletonOf(pb: Pick<PlaybookInfo, 'steps'>): StepSkeleton[] {
  return pb.steps.map((s) => ({ id: s.id, type: s.type, title: s.title }));
}

export function pendingStep(s: StepSkeleton, idx: number): StepRecord {
  return {
    idx,
    stepId: s.id,
    type: s.type,
    title: s.title,
    status: 'pending',
    phase: null,
    changes: [],
    output: '',
    exitCode: null,
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    message: null,
    errorCode: null,
    transfer: null,
  };
}

export function pendingHost(name: string, skeleton: StepSkeleton[]): HostRun {
  return {
    host: name,
    status: 'pending',
    message: null,
    startedAt: null,
    finishedAt: null,
    attestationId: null,
    steps: skeleton.map(pendingStep),
  };
}

export function startLive(init: {
  kind: LiveKind;
  requestId: string;
  playbook: string;
  skeleton: StepSkeleton[];
  expect: string[] | null;
  runId?: string | null;
  hosts?: HostRun[];
  now?: number;
}): LiveRun {
  return {
    kind: init.kind,
    requestId: init.requestId,
    runId: init.runId ?? null,
    playbook: init.playbook,
    expect: init.expect,
    skeleton: init.skeleton,
    hosts: init.hosts ?? (init.expect ?? []).map((h) => pendingHost(h, init.skeleton)),
    logs: {},
    phase: 'waiting',
    cancelling: false,
    final: null,
    error: null,
    startedAt: init.now ?? Date.now(),
  };
}

/** Sent and not yet returned: waiting to start or running. */
export function inFlight(live: Pick<LiveRun, 'phase'> | null | undefined): boolean {
  return live?.phase === 'waiting' || live?.phase === 'running';
}

/** Whether a progress event belongs to this live run (the first one seen fixes the run id). */
export function accepts(live: LiveRun, p: Progress): boolean {
  if (!inFlight(live)) return false;
  if (live.runId !== null) return p.runId === live.runId;
  return live.expect === null || live.expect.includes(p.host);
}

/** Merge one progress event. Returns the same object when the event is not this run's. */
export function applyProgress(live: LiveRun, p: Progress, now = Date.now()): LiveRun {
  if (!accepts(live, p)) return live;
  const hosts = [...live.hosts];
  let i = hosts.findIndex((h) => h.host === p.host);
  if (i < 0) {
    hosts.push(pendingHost(p.host, live.skeleton));
    hosts.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
    i = hosts.findIndex((h) => h.host === p.host);
  }
  const h = { ...hosts[i]!, status: p.hostStatus };
  if (p.step) {
    const steps = [...h.steps];
    while (steps.length <= p.step.idx) {
      const sk = live.skeleton[steps.length];
      steps.push(pendingStep(sk ?? { id: p.step.stepId, type: p.step.type, title: p.step.title }, steps.length));
    }
    steps[p.step.idx] = p.step;
    h.steps = steps;
  }
  hosts[i] = h;
  let logs = live.logs;
  if (p.output && p.step) {
    const k = logKey(p.host, p.step.idx);
    const next = (logs[k] ?? '') + p.output;
    logs = { ...logs, [k]: next.length > LIVE_LOG_CAP ? next.slice(-LIVE_LOG_CAP) : next };
  }
  const started = live.phase === 'waiting' ? { phase: 'running' as const, startedAt: now } : {};
  return { ...live, ...started, runId: p.runId, hosts, logs };
}

/** The call returned: the run it returns replaces what the events built. */
export function finishLive(live: LiveRun, run: Run): LiveRun {
  return { ...live, runId: run.id, hosts: run.hosts, logs: {}, phase: 'done', cancelling: false, final: run };
}

export function failLive(live: LiveRun, error: AirlockErrorShape, run: Run | null): LiveRun {
  return {
    ...live,
    phase: 'error',
    cancelling: false,
    error,
    final: run,
    runId: run?.id ?? live.runId,
    hosts: run ? run.hosts : live.hosts,
    logs: run ? {} : live.logs,
  };
}

/** What a step's log shows: the live chunks while they are being received, else the recorded output. */
export function stepLog(logs: Record<string, string> | undefined, host: string, step: StepRecord): string {
  const live = logs?.[logKey(host, step.idx)];
  if (live === undefined) return step.output;
  // Chunks missed while the event stream was down: the record (a 64 KiB tail) is then the longer one.
  return step.output.length > live.length ? step.output : live;
}

// ---------- hosts ----------

export type HostMode = 'names' | 'all' | 'label';
export interface HostSelection {
  mode: HostMode;
  names: string[];
  label: string;
}

export const EMPTY_SELECTION: HostSelection = { mode: 'names', names: [], label: '' };

/** The contract's selector, or null when nothing is chosen. */
export function selectorOf(sel: HostSelection): string[] | null {
  if (sel.mode === 'all') return ['all'];
  if (sel.mode === 'label') return sel.label ? [`label:${sel.label}`] : null;
  return sel.names.length ? [...sel.names].sort() : null;
}

/** Which enrolled hosts a selection names, as the core will resolve it (for display only). */
export function resolveSelection(sel: HostSelection, hosts: Host[]): string[] {
  const picked = sel.mode === 'all' ? hosts : sel.mode === 'label' ? hosts.filter((h) => sel.label && h.labels.includes(sel.label)) : hosts.filter((h) => sel.names.includes(h.name));
  return picked.map((h) => h.name).sort();
}

export function labelsOf(hosts: Host[]): string[] {
  return [...new Set(hosts.flatMap((h) => h.labels))].sort();
}

/** "gpu, rack-1 a100" → ["gpu", "rack-1", "a100"] (commas or spaces). */
export function parseLabels(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

// ---------- parameter overrides ----------

export type Overrides = Record<string, Record<string, unknown>>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The overrides text as the contract wants it: `{ stepId: { param: value } }`. Only the shape is
 * checked here; the core validates every value against the step's schema.
 */
export function parseOverrides(text: string, pb: Pick<PlaybookInfo, 'steps'> | null): { value: Overrides; warnings: string[] } | { error: string } {
  const t = text.trim();
  if (t === '') return { value: {}, warnings: [] };
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (e) {
    return { error: `Not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (!isPlainObject(v)) return { error: 'The overrides must be a JSON object: {"stepId": {"param": value}}.' };
  const warnings: string[] = [];
  for (const [k, inner] of Object.entries(v)) {
    if (!isPlainObject(inner)) return { error: `"${k}" must map to an object of parameters, e.g. {"${k}": {"param": value}}.` };
    if (pb && !pb.steps.some((s) => s.id === k)) warnings.push(`The playbook has no step "${k}" (steps: ${pb.steps.map((s) => s.id).join(', ')}).`);
  }
  return { value: v as Overrides, warnings };
}

export function currentParams(pb: Pick<PlaybookInfo, 'steps'>): string {
  return JSON.stringify(Object.fromEntries(pb.steps.map((s) => [s.id, s.params])), null, 2);
}

// ---------- summaries and formatting ----------

export function planSummary(run: Pick<Run, 'hosts'>): { hosts: number; changing: number; failed: number; ok: number; changes: number } {
  let changing = 0;
  let failed = 0;
  let ok = 0;
  let changes = 0;
  for (const h of run.hosts) {
    for (const s of h.steps) {
      if (s.status === 'would-change') changing++;
      else if (s.status === 'failed') failed++;
      else if (s.status === 'ok') ok++;
      changes += s.changes.length;
    }
  }
  return { hosts: run.hosts.length, changing, failed, ok, changes };
}

/**
 * A host's step counter, in the run's own terms: a plan (or a drift check) runs each step's
 * read-only check, so it counts steps checked (ok, would change, or failed: the check ran and
 * answered); an apply counts steps applied (ok: already so, or changed). "1/6 steps done" after a
 * plan that checked all six was the apply's count applied to a plan.
 */
export function stepCounter(kind: LiveKind | Run['kind'], steps: ReadonlyArray<Pick<StepRecord, 'status'>>): { done: number; total: number; text: string } {
  const checking = kind === 'plan' || kind === 'drift';
  const counted: ReadonlyArray<StepStatus> = checking ? ['ok', 'would-change', 'failed'] : ['ok', 'changed'];
  const done = steps.filter((s) => counted.includes(s.status)).length;
  const total = steps.length;
  return { done, total, text: `${done}/${total} step${total === 1 ? '' : 's'} ${checking ? 'checked' : 'applied'}` };
}

/** Statuses an apply can be resumed from. */
export function resumable(run: { kind: Run['kind']; status: Run['status'] }): boolean {
  return run.kind === 'apply' && (run.status === 'failed' || run.status === 'cancelled' || run.status === 'interrupted');
}

export type Tone = 'ok' | 'change' | 'bad' | 'run' | 'idle';

export function toneOf(status: StepStatus | HostRun['status'] | Run['status'] | string): Tone {
  switch (status) {
    case 'ok':
    case 'changed':
    case 'succeeded':
      return 'ok';
    case 'would-change':
      return 'change';
    case 'failed':
    case 'cancelled':
    case 'interrupted':
      return 'bad';
    case 'running':
      return 'run';
    default:
      return 'idle';
  }
}

// Durations have one home (components/time.ts).
export { formatDuration } from '../../components/time';

/** A JSON value on one line for drift cells. */
export function compactJson(v: unknown, max = 400): string {
  let s: string;
  try {
    s = v === undefined ? 'undefined' : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

export type DiffLine = { kind: 'add' | 'del' | 'hunk' | 'meta' | 'ctx'; text: string };

/** A unified diff split into lines, each with its kind (for colouring; rendered as text). */
export function diffLines(diff: string): DiffLine[] {
  return diff.split('\n').map((text) => {
    if (text.startsWith('+++') || text.startsWith('---') || text.startsWith('====') || text.startsWith('Index:')) return { kind: 'meta', text };
    if (text.startsWith('@@')) return { kind: 'hunk', text };
    if (text.startsWith('+')) return { kind: 'add', text };
    if (text.startsWith('-')) return { kind: 'del', text };
    return { kind: 'ctx', text };
  });
}

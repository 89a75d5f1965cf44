import { describe, expect, it } from 'vitest';
import type { Host } from '../../../shared/contract/hosts';
import type { Run, StepRecord } from '../../../shared/contract/provision';
import {
  applyProgress,
  diffLines,
  failLive,
  finishLive,
  inFlight,
  parseOverrides,
  pendingStep,
  resolveSelection,
  resumable,
  selectorOf,
  startLive,
  stepLog,
  type Progress,
} from './model';

const skeleton = [
  { id: 'gpu', type: 'gpu-driver-check', title: 'GPU and driver check' },
  { id: 'model', type: 'model-weights', title: 'Model weights deployment' },
];
const RUN = 'run-0123456789abcdef';

function step(idx: number, over: Partial<StepRecord> = {}): StepRecord {
  return { ...pendingStep(skeleton[idx]!, idx), ...over };
}
function ev(host: string, s: StepRecord | null, output: string | null = null, runId = RUN): Progress {
  return { runId, host, step: s, hostStatus: 'running', output };
}

describe('live run from progress events', () => {
  it('adopts the first run id of an expected host, then ignores other runs', () => {
    let l = startLive({ kind: 'apply', requestId: 'r1', playbook: 'p', skeleton, expect: ['host1'], now: 0 });
    expect(l.hosts.map((h) => h.host)).toEqual(['host1']);
    expect(applyProgress(l, ev('other', null, null, 'run-ffffffffffffffff'))).toBe(l);
    l = applyProgress(l, ev('host1', step(0, { status: 'running', phase: 'check' })));
    expect(l.runId).toBe(RUN);
    expect(l.hosts[0]!.steps[0]!.status).toBe('running');
    expect(applyProgress(l, ev('host1', step(1), null, 'run-ffffffffffffffff'))).toBe(l);
  });

  it('appends output chunks per step and shows them until the record is longer', () => {
    let l = startLive({ kind: 'apply', requestId: 'r1', playbook: 'p', skeleton, expect: null, now: 0 });
    const s = step(1, { status: 'running', phase: 'apply', output: 'a\n', transfer: { sent: 5, done: 5, total: 10 } });
    l = applyProgress(l, ev('host2', s, 'a\n'));
    l = applyProgress(l, ev('host2', { ...s, output: 'a\nb\n' }, 'b\n'));
    l = applyProgress(l, ev('host1', null));
    expect(l.hosts.map((h) => h.host)).toEqual(['host1', 'host2']);
    const h2 = l.hosts[1]!;
    expect(h2.steps).toHaveLength(2);
    expect(h2.steps[1]!.transfer).toEqual({ sent: 5, done: 5, total: 10 });
    expect(stepLog(l.logs, 'host2', h2.steps[1]!)).toBe('a\nb\n');
    // A resumed step's record starts with what it printed before: longer than the chunks seen.
    expect(stepLog(l.logs, 'host2', { ...h2.steps[1]!, output: 'old\n--- resumed ---\na\nb\n' })).toContain('resumed');
  });

  it('the returned run replaces what the events built; a failure keeps the record when there is one', () => {
    const l = startLive({ kind: 'plan', requestId: 'r1', playbook: 'p', skeleton, expect: ['host1'], now: 0 });
    const run = { id: RUN, kind: 'plan', status: 'succeeded', hosts: [] } as unknown as Run;
    const done = finishLive(l, run);
    expect(done.phase).toBe('done');
    expect(done.final).toBe(run);
    expect(applyProgress(done, ev('host1', null))).toBe(done);
    const failed = failLive(l, { code: 'INVALID_INPUT', message: 'bad' }, null);
    expect(failed.phase).toBe('error');
    expect(failed.hosts).toBe(l.hosts);
  });
});

describe('a live run waits until the core has started it', () => {
  it('is "waiting" (no Cancel, no timer) until its first progress event, then running from then on', () => {
    const l = startLive({ kind: 'apply', requestId: 'r1', playbook: 'p', skeleton, expect: ['host1'], now: 0 });
    expect(l.phase).toBe('waiting');
    expect(inFlight(l)).toBe(true);
    const r = applyProgress(l, ev('host1', step(0, { status: 'running', phase: 'check' })), 40_000);
    expect(r.phase).toBe('running');
    expect(r.startedAt).toBe(40_000);
    // Later events keep the start.
    expect(applyProgress(r, ev('host1', step(1, { status: 'running', phase: 'check' })), 90_000).startedAt).toBe(40_000);
    expect(inFlight(finishLive(r, { id: RUN, kind: 'apply', status: 'succeeded', hosts: [] } as unknown as Run))).toBe(false);
    // A step-up declined: the call fails before the run existed.
    expect(failLive(l, { code: 'STEP_UP_REQUIRED', message: 'x' }, null).phase).toBe('error');
  });
});

describe('selectors and overrides', () => {
  const hosts = [
    { name: 'b', labels: ['gpu'] },
    { name: 'a', labels: [] },
  ] as unknown as Host[];

  it('builds the contract selector', () => {
    expect(selectorOf({ mode: 'names', names: ['b', 'a'], label: '' })).toEqual(['a', 'b']);
    expect(selectorOf({ mode: 'names', names: [], label: '' })).toBeNull();
    expect(selectorOf({ mode: 'all', names: [], label: '' })).toEqual(['all']);
    expect(selectorOf({ mode: 'label', names: [], label: 'gpu' })).toEqual(['label:gpu']);
    expect(resolveSelection({ mode: 'label', names: [], label: 'gpu' }, hosts)).toEqual(['b']);
    expect(resolveSelection({ mode: 'all', names: [], label: '' }, hosts)).toEqual(['a', 'b']);
  });

  it('checks the shape only, and warns about unknown steps', () => {
    expect(parseOverrides('', null)).toEqual({ value: {}, warnings: [] });
    expect(parseOverrides('{"gpu": {"minCount": 2}}', { steps: [{ id: 'gpu' }] } as never)).toEqual({ value: { gpu: { minCount: 2 } }, warnings: [] });
    expect(parseOverrides('{', null)).toHaveProperty('error');
    expect(parseOverrides('[]', null)).toHaveProperty('error');
    expect(parseOverrides('{"gpu": 3}', null)).toHaveProperty('error');
    const r = parseOverrides('{"nope": {}}', { steps: [{ id: 'gpu' }] } as never);
    expect('warnings' in r && r.warnings[0]).toMatch(/no step "nope"/);
  });
});

describe('formatting', () => {
  it('classifies diff lines', () => {
    expect(diffLines('--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z').map((l) => l.kind)).toEqual(['meta', 'meta', 'hunk', 'del', 'add', 'ctx']);
  });
  it('only an apply that did not succeed is resumable', () => {
    expect(resumable({ kind: 'apply', status: 'interrupted' })).toBe(true);
    expect(resumable({ kind: 'apply', status: 'succeeded' })).toBe(false);
    expect(resumable({ kind: 'plan', status: 'failed' })).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import type { StepStatus } from '../../../shared/contract/provision';
import { stepCounter } from './model';

const steps = (...s: StepStatus[]) => s.map((status) => ({ status }));

describe('stepCounter', () => {
  it('counts a plan that checked all six steps as 6/6 checked, whatever each check found', () => {
    // One step already so, five that would change: the old counter said "1/6 steps done".
    const planned = steps('ok', 'would-change', 'would-change', 'would-change', 'would-change', 'would-change');
    expect(stepCounter('plan', planned)).toEqual({ done: 6, total: 6, text: '6/6 steps checked' });
    // A failed check ran and answered; a pending or running one has not yet.
    expect(stepCounter('plan', steps('ok', 'failed', 'running', 'pending', 'pending', 'pending')).text).toBe('2/6 steps checked');
    expect(stepCounter('drift', steps('ok', 'would-change')).text).toBe('2/2 steps checked');
  });

  it('counts an apply by steps applied (already so, or changed), not those that failed or are to come', () => {
    expect(stepCounter('apply', steps('ok', 'changed', 'changed', 'failed', 'pending', 'pending'))).toEqual({ done: 3, total: 6, text: '3/6 steps applied' });
    expect(stepCounter('apply', steps('ok', 'changed', 'changed', 'changed', 'changed', 'changed')).text).toBe('6/6 steps applied');
    expect(stepCounter('resume', steps('changed', 'cancelled')).text).toBe('1/2 steps applied');
    // would-change never appears in an apply; if it did it would not count as applied.
    expect(stepCounter('apply', steps('would-change')).text).toBe('0/1 step applied');
  });
});

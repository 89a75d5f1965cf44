import { describe, expect, it } from 'vitest';
import { actionsFor, lineageSteps } from './model';

describe('the Models page helpers', () => {
  it('draws the lineage datasets → oldest base → … → this version', () => {
    const steps = lineageSteps(
      { model: 'notes-tune', version: 'v2', classification: 'phi', lineage: [{ dataset: 'ward-notes', role: 'fine-tuning', classification: 'phi', retentionUntil: '2031-12-31' }] },
      [
        { model: 'notes-tune', version: 'v1', classification: 'phi', status: 'approved' },
        { model: 'triage-base', version: 'v1', classification: 'internal', status: 'approved' },
      ],
    );
    expect(steps.map((s) => [s.kind, s.label, s.classification])).toEqual([
      ['dataset', 'ward-notes', 'phi'],
      ['base', 'triage-base v1', 'internal'],
      ['base', 'notes-tune v1', 'phi'],
      ['self', 'notes-tune v2', 'phi'],
    ]);
    expect(steps[0]!.detail).toBe('fine-tuning · kept until 2031-12-31');
  });

  it('offers only the moves a status allows', () => {
    expect(actionsFor('staged')).toEqual({ approve: true, deprecate: false, revoke: true, publish: false });
    expect(actionsFor('approved')).toEqual({ approve: false, deprecate: true, revoke: true, publish: true });
    expect(actionsFor('revoked')).toEqual({ approve: false, deprecate: false, revoke: false, publish: false });
  });
});

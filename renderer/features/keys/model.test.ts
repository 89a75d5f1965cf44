import { describe, expect, it } from 'vitest';
import type { Ceremony, CeremonyStep } from '../../../shared/contract/keys';
import { acknowledgers, automaticStep, currentStep, groupNonce, issuing, officerOfStep, parseNames, progressText, shareFileName, statusText, transcriptFileName } from './model';

const step = (n: number, by: CeremonyStep['by'], o: Partial<CeremonyStep> = {}): CeremonyStep => ({
  n,
  title: `step ${n}`,
  by,
  automatic: false,
  acknowledgedBy: null,
  recordedBy: null,
  at: null,
  ...o,
});

/** A genesis script's shape (electron/core/keys/scripts.ts): open, witness, auto, one step per officer, witness. */
function genesis(): Pick<Ceremony, 'steps' | 'participants' | 'status'> {
  return {
    status: 'open',
    participants: [
      { name: 'admin', role: 'administrator' },
      { name: 'Olivia', role: 'officer' },
      { name: 'Oscar', role: 'officer' },
      { name: 'Wendy', role: 'witness' },
      { name: 'Walter', role: 'witness' },
    ],
    steps: [
      step(1, 'administrator', { acknowledgedBy: 'admin', at: '2026-01-01T00:00:00.000Z' }),
      step(2, 'witness'),
      step(3, 'administrator', { automatic: true }),
      step(4, 'officer'),
      step(5, 'officer'),
      step(6, 'witness'),
    ],
  };
}

describe('ceremony steps', () => {
  it('finds the next step and the key operation', () => {
    const c = genesis();
    expect(currentStep(c)?.n).toBe(2);
    expect(automaticStep(c)?.n).toBe(3);
    expect(currentStep({ steps: c.steps.map((s) => ({ ...s, at: '2026-01-01T00:00:00.000Z' })) })).toBeNull();
  });

  it('gives each officer step to the officer named in that place', () => {
    const c = genesis();
    expect(officerOfStep(c, 4)).toBe('Olivia');
    expect(officerOfStep(c, 5)).toBe('Oscar');
    expect(officerOfStep(c, 2)).toBeNull();
  });

  it('offers the participants of the step role, only the officer on their own step, nobody on Airlock’s', () => {
    const c = genesis();
    expect(acknowledgers(c, c.steps[0]!)).toEqual(['admin']);
    expect(acknowledgers(c, c.steps[1]!)).toEqual(['Wendy', 'Walter']);
    expect(acknowledgers(c, c.steps[2]!)).toEqual([]);
    expect(acknowledgers(c, c.steps[4]!)).toEqual(['Oscar']);
  });

  it('says where an open ceremony is', () => {
    expect(statusText(genesis())).toBe('open: step 2 of 6');
    expect(statusText({ ...genesis(), status: 'cancelled' })).toBe('cancelled');
  });

  it('knows which kinds issue shares', () => {
    expect(['genesis', 'reshare', 'rotate-root'].every((k) => issuing(k as never))).toBe(true);
    expect(['unseal', 'verify-shares', 'rotate-kek'].some((k) => issuing(k as never))).toBe(false);
  });
});

describe('formatting for the room', () => {
  it('groups the nonce in fours, nothing lost', () => {
    const nonce = '0123456789abcdef0123456789abcdef';
    const groups = groupNonce(nonce);
    expect(groups).toHaveLength(8);
    expect(groups.every((g) => g.length === 4)).toBe(true);
    expect(groups.join('')).toBe(nonce);
  });

  it('reads names one per line or comma separated', () => {
    expect(parseNames(' Olivia\nOscar, Otto ,\n\n')).toEqual(['Olivia', 'Oscar', 'Otto']);
    expect(parseNames('')).toEqual([]);
  });

  it('names files safely and tells them apart', () => {
    expect(shareFileName("O'Brien Ann", 3, 'cer-0011223344556677')).toBe('share-O_Brien_Ann-3-cer-0011223344556677.txt');
    expect(transcriptFileName('rotate-kek', 'cer-00')).toBe('transcript-rotate-kek-cer-00.json');
    expect(shareFileName('../x', 1, 'c')).not.toContain('/');
  });

  it('says the unseal progress', () => {
    expect(progressText(2, 3)).toBe('2 of 3 shares');
    expect(progressText(0, 1)).toBe('0 of 1 share');
  });
});

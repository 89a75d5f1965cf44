import { describe, expect, it } from 'vitest';
import type { Grant } from '../../../shared/contract/access';
import { expiryBadge, groupGrants, selectorText } from './model';

const g = (o: Partial<Grant>): Grant => ({
  id: 'gr-0000000000000001',
  principal: 'app:a',
  model: 'm',
  selector: 'latest-approved',
  actions: ['invoke'],
  expiresAt: null,
  expiresInDays: null,
  requestsPerMinute: null,
  reason: null,
  createdAt: '2026-12-08T00:00:00.000Z',
  createdBy: 'alice',
  approval: null,
  phiApproved: false,
  revokedAt: null,
  revokedBy: null,
  revokedReason: null,
  resolved: null,
  status: 'active',
  why: null,
  ...o,
});

describe('grants page model', () => {
  it('groups by principal or model, sorted', () => {
    const rows = [g({ id: 'gr-2', principal: 'app:b', model: 'x' }), g({ id: 'gr-1', principal: 'app:a', model: 'y' }), g({ id: 'gr-3', principal: 'app:a', model: 'x' })];
    expect(groupGrants(rows, 'principal').map(([k, r]) => [k, r.map((x) => x.id)])).toEqual([
      ['app:a', ['gr-1', 'gr-3']],
      ['app:b', ['gr-2']],
    ]);
    expect(groupGrants(rows, 'model').map(([k]) => k)).toEqual(['x', 'y']);
  });

  it('warns about grants expiring within two weeks, and expired ones', () => {
    const at = '2027-01-01T00:00:00.000Z';
    expect(expiryBadge(g({ expiresAt: at, expiresInDays: 30 }))).toBeNull();
    expect(expiryBadge(g({ expiresAt: at, expiresInDays: 3 }))).toEqual({ text: 'expires in 3 days', className: 'badge-unconfirmed' });
    expect(expiryBadge(g({ expiresAt: at, expiresInDays: 0 }))?.text).toBe('expires today');
    expect(expiryBadge(g({ expiresAt: at, expiresInDays: -1 }))?.text).toBe('expired');
    expect(expiryBadge(g({ expiresAt: at, expiresInDays: 1, revokedAt: at }))).toBeNull();
    expect(expiryBadge(g({}))).toBeNull();
  });

  it('names the selector with what it resolves to', () => {
    expect(selectorText(g({ resolved: { version: '1.2.0', digest: 'sha256:x', classification: 'internal' } }))).toBe('latest approved (1.2.0)');
    expect(selectorText(g({ selector: { exact: '2.0' } }))).toBe('2.0');
  });
});

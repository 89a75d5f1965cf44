import type { Grant, HostPolicyState } from '../../../shared/contract/access';

/** Grants grouped by principal or by model, groups and rows in a stable order. */
export function groupGrants(grants: readonly Grant[], by: 'principal' | 'model'): Array<[string, Grant[]]> {
  const m = new Map<string, Grant[]>();
  for (const g of grants) {
    const k = by === 'principal' ? g.principal : g.model;
    m.set(k, [...(m.get(k) ?? []), g]);
  }
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, rows]) => [k, [...rows].sort((a, b) => (a.id < b.id ? -1 : 1))]);
}

export const selectorText = (g: Pick<Grant, 'selector' | 'resolved'>): string =>
  g.selector === 'latest-approved' ? `latest approved${g.resolved ? ` (${g.resolved.version})` : ''}` : g.selector.exact;

/** Days a grant may run out within and be warned about. */
export const EXPIRY_WARNING_DAYS = 14;

/** The warning beside a grant's expiry: expired, or expiring within {@link EXPIRY_WARNING_DAYS}; null otherwise. */
export function expiryBadge(g: Pick<Grant, 'expiresInDays' | 'expiresAt' | 'revokedAt'>): { text: string; className: string } | null {
  if (g.expiresAt === null || g.expiresInDays === null || g.revokedAt) return null;
  if (g.expiresInDays < 0) return { text: 'expired', className: 'badge-error' };
  if (g.expiresInDays < EXPIRY_WARNING_DAYS) return { text: g.expiresInDays === 0 ? 'expires today' : `expires in ${g.expiresInDays} day${g.expiresInDays === 1 ? '' : 's'}`, className: 'badge-unconfirmed' };
  return null;
}

export function stateClass(s: HostPolicyState): string {
  return s === 'ok' ? 'badge-reachable' : s === 'pending' ? 'badge-unconfirmed' : s === 'unreachable' ? 'badge-unreachable' : 'badge-error';
}

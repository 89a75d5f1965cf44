import { describe, expect, it } from 'vitest';
import { Roles, type Role } from '../../shared/domain/roles';
import { can } from '../api';
import { NAV } from '../App';

// The nav each combination of roles saw before the registry (the old NAV list in App.tsx, each item
// hidden when the roles cannot call the channel it needs): the registry must show the same.
const before: Record<string, string[]> = {
  admin: ['hosts', 'terminal', 'provision', 'audit', 'approvals', 'identity', 'users', 'account'],
  officer: ['hosts', 'provision', 'audit', 'approvals', 'identity', 'account'],
  auditor: ['hosts', 'provision', 'audit', 'approvals', 'identity', 'account'],
};

function combos(): Role[][] {
  const out: Role[][] = [];
  for (let mask = 1; mask < 1 << Roles.length; mask++) out.push(Roles.filter((_, i) => mask & (1 << i)));
  return out;
}

const navFor = (roles: Role[]) => NAV.filter((n) => can(roles, n.needs)).map((n) => n.view);

describe('the old nav', () => {
  it('shows each role what it showed', () => {
    for (const r of Roles) expect(navFor([r]), r).toEqual(before[r]);
  });
  it('shows several roles the union of theirs, in nav order', () => {
    const order = before.admin!;
    for (const roles of combos()) {
      const union = new Set(roles.flatMap((r) => before[r]!));
      expect(navFor(roles), roles.join('+')).toEqual(order.filter((v) => union.has(v)));
    }
  });
});

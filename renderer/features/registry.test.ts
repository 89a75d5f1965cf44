import { describe, expect, it } from 'vitest';
import { Roles, type Role } from '../../shared/domain/roles';
import { features, navFor } from './registry';

// The nav each combination of roles saw before the registry (the old NAV list in App.tsx, each item
// hidden when the roles cannot call the channel it needs), with Keys (issue 12) after Approvals and Grants (issue 13) after Keys:
// the registry must show the same.
const before: Record<string, string[]> = {
  admin: ['hosts', 'terminal', 'provision', 'audit', 'approvals', 'keys', 'models', 'grants', 'identity', 'users', 'account'],
  officer: ['hosts', 'provision', 'audit', 'approvals', 'keys', 'models', 'grants', 'identity', 'account'],
  auditor: ['hosts', 'provision', 'audit', 'approvals', 'keys', 'models', 'grants', 'identity', 'account'],
};
// The old nav's labels (also the top bar's title); e2e tests and people find pages by them.
const labels: Record<string, string> = {
  hosts: 'Hosts',
  terminal: 'Terminal',
  provision: 'Provisioning',
  audit: 'Audit',
  approvals: 'Approvals',
  keys: 'Keys',
  models: 'Models',
  grants: 'Grants',
  identity: 'Identity',
  users: 'Users',
  account: 'My account',
};

function combos(): Role[][] {
  const out: Role[][] = [];
  for (let mask = 1; mask < 1 << Roles.length; mask++) out.push(Roles.filter((_, i) => mask & (1 << i)));
  return out;
}

const ids = (roles: Role[]) => navFor(roles).map((f) => f.id);

describe('the feature registry', () => {
  it('gives every feature a unique id and a label', () => {
    expect(new Set(features.map((f) => f.id)).size).toBe(features.length);
    for (const f of features) expect(f.label, f.id).toBe(labels[f.id]);
  });
  it('names only real roles, and every feature is seen by someone', () => {
    for (const f of features) {
      expect(f.roles.length, f.id).toBeGreaterThan(0);
      for (const r of f.roles) expect(Roles, `${f.id}: ${r}`).toContain(r);
    }
  });
  it('shows each role the nav it saw before', () => {
    for (const r of Roles) expect(ids([r]), r).toEqual(before[r]);
  });
  it('shows several roles the union of theirs, in nav order', () => {
    const order = before.admin!;
    for (const roles of combos()) {
      const union = new Set(roles.flatMap((r) => before[r]!));
      expect(ids(roles), roles.join('+')).toEqual(order.filter((v) => union.has(v)));
    }
  });
  it('keeps the terminal and provisioning mounted while hidden, as before', () => {
    expect(features.filter((f) => f.keepMounted).map((f) => f.id)).toEqual(['terminal', 'provision']);
  });
  it('puts a badge only on approvals', () => {
    expect(features.filter((f) => f.badge).map((f) => f.id)).toEqual(['approvals']);
  });
});

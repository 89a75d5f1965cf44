import { describe, expect, it } from 'vitest';
import { Roles } from '../../shared/domain/roles';
import { features, navFor } from './registry';
import { parseRoute, resolveRoute, routeHash } from './route';

describe('parseRoute', () => {
  it('reads the feature id of a hash route', () => {
    expect(parseRoute('#/hosts')).toBe('hosts');
    expect(parseRoute('#/audit/')).toBe('audit');
    expect(parseRoute('#/Terminal')).toBe('terminal');
  });
  it('names no route for an empty fragment, the one-time link, or anything else', () => {
    for (const h of ['', '#', '#/', '#token=abcdefghijklmnopqrstuvwx', '#hosts', '#//hosts', '#/hosts/x', '#/../x', '#/1abc', '#/a b', `#/${'a'.repeat(80)}`]) {
      expect(parseRoute(h), h).toBeNull();
    }
  });
  it('is the inverse of routeHash for every feature', () => {
    for (const f of features) expect(parseRoute(routeHash(f.id))).toBe(f.id);
  });
});

describe('resolveRoute', () => {
  it('shows the view a route names when the roles allow it; the route is canonical', () => {
    for (const r of Roles) {
      for (const f of navFor([r])) {
        const got = resolveRoute(routeHash(f.id), features, [r]);
        expect(got, `${r} ${f.id}`).toEqual({ kind: 'view', feature: f, canonical: true });
      }
    }
  });
  it('sends no route, and an unknown one, to the first view the roles allow (to be rewritten)', () => {
    for (const r of Roles) {
      const first = navFor([r])[0]!;
      for (const h of ['', '#', '#/nope', '#token=abcdefghijklmnopqrstuvwx', '#/hosts/extra']) {
        expect(resolveRoute(h, features, [r]), `${r} ${h}`).toEqual({ kind: 'view', feature: first, canonical: false });
      }
    }
  });
  it('a non-canonical spelling of a real route is shown and rewritten', () => {
    const got = resolveRoute('#/Audit/', features, ['auditor']);
    expect(got.kind === 'view' && got.feature.id === 'audit' && !got.canonical).toBe(true);
  });
  it('says a real view is not available to the roles, with the first allowed view as the way out', () => {
    const got = resolveRoute('#/users', features, ['auditor']);
    expect(got.kind).toBe('forbidden');
    if (got.kind !== 'forbidden') return;
    expect(got.feature.id).toBe('users');
    expect(got.fallback?.id).toBe(navFor(['auditor'])[0]!.id);
    expect(resolveRoute('#/terminal', features, ['officer']).kind).toBe('forbidden');
  });
  it('shows nothing when the roles see no view', () => {
    expect(resolveRoute('#/hosts', [], ['admin'])).toEqual({ kind: 'none' });
  });
});

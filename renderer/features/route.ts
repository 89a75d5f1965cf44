import type { Role } from '../../shared/domain/roles';
import { sees, type Feature } from './feature';

/**
 * Views have hash routes: `#/hosts`, `#/audit`. The route of a view is its feature id.
 *
 * Why the fragment: Electron loads the renderer from `app://airlock/index.html` and refuses every
 * navigation (docs/security.md, item 13); a change of the fragment is an in-page navigation, which
 * `will-navigate` does not see, so Back, Forward and deep links work in both shells without a
 * server that answers every path. The browser shell's one-time link also uses the fragment
 * (`#token=…`): that is not a route, and api.ts removes it before the console reads the route.
 */

/** The fragment of a view's route. */
export function routeHash(id: string): string {
  return `#/${id}`;
}

/**
 * The feature id a fragment names, or null when it names none (empty, `#`, `#/`, the one-time
 * link's `#token=…`, or anything that is not `#/<id>`). A trailing slash is tolerated and an id
 * is compared in lower case, so a hand-typed `#/Hosts/` still works.
 */
export function parseRoute(hash: string): string | null {
  const m = /^#\/([A-Za-z][A-Za-z0-9-]{0,63})\/?$/.exec(hash);
  return m ? m[1]!.toLowerCase() : null;
}

export type Resolved =
  /** The view to show; `canonical` false: the address bar should be rewritten to its route. */
  | { kind: 'view'; feature: Feature; canonical: boolean }
  /** A real view the roles do not include: say so, rather than silently show another. */
  | { kind: 'forbidden'; feature: Feature; fallback: Feature | null }
  /** The roles see no view at all (cannot happen with today's registry: account is everyone's). */
  | { kind: 'none' };

/**
 * What the console shows for a fragment.
 * - no route or an unknown one → the first view the roles allow (the address bar is rewritten to
 *   it, replacing the entry, so Back does not return to the dead link);
 * - a view the roles do not allow → "not available to your roles" with a link to the first view:
 *   a link shared by a colleague with another role must not look broken or land somewhere
 *   unexplained, and the address is kept, so a hand-over to someone with the role lands on it.
 */
export function resolveRoute(hash: string, all: readonly Feature[], roles: readonly Role[]): Resolved {
  const allowed = all.filter((f) => sees(roles, f));
  const first = allowed[0] ?? null;
  const id = parseRoute(hash);
  const feature = id === null ? undefined : all.find((f) => f.id === id);
  if (feature && sees(roles, feature)) return { kind: 'view', feature, canonical: hash === routeHash(feature.id) };
  if (feature) return { kind: 'forbidden', feature, fallback: first };
  return first ? { kind: 'view', feature: first, canonical: false } : { kind: 'none' };
}

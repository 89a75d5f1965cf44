import type { Db } from '../../db/db';
import { catalogVersions, resolve } from './policy';

/**
 * What an approval of a phi grant is bound to (approvals/approvals.ts TargetBinding 'grant'): the
 * principal's identity (its random uid: a principal disabled, or removed and made again under the
 * same id, is another object) and the version the selector names at filing, by manifest digest.
 * Approval and execution both refuse when either changed, so an approval given for one grant
 * cannot be replayed onto another principal or another version.
 */
export interface GrantTargetState {
  principal: string | null;
  disabled: boolean;
  version: string | null;
  digest: string | null;
}

/** `name` is "<principal> <model> <exact version | latest approved version>" (guards.ts). */
export function grantTargetState(db: Db, name: string): GrantTargetState {
  const [principal = '', model = '', ...rest] = name.split(' ');
  const sel = rest.join(' ');
  const p = db.prepare('SELECT uid, disabled_at FROM access_principals WHERE id = ?').get(principal) as { uid: string; disabled_at: string | null } | undefined;
  const versions = catalogVersions(db);
  let v: { version: string; manifest_digest: string | null } | null;
  if (sel === 'latest approved version') v = resolve(versions, model, 'latest-approved');
  else v = versions.find((x) => x.model === model && x.version === sel) ?? null;
  return { principal: p?.uid ?? null, disabled: p ? p.disabled_at !== null : false, version: v?.version ?? null, digest: v?.manifest_digest ?? null };
}

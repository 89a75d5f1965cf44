import type { Restriction } from '../../../shared/contract/session';
import type { Role } from '../../../shared/domain/roles';

/** Production policy: administrators and security officers must use TOTP. */
export const DEFAULT_TOTP_ROLES: readonly Role[] = ['admin', 'officer'];

/**
 * The lab/test switch, read by the shells only (the core never reads the environment):
 * AIRLOCK_TOTP_POLICY=off → no role must enrol TOTP (a warning is shown in session:status);
 * unset or 'required' → the production default. Anything else is refused so a typo cannot
 * silently weaken an installation.
 */
export function totpPolicyFromEnv(value: string | undefined): Role[] {
  if (value === undefined || value === '' || value === 'required') return [...DEFAULT_TOTP_ROLES];
  if (value === 'off') return [];
  throw new Error(`AIRLOCK_TOTP_POLICY must be "off" or "required", not "${value}"`);
}

export function totpRequired(roles: readonly Role[], requireTotpFor: readonly Role[]): boolean {
  return roles.some((r) => requireTotpFor.includes(r));
}

/** What a session must do before anything else: its own password first, then TOTP enrolment. */
export function restrictionFor(
  u: { roles: readonly Role[]; mustChangePassword: boolean; totpEnrolled: boolean },
  requireTotpFor: readonly Role[],
): Restriction | null {
  if (u.mustChangePassword) return 'password-change';
  if (!u.totpEnrolled && totpRequired(u.roles, requireTotpFor)) return 'totp-enrolment';
  return null;
}

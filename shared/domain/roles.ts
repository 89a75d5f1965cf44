export const Roles = ['admin', 'officer', 'auditor'] as const;
export type Role = (typeof Roles)[number];

/** A role as people say it. */
export const ROLE_WORDS: Record<Role, string> = { admin: 'an administrator', officer: 'a security officer', auditor: 'an auditor' };

/** "an administrator or a security officer": who may do something, in words. */
export function rolesInWords(roles: readonly Role[]): string {
  const w = roles.map((r) => ROLE_WORDS[r]);
  return w.length <= 1 ? (w[0] ?? 'nobody') : `${w.slice(0, -1).join(', ')} or ${w[w.length - 1]}`;
}

/** The refusal of a call the person's roles do not allow, in words (no channel names). */
export function forbiddenMessage(allowed: readonly Role[], held: readonly Role[]): string {
  return `Only ${rolesInWords(allowed)} can do this; you are signed in as ${held.length ? rolesInWords(held).replace(/ or /, ' and ') : 'nobody with a role'}.`;
}

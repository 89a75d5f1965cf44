import { z } from 'zod';
import './words';
import { Roles } from '../domain/roles';
import { hiddenCharProblem } from '../domain/visible-text';

export const NoInput = z.object({}).strict();
export const Empty = z.object({}).strict();
export const RoleSchema = z.enum(Roles);

/**
 * Names Airlock accepts as identifiers (users, hosts, labels, playbooks, steps, models) are ASCII
 * by their patterns, so an invisible or control character (zero-width, bidi control, tag character,
 * Hangul filler, soft hyphen, U+2028…) is refused at input and two names never look alike; the
 * contract test (names.test.ts) holds every identifier schema to that. Free text other people read
 * (reasons, titles) goes through {@link visibleText}.
 */
export function visibleText<T extends z.ZodType<string>>(schema: T, opts: { allow?: string } = {}) {
  return schema.superRefine((s, ctx) => {
    const problem = hiddenCharProblem(s, opts);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** Local user names: short, printable, no whitespace; they appear in audit records and shells. */
export const UserName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z_][a-z0-9_.-]*$/, 'lower-case letters, digits, _ . - ; starting with a letter or _');
export const Password = z.string().min(1).max(1024);
/**
 * New passwords: transport bounds only. The policy (shared/domain/password-policy.ts: length 12–256,
 * not the user name, not a common password) is enforced by the core as WEAK_PASSWORD, with a message
 * naming the rule; the UI may run `passwordProblem` itself for live feedback.
 */
export const NewPassword = z.string().min(1).max(1024);

/** Host names in Airlock's inventory (not DNS names). */
export const HostName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - ; starting with a letter or digit');
/** A DNS name or an IPv4/IPv6 literal. No spaces, no shell metacharacters. */
export const Address = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:_-]+$/, 'a host name or IP address');
export const Port = z.number().int().min(1).max(65535);
/** POSIX login names. */
export const SshUser = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[a-z_][a-z0-9_.-]*\$?$/i, 'a POSIX user name');
/** OpenSSH's SHA256 fingerprint form: `SHA256:` + unpadded base64 of 32 bytes. */
export const Fingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'SHA256:<43 base64 characters>');
export const RequestId = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/);
/** Text files handed over by a shell (known_hosts, ssh_config): the core never takes a path from the UI. */
export const FileText = z.string().max(1024 * 1024);

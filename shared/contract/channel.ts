import type { z } from 'zod';
import type { Role } from '../domain/roles';

/**
 * A channel is one operation the UI or the CLI may ask the core for.
 * `roles: 'public'` is reserved for the few calls that must work without a
 * session (first-run setup, login, status). Everything else names its roles.
 */
export interface ChannelDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  in: I;
  out: O;
  roles: readonly Role[] | 'public';
  /** One line for docs, the CLI help and the audit view. */
  summary: string;
  /**
   * Input fields that must never reach the audit trail (passwords, keystrokes).
   * They are replaced by "[redacted]" in the audited parameters.
   */
  secret?: readonly string[];
  /** Whether the event is audited. 'io' = streaming I/O on an already-audited session (terminal keystrokes). */
  audit?: 'always' | 'io';
  /**
   * Sensitive: the session must have proved its password (and TOTP code when enrolled) within the
   * step-up window — at sign-in or with `session:stepUp` — else the call is refused with
   * STEP_UP_REQUIRED before anything runs. Checked after the role check and the input parse.
   */
  stepUp?: boolean;
  /**
   * Callable by a restricted session: one that must first choose its own password
   * (PASSWORD_CHANGE_REQUIRED) or enrol TOTP (TOTP_ENROLMENT_REQUIRED). Everything else is refused.
   */
  whileRestricted?: boolean;
  /** Polling (badges): the call does not reset the session's idle timer. */
  passive?: boolean;
  /**
   * Two-person rule: the operation (a row of the approval policy) this channel may trigger. The core
   * decides per input (e.g. users:create only when the roles include admin); when it applies and the
   * policy requires it, a direct call is refused with APPROVAL_REQUIRED and must go through
   * approvals:request → approvals:approve (another person) → approvals:execute.
   */
  twoPerson?: string;
}

export function channel<I extends z.ZodType, O extends z.ZodType>(def: ChannelDef<I, O>): ChannelDef<I, O> {
  return def;
}

/** A server → client event stream declared in the contract (terminal bytes, progress). */
export interface EventDef<P extends z.ZodType = z.ZodType> {
  payload: P;
  summary: string;
}
export function event<P extends z.ZodType>(def: EventDef<P>): EventDef<P> {
  return def;
}

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

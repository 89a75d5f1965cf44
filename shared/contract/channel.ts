import type { z } from 'zod';
import type { Role } from '../domain/roles';
// Type-only: approvals.ts builds its channels with `channel()` from here, so a value import would be a cycle.
import type { ApprovalOperation } from './approvals';

/** The input fields of a schema whose parsed value is a string (a target or an actor must be one). */
type StringField<I extends z.ZodType> = {
  [K in keyof z.output<I>]-?: z.output<I>[K] extends string | undefined ? K : never;
}[keyof z.output<I>] &
  string;

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
  /**
   * What the trail records (docs/security.md, "What is audited"). Default 'always': a request event
   * before the service runs (fail-closed) and an outcome event after.
   * 'io' = streaming I/O on an already-audited session (terminal keystrokes): nothing per call.
   * 'quiet-read' = a routine read the console makes by itself to draw its own frame, that changes
   * nothing and shows the caller nothing beyond their own session: a success is not recorded;
   * every refusal (unknown session, role, input) and every error still is, as for any channel.
   */
  audit?: 'always' | 'io' | 'quiet-read';
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
  twoPerson?: ApprovalOperation;
  /**
   * The object the call acts on, recorded as the audit event's `target` (what audit:list's target
   * filter finds): an input field (recorded when the caller gave it), or a function of the parsed
   * input for a call whose object depends on which fields are given. `null` says deliberately that
   * the call acts on no one object although its input has a field that looks like one (a numeric
   * approval id, which the parameters record). Omitted: no target. Every channel whose input has a
   * `name`, `host`, `address` or `id` field declares one (electron/core/dispatch.test.ts walks the
   * contract).
   */
  target?: StringField<I> | ((input: z.output<I>) => string | null) | null;
  /**
   * `'opens'`: the call signs the client in (session:login, session:setup). There is no session
   * before it: the request event's actor is the input field `actor` names, and the outcome event
   * names the session the call opened (every other call's outcome names the session it started with).
   */
  session?: 'opens';
  /** With `session: 'opens'`: the input field naming who signs in, the request event's actor. */
  actor?: StringField<I>;
  /**
   * The input carries another channel's call (approvals:request files one to run later): the
   * fields holding its channel name and its input. The carried input's secrets are redacted from
   * the trail by that channel's own `secret` declaration.
   */
  carries?: { channel: StringField<I>; input: string & keyof z.output<I> };
}

export function channel<I extends z.ZodType, O extends z.ZodType>(def: ChannelDef<I, O>): ChannelDef<I, O> {
  return def;
}

/** A server → client event stream declared in the contract (terminal bytes, progress). */
export interface EventDef<P extends z.ZodType = z.ZodType> {
  payload: P;
  summary: string;
  /**
   * Set on events the core pushes to every signed-in client rather than to the one that asked
   * (`approvals:changed`): the channel whose checks a client's session must pass to receive it
   * (its roles, and no restriction unless the channel is `whileRestricted`). Events without it go
   * only to the client whose call produced them (terminal bytes, progress).
   */
  audience?: string;
  /**
   * What happens when the client reads slower than events arrive: its outgoing queue (bounded by
   * bytes, electron/core/outbox.ts) is over the high-water mark. `'pause'`: every byte must arrive
   * (terminal output): the producer pauses its source (the SSH channel) until the queue is below
   * the low-water mark. `{ latest }`: only the latest state matters (progress): a queued event with
   * the same key is replaced by the new one, and counted as dropped. Omitted: small, rare events
   * (an exit, a version ping), always queued.
   */
  flow?: 'pause' | { latest: (payload: z.output<P>) => string };
}
export function event<P extends z.ZodType>(def: EventDef<P>): EventDef<P> {
  return def;
}

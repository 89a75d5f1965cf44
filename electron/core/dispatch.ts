import type { z } from 'zod';
import type { ChannelDef } from '../../shared/contract/channel';
import { channels, isChannelName, type ChannelName } from '../../shared/contract/index';
import { forbiddenMessage } from '../../shared/domain/roles';
import { AirlockError, type AirlockErrorShape, type Result } from '../../shared/domain/errors';
import type { Actor, ApprovedCall } from './approvals/approvals';
import type { AuditTrail } from './audit/audit';
import { recordParams, type AuditHmac } from './audit/params';
import type { Caller } from './provision/engine';
import type { Sessions } from './session/sessions';
import type { SshAuth } from './ssh/connection';
import { sanitizeHostText } from './ssh/sanitize';
import type { ClientContext, SessionInfo } from './types';
import type { AccountState } from './users/users';

/**
 * The call's session facts and credentials, as a handler asks for them: built for each call by the
 * core's `callTools` (session/call-tools.ts) from the session, so no handler derives them on its own. Each throws
 * UNAUTHENTICATED when the call has no session.
 */
export interface CallTools {
  /** The signed-in user acting, with the vault key their session holds. */
  actor(): Actor;
  /** The same without the vault key: who is looking or deciding. */
  viewer(): Omit<Actor, 'vaultKey'>;
  /** Credentials for SSH: Airlock's own key, unsealed with this session's vault key, and the agent if configured. */
  sshAuth(): SshAuth;
  /** Who runs a long operation (provisioning), with what credentials, reporting progress to this client. */
  caller(): Caller;
  /**
   * For a run of an approved request: the object it acts on must still be the one approved (CONFLICT
   * otherwise), checked after the request event was written; for an account, its approved state is
   * returned to be checked again inside the change's own transaction. Nothing to check otherwise.
   */
  approvedTarget(): AccountState | undefined;
}

/** What a service handler receives besides its parsed input. */
export interface CallContext extends CallTools {
  client: ClientContext;
  /** Null only for 'public' channels. */
  session: SessionInfo | null;
  /** Aborted when the client cancels (ops:cancel) or disconnects. */
  signal: AbortSignal;
  requireSession(): SessionInfo;
  /** The sequence number of this call's audited request event (null for 'io' channels). */
  requestSeq: number | null;
  /** Set when approvals:execute runs this call: the approval, with the object it is bound to. */
  approval: ApprovedCall | null;
  /** Facts the handler adds to its outcome event (what range was read, which file was exported). */
  auditDetail(detail: Record<string, unknown>): void;
}

export type Handler<C extends ChannelName> = (
  ctx: CallContext,
  input: z.output<(typeof channels)[C]['in']>,
) => Promise<z.input<(typeof channels)[C]['out']>> | z.input<(typeof channels)[C]['out']>;

export type Handlers = { [C in ChannelName]: Handler<C> };

/** The channels of one area, by prefix: `AreaChannels<'hosts'>` is every `hosts:*` channel. */
export type AreaChannels<A extends string> = Extract<ChannelName, `${A}:${string}`>;
/** One area's handlers (`<area>/handlers.ts`): exactly its channels, so a missing or an extra one does not compile. */
export type AreaHandlers<A extends string> = Pick<Handlers, AreaChannels<A>>;

export interface DispatcherDeps {
  handlers: Handlers;
  /** The session facts of each call (see CallTools), built from the rest of its context. */
  callTools: (ctx: Omit<CallContext, keyof CallTools>) => CallTools;
  audit: AuditTrail;
  sessions: Sessions;
  /** Operations that may be cancelled, keyed by client and requestId. */
  ops: Operations;
  /**
   * Refuses (AUDIT_ALARM) a channel that may not run while an audit alarm is open: the trail does
   * not extend its trusted head (electron/core/audit/alarm.ts). Null when the call may run.
   */
  gate?: (name: ChannelName) => AirlockError | null;
  /** HMAC of secret parameters under the audit key (null while it is sealed: "[redacted]"). */
  auditHmac?: AuditHmac;
  /**
   * The two-person rule for channels that declare `twoPerson`: null when the call may run, else the
   * refusal (APPROVAL_REQUIRED, or CONFLICT when an approved run's input differs from the approval).
   */
  approvalGate?: (
    name: ChannelName,
    input: Record<string, unknown>,
    session: SessionInfo,
    approved: ApprovedCall | undefined,
  ) => AirlockError | null;
}

/** Passed by approvals:execute only: this call runs an approved request; `ran` tells whether the service started. */
export interface ApprovedRun {
  approval: ApprovedCall;
  ran: boolean;
}

/**
 * The one way in. In order: session → role → parse input → audit the request
 * (fail-closed: if it cannot be written the service never runs) → service →
 * audit the outcome → parse output → `{ ok, value } | { ok: false, error }`.
 * Refusals are audited on every channel; what a channel's `audit` setting leaves out is its
 * successful calls only ('io': terminal keystrokes; 'quiet-read': the console's own status reads).
 *
 * Events go through the trail's group commit (`appendAsync`): the calls of many clients in
 * flight share one transaction, and each await returns only once its event has committed.
 */
export class Dispatcher {
  constructor(private readonly deps: DispatcherDeps) {}

  async dispatch(client: ClientContext, name: unknown, rawInput: unknown, run?: ApprovedRun): Promise<Result<unknown>> {
    const channelLabel = typeof name === 'string' ? name.slice(0, 64).replace(/[^\x20-\x7e]/g, '?') : '<not a string>';
    if (!isChannelName(name)) {
      return await this.refuse(client, null, channelLabel, null, new AirlockError('UNKNOWN_CHANNEL', `No channel named "${channelLabel}".`));
    }
    const def = channels[name] as unknown as ChannelDef;

    let session: SessionInfo | null = null;
    if (def.roles !== 'public') {
      session = this.deps.sessions.get(client.session?.id, { touch: !def.passive });
      if (!session) {
        client.session = null;
        return await this.refuse(client, null, name, null, new AirlockError('UNAUTHENTICATED', 'Sign in first.'));
      }
      const allowed = def.roles;
      if (!session.roles.some((r) => allowed.includes(r))) {
        return await this.refuse(
          client,
          session,
          name,
          null,
          new AirlockError('FORBIDDEN', forbiddenMessage(allowed, session.roles)),
        );
      }
      // After the role check, so a restriction never masks FORBIDDEN.
      if (session.restriction && !def.whileRestricted) {
        return await this.refuse(client, session, name, null, restrictedError(session.restriction));
      }
    }

    const parsed = def.in.safeParse(rawInput ?? {});
    if (!parsed.success) {
      // Paths and messages can echo attacker-chosen keys: cleaned and bounded before they travel.
      const msg = sanitizeHostText(
        parsed.error.issues
          .slice(0, 5)
          .map((i) => `${i.path.map((p) => String(p).slice(0, 64)).join('.') || 'input'}: ${i.message.slice(0, 200)}`)
          .join('; '),
        1000,
      );
      return await this.refuse(client, session, name, null, new AirlockError('INVALID_INPUT', `Not accepted — ${msg}.`));
    }
    const input = parsed.data as Record<string, unknown>;
    const target = targetOf(def, input);

    // Fail-closed on a trail that does not extend its trusted head: only sign-in and reading run.
    const alarm = this.deps.gate?.(name) ?? null;
    if (alarm) return await this.refuse(client, session, name, target, alarm);

    // Step-up and the two-person rule come after role and input checks: they never mask FORBIDDEN
    // or INVALID_INPUT, and the person is asked to re-authenticate only for a call that can run.
    if (session && def.stepUp && !this.deps.sessions.steppedUp(session.id)) {
      return await this.refuse(
        client,
        session,
        name,
        target,
        new AirlockError('STEP_UP_REQUIRED', 'This is a sensitive operation: confirm your password (and your TOTP code, if you use one) to continue.'),
      );
    }
    if (session && def.twoPerson && this.deps.approvalGate) {
      const refusal = this.deps.approvalGate(name, input, session, run?.approval);
      if (refusal) return await this.refuse(client, session, name, target, refusal);
    }
    const actor = session?.user ?? publicActor(def, input);
    // 'io' and 'quiet-read' channels write no request event; a quiet read that fails is recorded below.
    const audited = def.audit === undefined || def.audit === 'always';

    // Registered before the request is audited, so an ops:cancel sent meanwhile is not lost.
    const op = this.deps.ops.start(client, input.requestId);
    let requestSeq: number | null = null;
    if (audited) {
      try {
        // Committed before the service runs (fail-closed); awaited with the other calls in flight.
        const request = await this.deps.audit.appendAsync({
          actor,
          principal: session?.uid ?? null,
          roles: session?.roles ?? [],
          session: session ? sessionRef(session.id) : null,
          shell: `${client.shell}:${client.source}`,
          channel: name,
          phase: 'request',
          target,
          params: auditParams(def, input, run, this.deps.auditHmac),
          outcome: 'pending',
          errorCode: null,
        });
        requestSeq = request.seq;
      } catch (e) {
        op.done();
        return { ok: false, error: toShape(e) };
      }
    }

    let detail: Record<string, unknown> | null = null;
    const base: Omit<CallContext, keyof CallTools> = {
      client,
      session,
      signal: op.signal,
      requireSession: () => {
        if (!session) throw new AirlockError('UNAUTHENTICATED', 'Sign in first.');
        return session;
      },
      requestSeq,
      approval: run?.approval ?? null,
      auditDetail: (d) => {
        detail = { ...(detail ?? {}), ...recordParams(d, undefined) };
      },
    };
    const ctx: CallContext = { ...base, ...this.deps.callTools(base) };
    let result: Result<unknown>;
    if (run) run.ran = true;
    try {
      // Awaiting the request event let other calls run: the session checked above must still be
      // signed in, with the same roles and no new restriction or lapsed step-up, or nothing runs.
      if (session && audited) this.recheck(session, def);
      const value = await (this.deps.handlers[name] as (c: CallContext, i: unknown) => unknown)(ctx, input);
      const out = def.out.safeParse(value);
      if (!out.success) {
        // A service returned something the contract does not allow: a bug, never shown raw.
        result = { ok: false, error: { code: 'INTERNAL', message: `${name} produced an invalid result.` } };
      } else {
        result = { ok: true, value: out.data };
      }
    } catch (e) {
      result = { ok: false, error: toShape(e) };
    } finally {
      op.done();
    }

    if (def.audit === 'quiet-read' && !result.ok) {
      // Only a quiet read's success goes unrecorded: its failure is on the trail like a refusal.
      const recorded = await this.record(client, session, name, target, 'error', result.error.code);
      if (recorded) return recorded;
    }
    if (audited) {
      // A call that opens a session (its declaration) is recorded under the session it opened;
      // any other under the one it started with (a logout's outcome names who signed out).
      const after = def.session === 'opens' ? client.session : session;
      try {
        await this.deps.audit.appendAsync({
          actor: after?.user ?? actor,
          principal: after?.uid ?? session?.uid ?? null,
          roles: after?.roles ?? session?.roles ?? [],
          session: after ? sessionRef(after.id) : null,
          shell: `${client.shell}:${client.source}`,
          channel: name,
          phase: 'outcome',
          target,
          params: detail ? { request: requestSeq, detail } : { request: requestSeq },
          outcome: result.ok ? 'ok' : 'error',
          errorCode: result.ok ? null : result.error.code,
        });
      } catch (e) {
        // The action happened and its request is on record; the caller must know the outcome is not.
        return { ok: false, error: toShape(e) };
      }
    }
    return result;
  }

  private recheck(was: SessionInfo, def: ChannelDef): void {
    const now = this.deps.sessions.get(was.id, { touch: false });
    if (!now) throw new AirlockError('UNAUTHENTICATED', 'The session ended while the call was being recorded; sign in again.');
    if (now.uid !== was.uid || now.user !== was.user || now.roles.join(',') !== was.roles.join(',') || !now.roles.some((r) => def.roles.includes(r))) {
      throw new AirlockError('FORBIDDEN', 'Your roles changed while the call was being recorded; it was not run.');
    }
    if (now.restriction && !def.whileRestricted) throw restrictedError(now.restriction);
    if (def.stepUp && !this.deps.sessions.steppedUp(was.id)) throw new AirlockError('STEP_UP_REQUIRED', 'Re-authenticate to continue.');
  }

  /** Every refusal is audited, on every channel (also 'io' and 'quiet-read' ones). */
  private async refuse(
    client: ClientContext,
    session: SessionInfo | null,
    channel: string,
    target: string | null,
    err: AirlockError,
  ): Promise<Result<unknown>> {
    return (await this.record(client, session, channel, target, 'refused', err.code)) ?? { ok: false, error: err.toJSON() };
  }

  /** One outcome event without a request event; returns the failure to report if it cannot be written. */
  private async record(
    client: ClientContext,
    session: SessionInfo | null,
    channel: string,
    target: string | null,
    outcome: 'refused' | 'error',
    errorCode: string,
  ): Promise<Result<unknown> | null> {
    try {
      await this.deps.audit.appendAsync({
        actor: session?.user ?? '-',
        principal: session?.uid ?? null,
        roles: session?.roles ?? [],
        session: session ? sessionRef(session.id) : null,
        shell: `${client.shell}:${client.source}`,
        channel,
        phase: 'outcome',
        target,
        params: null,
        outcome,
        errorCode,
      });
    } catch (e) {
      return { ok: false, error: toShape(e) };
    }
    return null;
  }
}

/** Cancellable operations per client: ops:cancel aborts by requestId; closing the client aborts all. */
export class Operations {
  private readonly running = new Map<string, AbortController>();
  private anonymous = 0;

  start(client: ClientContext, requestId: unknown): { signal: AbortSignal; done(): void } {
    const ctl = new AbortController();
    let key = typeof requestId === 'string' ? `${client.id}/${requestId}` : `${client.id}/#${++this.anonymous}`;
    // A reused requestId (or ops:cancel naming the operation it cancels) must not replace the running one.
    if (this.running.has(key)) key = `${client.id}/#${++this.anonymous}`;
    this.running.set(key, ctl);
    return {
      signal: ctl.signal,
      done: () => {
        if (this.running.get(key) === ctl) this.running.delete(key);
      },
    };
  }

  cancel(client: ClientContext, requestId: string): boolean {
    const ctl = this.running.get(`${client.id}/${requestId}`);
    if (!ctl) return false;
    ctl.abort();
    return true;
  }

  cancelAll(client: ClientContext): void {
    for (const [key, ctl] of this.running) if (key.startsWith(`${client.id}/`)) ctl.abort();
  }
}

export function toShape(e: unknown): AirlockErrorShape {
  if (e instanceof AirlockError) return e.toJSON();
  // Unexpected errors keep their details out of the UI (paths, stack traces).
  return { code: 'INTERNAL', message: 'Internal error; see the console log.' };
}

/** The audit trail records which session acted, not the session secret itself. */
export function sessionRef(id: string): string {
  return id.slice(0, 8);
}

function restrictedError(r: NonNullable<SessionInfo['restriction']>): AirlockError {
  return r === 'password-change'
    ? new AirlockError('PASSWORD_CHANGE_REQUIRED', 'An administrator set your password: choose your own password first.')
    : new AirlockError('TOTP_ENROLMENT_REQUIRED', 'Your roles require a second factor: set up an authenticator app (TOTP) first.');
}

/**
 * A channel that `carries` another channel's call (approvals:request): that channel's secrets are
 * redacted from the carried input too. A run of an approved request names the approval it runs.
 */
function auditParams(def: ChannelDef, input: Record<string, unknown>, run: ApprovedRun | undefined, hmac: AuditHmac | undefined): unknown {
  let params = input;
  const carries = def.carries as { channel: string; input: string } | undefined;
  if (carries) {
    const channel = input[carries.channel];
    const carried = input[carries.input];
    if (isChannelName(channel) && carried && typeof carried === 'object') {
      const inner = channels[channel] as unknown as ChannelDef;
      params = { ...input, [carries.input]: redact(carried as Record<string, unknown>, inner.secret, hmac) };
    }
  }
  const out = redact(params, def.secret, hmac);
  return run ? { ...(out as Record<string, unknown>), approval: run.approval.id } : out;
}

/** The object the call acts on, as the channel declares it (`target`): a string input field, or a function of the input. */
function targetOf(def: ChannelDef, input: Record<string, unknown>): string | null {
  const t = def.target as string | ((i: Record<string, unknown>) => string | null) | null | undefined;
  if (typeof t === 'function') return t(input);
  if (typeof t !== 'string') return null;
  const v = input[t];
  return typeof v === 'string' ? v : null;
}

/** Who acts before there is a session: the input field a session-opening channel declares (`actor`). */
function publicActor(def: ChannelDef, input: Record<string, unknown>): string {
  const v = def.actor ? input[def.actor as string] : undefined;
  return typeof v === 'string' ? v : '-';
}

/**
 * Secrets never reach the trail (an HMAC or "[redacted]" instead); long texts (an imported
 * known_hosts file) are recorded by digest and size. See electron/core/audit/params.ts.
 */
function redact(input: Record<string, unknown>, secret: readonly string[] | undefined, hmac: AuditHmac | undefined): Record<string, unknown> {
  return recordParams(input, secret, hmac);
}

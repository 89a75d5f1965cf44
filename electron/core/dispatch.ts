import crypto from 'node:crypto';
import type { z } from 'zod';
import type { ChannelDef } from '../../shared/contract/channel';
import { channels, isChannelName, type ChannelName } from '../../shared/contract/index';
import { AirlockError, type AirlockErrorShape, type Result } from '../../shared/domain/errors';
import type { AuditTrail } from './audit/audit';
import type { Sessions } from './auth/sessions';
import type { ClientContext, SessionInfo } from './types';

/** What a service handler receives besides its parsed input. */
export interface CallContext {
  client: ClientContext;
  /** Null only for 'public' channels. */
  session: SessionInfo | null;
  /** Aborted when the client cancels (ops:cancel) or disconnects. */
  signal: AbortSignal;
  requireSession(): SessionInfo;
}

export type Handler<C extends ChannelName> = (
  ctx: CallContext,
  input: z.output<(typeof channels)[C]['in']>,
) => Promise<z.input<(typeof channels)[C]['out']>> | z.input<(typeof channels)[C]['out']>;

export type Handlers = { [C in ChannelName]: Handler<C> };

export interface DispatcherDeps {
  handlers: Handlers;
  audit: AuditTrail;
  sessions: Sessions;
  /** Operations that may be cancelled, keyed by client and requestId. */
  ops: Operations;
}

/**
 * The one way in. In order: session → role → parse input → audit the request
 * (fail-closed: if it cannot be written the service never runs) → service →
 * audit the outcome → parse output → `{ ok, value } | { ok: false, error }`.
 */
export class Dispatcher {
  constructor(private readonly deps: DispatcherDeps) {}

  async dispatch(client: ClientContext, name: unknown, rawInput: unknown): Promise<Result<unknown>> {
    const channelLabel = typeof name === 'string' ? name.slice(0, 64).replace(/[^\x20-\x7e]/g, '?') : '<not a string>';
    if (!isChannelName(name)) {
      return this.refuse(client, null, channelLabel, null, new AirlockError('UNKNOWN_CHANNEL', `No channel named "${channelLabel}".`));
    }
    const def = channels[name] as unknown as ChannelDef;

    let session: SessionInfo | null = null;
    if (def.roles !== 'public') {
      session = this.deps.sessions.get(client.session?.id);
      if (!session) {
        client.session = null;
        return this.refuse(client, null, name, null, new AirlockError('UNAUTHENTICATED', 'Sign in first.'));
      }
      const allowed = def.roles;
      if (!session.roles.some((r) => allowed.includes(r))) {
        return this.refuse(
          client,
          session,
          name,
          null,
          new AirlockError('FORBIDDEN', `${name} needs one of the roles ${allowed.join(', ')}; you have ${session.roles.join(', ')}.`),
        );
      }
    }

    const parsed = def.in.safeParse(rawInput ?? {});
    if (!parsed.success) {
      const msg = parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.join('.') || 'input'}: ${i.message}`)
        .join('; ');
      return this.refuse(client, session, name, null, new AirlockError('INVALID_INPUT', `Invalid input for ${name}: ${msg}`));
    }
    const input = parsed.data as Record<string, unknown>;
    const target = targetOf(input);
    const actor = session?.user ?? publicActor(input);
    const audited = def.audit !== 'io';

    let requestSeq: number | null = null;
    if (audited) {
      try {
        requestSeq = this.deps.audit.append({
          actor,
          roles: session?.roles ?? [],
          session: session ? sessionRef(session.id) : null,
          shell: `${client.shell}:${client.source}`,
          channel: name,
          phase: 'request',
          target,
          params: redact(input, def.secret),
          outcome: 'pending',
          errorCode: null,
        }).seq;
      } catch (e) {
        return { ok: false, error: toShape(e) };
      }
    }

    const op = this.deps.ops.start(client, input.requestId);
    const ctx: CallContext = {
      client,
      session,
      signal: op.signal,
      requireSession: () => {
        if (!session) throw new AirlockError('UNAUTHENTICATED', 'Sign in first.');
        return session;
      },
    };
    let result: Result<unknown>;
    try {
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

    if (audited) {
      // The session may have changed during the call (login, logout).
      const after = name === 'session:login' || name === 'session:setup' ? client.session : session;
      try {
        this.deps.audit.append({
          actor: after?.user ?? actor,
          roles: after?.roles ?? session?.roles ?? [],
          session: after ? sessionRef(after.id) : null,
          shell: `${client.shell}:${client.source}`,
          channel: name,
          phase: 'outcome',
          target,
          params: { request: requestSeq },
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

  private refuse(
    client: ClientContext,
    session: SessionInfo | null,
    channel: string,
    target: string | null,
    err: AirlockError,
  ): Result<unknown> {
    try {
      this.deps.audit.append({
        actor: session?.user ?? '-',
        roles: session?.roles ?? [],
        session: session ? sessionRef(session.id) : null,
        shell: `${client.shell}:${client.source}`,
        channel,
        phase: 'outcome',
        target,
        params: null,
        outcome: 'refused',
        errorCode: err.code,
      });
    } catch (e) {
      return { ok: false, error: toShape(e) };
    }
    return { ok: false, error: err.toJSON() };
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
function sessionRef(id: string): string {
  return id.slice(0, 8);
}

function targetOf(input: Record<string, unknown>): string | null {
  for (const k of ['name', 'host', 'address', 'id']) {
    const v = input[k];
    if (typeof v === 'string') return v;
  }
  return null;
}

function publicActor(input: Record<string, unknown>): string {
  const v = input.name ?? input.admin;
  return typeof v === 'string' ? v : '-';
}

/**
 * Secrets never reach the trail; long texts (an imported known_hosts file) are
 * recorded by digest and size, so the event stays small and still identifies the input.
 */
function redact(input: Record<string, unknown>, secret: readonly string[] | undefined): unknown {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (secret?.includes(k)) out[k] = '[redacted]';
    else if (typeof v === 'string' && v.length > 512) {
      out[k] = { sha256: crypto.createHash('sha256').update(v).digest('hex'), chars: v.length };
    } else out[k] = v;
  }
  return out;
}

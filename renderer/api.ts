/**
 * The renderer's one way to reach the core: a typed client derived from the
 * contract in shared/, over whichever transport the shell provides.
 *
 * - Electron: the preload exposes `window.airlock`, already shaped like `Client`
 *   (per-area functions, no raw IPC). We adapt it to a `Transport` so both
 *   shells go through the same wrapper (error normalisation, sign-out on
 *   UNAUTHENTICATED).
 * - Browser shell (`airlock serve`): `POST /api/call` and a WebSocket on
 *   `/api/events` (docs/serve-protocol.md). The session cookie is HttpOnly;
 *   the page never sees it.
 */
import { createClient, type Client, type Transport } from '../shared/contract/client';
import { areaOf, channels, type ChannelName, type EventName } from '../shared/contract/index';
import type { Role } from '../shared/domain/roles';
import { isErrorShape, type AirlockErrorShape, type Result } from '../shared/domain/errors';

export type ShellKind = 'electron' | 'browser';

declare global {
  interface Window {
    airlock?: Client;
  }
}

/** Something went wrong below the contract (network, bridge): shown like any other error. */
function transportError(message: string): Result<never> {
  return { ok: false, error: { code: 'INTERNAL', message } };
}

function normalise(x: unknown): Result<unknown> {
  if (typeof x === 'object' && x !== null && 'ok' in x) {
    const r = x as { ok: unknown; value?: unknown; error?: unknown };
    if (r.ok === true) return { ok: true, value: r.value };
    if (r.ok === false && isErrorShape(r.error)) return { ok: false, error: r.error };
    if (r.ok === false && typeof r.error === 'object' && r.error !== null) {
      const msg = (r.error as { message?: unknown }).message;
      return transportError(typeof msg === 'string' ? msg : 'The core returned an unrecognised error');
    }
  }
  return transportError('The core returned a malformed response');
}

/** Electron: adapt the preload's per-area object to a Transport. */
function electronTransport(bridge: Client): Transport {
  const b = bridge as unknown as Record<string, Record<string, ((input: unknown) => Promise<unknown>) | undefined>> & {
    on(event: string, listener: (payload: unknown) => void): () => void;
  };
  return {
    async call(channel, input) {
      const area = areaOf(channel);
      const verb = channel.slice(area.length + 1);
      const fn = b[area]?.[verb];
      if (typeof fn !== 'function') return transportError(`The preload does not expose ${channel}`);
      try {
        return normalise(await fn(input));
      } catch (e) {
        return transportError(`IPC failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
    subscribe(event, listener) {
      return b.on(event, listener);
    },
  };
}

type Listener = (payload: unknown) => void;

/**
 * Browser shell: HTTP for calls, one WebSocket for all events, reconnected with
 * exponential back-off (250 ms … 10 s). Events emitted while disconnected are lost;
 * the views that care (terminal) show the closed state on `terminal:exit` or error.
 */
class BrowserTransport implements Transport {
  private readonly listeners = new Map<string, Set<Listener>>();
  private ws: WebSocket | null = null;
  private backoff = 250;
  private readyWaiters: Array<() => void> = [];
  private connected = false;
  private readonly stateListeners = new Set<(connected: boolean) => void>();

  constructor() {
    this.connect();
  }

  async call(channel: ChannelName, input: unknown): Promise<Result<unknown>> {
    let res: Response;
    try {
      res = await fetch('/api/call', {
        method: 'POST',
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ channel, input: input ?? {} }),
      });
    } catch (e) {
      return transportError(`Cannot reach the Airlock core: ${e instanceof Error ? e.message : String(e)}`);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      if (res.status === 401 || res.status === 403) {
        return { ok: false, error: { code: 'UNAUTHENTICATED', message: `The browser session was refused (HTTP ${res.status}); open the one-time URL again` } };
      }
      return transportError(`The Airlock core answered HTTP ${res.status} without a result`);
    }
    return normalise(body);
  }

  subscribe(event: EventName, listener: Listener): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Resolves once the event socket is open (so a terminal's first bytes are not lost). */
  ready(timeoutMs = 5000): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  onState(cb: (connected: boolean) => void): () => void {
    this.stateListeners.add(cb);
    return () => this.stateListeners.delete(cb);
  }

  isConnected(): boolean {
    return this.connected;
  }

  private setConnected(v: boolean): void {
    this.connected = v;
    for (const cb of this.stateListeners) cb(v);
    if (v) {
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w();
    }
  }

  private connect(): void {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/api/events`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 250;
      this.setConnected(true);
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      let msg: unknown;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (typeof msg !== 'object' || msg === null) return;
      const { event, payload } = msg as { event?: unknown; payload?: unknown };
      if (typeof event !== 'string') return;
      const set = this.listeners.get(event);
      if (!set) return;
      for (const l of [...set]) {
        try {
          l(payload);
        } catch (e) {
          console.error(`listener for ${event} failed`, e);
        }
      }
    };
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      if (this.connected) this.setConnected(false);
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows; reconnecting happens there.
    };
  }

  private scheduleReconnect(): void {
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 10_000);
    setTimeout(() => this.connect(), delay);
  }
}

/**
 * What the UI does when a call needs a person: the hooks are registered by the App (modals) and
 * are awaited by the client wrapper, so every view gets step-up and the two-person rule for free.
 */
export interface Interventions {
  /** STEP_UP_REQUIRED: ask for the password (+ code); resolve true once session:stepUp succeeded. */
  stepUp(error: AirlockErrorShape): Promise<boolean>;
  /**
   * APPROVAL_REQUIRED: offer to file the same call with approvals:request. Resolves with the
   * request id when filed, null when the user declined.
   */
  approval(channel: ChannelName, input: unknown, error: AirlockErrorShape): Promise<number | null>;
  /** UNAUTHENTICATED (expired or idle-locked session). */
  unauthenticated(): void;
}

const noInterventions: Interventions = {
  stepUp: () => Promise.resolve(false),
  approval: () => Promise.resolve(null),
  unauthenticated: () => {},
};

/**
 * Wrap a transport once for every view: UNAUTHENTICATED signs the UI out; STEP_UP_REQUIRED opens
 * the step-up prompt and retries the original call transparently; APPROVAL_REQUIRED offers to
 * file a two-person request with the same channel and input.
 */
export function observed(inner: Transport, hooks: () => Interventions): Transport {
  return {
    async call(channel, input) {
      let r = await inner.call(channel, input);
      // One retry: a second STEP_UP_REQUIRED right after a successful step-up is a real refusal.
      if (!r.ok && r.error.code === 'STEP_UP_REQUIRED' && channel !== 'session:stepUp') {
        if (await hooks().stepUp(r.error)) r = await inner.call(channel, input);
      }
      if (!r.ok && r.error.code === 'APPROVAL_REQUIRED' && channel !== 'approvals:request') {
        const id = await hooks().approval(channel, input, r.error);
        if (id !== null) {
          return {
            ok: false,
            error: {
              code: 'APPROVAL_REQUIRED',
              message: `Filed as two-person request #${id}: another person must approve it, then execute it from Approvals.`,
            },
          };
        }
      }
      if (!r.ok && r.error.code === 'UNAUTHENTICATED' && channel !== 'session:status' && channel !== 'session:login') {
        hooks().unauthenticated();
      }
      return r;
    },
    subscribe: (event, listener) => inner.subscribe(event, listener),
  };
}

export interface Api {
  client: Client;
  shell: ShellKind;
  /** Resolves when server → client events can be received. */
  eventsReady(): Promise<void>;
  /** Connection state of the event stream (always true in Electron). */
  onEventsState(cb: (connected: boolean) => void): () => void;
  /** Register the handlers for step-up, two-person and an expired session. */
  setInterventions(hooks: Partial<Interventions>): void;
  /** The client without the interventions (used by the step-up and approval prompts themselves). */
  raw: Client;
}

export function createApi(): Api {
  let hooks: Interventions = noInterventions;
  const get = () => hooks;
  const set = (h: Partial<Interventions>) => {
    hooks = { ...hooks, ...h };
  };
  if (typeof window !== 'undefined' && 'airlock' in window && window.airlock) {
    const t = electronTransport(window.airlock);
    return {
      client: createClient(observed(t, get)),
      raw: createClient(t),
      shell: 'electron',
      eventsReady: () => Promise.resolve(),
      onEventsState: (cb) => {
        cb(true);
        return () => {};
      },
      setInterventions: set,
    };
  }
  const t = new BrowserTransport();
  return {
    client: createClient(observed(t, get)),
    raw: createClient(t),
    shell: 'browser',
    eventsReady: () => t.ready(),
    onEventsState: (cb) => {
      cb(t.isConnected());
      return t.onState(cb);
    },
    setInterventions: set,
  };
}

/** Whether a user with these roles may call a channel (the core checks again). */
export function can(roles: readonly Role[] | undefined, name: ChannelName): boolean {
  const allowed = channels[name].roles;
  if (allowed === 'public') return true;
  if (!roles) return false;
  return roles.some((r) => (allowed as readonly Role[]).includes(r));
}

/** A request id for cancellable operations (`ops:cancel`). */
export function newRequestId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return 'r' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

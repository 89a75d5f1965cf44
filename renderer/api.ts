/**
 * The renderer's one way to reach the core: a typed client derived from the
 * contract in shared/, over whichever transport the shell provides.
 *
 * - Electron: the preload exposes `window.airlock`, already shaped like `Client`
 *   (per-area functions, no raw IPC). We adapt it to a `Transport` so both
 *   shells go through the same wrapper (error normalisation, sign-out on
 *   UNAUTHENTICATED).
 * - Browser shell (`airlock serve`): `POST /api/call` and a WebSocket on
 *   `/api/events` (docs/serve-protocol.md). The page redeems the one-time token
 *   from its URL fragment for a per-page secret, kept in page memory and this
 *   tab's sessionStorage (both scoped to the console's own origin, port included),
 *   and sends it on every call and as the event socket's first message. There is
 *   no cookie: cookies ignore ports, so other local servers would receive it.
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

/** Where the page keeps its secret across a reload: this tab and this origin (port included) only. */
const SECRET_KEY = 'airlock.secret';
/** The one-time token arrives in the URL fragment, which is never sent in a request or logged. */
const TOKEN_FRAGMENT = /^#token=([A-Za-z0-9_-]{16,128})$/;

function stored(): string | null {
  try {
    return sessionStorage.getItem(SECRET_KEY);
  } catch {
    return null;
  }
}

function store(secret: string): void {
  try {
    sessionStorage.setItem(SECRET_KEY, secret);
  } catch {
    // Storage disabled: the secret lives in page memory only (a reload needs a new link).
  }
}

/** Calls that may start a new core session, after which the shell rotates the page's secret. */
const rotates = (channel: string) => channel.startsWith('session:');

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
  private secret: string | null = null;
  /** Why there is no secret (the link was refused), shown instead of a generic message. */
  private refusal: string | null = null;
  /** Settles once the page has its secret (or knows it has none). */
  private readonly established: Promise<void>;
  /** Session calls in flight: a call refused meanwhile may have carried the secret they rotated. */
  private readonly sessionCalls = new Map<symbol, Promise<unknown>>();
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;

  constructor() {
    this.established = this.establish().then(() => this.connect());
    // A link opened in a tab that already shows the console only changes the fragment: load the
    // page again so the link is redeemed (or refused) like on a first load, and the UI starts over.
    window.addEventListener('hashchange', () => {
      if (TOKEN_FRAGMENT.test(location.hash)) location.reload();
    });
  }

  private async establish(): Promise<void> {
    const m = TOKEN_FRAGMENT.exec(location.hash);
    if (!m) {
      this.secret = stored();
      return;
    }
    // Out of the address bar and history before anything else.
    history.replaceState(history.state, '', location.pathname + location.search);
    try {
      const res = await fetch('/api/session', {
        method: 'POST',
        credentials: 'omit',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: m[1] }),
      });
      const body = (await res.json()) as { secret?: unknown; error?: { message?: unknown } };
      if (res.ok && typeof body.secret === 'string') {
        this.setSecret(body.secret);
        return;
      }
      this.refusal = typeof body.error?.message === 'string' ? body.error.message : `The one-time link was refused (HTTP ${res.status})`;
    } catch (e) {
      this.refusal = `Cannot reach the Airlock core: ${e instanceof Error ? e.message : String(e)}`;
    }
    // A refused link: a secret this tab already had still stands.
    this.secret = stored();
  }

  private setSecret(secret: string): void {
    const changed = this.secret !== secret;
    this.secret = secret;
    this.refusal = null;
    store(secret);
    // The shell closed the sockets opened with the old secret: reopen at once.
    if (changed && this.ws?.readyState !== WebSocket.OPEN) {
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
      this.backoff = 250;
      this.connect();
    }
  }

  async call(channel: ChannelName, input: unknown): Promise<Result<unknown>> {
    await this.established;
    const id = Symbol(channel);
    if (!rotates(channel)) return this.send(channel, input, id, true);
    const p = this.send(channel, input, id, true);
    this.sessionCalls.set(id, p);
    try {
      return await p;
    } finally {
      this.sessionCalls.delete(id);
    }
  }

  private async send(channel: ChannelName, input: unknown, id: symbol, mayRetry: boolean): Promise<Result<unknown>> {
    const used = this.secret;
    if (used === null) return this.noSession(401);
    let res: Response;
    try {
      res = await fetch('/api/call', {
        method: 'POST',
        credentials: 'omit',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json', 'Airlock-Secret': used },
        body: JSON.stringify({ channel, input: input ?? {} }),
      });
    } catch (e) {
      return transportError(`Cannot reach the Airlock core: ${e instanceof Error ? e.message : String(e)}`);
    }
    const rotated = res.headers.get('Airlock-Secret');
    if (rotated) this.setSecret(rotated);
    if (res.status === 401 && mayRetry) {
      // Refused before it reached the core: if a sign-in rotated the secret meanwhile, send it again.
      await Promise.allSettled([...this.sessionCalls].filter(([k]) => k !== id).map(([, p]) => p));
      if (this.secret !== used) return this.send(channel, input, id, false);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      if (res.status === 401 || res.status === 403) return this.noSession(res.status);
      return transportError(`The Airlock core answered HTTP ${res.status} without a result`);
    }
    return normalise(body);
  }

  private noSession(status: number): Result<never> {
    return {
      ok: false,
      error: {
        code: 'UNAUTHENTICATED',
        message: this.refusal ?? `This page holds no Airlock session (HTTP ${status}): open a new one-time link from \`airlock serve\``,
      },
    };
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
    this.reconnectTimer = null;
    // Without a secret the shell would only close the socket again. One socket at a time: a
    // second one would deliver every event twice (the one open reconnects from its onclose).
    if (this.secret === null || this.ws !== null) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/api/events`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let authed = false;
    ws.onopen = () => {
      // The secret goes in the first message, never in the URL (which servers and proxies log).
      ws.send(JSON.stringify({ secret: this.secret }));
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
      if (!authed) {
        if ((msg as { auth?: unknown }).auth === 'ok') {
          authed = true;
          this.backoff = 250;
          this.setConnected(true);
        }
        return;
      }
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
    ws.onclose = (e) => {
      if (this.ws === ws) this.ws = null;
      if (this.connected) this.setConnected(false);
      // Closed because a sign-in rotated the secret: reopen with the new one without waiting.
      if (e.code === 4001) this.backoff = 0;
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows; reconnecting happens there.
    };
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer) return;
    const delay = this.backoff;
    this.backoff = Math.min(Math.max(this.backoff * 2, 250), 10_000);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
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

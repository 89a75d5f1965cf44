import { events, type EventName } from '../../shared/contract/index';

/** How a shell delivers one client's events (a WebSocket, an Electron window, the CLI's stderr). */
export interface Transport {
  /** Hands one checked event to the transport now. */
  send(event: EventName, payload: unknown): void;
  /**
   * Bytes handed over but not yet taken by the other side: the WebSocket's `bufferedAmount`, the
   * bytes an Electron window has not acknowledged. Omitted: the transport delivers as fast as it
   * is given (the CLI, tests), and the queue never fills.
   */
  buffered?(): number;
  /** The client stopped taking events and its queue reached the hard limit: the shell cuts it off. */
  overflow?(): void;
}

/** Bytes, counted as the serialised event's length. */
export interface FlowLimits {
  /** Nothing more is handed to the transport while it holds this much. */
  transportHigh: number;
  /** Queue + transport above this: streams pause, progress is coalesced. */
  high: number;
  /** …below this again: paused streams resume. */
  low: number;
  /** Queue above this (only events that neither pause nor coalesce can get here): the transport is cut off and the queue let go. */
  hardLimit: number;
  /** How often a full transport is looked at again (neither ws nor IPC tells when it drained). */
  pollMs: number;
}

export const FLOW_LIMITS: FlowLimits = { transportHigh: 256 * 1024, high: 1024 * 1024, low: 256 * 1024, hardLimit: 16 * 1024 * 1024, pollMs: 20 };

/** What a stream producer (the terminal) reads of its client's outgoing queue. */
export interface Flow {
  /** Over the high-water mark: a producer that may not drop must pause. */
  readonly high: boolean;
  /** Queued + in the transport, in bytes. */
  readonly pending: number;
  /** Events replaced by a later state of the same thing while the client was slow. */
  readonly dropped: number;
  /** `cb` runs once the queue is below the low-water mark (or the client is gone: `closed` true). */
  whenLow(cb: () => void): void;
  readonly closed: boolean;
}

interface Queued {
  event: EventName;
  payload: unknown;
  bytes: number;
  key: string | null;
}

export type EventCheck = (event: string, payload: unknown) => { ok: true; value: unknown } | { ok: false };

/**
 * Checks an event against the contract once per core, and says so once per event name: an
 * invalid payload is a bug in the core, reported as an internal error, never thrown into the
 * service that emitted it (a terminal or a provisioning run must not die of its progress report).
 * A value this checker returned is known to be valid: handed to it again (the broadcaster checks
 * a payload once and gives the checked value to every client's queue) it is not parsed again.
 */
export function eventChecker(log: (message: string) => void): EventCheck {
  const reported = new Set<string>();
  const checked = new WeakMap<object, string>();
  const report = (event: string, why: string) => {
    if (reported.has(event)) return;
    reported.add(event);
    log(`airlock: INTERNAL: event ${event.slice(0, 64)} not sent: ${why} (reported once)`);
  };
  return (event, payload) => {
    const def = Object.prototype.hasOwnProperty.call(events, event) ? (events as Record<string, { payload: { safeParse(x: unknown): { success: boolean; data?: unknown; error?: { message: string } } } }>)[event] : undefined;
    if (!def) {
      report(event, 'not declared in the contract');
      return { ok: false };
    }
    if (typeof payload === 'object' && payload !== null && checked.get(payload) === event) return { ok: true, value: payload };
    const r = def.payload.safeParse(payload);
    if (!r.success) {
      report(event, `payload does not match the contract: ${String(r.error?.message).slice(0, 300)}`);
      return { ok: false };
    }
    if (typeof r.data === 'object' && r.data !== null) checked.set(r.data, event);
    return { ok: true, value: r.data };
  };
}

/**
 * One client's outgoing events: a queue bounded by bytes between the core and the shell's
 * transport. Events leave in order; while the transport holds `transportHigh` bytes, they wait
 * here. Over `high`, the event's declared `flow` decides (shared/contract/channel.ts): 'pause'
 * streams stop their source (the producer reads `high` and `whenLow`), `latest` events replace a
 * queued one of the same key. Memory stays bounded whatever the client does; a client that stops
 * reading entirely only ever holds a paused terminal's window and the latest progress.
 */
export class Outbox implements Flow {
  private readonly queue: Queued[] = [];
  private queued = 0;
  private waiters: Array<() => void> = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private droppedCount = 0;
  private droppedLogged = 0;
  private isClosed = false;

  constructor(
    private readonly transport: Transport,
    private readonly check: EventCheck,
    private readonly log: (message: string) => void,
    private readonly limits: FlowLimits = FLOW_LIMITS,
    private readonly label = 'client',
  ) {}

  get pending(): number {
    return this.queued + this.inTransport();
  }

  get high(): boolean {
    return this.pending > this.limits.high;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  push(event: EventName, payload: unknown): void {
    if (this.isClosed) return;
    const checked = this.check(event, payload);
    if (!checked.ok) return;
    const flow = (events[event] as { flow?: 'pause' | { latest: (p: unknown) => string } }).flow;
    const key = typeof flow === 'object' ? `${event}\0${flow.latest(checked.value)}` : null;
    if (key !== null && this.high) {
      const i = this.queue.findIndex((m) => m.key === key);
      if (i >= 0) {
        this.queued -= this.queue[i]!.bytes;
        this.queue.splice(i, 1);
        this.droppedCount++;
      }
    }
    const bytes = event.length + (JSON.stringify(checked.value)?.length ?? 0);
    this.queue.push({ event, payload: checked.value, bytes, key });
    this.queued += bytes;
    this.flush();
    if (this.queued > this.limits.hardLimit) {
      // The shell cuts the transport off (the page reconnects and re-reads its state); what was
      // queued for it is let go, so memory stays bounded even for events that never coalesce.
      this.log(`airlock: ${this.label} takes no events (${this.queue.length} events, ${this.queued} bytes queued): cut off`);
      this.droppedCount += this.queue.length;
      this.droppedLogged = this.droppedCount;
      this.queue.length = 0;
      this.queued = 0;
      this.transport.overflow?.();
    }
  }

  whenLow(cb: () => void): void {
    if (this.isClosed || this.pending <= this.limits.low) {
      queueMicrotask(cb);
      return;
    }
    this.waiters.push(cb);
    this.schedule();
  }

  /** The client is gone: nothing more is sent, waiting producers are released (and see `closed`). */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.queued = 0;
    for (const w of this.waiters.splice(0)) w();
  }

  private flush(): void {
    if (this.isClosed) return;
    while (this.queue.length > 0 && this.inTransport() < this.limits.transportHigh) {
      const m = this.queue.shift()!;
      this.queued -= m.bytes;
      try {
        this.transport.send(m.event, m.payload);
      } catch (e) {
        // One broken send never reaches the service that emitted; the shell logs its own failures.
        this.log(`airlock: could not send ${m.event} to ${this.label}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (this.droppedCount > this.droppedLogged && this.queue.length === 0) {
      this.log(`airlock: ${this.label} was slow: ${this.droppedCount - this.droppedLogged} progress events replaced by a later state`);
      this.droppedLogged = this.droppedCount;
    }
    if (this.waiters.length > 0 && this.pending <= this.limits.low) {
      for (const w of this.waiters.splice(0)) w();
    }
    if (this.queue.length > 0 || this.waiters.length > 0) this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.isClosed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.limits.pollMs);
    this.timer.unref?.();
  }

  private inTransport(): number {
    try {
      return this.transport.buffered?.() ?? 0;
    } catch {
      return 0;
    }
  }
}

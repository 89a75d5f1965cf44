/**
 * Issue 10: events are part of the contract. Each client's events are checked against the
 * contract's event table and leave through a queue bounded by bytes; a slow client pauses the
 * terminal that feeds it (no byte lost) and gets only the latest progress (the rest counted).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HostsService } from './hosts/service';
import { eventChecker, Outbox, type FlowLimits } from './outbox';
import type { PtySession, SshConnection } from './ssh/connection';
import { TerminalService } from './terminal/service';
import type { ClientContext } from './types';

const LIMITS: FlowLimits = { transportHigh: 64 * 1024, high: 256 * 1024, low: 64 * 1024, hardLimit: 4 * 1024 * 1024, pollMs: 2 };

/** A client whose transport takes what it is given but lets the other side read only when told. */
function slowClient(limits = LIMITS) {
  const received: Array<{ event: string; payload: unknown }> = [];
  let unread = 0;
  let overflowed = false;
  const logs: string[] = [];
  const transport = {
    send: (event: string, payload: unknown) => {
      received.push({ event, payload });
      unread += event.length + JSON.stringify(payload).length;
    },
    buffered: () => unread,
    overflow: () => {
      overflowed = true;
    },
  };
  const outbox = new Outbox(transport, eventChecker((m) => logs.push(m)), (m) => logs.push(m), limits, 'test client');
  const client: ClientContext = { id: 'c1', shell: 'browser', source: 'test', session: null, emit: (e, p) => outbox.push(e, p), flow: outbox };
  return {
    client,
    outbox,
    received,
    logs,
    overflowed: () => overflowed,
    /** The other side reads `n` bytes (all when omitted). */
    read: (n = Infinity) => {
      unread = Math.max(0, unread - n);
    },
  };
}

/** A PTY that writes `total` bytes as fast as it may, and honours pause/resume as an SSH channel does. */
function fastPty(total: number, chunk = 32 * 1024) {
  let dataCb: ((b: Buffer) => void) | null = null;
  let exitCb: ((code: number | null, reason: string | null) => void) | null = null;
  let paused = false;
  let sent = 0;
  let pauses = 0;
  const pump = () => {
    while (!paused && sent < total && dataCb) {
      const n = Math.min(chunk, total - sent);
      sent += n;
      dataCb(Buffer.alloc(n, 'y'));
    }
    if (sent >= total) exitCb?.(0, null);
  };
  const pty: PtySession = {
    onData: (cb) => {
      dataCb = cb;
      setImmediate(pump);
    },
    onExit: (cb) => {
      exitCb = cb;
    },
    write: () => {},
    resize: () => {},
    pause: () => {
      paused = true;
      pauses++;
    },
    resume: () => {
      paused = false;
      setImmediate(pump);
    },
    close: () => {},
  };
  return { pty, sent: () => sent, pauses: () => pauses };
}

function terminalsOver(pty: PtySession) {
  const conn = { fingerprint: 'SHA256:test', shell: async () => pty, close: () => {}, onClose: () => {} } as unknown as SshConnection;
  const hosts = { open: async () => conn } as unknown as HostsService;
  return new TerminalService({ hosts, random: (n) => Buffer.alloc(n, 1) });
}

const textOf = (received: Array<{ event: string; payload: unknown }>) =>
  received.filter((r) => r.event === 'terminal:data').reduce((n, r) => n + (r.payload as { data: string }).data.length, 0);

afterEach(() => {
  vi.useRealTimers();
});

describe('a terminal feeding a slow client', () => {
  it('keeps the queued bytes bounded while the terminal writes fast, and loses no byte once the client reads', async () => {
    const TOTAL = 8 * 1024 * 1024;
    const c = slowClient();
    const src = fastPty(TOTAL);
    const terminals = terminalsOver(src.pty);
    await terminals.start(c.client, 'gpu-1', 80, 24, {}, new AbortController().signal);

    // The client reads nothing for a while: the terminal is paused, the queue stays under the mark
    // plus one chunk (what was in flight when it paused), whatever the terminal has to say.
    let maxPending = 0;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 2));
      maxPending = Math.max(maxPending, c.outbox.pending);
    }
    expect(src.pauses()).toBeGreaterThan(0);
    expect(src.sent()).toBeLessThan(TOTAL);
    expect(maxPending).toBeLessThanOrEqual(LIMITS.high + 2 * 32 * 1024);

    // Now it reads, slowly: the terminal resumes and pauses as the queue drains and fills.
    while (textOf(c.received) < TOTAL || c.outbox.pending > 0) {
      c.read(128 * 1024);
      maxPending = Math.max(maxPending, c.outbox.pending);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(maxPending).toBeLessThanOrEqual(LIMITS.high + 2 * 32 * 1024);
    expect(textOf(c.received)).toBe(TOTAL);
    expect(src.pauses()).toBeGreaterThan(1);
    expect(c.received.at(-1)).toMatchObject({ event: 'terminal:exit', payload: { code: 0 } });
  });
});

const progress = (host: string, idx: number, status: 'running' | 'ok', output: string | null) => ({
  runId: 'run-0123456789abcdef',
  host,
  step: {
    ...{ idx, stepId: `s${idx}`, type: 'exec', title: 'a step', status, phase: null, changes: [], output: '', exitCode: null },
    ...{ startedAt: null, finishedAt: null, durationMs: null, message: null, errorCode: null, transfer: null },
  },
  hostStatus: 'running' as const,
  output,
});

describe('progress for a slow client', () => {
  it('keeps only the latest state of each step while the client is over the mark, and counts what it replaced', async () => {
    const c = slowClient();
    const big = 'x'.repeat(64 * 1024);
    // Fill the transport and the queue past the high-water mark.
    for (let i = 0; i < 8; i++) c.client.emit('provision:progress', progress('gpu-1', 0, 'running', big));
    const queuedBefore = c.outbox.pending;
    for (let i = 0; i < 1000; i++) c.client.emit('provision:progress', progress('gpu-1', 1, 'running', `line ${i}\n`));
    c.client.emit('provision:progress', progress('gpu-1', 1, 'ok', null));
    // A thousand updates of one step while over the mark cost one queued event, not a thousand.
    expect(c.outbox.pending - queuedBefore).toBeLessThan(2 * 1024);
    expect(c.outbox.dropped).toBeGreaterThanOrEqual(1000);

    await vi.waitFor(() => {
      c.read();
      expect(c.outbox.pending).toBe(0);
    });
    const last = c.received.filter((r) => (r.payload as { step?: { idx: number } }).step?.idx === 1).at(-1);
    expect(last?.payload).toMatchObject({ step: { status: 'ok' } });
    // Honest about it: a log line says how many were replaced.
    expect(c.logs.some((l) => /progress events replaced by a later state/.test(l))).toBe(true);
  });

  it('a client that takes nothing at all is cut off at the hard limit instead of growing the queue', () => {
    const c = slowClient({ ...LIMITS, hardLimit: 512 * 1024 });
    // terminal:exit neither pauses nor coalesces: the only kind that can reach the limit.
    for (let i = 0; i < 20_000 && !c.overflowed(); i++) c.client.emit('terminal:exit', { id: `t${i}`, code: 0, reason: 'x'.repeat(100) });
    expect(c.overflowed()).toBe(true);
    // Its queue was let go (and counted), so the next events start from an empty queue.
    expect(c.outbox.dropped).toBeGreaterThan(1000);
    c.read();
    expect(c.outbox.pending).toBe(0);
    c.client.emit('terminal:exit', { id: 'late', code: 0, reason: null });
    expect(c.received.at(-1)).toMatchObject({ event: 'terminal:exit', payload: { id: 'late' } });
  });
});

describe('an invalid event payload', () => {
  it('is not sent, is reported once as an internal error, and is never thrown into the service', () => {
    const c = slowClient();
    const bad = { id: 't1', data: 42 } as unknown as { id: string; data: string };
    expect(() => c.client.emit('terminal:data', bad)).not.toThrow();
    expect(() => c.client.emit('terminal:data', bad)).not.toThrow();
    expect(() => c.client.emit('made:up' as 'terminal:data', { id: 't1', data: 'x' })).not.toThrow();
    expect(c.received).toEqual([]);
    expect(c.logs.filter((l) => l.includes('terminal:data'))).toHaveLength(1);
    expect(c.logs.filter((l) => l.includes('terminal:data'))[0]).toMatch(/INTERNAL: event terminal:data not sent: payload does not match the contract/);
    expect(c.logs.filter((l) => l.includes('made:up'))[0]).toMatch(/not declared in the contract/);
    // A valid event after it goes through.
    c.client.emit('terminal:data', { id: 't1', data: 'ok' });
    expect(c.received).toEqual([{ event: 'terminal:data', payload: { id: 't1', data: 'ok' } }]);
  });

  it('@ts-expect-error: emit is typed by the event table', () => {
    const c = slowClient();
    // @ts-expect-error — terminal:data carries { id, data }, not a number
    c.client.emit('terminal:data', { id: 't1', data: 1 });
    // @ts-expect-error — no such event in the contract
    c.client.emit('terminal:dat', { id: 't1', data: 'x' });
    expect(c.received).toEqual([]);
  });
});

/**
 * One client's broken traffic must never take `airlock serve` down or hurt another client
 * (issue 9, point 6). The console runs as its own process (`node bin/airlock.mjs serve`), so an
 * unhandled 'error' shows as what it is in production: a dead process and every session lost.
 * The attackers speak raw TCP: WebSocket handshakes and frames are written by hand.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN } from '../support/core';
import { callWith, openEvents, startServeProcess, type EventSocket, type ServeProcess } from '../support/serve';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let serve: ServeProcess;
let port = 0;
let secret = '';
/** The well-behaved page: its event socket must stay open through everything below. */
let good: EventSocket;
let goodClosed: number | null = null;

beforeAll(async () => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  serve = await startServeProcess({ name: 'serve-robust', setup: ADMIN });
  ({ port, secret } = serve);
  good = openEvents(port, secret);
  expect(await good.authed).toBe(true);
  void good.closed.then((code) => (goodClosed = code));
}, 180_000);

afterAll(async () => {
  good?.ws.close();
  await serve?.stop();
});

/** The console is alive, and the good page's socket and calls still work. */
async function expectHealthy(): Promise<void> {
  expect(serve.child.exitCode, `airlock serve died:\n${serve.stderr()}`).toBeNull();
  expect(serve.child.signalCode).toBeNull();
  expect(goodClosed, 'the good client lost its event socket').toBeNull();
  const r = await callWith(port, secret, 'hosts:list', {});
  expect(r.status).toBe(200);
  expect(JSON.parse(r.body)).toEqual({ ok: true, value: [] });
}

// ---------- raw WebSocket frames ----------

interface Frame {
  fin: boolean;
  rsv: number; // 0..7
  opcode: number; // 0..15
  masked: boolean;
  payload: Uint8Array;
  /** Declare a length other than the payload's (oversized or lying frames). */
  declared?: bigint;
}

function encode(f: Frame): Buffer {
  const len = f.declared ?? BigInt(f.payload.length);
  const head: number[] = [(f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 15)];
  const maskBit = f.masked ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (len < 126n) head.push(maskBit | Number(len));
  else if (len < 65536n) {
    head.push(maskBit | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(len));
  } else {
    head.push(maskBit | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(len & 0xffff_ffff_ffff_ffffn);
  }
  const payload = Buffer.from(f.payload);
  let mask = Buffer.alloc(0);
  if (f.masked) {
    mask = crypto.randomBytes(4);
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  }
  return Buffer.concat([Buffer.from(head), ext, mask, payload]);
}

const text = (s: string): Frame => ({ fin: true, rsv: 0, opcode: 1, masked: true, payload: Buffer.from(s) });

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const invalidUtf8 = fc.constantFrom(
  [0xff],
  [0xfe, 0xff],
  [0xc3, 0x28],
  [0xc0, 0xaf], // overlong '/'
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate
  [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
  [0x7b, 0x22, 0xe2, 0x82], // truncated inside a JSON string
);
const closeCodes = fc.constantFrom(0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535);

/** Frames a peer must not send, each a different way to get it wrong. */
const badFrame: fc.Arbitrary<Frame> = fc.oneof(
  // reserved opcodes 3-7 and 0xB-0xF
  fc.record({ fin: fc.boolean(), rsv: fc.constant(0), opcode: fc.constantFrom(3, 4, 5, 6, 7, 11, 12, 13, 14, 15), masked: fc.constant(true), payload: bytes(64) }),
  // RSV bits without a negotiated extension
  fc.record({ fin: fc.constant(true), rsv: fc.integer({ min: 1, max: 7 }), opcode: fc.constantFrom(1, 2), masked: fc.constant(true), payload: bytes(64) }),
  // an unmasked client frame
  fc.record({ fin: fc.constant(true), rsv: fc.constant(0), opcode: fc.constantFrom(1, 2, 9), masked: fc.constant(false), payload: bytes(64) }),
  // text with invalid UTF-8, whole or as the end of a fragmented message
  invalidUtf8.map((b): Frame => ({ fin: true, rsv: 0, opcode: 1, masked: true, payload: Uint8Array.from(b) })),
  // oversized: past maxPayload, up to 2^63 and beyond (the top bit set), with or without the bytes
  fc.record({
    fin: fc.boolean(),
    rsv: fc.constant(0),
    opcode: fc.constantFrom(1, 2, 0),
    masked: fc.constant(true),
    payload: bytes(32),
    declared: fc.constantFrom(4097n, 65535n, 65536n, 1n << 31n, 1n << 40n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n),
  }),
  // control frames: too long (> 125), fragmented, a close with a bad code or a 1-byte body
  fc.record({ fin: fc.constant(true), rsv: fc.constant(0), opcode: fc.constantFrom(8, 9, 10), masked: fc.constant(true), payload: fc.uint8Array({ minLength: 126, maxLength: 300 }) }),
  fc.record({ fin: fc.constant(false), rsv: fc.constant(0), opcode: fc.constantFrom(8, 9, 10), masked: fc.constant(true), payload: bytes(16) }),
  closeCodes.map((code): Frame => {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    return { fin: true, rsv: 0, opcode: 8, masked: true, payload: p };
  }),
  fc.constant<Frame>({ fin: true, rsv: 0, opcode: 8, masked: true, payload: Uint8Array.from([3]) }),
  invalidUtf8.map((b): Frame => ({ fin: true, rsv: 0, opcode: 8, masked: true, payload: Uint8Array.from([0x03, 0xe8, ...b]) })),
  // a continuation with nothing to continue, and a new message inside an unfinished one
  fc.record({ fin: fc.boolean(), rsv: fc.constant(0), opcode: fc.constant(0), masked: fc.constant(true), payload: bytes(32) }),
  fc.constant<Frame>({ fin: false, rsv: 0, opcode: 1, masked: true, payload: Buffer.from('{"sec') }),
  // anything at all
  fc.record({ fin: fc.boolean(), rsv: fc.integer({ min: 0, max: 7 }), opcode: fc.integer({ min: 0, max: 15 }), masked: fc.boolean(), payload: bytes(200) }),
);

/** What one hostile connection does: authenticate first or not, then frames, or raw bytes, split anyhow. */
const attack = fc.record({
  auth: fc.boolean(),
  frames: fc.array(badFrame, { minLength: 1, maxLength: 4 }),
  tail: fc.option(bytes(64), { nil: undefined }),
  chunk: fc.integer({ min: 1, max: 64 }),
});

function handshake(extra = ''): string {
  return (
    `GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
  );
}

/**
 * Write `data` in pieces, then wait until the server closes the connection, or give up `ms` after
 * its first answer. Where an answer is certain (a valid handshake), `firstAnswerMs` waits longer for
 * that first answer: on a loaded machine it can be late, and late is not the same as never.
 */
function raw(
  data: Buffer,
  opts: { chunk?: number; ms?: number; firstAnswerMs?: number } = {},
): Promise<{ received: Buffer; closedByServer: boolean; reset: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let done = false;
    const finish = (closedByServer: boolean, reset = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ received: Buffer.concat(received), closedByServer, reset });
    };
    let timer = setTimeout(() => finish(false), Math.max(opts.firstAnswerMs ?? 0, opts.ms ?? 3000));
    s.on('error', () => finish(true, true));
    s.on('close', () => finish(true));
    s.on('data', (b) => {
      if (received.length === 0 && !done) {
        clearTimeout(timer);
        timer = setTimeout(() => finish(false), opts.ms ?? 3000);
      }
      received.push(b);
    });
    s.on('connect', async () => {
      const step = opts.chunk ?? data.length;
      for (let i = 0; i < data.length && !done; i += step) {
        s.write(data.subarray(i, i + step));
        if (step < data.length) await new Promise((r) => setImmediate(r));
      }
    });
  });
}

describe('airlock serve survives hostile clients (a separate process)', () => {
  it('malformed and random WebSocket frames from several connections close only those connections', async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(attack, { minLength: 3, maxLength: 4 }), async (attacks) => {
        runs++;
        const results = await Promise.all(
          attacks.map((a) => {
            const parts: Buffer[] = [Buffer.from(handshake())];
            if (a.auth) parts.push(encode(text(JSON.stringify({ secret }))));
            for (const f of a.frames) parts.push(encode(f));
            if (a.tail) parts.push(Buffer.from(a.tail));
            return raw(Buffer.concat(parts), { chunk: a.chunk, ms: 1500, firstAnswerMs: 20_000 });
          }),
        );
        await expectHealthy();
        // Every hostile connection was let through the handshake (the frames were really parsed).
        // A server that drops a connection while its client still writes sends a reset, and a reset
        // can discard the 101 before this side reads it: then the console's own log is the witness.
        for (const r of results) {
          if (r.reset && r.received.length === 0) continue;
          expect(r.received.subarray(0, 12).toString()).toBe('HTTP/1.1 101');
        }
        expect(serve.stderr()).not.toContain('refused websocket');
      }),
      // A dead console fails every later run the same way: report the first counterexample as is.
      { numRuns: 25, endOnFailure: true },
    );
    expect(runs).toBe(25);
    // The console says what it did with them, one line each, on its stderr.
    expect(serve.stderr()).toMatch(/airlock serve: websocket closed on a protocol error: /);
    // A page that connects after all this authenticates as usual.
    const late = openEvents(port, secret);
    expect(await late.authed).toBe(true);
    late.ws.close();
    await expectHealthy();
  });

  it('malformed HTTP and broken upgrades are answered or dropped, never fatal', async () => {
    const cases: Buffer[] = [
      Buffer.from('\x00\x01\x02garbage\r\n\r\n'),
      Buffer.from('GET / HTTP/9.9\r\n\r\n'),
      Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`),
      Buffer.from(`POST /api/call HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzzzzz`),
      Buffer.from(`POST /api/call HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\nAirlock-Secret: ${secret}\r\n\r\nZZ\r\n`),
      Buffer.from(handshake().replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 99')),
      Buffer.from(handshake().replace(/Sec-WebSocket-Key: \S+/, 'Sec-WebSocket-Key: short')),
      Buffer.from(handshake('Sec-WebSocket-Extensions: permessage-deflate\r\n')),
      // an upgrade cut in the middle of its headers, and one that dies right after the 101
      Buffer.from(handshake().slice(0, 40)),
    ];
    await Promise.all(cases.map((c) => raw(c, { ms: 2000 })));
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.boolean(), async (junk, upgradeFirst) => {
        await raw(Buffer.concat([upgradeFirst ? Buffer.from(handshake()) : Buffer.alloc(0), Buffer.from(junk)]), { ms: 500 });
      }),
      { numRuns: 30 },
    );
    // Resets: connections torn down mid-request and mid-handshake.
    for (let i = 0; i < 10; i++) {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(i % 2 ? handshake() : `POST /api/call HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000\r\n\r\n{`);
        s.resetAndDestroy();
      });
      s.on('error', () => {});
    }
    await new Promise((r) => setTimeout(r, 300));
    await expectHealthy();
  });

  it('a request trickled slowly (headers or body) is cut off, and others are answered meanwhile', async () => {
    /** One byte every 300 ms, until the server closes the connection. */
    const trickle = (head: string, body: string) =>
      new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        let i = 0;
        const payload = head + body;
        let timer: ReturnType<typeof setInterval> | null = null;
        s.on('data', (b) => (got += b.toString()));
        s.on('error', () => {});
        s.on('close', () => {
          if (timer) clearInterval(timer);
          resolve(got);
        });
        s.on('connect', () => {
          s.write(payload.slice(0, head.length === 0 ? 1 : head.length));
          i = head.length === 0 ? 1 : head.length;
          timer = setInterval(() => {
            if (i < payload.length && !s.destroyed) s.write(payload[i++]!);
          }, 300);
        });
      });
    const slowHeaders = trickle('', `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${'X-Slow: 1\r\n'.repeat(200)}\r\n`);
    const slowBody = trickle(
      `POST /api/call HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAirlock-Secret: ${secret}\r\nContent-Length: 2000\r\n\r\n`,
      JSON.stringify({ channel: 'hosts:list', input: {}, pad: 'x'.repeat(2000) }).slice(0, 2000),
    );
    const idle = raw(Buffer.alloc(0), { ms: 60_000 });
    // While they trickle, everybody else is served.
    await new Promise((r) => setTimeout(r, 2000));
    await expectHealthy();
    const [h, b, i] = await Promise.all([slowHeaders, slowBody, idle]);
    // Cut with a 408 or without an answer: never a 200 from a request that never finished.
    expect(h === '' || h.startsWith('HTTP/1.1 408'), h).toBe(true);
    expect(b === '' || b.startsWith('HTTP/1.1 408'), b).toBe(true);
    expect(i.closedByServer).toBe(true);
    await expectHealthy();
  }, 90_000);
});

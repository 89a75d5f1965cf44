/**
 * Tunnels against a real lab host: a small HTTP server started on the host's loopback (python3's
 * http.server, which the host has), reached through `direct-tcpip` as the host itself would.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { authorizeKey, labDown, labUp, runOnHost, type Lab, type LabHost } from '../../../test/lab/lab';
import { connect } from './connection/connect';
import type { SshConnection } from './connection/types';
import { generateIdentity } from '../identity/ssh-key';
import { httpRequestViaSsh, MAX_HEADER_BYTES } from './tunnel';

const LAB_ID = 'ssh-tunnel';
const T = 20_000;
const PORT = 18080;
/** A port nothing listens on, on the host. */
const CLOSED_PORT = 18081;

/** The service on the host: each path misbehaves in its own way. */
const SERVER = String.raw`
import http.server, json, sys, time

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a):
        pass
    def send(self, code, body, ctype='text/plain', extra=()):
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        p = self.path
        if p == '/health':
            return self.send(200, b'ok', extra=[('X-Served-By', 'lab-python')])
        if p == '/big':
            return self.send(200, b'x' * (1024 * 1024))
        if p == '/chunked-big':
            self.send_response(200)
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            for _ in range(64):
                chunk = b'y' * 16384
                self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
            self.wfile.write(b'0\r\n\r\n')
            return
        if p == '/slow':
            time.sleep(10)
            return self.send(200, b'late')
        if p == '/header-flood':
            self.send_response(200)
            for i in range(2000):
                self.send_header('X-Flood-%d' % i, 'z' * 40)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        if p == '/not-http':
            self.wfile.write(b'\x00\x01garbage that is not HTTP\r\n\r\n')
            return
        if p == '/short':
            self.send_response(200)
            self.send_header('Content-Length', '1000')
            self.end_headers()
            self.wfile.write(b'only this')
            self.wfile.flush()
            self.close_connection = True
            return
        self.send(404, b'no such thing')
    def do_POST(self):
        n = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(n)
        out = json.dumps({'method': 'POST', 'path': self.path, 'body': body.decode(), 'auth': self.headers.get('Authorization'), 'host': self.headers.get('Host'), 'connection': self.headers.get('Connection')}).encode()
        self.send(201, out, 'application/json')

http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
`;
import { rejection } from '../../../test/support/errors';

let lab: Lab;
let host: LabHost;
let conn: SshConnection;
let serverPid = '';
const identity = generateIdentity('airlock-tunnel-test');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connectHost(): Promise<SshConnection> {
  return connect(
    { address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint, hostName: host.name },
    { privateKey: identity.privateKey },
    { timeoutMs: T },
  );
}

beforeAll(async () => {
  lab = await labUp({ id: LAB_ID, hosts: 1 });
  await authorizeKey(lab, identity.publicKey);
  host = lab.hosts[0]!;
  const started = await runOnHost(lab, host.name, [
    '/bin/sh',
    '-c',
    `cat > /tmp/server.py && (setsid python3 /tmp/server.py ${PORT} > /tmp/server.log 2>&1 < /dev/null & echo $!)`,
  ], { input: SERVER });
  expect(started.code).toBe(0);
  serverPid = started.stdout.trim();
  // Wait for it to listen (on the host's loopback).
  for (let i = 0; ; i++) {
    const r = await runOnHost(lab, host.name, ['python3', '-c', `import socket; socket.create_connection(('127.0.0.1', ${PORT}), 1)`]);
    if (r.code === 0) break;
    if (i > 100) throw new Error(`the test server did not start: ${(await runOnHost(lab, host.name, ['cat', '/tmp/server.log'])).stdout}`);
    await sleep(100);
  }
  conn = await connectHost();
});

afterAll(async () => {
  conn?.close();
  if (serverPid) await runOnHost(lab, host.name, ['kill', serverPid]);
  await labDown({ id: LAB_ID });
});

describe('httpRequestViaSsh', () => {
  it('GETs from a server that only listens on the host loopback, which this machine cannot reach directly', async () => {
    const r = await httpRequestViaSsh(conn, { host: '127.0.0.1', port: PORT, method: 'GET', path: '/health', timeoutMs: T, maxBytes: 4096 });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('ok');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['x-served-by']).toBe('lab-python');

    // Directly, from here: the host's address has nothing on that port.
    const direct = await new Promise<string>((resolve) => {
      const s = net.connect(PORT, host.address);
      s.on('connect', () => (s.destroy(), resolve('connected')));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(direct).toBe('ECONNREFUSED');

    const missing = await httpRequestViaSsh(conn, { port: PORT, path: '/nope', timeoutMs: T, maxBytes: 4096 });
    expect(missing.status).toBe(404);
  });

  it('sends a method, headers and a body', async () => {
    const r = await httpRequestViaSsh(conn, {
      port: PORT,
      method: 'POST',
      path: '/v1/echo?x=1',
      headers: { authorization: 'Bearer secret-token', 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'host' }),
      timeoutMs: T,
      maxBytes: 4096,
    });
    expect(r.status).toBe(201);
    expect(JSON.parse(r.body.toString())).toEqual({
      method: 'POST',
      path: '/v1/echo?x=1',
      body: '{"hello":"host"}',
      auth: 'Bearer secret-token',
      host: `127.0.0.1:${PORT}`,
      connection: 'close',
    });
  });

  it('enforces maxBytes, whether the length is announced or the body is chunked', async () => {
    const big = await httpRequestViaSsh(conn, { port: PORT, path: '/big', timeoutMs: T, maxBytes: 2 * 1024 * 1024 });
    expect(big.body.length).toBe(1024 * 1024);
    const chunked = await httpRequestViaSsh(conn, { port: PORT, path: '/chunked-big', timeoutMs: T, maxBytes: 2 * 1024 * 1024 });
    expect(chunked.body.length).toBe(1024 * 1024);

    const e1 = await rejection(httpRequestViaSsh(conn, { port: PORT, path: '/big', timeoutMs: T, maxBytes: 1000 }));
    expect(e1.code).toBe('PARSE_ERROR');
    expect(e1.message).toContain('1000-byte limit');
    const e2 = await rejection(httpRequestViaSsh(conn, { port: PORT, path: '/chunked-big', timeoutMs: T, maxBytes: 100_000 }));
    expect(e2.code).toBe('PARSE_ERROR');
    expect(e2.message).toContain('100000-byte limit');
  });

  it('bounds the headers, and refuses what is not HTTP or is cut short', async () => {
    const flood = await rejection(httpRequestViaSsh(conn, { port: PORT, path: '/header-flood', timeoutMs: T, maxBytes: 4096 }));
    expect(flood.code).toBe('PARSE_ERROR');
    expect(flood.message).toContain(String(MAX_HEADER_BYTES));
    const garbage = await rejection(httpRequestViaSsh(conn, { port: PORT, path: '/not-http', timeoutMs: T, maxBytes: 4096 }));
    expect(garbage.code).toBe('PARSE_ERROR');
    const short = await rejection(httpRequestViaSsh(conn, { port: PORT, path: '/short', timeoutMs: T, maxBytes: 4096 }));
    expect(short.code).toBe('HOST_UNREACHABLE');
  });

  it('times out within the timeout, and the connection stays usable', async () => {
    const t = Date.now();
    const e = await rejection(httpRequestViaSsh(conn, { port: PORT, path: '/slow', timeoutMs: 700, maxBytes: 4096 }));
    expect(e.code).toBe('TIMEOUT');
    expect(e.message).toContain('/slow');
    expect(Date.now() - t).toBeGreaterThanOrEqual(650);
    expect(Date.now() - t).toBeLessThan(2000);
    expect((await httpRequestViaSsh(conn, { port: PORT, path: '/health', timeoutMs: T, maxBytes: 100 })).status).toBe(200);
  });

  it('is cancelled by its signal', async () => {
    const ac = new AbortController();
    const p = httpRequestViaSsh(conn, { port: PORT, path: '/slow', timeoutMs: T, maxBytes: 4096, signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    const t = Date.now();
    expect((await rejection(p)).code).toBe('CANCELLED');
    expect(Date.now() - t).toBeLessThan(1500);
  });

  it('says HOST_UNREACHABLE when nothing listens on the port, and refuses bad input before sending', async () => {
    const e = await rejection(httpRequestViaSsh(conn, { port: CLOSED_PORT, path: '/health', timeoutMs: T, maxBytes: 4096 }));
    expect(e.code).toBe('HOST_UNREACHABLE');
    expect(e.message).toContain(`127.0.0.1:${CLOSED_PORT}`);
    expect(e.message).toContain(host.name);

    const bad = [
      { path: '/a b' },
      { path: 'no-slash' },
      { method: 'get' },
      { headers: { 'x-evil': 'a\r\nInjected: yes' } },
      { maxBytes: -1 },
      { timeoutMs: 0 },
    ];
    for (const b of bad) {
      const err = await rejection(httpRequestViaSsh(conn, { port: PORT, path: '/health', timeoutMs: T, maxBytes: 4096, ...b }));
      expect(err.code).toBe('INVALID_INPUT');
    }
    expect((await rejection(conn.forwardOut('127.0.0.1', 0))).code).toBe('INVALID_INPUT');
    expect((await rejection(conn.forwardOut('bad host; rm', 80))).code).toBe('INVALID_INPUT');
  });
});

describe('SshConnection.forwardOut', () => {
  it('is a raw byte stream to the destination: the host sshd banner, read through the tunnel', async () => {
    const s = await conn.forwardOut('127.0.0.1', 22);
    const banner = await new Promise<string>((resolve, reject) => {
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\n')) resolve(got);
      });
      s.on('error', reject);
    });
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    s.destroy();
  });

  it('ends when the connection is closed', async () => {
    const c = await connectHost();
    const s = await c.forwardOut('127.0.0.1', PORT);
    let error: unknown = null;
    s.on('error', (e) => (error = e));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    c.close();
    // Nobody reads the stream, and still it learns the connection is gone, and why.
    await closed;
    expect((error as AirlockError | null)?.code).toBe('CANCELLED');
    expect((await rejection(c.forwardOut('127.0.0.1', PORT))).code).toBe('CANCELLED');
    expect((await rejection(httpRequestViaSsh(c, { port: PORT, path: '/health', timeoutMs: T, maxBytes: 10 }))).code).toBe('CANCELLED');
  });
});

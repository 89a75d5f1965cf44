import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClientContext, Core } from '../core/types';

/** Same policy as the Electron shell's, plus the loopback WebSocket for events. */
export function serveCsp(port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
  ].join('; ');
}

/** What {@link checkRequest} looks at: the TCP peer and two headers, as Node reports them. */
export interface RequestOrigin {
  remoteAddress: string | undefined;
  /** The Host header (undefined when absent). */
  host: string | undefined;
  /** The Origin header (undefined when absent: same-origin GETs and non-browser clients send none). */
  origin: string | undefined;
}

const LOOPBACK_PEERS = new Set(['127.0.0.1', '::ffff:127.0.0.1', '::1']);

/**
 * The checks every request and every WebSocket upgrade must pass before anything else (before
 * the token or cookie is even looked at). Returns why a request is refused, or null.
 * - the peer is loopback: nobody on the network reaches the console, even if a bind went wrong;
 * - Host is exactly `127.0.0.1:PORT` or `localhost:PORT`: DNS rebinding (a hostile site
 *   re-pointing its own name at 127.0.0.1) arrives with that site's name in Host;
 * - Origin, when sent, is the console's own: cross-site request forgery and cross-site WebSocket
 *   hijacking come with the attacking page's origin (or `null` from a sandboxed frame or file:).
 * Exact string comparison only: no parsing that `127.0.0.1.evil` or `127.0.0.1:PORT@evil` could fool.
 */
export function checkRequest(req: RequestOrigin, port: number): string | null {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 'not listening';
  if (!LOOPBACK_PEERS.has(req.remoteAddress ?? '')) return 'not from loopback';
  if (req.host !== `127.0.0.1:${port}` && req.host !== `localhost:${port}`) return 'bad Host header';
  if (req.origin !== undefined && req.origin !== `http://127.0.0.1:${port}` && req.origin !== `http://localhost:${port}`) return 'foreign Origin';
  return null;
}

export interface ServeOptions {
  /** 0 = a random free port. */
  port?: number;
  /** The built renderer (index.html + assets). */
  rendererDir: string;
  /** Bind address; anything but loopback is refused. */
  host?: '127.0.0.1';
  random?: (n: number) => Buffer;
  log?: (line: string) => void;
}

export interface ServeHandle {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY = 2 * 1024 * 1024;
const COOKIE = 'airlock';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};

/**
 * The browser shell: the core behind loopback HTTP + one WebSocket.
 * Threats answered: other local users' processes and web pages in the user's own
 * browser (CSRF, DNS rebinding) reaching the console; see docs/serve-protocol.md.
 */
export async function startServe(core: Core, opts: ServeOptions): Promise<ServeHandle> {
  const random = opts.random ?? ((n: number) => crypto.randomBytes(n));
  const log = opts.log ?? (() => {});
  let oneTimeToken: string | null = random(32).toString('base64url');
  /** cookie value → the core client it stands for */
  const clients = new Map<string, { client: ClientContext; sockets: Set<WebSocket> }>();
  let port = 0;

  /** Checks shared by HTTP and the WebSocket upgrade. Returns a refusal reason or null. */
  const refuse = (req: http.IncomingMessage): string | null =>
    checkRequest({ remoteAddress: req.socket.remoteAddress, host: req.headers.host, origin: req.headers.origin }, port);

  const cookieOf = (req: http.IncomingMessage): string | null => {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === COOKIE) return v.join('=');
    }
    return null;
  };

  const clientOf = (req: http.IncomingMessage) => {
    const c = cookieOf(req);
    if (!c) return null;
    // Constant-time lookup is moot for a Map key of 256 random bits; the value is unguessable.
    return clients.get(c) ?? null;
  };

  const send = (res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Security-Policy': serveCsp(port),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    const why = refuse(req);
    if (why) {
      log(`refused ${req.method} ${req.url}: ${why}`);
      return send(res, 403, `Forbidden: ${why}\n`);
    }
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);

    // Redeem the one-time token for a cookie, once.
    const token = url.searchParams.get('token');
    if (token !== null) {
      if (!oneTimeToken || !safeEqual(token, oneTimeToken)) return send(res, 403, 'Forbidden: this link was already used or is wrong. Restart `airlock serve` for a new one.\n');
      oneTimeToken = null;
      const cookie = random(32).toString('base64url');
      const sockets = new Set<WebSocket>();
      clients.set(cookie, { client: newClient(req, sockets), sockets });
      res.writeHead(303, {
        Location: '/',
        'Set-Cookie': `${COOKIE}=${cookie}; HttpOnly; SameSite=Strict; Path=/`,
        'Cache-Control': 'no-store',
      });
      return res.end();
    }

    const entry = clientOf(req);
    if (!entry) return send(res, 401, 'Unauthorized: open the one-time URL printed by `airlock serve`.\n');

    if (url.pathname === '/api/call') {
      if (req.method !== 'POST') return send(res, 405, 'POST only\n');
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return send(res, 415, 'application/json only\n');
      readBody(req, MAX_BODY)
        .then(async (text) => {
          let msg: { channel?: unknown; input?: unknown };
          try {
            msg = JSON.parse(text) as typeof msg;
          } catch {
            return send(res, 400, JSON.stringify({ ok: false, error: { code: 'INVALID_INPUT', message: 'Body is not JSON.' } }), 'application/json');
          }
          const result = await core.dispatch(entry.client, msg?.channel, msg?.input);
          send(res, 200, JSON.stringify(result), 'application/json');
        })
        .catch((e: Error) => send(res, 413, `${e.message}\n`));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'GET only\n');
    serveStatic(url.pathname, opts.rendererDir, res, send, port);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    const why = refuse(req);
    const entry = clientOf(req);
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (why || !entry || url.pathname !== '/api/events') {
      socket.write('HTTP/1.1 403 Forbidden\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      entry.sockets.add(ws);
      ws.on('close', () => entry.sockets.delete(ws));
      // The page talks over /api/call; anything sent on the socket is ignored.
      ws.on('message', () => {});
    });
  });

  function newClient(req: http.IncomingMessage, sockets: Set<WebSocket>): ClientContext {
    return core.newClient({
      shell: 'browser',
      source: `${req.socket.remoteAddress ?? '?'}`,
      emit: (event, payload) => {
        const msg = JSON.stringify({ event, payload });
        for (const ws of sockets) {
          // Backpressure: a tab that stops reading does not make the core buffer without bound.
          if (ws.bufferedAmount > 8 * 1024 * 1024) ws.terminate();
          else ws.send(msg);
        }
      },
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/?token=${oneTimeToken}`;
  return {
    url,
    port,
    async close() {
      for (const { client, sockets } of clients.values()) {
        for (const ws of sockets) ws.terminate();
        await core.closeClient(client);
      }
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
    },
  };
}

function serveStatic(
  pathname: string,
  root: string,
  res: http.ServerResponse,
  send: (res: http.ServerResponse, status: number, body: string, type?: string) => void,
  port: number,
) {
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return send(res, 400, 'Bad path\n');
  }
  if (rel === '/' || rel === '') rel = '/index.html';
  const file = path.resolve(root, '.' + rel);
  // Containment with path.relative: a prefix check would let "/dist/renderer-evil" through.
  const within = path.relative(root, file);
  if (within.startsWith('..') || path.isAbsolute(within) || rel.includes('\0')) return send(res, 404, 'Not found\n');
  fs.readFile(file, (err, data) => {
    if (err) {
      if (!path.extname(rel)) {
        // An app route: the single page answers it.
        return fs.readFile(path.join(root, 'index.html'), (e2, html) =>
          e2 ? send(res, 404, 'Renderer not built: run `npm run build`.\n') : sendBuf(res, html, TYPES['.html']!, port),
        );
      }
      return send(res, 404, 'Not found\n');
    }
    sendBuf(res, data, TYPES[path.extname(file)] ?? 'application/octet-stream', port);
  });
}

function sendBuf(res: http.ServerResponse, data: Buffer, type: string, port: number) {
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Security-Policy': serveCsp(port),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cache-Control': 'no-cache',
  });
  res.end(data);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('Request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

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
  /** How long the one-time link can be redeemed (default {@link TOKEN_TTL_MS}). */
  tokenTtlMs?: number;
  now?: () => number;
}

export interface ServeHandle {
  /** The first one-time link: `http://127.0.0.1:PORT/#token=T` (the token is in the fragment, never in a request line). */
  url: string;
  /** When the first link stops working if unused (ISO). */
  expiresAt: string;
  port: number;
  /**
   * Another one-time link, for another person (another window or browser) to sign in beside the
   * others: the same rules as the first (once, within the TTL). `airlock serve` prints one on Enter
   * or SIGUSR1; a signed-in page asks for one with session:signInLink.
   */
  newLink(): { url: string; expiresAt: string };
  close(): Promise<void>;
}

/** The header that carries a page's session secret on every call. */
export const SECRET_HEADER = 'airlock-secret';
/** How long the one-time link stays redeemable when nobody uses it. */
export const TOKEN_TTL_MS = 5 * 60_000;
/** At most this many unredeemed links at once; minting another drops the oldest. */
export const MAX_OPEN_LINKS = 8;
/** A WebSocket must authenticate (first message) within this time. */
export const WS_AUTH_MS = 5_000;
/** At most this many event sockets may wait for their first message at once. */
const MAX_PENDING_WS = 32;
/** The page sends one short message per socket (its secret); anything larger is refused. */
export const WS_MAX_PAYLOAD = 4 * 1024;
/** Slow clients (slowloris): the whole header block within 10 s, the whole request within 15 s. */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 15_000;
const MAX_BODY = 2 * 1024 * 1024;

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

/** One redeemed link: one core client, the secret its page holds, the page's event sockets. */
interface Entry {
  client: ClientContext;
  secret: string;
  /** The core session the current secret was issued for (rotation when it changes). */
  boundSession: string | null;
  sockets: Set<WebSocket>;
}

const unauthenticated = (message: string) => JSON.stringify({ ok: false, error: { code: 'UNAUTHENTICATED', message } });

/**
 * The browser shell: the core behind loopback HTTP + one WebSocket.
 * Threats answered: other local users' processes, pages of other local programs (other loopback
 * ports) and web pages in the user's own browser (CSRF, DNS rebinding) reaching the console, and
 * one client's malformed or slow traffic taking it down; see docs/serve-protocol.md.
 *
 * The credential is a per-page secret sent in the `Airlock-Secret` header (and as the event
 * socket's first message), never a cookie: cookies ignore ports, so every other program listening
 * on loopback would receive one.
 */
export async function startServe(core: Core, opts: ServeOptions): Promise<ServeHandle> {
  const random = opts.random ?? ((n: number) => crypto.randomBytes(n));
  const log = opts.log ?? (() => {});
  const now = opts.now ?? Date.now;
  const ttl = opts.tokenTtlMs ?? TOKEN_TTL_MS;
  /**
   * Unredeemed one-time tokens → when they expire. Each link is its own: redeeming one burns only
   * it, a wrong token burns none, and each redeemed link is a client (a person) of its own.
   */
  const oneTime = new Map<string, number>();
  let stopped = false;
  const mintToken = (): { token: string; expires: number } => {
    for (const [t, exp] of oneTime) if (now() > exp) oneTime.delete(t);
    while (oneTime.size >= MAX_OPEN_LINKS) oneTime.delete(oneTime.keys().next().value!);
    const token = random(32).toString('base64url');
    const expires = now() + ttl;
    oneTime.set(token, expires);
    return { token, expires };
  };
  /** Finds and burns a token: compared in constant time with each open one (a handful). */
  const redeemToken = (token: unknown): boolean => {
    if (stopped || typeof token !== 'string') return false;
    let hit: string | null = null;
    for (const [t, exp] of oneTime) {
      if (now() > exp) oneTime.delete(t);
      else if (safeEqual(token, t)) hit = t;
    }
    if (hit === null) return false;
    oneTime.delete(hit);
    return true;
  };
  const first = mintToken();
  /** secret → the client it stands for */
  const bySecret = new Map<string, Entry>();
  const entries = new Set<Entry>();
  /** Event sockets that have not authenticated yet. */
  const pending = new Set<WebSocket>();
  let port = 0;

  /** Checks shared by HTTP and the WebSocket upgrade. Returns a refusal reason or null. */
  const refuse = (req: http.IncomingMessage): string | null =>
    checkRequest({ remoteAddress: req.socket.remoteAddress, host: req.headers.host, origin: req.headers.origin }, port);

  const newSecret = () => random(32).toString('base64url');

  /** The entry a secret stands for. Constant-time lookup is moot for a Map key of 256 random bits. */
  const entryOf = (secret: unknown): Entry | null => (typeof secret === 'string' && secret.length > 0 ? (bySecret.get(secret) ?? null) : null);

  /**
   * A new session in the core (sign-in, first-run setup) gets a new secret: whatever credential
   * existed before it is dead, and the event sockets opened with it are closed (the page reopens
   * them with the new one).
   */
  const rotate = (entry: Entry): string => {
    bySecret.delete(entry.secret);
    entry.secret = newSecret();
    bySecret.set(entry.secret, entry);
    for (const ws of entry.sockets) ws.close(4001, 'credential rotated');
    entry.sockets.clear();
    return entry.secret;
  };

  const send = (res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}) => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Security-Policy': serveCsp(port),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
      ...extra,
    });
    res.end(body);
  };
  const json = 'application/json';

  /** Read a JSON body; answers the error itself and resolves null when there is none to use. */
  const jsonBody = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<{ value: unknown } | null> => {
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      send(res, 415, 'application/json only\n');
      return null;
    }
    let text: string;
    try {
      text = await readBody(req, MAX_BODY);
    } catch (e) {
      // Too large: say so. Aborted or cut by the request timeout: there is nobody to answer.
      if (e instanceof BodyTooLarge) send(res, 413, `${e.message}\n`, undefined, { Connection: 'close' });
      return null;
    }
    try {
      return { value: JSON.parse(text) as unknown };
    } catch {
      send(res, 400, JSON.stringify({ ok: false, error: { code: 'INVALID_INPUT', message: 'Body is not JSON.' } }), json);
      return null;
    }
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const why = refuse(req);
    if (why) {
      log(`refused ${req.method} ${req.url}: ${why}`);
      return send(res, 403, `Forbidden: ${why}\n`);
    }
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);

    // The page redeems the one-time token (from its URL fragment) for its secret, once.
    if (url.pathname === '/api/session') {
      if (req.method !== 'POST') return send(res, 405, 'POST only\n');
      const body = await jsonBody(req, res);
      if (!body) return;
      const token = (body.value as { token?: unknown } | null)?.token;
      if (!redeemToken(token)) {
        log('refused a one-time link: already used, expired or wrong');
        return send(
          res,
          403,
          unauthenticated(
            'This sign-in link was already used, has expired or is wrong. Ask someone signed in for a new one (Account → Let someone else sign in), or press Enter where `airlock serve` runs.',
          ),
          json,
        );
      }
      const sockets = new Set<WebSocket>();
      const entry: Entry = { client: newClient(req, sockets), secret: newSecret(), boundSession: null, sockets };
      entries.add(entry);
      bySecret.set(entry.secret, entry);
      return send(res, 200, JSON.stringify({ secret: entry.secret }), json);
    }

    if (url.pathname === '/api/call') {
      if (req.method !== 'POST') return send(res, 405, 'POST only\n');
      const entry = entryOf(req.headers[SECRET_HEADER]);
      if (!entry) {
        req.resume();
        return send(res, 401, unauthenticated('This page holds no Airlock session: open the one-time link printed by `airlock serve`.'), json);
      }
      const body = await jsonBody(req, res);
      if (!body) return;
      const msg = (body.value ?? {}) as { channel?: unknown; input?: unknown };
      const result = await core.dispatch(entry.client, msg.channel, msg.input);
      const extra: Record<string, string> = {};
      const session = entry.client.session?.id ?? null;
      // The entry may have been closed meanwhile (shutdown): then there is nothing to rotate.
      if (session !== null && session !== entry.boundSession && bySecret.get(entry.secret) === entry) {
        entry.boundSession = session;
        extra['Airlock-Secret'] = rotate(entry);
      }
      return send(res, 200, JSON.stringify(result), json, extra);
    }
    if (url.pathname.startsWith('/api/')) return send(res, 404, 'Not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'GET only\n');
    // The renderer itself is public (the same files as the installed package); only calls need a secret.
    serveStatic(url.pathname, opts.rendererDir, res, send, port);
  };

  const server = http.createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      // Node checks the two timeouts above every connectionsCheckingInterval (30 s by default).
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      // One client's broken connection is that client's problem: never an unhandled 'error'.
      req.on('error', () => {});
      res.on('error', () => {});
      handle(req, res).catch((e: unknown) => {
        log(`internal error on ${req.method} ${req.url}: ${e instanceof Error ? e.message : String(e)}`);
        send(res, 500, JSON.stringify({ ok: false, error: { code: 'INTERNAL', message: 'The browser shell failed on this request.' } }), json);
      });
    },
  );
  // Malformed HTTP, oversized headers, timeouts: answer if the socket still can, then drop it.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    socket.on('error', () => {});
    const status =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent ?? false;
    if (socket.writable && !started && err.code !== 'ECONNRESET') socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });

  // Server → client only: the page's one message is its secret. No compression (no zip bombs).
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD, perMessageDeflate: false });
  wss.on('error', (e) => log(`websocket server error: ${e.message}`));
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const why = refuse(req) ?? (url.pathname !== '/api/events' ? 'not found' : null) ?? (pending.size >= MAX_PENDING_WS ? 'too many sockets waiting to authenticate' : null);
    if (why) {
      log(`refused websocket ${req.url}: ${why}`);
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => acceptSocket(ws));
  });

  /**
   * An event socket proves itself with its first message, `{"secret": S}`; until then it gets
   * nothing, and after WS_AUTH_MS it is closed. Protocol errors (bad frames, oversized messages,
   * invalid UTF-8) close that socket only.
   */
  function acceptSocket(ws: WebSocket) {
    let entry: Entry | null = null;
    pending.add(ws);
    const timer = setTimeout(() => ws.close(4401, 'authenticate first'), WS_AUTH_MS);
    ws.on('error', (e) => {
      log(`websocket closed on a protocol error: ${e.message}`);
      ws.terminate();
    });
    ws.on('close', () => {
      clearTimeout(timer);
      pending.delete(ws);
      entry?.sockets.delete(ws);
    });
    ws.on('message', (data, isBinary) => {
      if (!pending.has(ws)) return; // after authentication the page sends nothing that matters
      clearTimeout(timer);
      pending.delete(ws);
      let secret: unknown;
      try {
        secret = isBinary ? undefined : (JSON.parse(String(data)) as { secret?: unknown } | null)?.secret;
      } catch {
        secret = undefined;
      }
      const e = entryOf(secret);
      if (!e) {
        ws.close(4401, 'unauthorized');
        return;
      }
      entry = e;
      e.sockets.add(ws);
      ws.send(JSON.stringify({ auth: 'ok' }));
    });
  }

  function newClient(req: http.IncomingMessage, sockets: Set<WebSocket>): ClientContext {
    return core.newClient({
      shell: 'browser',
      source: `${req.socket.remoteAddress ?? '?'}`,
      // A signed-in page may hand out a link for the next person (the core checks the session and audits it).
      signInLink: () => {
        log('a signed-in page asked for a one-time link for someone else');
        return linkOf(mintToken());
      },
      emit: (event, payload) => {
        const msg = JSON.stringify({ event, payload });
        for (const ws of sockets) {
          if (ws.readyState !== ws.OPEN) continue;
          // The core's outbox stops handing over events while `buffered` is high, so this is only
          // a last guard against a socket that somehow still grows.
          if (ws.bufferedAmount > 8 * 1024 * 1024) ws.terminate();
          else ws.send(msg, () => {});
        }
      },
      // Backpressure: what the page's sockets have not taken yet. Over the core's marks, terminal
      // output pauses its SSH channel and progress is coalesced (electron/core/outbox.ts).
      buffered: () => {
        let most = 0;
        for (const ws of sockets) if (ws.readyState === ws.OPEN) most = Math.max(most, ws.bufferedAmount);
        return most;
      },
      overflow: () => {
        log('event socket cut off: the page took no events');
        for (const ws of sockets) ws.terminate();
      },
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log(`server error: ${e.message}`));
  port = (server.address() as AddressInfo).port;
  function linkOf(t: { token: string; expires: number }): { url: string; expiresAt: string } {
    return { url: `http://127.0.0.1:${port}/#token=${t.token}`, expiresAt: new Date(t.expires).toISOString() };
  }
  return {
    ...linkOf(first),
    port,
    newLink: () => linkOf(mintToken()),
    async close() {
      stopped = true;
      oneTime.clear();
      for (const ws of pending) ws.terminate();
      for (const entry of entries) {
        bySecret.delete(entry.secret);
        for (const ws of entry.sockets) ws.terminate();
        await core.closeClient(entry.client);
      }
      entries.clear();
      wss.close();
      const serverClosed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await serverClosed;
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

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Past the limit the rest is read and dropped (the 413 goes out at once, with Connection: close).
      if (size > limit) reject(new BodyTooLarge('Request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => reject(new Error('connection closed')));
  });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/**
 * A client of `airlock serve` speaking the wire protocol by hand (docs/serve-protocol.md), as an
 * attacker or the page would: every header is the caller's, nothing is added behind its back.
 */
import http from 'node:http';
import WebSocket from 'ws';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Raw HTTP to 127.0.0.1:port; Host defaults to the console's own, any header can be overridden. */
export function request(port: number, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: { Host: `127.0.0.1:${port}`, ...opts.headers }, setHost: false, agent: false },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The token of a one-time link `http://127.0.0.1:PORT/#token=T`. */
export function tokenOf(url: string): string {
  const m = /#token=([A-Za-z0-9_-]+)$/.exec(url);
  if (!m) throw new Error(`not a one-time link: ${url}`);
  return m[1]!;
}

/** POST /api/session with a token, as the page does with its URL fragment. */
export function redeemToken(port: number, token: string, headers: Record<string, string> = {}): Promise<Answer> {
  return request(port, { method: 'POST', path: '/api/session', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ token }) });
}

/** Redeem a one-time link; throws unless it gives a secret. */
export async function redeem(url: string): Promise<string> {
  const port = Number(new URL(url).port);
  const r = await redeemToken(port, tokenOf(url));
  if (r.status !== 200) throw new Error(`redeeming ${url} failed: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { secret: string }).secret;
}

/** POST /api/call with a secret (or none) and any extra headers. */
export function callWith(port: number, secret: string | null, channel: string, input: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return request(port, {
    method: 'POST',
    path: '/api/call',
    headers: { 'Content-Type': 'application/json', ...(secret === null ? {} : { 'Airlock-Secret': secret }), ...headers },
    body: JSON.stringify({ channel, input }),
  });
}

export interface EventSocket {
  ws: WebSocket;
  /** Messages received so far (parsed JSON). */
  messages: unknown[];
  /** Resolves with the close code once the socket closes (-1: the handshake was refused). */
  closed: Promise<number>;
  /** Resolves true once the server answered `{"auth": "ok"}`, false if it closed first. */
  authed: Promise<boolean>;
}

/** Open /api/events and (unless `secret` is undefined) send the secret as the first message. */
export function openEvents(port: number, secret: string | undefined, headers: Record<string, string> = {}): EventSocket {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/events`, { headers });
  const messages: unknown[] = [];
  let onAuth: (v: boolean) => void = () => {};
  const authed = new Promise<boolean>((r) => (onAuth = r));
  let opened = false;
  const closed = new Promise<number>((resolve) => {
    ws.on('close', (code) => (onAuth(false), resolve(opened ? code : -1)));
  });
  ws.on('error', () => {}); // a refused handshake: 'close' follows
  ws.on('open', () => {
    opened = true;
    if (secret !== undefined) ws.send(JSON.stringify({ secret }));
  });
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as unknown;
    messages.push(msg);
    if ((msg as { auth?: unknown }).auth === 'ok') onAuth(true);
  });
  return { ws, messages, closed, authed };
}

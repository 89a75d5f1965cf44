/**
 * A client of `airlock serve` speaking the wire protocol by hand (docs/serve-protocol.md), as an
 * attacker or the page would: every header is the caller's, nothing is added behind its back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

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

// ---------- `airlock serve` as its own process ----------

/**
 * `node bin/airlock.mjs serve --data DIR --json` as its own process; resolves once it has printed
 * its first line, the JSON with the one-time URL (docs/serve-protocol.md). `env` is the whole
 * environment of the process (default: this one's). Its stderr goes to `onStderr` as it comes.
 */
export function spawnServe(opts: { dataDir: string; env?: NodeJS.ProcessEnv; onStderr?: (text: string) => void; timeoutMs?: number }): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'airlock.mjs'), 'serve', '--data', opts.dataDir, '--json'], {
    cwd: ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
    opts.onStderr?.(b.toString());
  });
  const timeoutMs = opts.timeoutMs ?? 45_000;
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`airlock serve printed no URL within ${timeoutMs / 1000} s:\n${stderr}`)), timeoutMs);
    let out = '';
    let read = false;
    // Keeps reading after the first line (a pipe nobody reads would stall the console).
    const onData = (b: Buffer) => {
      if (read) return;
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      read = true;
      const line = out.slice(0, nl);
      let url: unknown;
      try {
        url = (JSON.parse(line) as { url?: unknown }).url;
      } catch {
        url = undefined;
      }
      if (typeof url !== 'string') return fail(new Error(`airlock serve printed an unexpected first line: ${line}`));
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve({ child, url });
    };
    const onExit = (code: number | null, sig: NodeJS.Signals | null) => fail(new Error(`airlock serve exited (${code ?? sig}) before printing its URL:\n${stderr}`));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export interface ServeProcess {
  child: ChildProcess;
  dataDir: string;
  port: number;
  /** The page's current secret (a sign-in replaces it: `call` follows the `Airlock-Secret` header). */
  readonly secret: string;
  /** What the console wrote on its stderr so far. */
  stderr(): string;
  /** POST /api/call with the current secret; throws unless `ok`, returns the value. */
  call<T = unknown>(channel: string, input: unknown): Promise<T>;
  /** Stops the console and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * A console of its own for an integration test: a fresh data directory, `airlock serve` started
 * in it (TOTP policy off and no ssh-agent unless `env` says otherwise), its one-time link
 * redeemed as the page would, and (with `setup`) the first administrator set up through
 * `session:setup`. dist/ must be built (scripts/build.mjs).
 */
export async function startServeProcess(opts: { name: string; env?: Record<string, string>; setup?: { admin: string; password: string } }): Promise<ServeProcess> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `airlock-${opts.name}-`));
  let stderr = '';
  let started: { child: ChildProcess; url: string };
  try {
    started = await spawnServe({ dataDir, env: { ...process.env, AIRLOCK_TOTP_POLICY: 'off', SSH_AUTH_SOCK: '', ...opts.env }, onStderr: (t) => (stderr += t) });
  } catch (e) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const { child, url } = started;
  const port = Number(new URL(url).port);
  let secret = '';
  const serve: ServeProcess = {
    child,
    dataDir,
    port,
    get secret() {
      return secret;
    },
    stderr: () => stderr,
    async call<T>(channel: string, input: unknown): Promise<T> {
      const r = await callWith(port, secret, channel, input);
      const body = JSON.parse(r.body) as { ok: boolean; value?: T };
      if (!body.ok) throw new Error(`${channel}: ${r.body}`);
      if (r.headers['airlock-secret']) secret = String(r.headers['airlock-secret']);
      return body.value as T;
    },
    async stop() {
      await stopProcess(child);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    secret = await redeem(url);
    if (opts.setup) await serve.call('session:setup', opts.setup);
  } catch (e) {
    await serve.stop();
    throw e;
  }
  return serve;
}

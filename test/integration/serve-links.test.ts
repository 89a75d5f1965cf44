/**
 * Issue 11, "Two people, one console": a second person signs in to a running `airlock serve`
 * beside the first, without a restart and without weakening the one-time link (docs/security.md,
 * "Browser shell"). Each link is redeemed once, within its time, for a client of its own; a
 * signed-in page may ask for another (session:signInLink, audited); the process prints another on
 * SIGUSR1 (or Enter on its terminal). Real core, real SQLite, raw HTTP as in serve.test.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OPEN_LINKS, startServe, TOKEN_TTL_MS, type ServeHandle } from '../../electron/shells/serve';
import { ADMIN, testCore, type TestCore } from '../support/core';
import { callWith, openEvents, redeem, redeemToken, tokenOf, type Answer } from '../support/serve';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const value = (r: Answer) => JSON.parse(r.body) as { ok: boolean; value?: unknown; error?: { code: string; message: string } };
const BOB = { name: 'bob', password: 'bob own password' };

/** One page of the console: its secret follows the rotations the shell announces. */
class Page {
  constructor(
    private readonly port: number,
    public secret: string,
  ) {}
  async call(channel: string, input: unknown): Promise<{ ok: boolean; value?: unknown; error?: { code: string; message: string } }> {
    const r = await callWith(this.port, this.secret, channel, input);
    if (r.headers['airlock-secret']) this.secret = String(r.headers['airlock-secret']);
    return value(r);
  }
}

describe('airlock serve: several one-time links, one person each', () => {
  let t: TestCore;
  let serve: ServeHandle;
  let rendererDir: string;
  let clock = Date.UTC(2026, 0, 1, 9);

  beforeAll(async () => {
    t = await testCore({ shell: 'browser' });
    rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-renderer-'));
    fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Airlock</title>');
    serve = await startServe(t.core, { rendererDir, now: () => clock });
  });
  afterAll(async () => {
    await serve?.close();
    await t?.close();
    fs.rmSync(rendererDir, { recursive: true, force: true });
  });

  it('two people in two windows: independent links, secrets and sessions; one signing out leaves the other signed in', async () => {
    const second = serve.newLink();
    expect(second.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{43}$/);
    expect(tokenOf(second.url)).not.toBe(tokenOf(serve.url));
    expect(Date.parse(second.expiresAt) - clock).toBe(TOKEN_TTL_MS);
    // Redeeming the second does not burn the first; each works once.
    const b = new Page(serve.port, await redeem(second.url));
    expect((await redeemToken(serve.port, tokenOf(second.url))).status).toBe(403);
    const a = new Page(serve.port, await redeem(serve.url));
    expect((await redeemToken(serve.port, tokenOf(serve.url))).status).toBe(403);
    expect(a.secret).not.toBe(b.secret);

    expect(await a.call('session:setup', ADMIN)).toMatchObject({ ok: true });
    expect(await a.call('users:create', { ...BOB, roles: ['officer'], mustChangePassword: false })).toMatchObject({ ok: true });
    // B's page is a client of its own: not signed in by A's sign-in.
    expect(await b.call('session:status', {})).toMatchObject({ ok: true, value: { user: null } });
    expect(await b.call('session:login', BOB)).toMatchObject({ ok: true });
    expect(await a.call('session:status', {})).toMatchObject({ value: { user: { name: ADMIN.admin } } });
    expect(await b.call('session:status', {})).toMatchObject({ value: { user: { name: BOB.name } } });
    // Each page's event socket opens with its own secret only.
    const aEvents = openEvents(serve.port, a.secret);
    const bEvents = openEvents(serve.port, b.secret);
    expect(await aEvents.authed).toBe(true);
    expect(await bEvents.authed).toBe(true);
    // A signs out: B is still signed in, with a socket still open.
    expect(await a.call('session:logout', {})).toMatchObject({ ok: true });
    expect(await a.call('session:status', {})).toMatchObject({ value: { user: null } });
    expect(await b.call('session:status', {})).toMatchObject({ value: { user: { name: BOB.name } } });
    expect(bEvents.ws.readyState).toBe(bEvents.ws.OPEN);
    aEvents.ws.close();
    bEvents.ws.close();
  });

  it('a signed-in page asks for a link for the next person; an unsigned page cannot', async () => {
    const fresh = new Page(serve.port, await redeem(serve.newLink().url));
    expect(await fresh.call('session:signInLink', {})).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    expect(await fresh.call('session:login', BOB)).toMatchObject({ ok: true });
    const r = await fresh.call('session:signInLink', {});
    expect(r).toMatchObject({ ok: true });
    const link = r.value as { url: string; expiresAt: string };
    expect(Date.parse(link.expiresAt) - clock).toBe(TOKEN_TTL_MS);
    const next = new Page(serve.port, await redeem(link.url));
    expect(await next.call('session:status', {})).toMatchObject({ value: { user: null } });
    expect((await redeemToken(serve.port, tokenOf(link.url))).status).toBe(403);
  });

  it('a handed-out link expires like the first one', async () => {
    const link = serve.newLink();
    clock += TOKEN_TTL_MS + 1;
    const r = await redeemToken(serve.port, tokenOf(link.url));
    expect(r.status).toBe(403);
    expect(value(r).error?.message).toMatch(/Ask someone signed in for a new one/);
  });

  it(`keeps at most ${MAX_OPEN_LINKS} unused links: minting another retires the oldest`, async () => {
    const links = Array.from({ length: MAX_OPEN_LINKS + 1 }, () => serve.newLink());
    expect((await redeemToken(serve.port, tokenOf(links[0]!.url))).status).toBe(403);
    for (const l of links.slice(1)) expect((await redeemToken(serve.port, tokenOf(l.url))).status).toBe(200);
  });
});

describe('airlock serve (the process): SIGUSR1 prints another link', () => {
  let child: ChildProcess;
  let dataDir: string;
  let stderr = '';
  const lines: string[] = [];
  let more: () => void = () => {};

  beforeAll(async () => {
    expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-serve-links-'));
    child = spawn(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'serve', '--data', dataDir, '--json'], {
      env: { ...process.env, AIRLOCK_TOTP_POLICY: 'off', SSH_AUTH_SOCK: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        lines.push(out.slice(0, nl));
        out = out.slice(nl + 1);
        more();
      }
    });
    await lineCount(1);
  }, 180_000);
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  function lineCount(n: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`airlock serve printed ${lines.length} lines, not ${n}:\n${stderr}`)), 45_000);
      const check = () => {
        if (lines.length >= n) {
          clearTimeout(timer);
          resolve();
        }
      };
      more = check;
      check();
      child.once('exit', (code) => reject(new Error(`airlock serve exited (${code}):\n${stderr}`)));
    });
  }

  it('prints a fresh one-time link as a JSON line on each SIGUSR1; both links sign in separately; the inspector stays shut', async () => {
    const first = JSON.parse(lines[0]!) as { url: string; expiresAt: string; port: number; pid: number };
    expect(first.pid).toBe(child.pid);
    expect(Date.parse(first.expiresAt)).toBeGreaterThan(Date.now());
    child.kill('SIGUSR1');
    await lineCount(2);
    const second = JSON.parse(lines[1]!) as { url: string; expiresAt: string };
    expect(Object.keys(second).sort()).toEqual(['expiresAt', 'url']);
    expect(new URL(second.url).port).toBe(String(first.port));
    expect(tokenOf(second.url)).not.toBe(tokenOf(first.url));
    const a = await redeem(first.url);
    const b = await redeem(second.url);
    expect(a).not.toBe(b);
    expect(value(await callWith(first.port, b, 'session:status', {}))).toMatchObject({ ok: true, value: { setupRequired: true, user: null } });
    // Node's default for SIGUSR1 would open its inspector (code execution for any local user on
    // 127.0.0.1:9229); with the console's own listener it does not.
    expect(stderr).not.toMatch(/Debugger listening/);
    expect(stderr).toMatch(/a new one-time link \(SIGUSR1\)/);
  });
});

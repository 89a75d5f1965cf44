/**
 * `airlock serve` against the real core, from the attacker's side: raw HTTP and WebSocket with
 * every header chosen by the test. The session credential is the page's secret (docs/serve-protocol.md);
 * the browser-side attacks (another loopback port in the same Chromium) are in test/e2e/serve-origin.spec.ts,
 * malformed frames and slow clients against a separate process in test/integration/serve-robust.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, WS_AUTH_MS, type ServeHandle } from '../../electron/shells/serve';
import { ADMIN, testCore, type TestCore } from '../support/core';
import { callWith, openEvents, redeemToken, request, tokenOf } from '../support/serve';

let t: TestCore;
let serve: ServeHandle;
let rendererDir: string;
/** The page's secret: changes at every sign-in. */
let secret = '';

beforeAll(async () => {
  t = await testCore({ shell: 'browser' });
  rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-renderer-'));
  fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Airlock</title>');
  fs.writeFileSync(path.join(os.tmpdir(), 'airlock-secret-outside.txt'), 'outside');
  serve = await startServe(t.core, { rendererDir });
});
afterAll(async () => {
  await serve?.close();
  await t?.close();
  fs.rmSync(rendererDir, { recursive: true, force: true });
});

const call = (channel: string, input: unknown, headers: Record<string, string> = {}, s: string | null = secret) => callWith(serve.port, s, channel, input, headers);
const value = (r: { body: string }) => JSON.parse(r.body) as { ok: boolean; value?: unknown; error?: { code: string } };
const B64URL_256 = /^[A-Za-z0-9_-]{43}$/;

describe('airlock serve: the one-time link', () => {
  it('listens on loopback only, on a random port, with the token in the URL fragment (never in a request line)', () => {
    expect(serve.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{43}$/);
    expect(serve.port).toBeGreaterThan(1024);
  });

  it('serves the page to anyone on loopback but no call without a secret', async () => {
    const page = await request(serve.port, { path: '/' });
    expect(page.status).toBe(200);
    expect(page.headers['set-cookie']).toBeUndefined();
    const r = await call('session:status', {}, {}, null);
    expect(r.status).toBe(401);
    expect(value(r)).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
  });

  it('never redeems from a request line (the old ?token= form) and refuses a wrong token without burning the right one', async () => {
    const token = tokenOf(serve.url);
    const q = await request(serve.port, { path: `/?token=${token}` });
    expect(q.headers['set-cookie']).toBeUndefined();
    expect(q.body).not.toContain(token);
    const wrong = await redeemToken(serve.port, 'A'.repeat(43));
    expect(wrong.status).toBe(403);
    expect(value(wrong)).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    // Not JSON, not a string, a prefix: refused the same way.
    expect((await request(serve.port, { method: 'POST', path: '/api/session', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ token }) })).status).toBe(415);
    expect((await redeemToken(serve.port, token.slice(0, 20))).status).toBe(403);
    expect((await request(serve.port, { method: 'POST', path: '/api/session', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: [token] }) })).status).toBe(403);
  });

  it('a rebinding Host or a foreign Origin cannot redeem (or burn) the link', async () => {
    const token = tokenOf(serve.url);
    const bad: Array<Record<string, string>> = [{ Host: `evil.example:${serve.port}` }, { Host: `127.0.0.1:${serve.port + 1}` }, { Origin: 'null' }, { Origin: `http://127.0.0.1:${serve.port + 1}` }];
    for (const headers of bad) {
      const r = await redeemToken(serve.port, token, headers);
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.body).not.toMatch(/secret/);
    }
  });

  it('redeems the link once for a 256-bit secret in the answer body, never a cookie', async () => {
    const token = tokenOf(serve.url);
    const r = await redeemToken(serve.port, token, { Origin: `http://127.0.0.1:${serve.port}` });
    expect(r.status).toBe(200);
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.headers['cache-control']).toBe('no-store');
    secret = (JSON.parse(r.body) as { secret: string }).secret;
    expect(secret).toMatch(B64URL_256);
    const replay = await redeemToken(serve.port, token);
    expect(replay.status).toBe(403);
    expect(replay.body).not.toContain(secret);
  });

  it('an unused link expires', async () => {
    let clock = 1_000_000;
    const other = await startServe(t.core, { rendererDir, tokenTtlMs: 60_000, now: () => clock });
    try {
      clock += 60_001;
      expect((await redeemToken(other.port, tokenOf(other.url))).status).toBe(403);
      clock -= 60_001; // even back in time: an expired link is gone for good
      expect((await redeemToken(other.port, tokenOf(other.url))).status).toBe(403);
    } finally {
      await other.close();
    }
  });
});

describe('airlock serve: the page secret is the whole credential', () => {
  it('serves the contract to the secret holder', async () => {
    const r = await call('session:status', {});
    expect(r.status).toBe(200);
    expect(value(r)).toMatchObject({ ok: true, value: { setupRequired: true, shell: 'browser' } });
  });

  it('rotates the secret at first-run setup: the old one is dead for calls and event sockets', async () => {
    const before = secret;
    const early = openEvents(serve.port, before);
    expect(await early.authed).toBe(true);
    const r = await call('session:setup', ADMIN);
    expect(value(r)).toMatchObject({ ok: true, value: { name: 'alice' } });
    const rotated = String(r.headers['airlock-secret'] ?? '');
    expect(rotated).toMatch(B64URL_256);
    expect(rotated).not.toBe(before);
    // The socket opened with the old secret is closed; the old secret opens nothing and calls nothing.
    expect(await early.closed).toBe(4001);
    const stale = await call('hosts:list', {}, {}, before);
    expect(stale.status).toBe(401);
    expect(stale.body).not.toContain('"ok":true');
    const staleWs = openEvents(serve.port, before);
    expect(await staleWs.authed).toBe(false);
    expect(await staleWs.closed).toBe(4401);
    secret = rotated;
    expect(value(await call('hosts:list', {}))).toEqual({ ok: true, value: [] });
    // Calls that do not start a session do not rotate.
    expect((await call('hosts:list', {})).headers['airlock-secret']).toBeUndefined();
  });

  it('rotates again at every sign-in (after a sign-out), and a failed sign-in rotates nothing', async () => {
    expect(value(await call('session:logout', {}))).toMatchObject({ ok: true });
    const bad = await call('session:login', { name: ADMIN.admin, password: 'wrong password here' });
    expect(value(bad)).toMatchObject({ ok: false, error: { code: 'BAD_CREDENTIALS' } });
    expect(bad.headers['airlock-secret']).toBeUndefined();
    const before = secret;
    const r = await call('session:login', { name: ADMIN.admin, password: ADMIN.password });
    expect(value(r)).toMatchObject({ ok: true, value: { name: 'alice' } });
    secret = String(r.headers['airlock-secret'] ?? '');
    expect(secret).toMatch(B64URL_256);
    expect(secret).not.toBe(before);
    expect((await call('hosts:list', {}, {}, before)).status).toBe(401);
    expect(value(await call('hosts:list', {}))).toMatchObject({ ok: true });
  });

  it('refuses a replay with every header a local process can forge but the secret', async () => {
    const forged: Array<Record<string, string>> = [
      {},
      { Cookie: `airlock=${'A'.repeat(43)}` },
      { Origin: `http://127.0.0.1:${serve.port}`, Referer: `http://127.0.0.1:${serve.port}/`, 'X-Requested-With': 'XMLHttpRequest', 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'cors' },
      { Authorization: `Bearer ${secret.slice(0, 42)}` },
      { 'Airlock-Secret': secret.slice(0, 42) },
      { 'Airlock-Secret': `${secret}A` },
      { 'Airlock-Secret': secret.toLowerCase() === secret ? secret.toUpperCase() : secret.toLowerCase() },
      { 'Airlock-Secret': '' },
    ];
    for (const headers of forged) {
      const r = await call('hosts:list', {}, headers, null);
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.body).not.toContain('"ok":true');
    }
    // A secret in the query string or the body is not a credential either.
    const q = await request(serve.port, { method: 'POST', path: `/api/call?secret=${secret}`, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ channel: 'hosts:list', input: {}, secret }) });
    expect(q.status).toBe(401);
  });

  it('refuses a DNS-rebinding Host and a foreign Origin even with the secret', async () => {
    const host = await call('hosts:list', {}, { Host: `evil.example:${serve.port}` });
    expect(host.status).toBe(403);
    expect(host.body).toMatch(/Host/);
    const origin = await call('hosts:list', {}, { Origin: `http://127.0.0.1:${serve.port + 1}` });
    expect(origin.status).toBe(403);
    expect(origin.body).toMatch(/Origin/);
    expect((await call('hosts:list', {}, { Origin: `http://127.0.0.1:${serve.port}` })).status).toBe(200);
  });

  it('refuses form posts (non-JSON content types) and oversized bodies', async () => {
    const form = await call('hosts:list', {}, { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    const big = await request(serve.port, {
      method: 'POST',
      path: '/api/call',
      headers: { 'Content-Type': 'application/json', 'Airlock-Secret': secret },
      body: 'x'.repeat(3 * 1024 * 1024),
    }).catch(() => ({ status: 413 }));
    expect(big.status).toBe(413);
    expect(value(await call('hosts:list', {}))).toMatchObject({ ok: true });
  });

  it('answers malformed calls with typed errors', async () => {
    const r = await request(serve.port, { method: 'POST', path: '/api/call', headers: { 'Content-Type': 'application/json', 'Airlock-Secret': secret }, body: '{not json' });
    expect(value(r)).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    expect(value(await call('no:such', {}))).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });
    const nul = await request(serve.port, { method: 'POST', path: '/api/call', headers: { 'Content-Type': 'application/json', 'Airlock-Secret': secret }, body: 'null' });
    expect(value(nul)).toMatchObject({ ok: false });
  });

  it('sends a strict CSP and never serves files outside the renderer', async () => {
    const page = await request(serve.port, { path: '/' });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'; script-src 'self'/);
    expect(page.headers['content-security-policy']).not.toMatch(/unsafe-(eval|inline)/);
    for (const p of ['/../airlock-secret-outside.txt', '/%2e%2e/airlock-secret-outside.txt', '/..%2fairlock-secret-outside.txt', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd']) {
      const r = await request(serve.port, { path: p });
      expect(r.body, p).not.toContain('outside');
      expect(r.body, p).not.toContain('root:');
    }
  });
});

describe('airlock serve: the event socket', () => {
  it('opens only with the console Host and Origin, and authenticates with the first message only', async () => {
    expect(await openEvents(serve.port, secret, { Origin: 'http://evil.example' }).closed).toBe(-1);
    expect(await openEvents(serve.port, secret, { Origin: `http://127.0.0.1:${serve.port + 1}` }).closed).toBe(-1);
    expect(await openEvents(serve.port, secret, { Host: `evil.example:${serve.port}` }).closed).toBe(-1);
    const good = openEvents(serve.port, secret, { Origin: `http://127.0.0.1:${serve.port}` });
    expect(await good.authed).toBe(true);
    good.ws.close();
    for (const first of ['not json', JSON.stringify({ secret: 'A'.repeat(43) }), JSON.stringify({ secret: [secret] }), JSON.stringify(secret), 'null']) {
      const ws = openEvents(serve.port, undefined);
      ws.ws.on('open', () => ws.ws.send(first));
      expect(await ws.closed, first).toBe(4401);
      expect(ws.messages).toEqual([]);
    }
    // A cookie, or the secret under another name, is not a credential.
    const cookie = openEvents(serve.port, undefined, { Cookie: `airlock=${secret}` });
    cookie.ws.on('open', () => cookie.ws.send(JSON.stringify({ token: secret })));
    expect(await cookie.closed).toBe(4401);
  });

  it(`closes a socket that does not authenticate (within ${WS_AUTH_MS} ms)`, async () => {
    const silent = openEvents(serve.port, undefined);
    expect(await silent.closed).toBe(4401);
    expect(silent.messages).toEqual([]);
  });
});

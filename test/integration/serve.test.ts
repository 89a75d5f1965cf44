import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServe, type ServeHandle } from '../../electron/shells/serve';
import { ADMIN, testCore, type TestCore } from '../support/core';

/** Raw HTTP so the test controls every header, as an attacker would. */
function request(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: { Host: `127.0.0.1:${port}`, ...opts.headers }, setHost: false },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    if (opts.body) req.write(opts.body);
    req.end();
  });
}

let t: TestCore;
let serve: ServeHandle;
let rendererDir: string;
let cookie = '';
let tokenPath = '';

beforeAll(async () => {
  t = await testCore({ shell: 'browser' });
  rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-renderer-'));
  fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Airlock</title>');
  fs.writeFileSync(path.join(os.tmpdir(), 'airlock-secret-outside.txt'), 'outside');
  serve = await startServe(t.core, { rendererDir });
  tokenPath = new URL(serve.url).pathname + new URL(serve.url).search;
});
afterAll(async () => {
  await serve?.close();
  await t?.close();
  fs.rmSync(rendererDir, { recursive: true, force: true });
});

const call = (channel: string, input: unknown, headers: Record<string, string> = {}) =>
  request(serve.port, {
    method: 'POST',
    path: '/api/call',
    headers: { 'Content-Type': 'application/json', Cookie: cookie, ...headers },
    body: JSON.stringify({ channel, input }),
  });

describe('airlock serve', () => {
  it('listens on loopback only, on a random port', () => {
    expect(serve.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
    expect(serve.port).toBeGreaterThan(1024);
  });

  it('refuses the API and the page without the cookie', async () => {
    expect((await request(serve.port, { path: '/' })).status).toBe(401);
    expect((await call('session:status', {})).status).toBe(401);
  });

  it('refuses a wrong token', async () => {
    expect((await request(serve.port, { path: '/?token=' + 'A'.repeat(43) })).status).toBe(403);
  });

  it('redeems the one-time URL once for an HttpOnly SameSite=Strict cookie', async () => {
    const r = await request(serve.port, { path: tokenPath });
    expect(r.status).toBe(303);
    const set = String(r.headers['set-cookie']);
    expect(set).toMatch(/^airlock=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\//);
    cookie = set.split(';')[0]!;
    const replay = await request(serve.port, { path: tokenPath });
    expect(replay.status).toBe(403);
    expect(replay.headers['set-cookie']).toBeUndefined();
  });

  it('serves the contract to the cookie holder', async () => {
    const r = await call('session:status', {});
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ ok: true, value: { setupRequired: true, shell: 'browser' } });
    expect(JSON.parse((await call('session:setup', ADMIN)).body)).toMatchObject({ ok: true, value: { name: 'alice' } });
    expect(JSON.parse((await call('hosts:list', {})).body)).toEqual({ ok: true, value: [] });
  });

  it('refuses a DNS-rebinding Host header even with the cookie', async () => {
    const r = await call('hosts:list', {}, { Host: `evil.example:${serve.port}` });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/Host/);
  });

  it('refuses a foreign Origin even with the cookie', async () => {
    const r = await call('hosts:list', {}, { Origin: 'http://evil.example' });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/Origin/);
    expect((await call('hosts:list', {}, { Origin: `http://127.0.0.1:${serve.port}` })).status).toBe(200);
  });

  it('refuses form posts (non-JSON content types) and oversized bodies', async () => {
    const form = await call('hosts:list', {}, { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    const big = await request(serve.port, {
      method: 'POST',
      path: '/api/call',
      headers: { 'Content-Type': 'application/json', Cookie: cookie },
      body: 'x'.repeat(3 * 1024 * 1024),
    }).catch(() => ({ status: 413 }));
    expect(big.status).toBe(413);
  });

  it('answers malformed calls with typed errors', async () => {
    const r = await request(serve.port, { method: 'POST', path: '/api/call', headers: { 'Content-Type': 'application/json', Cookie: cookie }, body: '{not json' });
    expect(JSON.parse(r.body)).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    expect(JSON.parse((await call('no:such', {})).body)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });
  });

  it('sends a strict CSP and never serves files outside the renderer', async () => {
    const page = await request(serve.port, { path: '/', headers: { Cookie: cookie } });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'; script-src 'self'/);
    expect(page.headers['content-security-policy']).not.toMatch(/unsafe-(eval|inline)/);
    for (const p of ['/../airlock-secret-outside.txt', '/%2e%2e/airlock-secret-outside.txt', '/..%2fairlock-secret-outside.txt', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd']) {
      const r = await request(serve.port, { path: p, headers: { Cookie: cookie } });
      expect(r.body, p).not.toContain('outside');
      expect(r.body, p).not.toContain('root:');
    }
  });

  it('opens the event WebSocket only with the cookie, Host and Origin', async () => {
    const open = (headers: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${serve.port}/api/events`, { headers });
        ws.on('open', () => (ws.close(), resolve('open')));
        ws.on('error', () => resolve('refused'));
        ws.on('unexpected-response', () => resolve('refused'));
      });
    expect(await open({})).toBe('refused');
    expect(await open({ Cookie: cookie, Origin: 'http://evil.example' })).toBe('refused');
    expect(await open({ Cookie: cookie, Origin: `http://127.0.0.1:${serve.port}` })).toBe('open');
  });
});

/**
 * Attack tests for the browser shell's first gate (`checkRequest`, electron/shells/serve.ts): the
 * pure decision, then the same decision on the real HTTP server and WebSocket upgrade (a fake core:
 * nothing here needs one). The token, cookie, replay, content-type and body-size defences are
 * covered end to end in test/integration/serve.test.ts.
 */
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ClientContext, Core } from '../core/types';
import { checkRequest, startServe, type RequestOrigin, type ServeHandle } from './serve';

const PORT = 43123;
const OTHER = 43124;
const good: RequestOrigin = { remoteAddress: '127.0.0.1', host: `127.0.0.1:${PORT}`, origin: undefined };

describe('checkRequest: what a request must be before anything else is looked at', () => {
  it('accepts the console itself: loopback peer, its own Host, no Origin or its own', () => {
    for (const remoteAddress of ['127.0.0.1', '::ffff:127.0.0.1', '::1']) {
      for (const host of [`127.0.0.1:${PORT}`, `localhost:${PORT}`]) {
        for (const origin of [undefined, `http://127.0.0.1:${PORT}`, `http://localhost:${PORT}`]) {
          expect(checkRequest({ remoteAddress, host, origin }, PORT), `${remoteAddress} ${host} ${origin}`).toBeNull();
        }
      }
    }
  });

  it('refuses a peer that is not loopback (another machine, even behind a misconfigured bind)', () => {
    for (const remoteAddress of ['10.213.1.11', '::ffff:192.168.1.5', '0.0.0.0', '192.168.1.5', 'fe80::1', '::', '::ffff:10.0.0.1', '', undefined]) {
      expect(checkRequest({ ...good, remoteAddress }, PORT), String(remoteAddress)).toBe('not from loopback');
    }
  });

  it('refuses a Host that is not exactly the console (DNS rebinding, another port, no Host)', () => {
    for (const host of [
      `evil.example:${PORT}`,
      `127.0.0.1.nip.io:${PORT}`,
      `127.0.0.1:${OTHER}`,
      `localhost:${OTHER}`,
      `127.0.0.1:${PORT}.evil.example`,
      `127.0.0.1:${PORT}@evil.example`,
      `evil.example`,
      `127.0.0.1`,
      `localhost`,
      `localhost.:${PORT}`,
      `[::1]:${PORT}`,
      `LOCALHOST:${PORT}`,
      ` 127.0.0.1:${PORT}`,
      `127.0.0.1:${PORT} `,
      `127.0.0.1:0${PORT}`,
      '',
      undefined,
    ]) {
      expect(checkRequest({ ...good, host }, PORT), String(host)).toBe('bad Host header');
    }
  });

  it('refuses a foreign Origin (CSRF, cross-site WebSocket hijacking, sandboxed frames)', () => {
    for (const origin of [
      'null',
      'http://127.0.0.1.evil',
      `http://127.0.0.1:${OTHER}`,
      `http://localhost:${OTHER}`,
      'http://evil.example',
      `http://evil.example:${PORT}`,
      `https://127.0.0.1:${PORT}`,
      `http://127.0.0.1:${PORT}.evil.example`,
      `http://127.0.0.1:${PORT}@evil.example`,
      `http://127.0.0.1:${PORT}/`,
      'http://127.0.0.1',
      `file://`,
      `app://airlock`,
      '',
    ]) {
      expect(checkRequest({ ...good, origin }, PORT), origin).toBe('foreign Origin');
    }
  });

  it('checks in order: the peer first, then Host, then Origin', () => {
    expect(checkRequest({ remoteAddress: '10.0.0.1', host: 'evil.example', origin: 'null' }, PORT)).toBe('not from loopback');
    expect(checkRequest({ remoteAddress: '127.0.0.1', host: 'evil.example', origin: 'null' }, PORT)).toBe('bad Host header');
  });

  it('refuses everything while there is no port to compare with', () => {
    expect(checkRequest({ ...good, host: '127.0.0.1:0' }, 0)).toBe('not listening');
  });
});

describe('the same gate on the live server, for HTTP and the WebSocket upgrade', () => {
  let serve: ServeHandle;
  let rendererDir: string;
  const calls: unknown[] = [];

  /** A core that records calls: the gate must stop bad requests before the core is reached. */
  const fakeCore: Core = {
    config: { dataDir: '/nonexistent', shell: 'browser' },
    newClient: ({ shell, source, emit }): ClientContext => ({
      id: `c${calls.length}`,
      shell,
      source,
      session: null,
      emit: emit ?? (() => {}),
    }),
    dispatch: async (_c, channel, input) => {
      calls.push({ channel, input });
      return { ok: true, value: 'reached' };
    },
    closeClient: async () => {},
    close: async () => {},
  };

  function request(opts: { path: string; headers: Record<string, string>; method?: string; body?: string }) {
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: serve.port, path: opts.path, method: opts.method ?? 'GET', headers: opts.headers, setHost: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }

  const upgrade = (headers: Record<string, string>) =>
    new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${serve.port}/api/events`, { headers });
      ws.on('open', () => (ws.close(), resolve('open')));
      ws.on('error', () => resolve('refused'));
      ws.on('unexpected-response', () => resolve('refused'));
    });

  beforeAll(async () => {
    rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-serve-unit-'));
    fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Airlock</title>');
    serve = await startServe(fakeCore, { rendererDir });
  });
  afterAll(async () => {
    await serve?.close();
    fs.rmSync(rendererDir, { recursive: true, force: true });
  });

  it('a rebinding Host or a foreign Origin cannot redeem (or burn) the one-time URL; the console can', async () => {
    const u = new URL(serve.url);
    const tokenPath = u.pathname + u.search;
    const own = `127.0.0.1:${serve.port}`;
    const refused: Array<Record<string, string>> = [
      { Host: `evil.example:${serve.port}` },
      { Host: `127.0.0.1.nip.io:${serve.port}` },
      { Host: `127.0.0.1:${serve.port + 1}` },
      { Host: own, Origin: 'null' },
      { Host: own, Origin: 'http://127.0.0.1.evil' },
      { Host: own, Origin: `http://127.0.0.1:${serve.port + 1}` },
    ];
    for (const headers of refused) {
      const r = await request({ path: tokenPath, headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.headers['set-cookie'], JSON.stringify(headers)).toBeUndefined();
    }
    const ok = await request({ path: tokenPath, headers: { Host: own } });
    expect(ok.status).toBe(303);
    const cookie = String(ok.headers['set-cookie']).split(';')[0]!;

    // With the cookie: the API answers the console, and refuses the same call from a rebinding
    // page or a foreign origin without reaching the core.
    const call = (headers: Record<string, string>) =>
      request({ path: '/api/call', method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie, ...headers }, body: JSON.stringify({ channel: 'session:status', input: {} }) });
    expect((await call({ Host: own })).status).toBe(200);
    expect(calls).toHaveLength(1);
    const foreign: Array<Record<string, string>> = [
      { Host: `evil.example:${serve.port}` },
      { Host: `127.0.0.1:${serve.port + 1}` },
      { Host: own, Origin: 'null' },
      { Host: own, Origin: 'http://127.0.0.1.evil' },
    ];
    for (const headers of foreign) {
      const r = await call(headers);
      expect(r.status, JSON.stringify(headers)).toBe(403);
    }
    expect(calls).toHaveLength(1);

    // The event socket: the same gate on the upgrade.
    expect(await upgrade({ Cookie: cookie })).toBe('open');
    expect(await upgrade({ Cookie: cookie, Host: `evil.example:${serve.port}` })).toBe('refused');
    expect(await upgrade({ Cookie: cookie, Host: `127.0.0.1:${serve.port + 1}` })).toBe('refused');
    expect(await upgrade({ Cookie: cookie, Origin: 'null' })).toBe('refused');
    expect(await upgrade({ Cookie: cookie, Origin: 'http://127.0.0.1.evil' })).toBe('refused');
    expect(await upgrade({ Cookie: cookie, Origin: `http://127.0.0.1:${serve.port + 1}` })).toBe('refused');
  });
});

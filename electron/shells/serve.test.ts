/**
 * Attack tests for the browser shell's first gate (`checkRequest`, electron/shells/serve.ts): the
 * pure decision, then the same decision on the real HTTP server and WebSocket upgrade (a fake core:
 * nothing here needs one). The token, secret, replay, content-type and body-size defences are
 * covered end to end in test/integration/serve.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientContext, Core } from '../core/types';
import type { EventName } from '../../shared/contract/index';
import { callWith, openEvents, redeemToken, tokenOf } from '../../test/support/serve';
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
  /** The emit function of each client the shell created: to push events as the core would. */
  const emits: Array<(event: EventName, payload: unknown) => void> = [];

  /** A core that records calls: the gate must stop bad requests before the core is reached. */
  const fakeCore: Core = {
    config: { dataDir: '/nonexistent', shell: 'browser' },
    newClient: ({ shell, source, emit }): ClientContext => {
      emits.push(emit ?? (() => {}));
      return { id: `c${calls.length}`, shell, source, session: null, emit: emit ?? (() => {}) };
    },
    dispatch: async (c, channel, input) => {
      calls.push({ channel, input });
      // Stand-in for session:login: the client gets a core session.
      if (channel === 'session:login') c.session = { id: `s${calls.length}`, user: 'u1', uid: 'uid-u1', roles: ['admin'] };
      return { ok: true, value: 'reached' };
    },
    closeClient: async () => {},
    close: async () => {},
  };

  beforeAll(async () => {
    rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-serve-unit-'));
    fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>Airlock</title>');
    serve = await startServe(fakeCore, { rendererDir });
  });
  afterAll(async () => {
    await serve?.close();
    fs.rmSync(rendererDir, { recursive: true, force: true });
  });

  it('a rebinding Host or a foreign Origin cannot redeem (or burn) the one-time link; the console can', async () => {
    const token = tokenOf(serve.url);
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
      const r = await redeemToken(serve.port, token, headers);
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.body, JSON.stringify(headers)).not.toMatch(/secret/);
    }
    const ok = await redeemToken(serve.port, token, { Host: own });
    expect(ok.status).toBe(200);
    let secret = (JSON.parse(ok.body) as { secret: string }).secret;

    // With the secret: the API answers the console, and refuses the same call from a rebinding
    // page or a foreign origin without reaching the core.
    const call = (headers: Record<string, string>, channel = 'session:status') => callWith(serve.port, secret, channel, {}, headers);
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

    // The event socket: the same gate on the upgrade, then the secret as the first message.
    const opened = openEvents(serve.port, secret);
    expect(await opened.authed).toBe(true);
    const badUpgrades: Array<Record<string, string>> = [
      { Host: `evil.example:${serve.port}` },
      { Host: `127.0.0.1:${serve.port + 1}` },
      { Origin: 'null' },
      { Origin: 'http://127.0.0.1.evil' },
      { Origin: `http://127.0.0.1:${serve.port + 1}` },
    ];
    for (const headers of badUpgrades) {
      expect(await openEvents(serve.port, secret, headers).closed, JSON.stringify(headers)).toBe(-1);
    }

    // Events reach authenticated sockets only: one that has not sent its secret gets nothing.
    const waiting = openEvents(serve.port, undefined);
    await new Promise<void>((r) => waiting.ws.once('open', () => r()));
    emits[0]!('terminal:data', { id: 't1', data: 'hello' });
    await expect.poll(() => opened.messages).toContainEqual({ event: 'terminal:data', payload: { id: 't1', data: 'hello' } });
    expect(waiting.messages).toEqual([]);
    waiting.ws.close();

    // A new core session rotates the secret: the old one stops working at once, and its socket closes.
    const login = await call({}, 'session:login');
    const rotated = String(login.headers['airlock-secret']);
    expect(rotated).not.toBe(secret);
    expect(await opened.closed).toBe(4001);
    expect((await call({})).status).toBe(401);
    secret = rotated;
    expect((await call({})).status).toBe(200);
  });
});

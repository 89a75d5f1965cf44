/**
 * Electron's security checklist, item by item
 * (https://www.electronjs.org/docs/latest/tutorial/security), against the code
 * that implements each defence. Every test fires the real handler or reads the
 * real configuration, so removing the defence makes it fail.
 * docs/security.md says where each item is met.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelNames, events } from '../../shared/contract/index';
import { buildApi, type IpcLike } from '../preload/api';
import { IPC_CALL, IPC_EVENT } from '../preload/ipc-channels';
import {
  APP_ENTRY_URL,
  APP_ORIGIN,
  cspHeader,
  forbiddenSwitchesPresent,
  hardenSession,
  hardenWebContents,
  isAllowedRequestUrl,
  isTrustedSender,
  privilegedSchemes,
  webPreferencesFor,
  type SessionLike,
  type WebContentsLike,
} from './hardening';
import { createCallHandler, type InvokeEventLike } from './ipc';
import { blockedSchemeResponse, resolveAppUrl, serveAppRequest } from './protocol';
import { BLOCKED_SCHEMES, startShell } from './shell';
import { FakeContents, FakeFrame, FakeSession, fakeCore, fakeElectron, fakeEvent } from './fixtures/electron-fakes';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const require = createRequire(import.meta.url);
const quiet = (): void => {};

const prefs = webPreferencesFor('/app/dist/electron/preload.cjs');

function hardenedContents(): FakeContents {
  const c = new FakeContents();
  hardenWebContents(c as unknown as WebContentsLike, { log: quiet });
  return c;
}
function hardenedSession(opts: { allowDevtools?: boolean } = {}): FakeSession {
  const s = new FakeSession();
  hardenSession(s as unknown as SessionLike, { ...opts, log: quiet });
  return s;
}

let rendererRoot: string;
beforeAll(() => {
  rendererRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-renderer-'));
  fs.writeFileSync(path.join(rendererRoot, 'index.html'), '<!doctype html><title>Airlock</title>');
});
afterAll(() => fs.rmSync(rendererRoot, { recursive: true, force: true }));

/** Run startShell against fakes until the window has loaded. */
async function startedShell(opts: { isPackaged?: boolean } = {}) {
  const fx = fakeElectron({ isPackaged: opts.isPackaged ?? true });
  const core = fakeCore();
  await startShell({ electron: fx.electron, createCore: async () => core, mainDir: path.join(rendererRoot, 'electron'), log: quiet, env: {} });
  return { fx, core };
}

describe('1. only load secure content', () => {
  it('loads the app from app://airlock, a privileged secure scheme', async () => {
    expect(APP_ENTRY_URL).toBe('app://airlock/index.html');
    const scheme = privilegedSchemes().find((s) => s.scheme === 'app');
    expect(scheme?.privileges).toMatchObject({ standard: true, secure: true, bypassCSP: false, allowServiceWorkers: false });
    const { fx } = await startedShell();
    expect(fx.windows[0]?.loaded).toEqual([APP_ENTRY_URL]);
  });

  it('cancels every http, https, ws, wss and ftp request from any renderer', () => {
    const s = hardenedSession();
    expect(s.beforeRequest?.filter.urls).toEqual(['<all_urls>']);
    for (const url of ['http://evil.example/x.js', 'https://evil.example/', 'ws://10.0.0.5:8080/', 'wss://evil.example/', 'ftp://evil.example/f', 'http://127.0.0.1:3000/']) {
      expect(s.cancels(url), url).toBe(true);
    }
    expect(s.cancels('app://airlock/assets/index.js')).toBe(false);
    expect(s.cancels('app://evil/assets/index.js')).toBe(true);
  });

  it('answers http, https and file with 403 through protocol.handle as a second fence', async () => {
    const { fx } = await startedShell();
    for (const scheme of BLOCKED_SCHEMES) {
      const handler = fx.protocol.handlers.get(scheme);
      expect(handler, scheme).toBeDefined();
      const res = await handler!(new Request(`${scheme === 'file' ? 'file:///etc/passwd' : `${scheme}://evil.example/`}`));
      expect(res.status).toBe(403);
    }
    expect(blockedSchemeResponse().status).toBe(403);
  });
});

describe('2. no Node.js integration for remote (any) content', () => {
  it('disables Node in the page, workers and subframes', () => {
    expect(prefs.nodeIntegration).toBe(false);
    expect(prefs.nodeIntegrationInWorker).toBe(false);
    expect(prefs.nodeIntegrationInSubFrames).toBe(false);
  });
  it('creates the window with exactly these preferences', async () => {
    const { fx } = await startedShell();
    expect(fx.windows[0]?.options.webPreferences).toEqual(webPreferencesFor(path.join(rendererRoot, 'electron', 'preload.cjs'), { devTools: false }));
  });
});

describe('3. context isolation', () => {
  it('is on', () => expect(prefs.contextIsolation).toBe(true));
});

describe('4. process sandboxing', () => {
  it('is on for the window and enforced app-wide before ready', async () => {
    expect(prefs.sandbox).toBe(true);
    const { fx } = await startedShell();
    expect(fx.calls.indexOf('enableSandbox')).toBeGreaterThanOrEqual(0);
    expect(fx.calls.indexOf('enableSandbox')).toBeLessThan(fx.calls.indexOf('whenReady'));
  });
  it('a packaged build refuses --no-sandbox', () => {
    expect(forbiddenSwitchesPresent((s) => s === 'no-sandbox')).toEqual(['no-sandbox']);
  });
});

describe('5. permission request handler', () => {
  const permissions = ['media', 'geolocation', 'notifications', 'openExternal', 'clipboard-read', 'clipboard-sanitized-write', 'fullscreen', 'midiSysex', 'hid', 'serial', 'usb', 'display-capture', 'unknown'];
  it('denies every permission request', () => {
    const s = hardenedSession();
    for (const p of permissions) expect(s.request(p), p).toBe(false);
  });
  it('denies every permission check and every device', () => {
    const s = hardenedSession();
    for (const p of permissions) expect(s.permissionCheckHandler?.(null, p, 'app://airlock', {}), p).toBe(false);
    expect(s.devicePermissionHandler?.({ deviceType: 'usb', origin: APP_ORIGIN })).toBe(false);
  });
  it('is installed on the default session and on every session created later', async () => {
    const { fx } = await startedShell();
    expect(fx.defaultSession.request('media')).toBe(false);
    const later = new FakeSession();
    fx.app.emit('session-created', later);
    expect(later.request('geolocation')).toBe(false);
  });
});

describe('6. webSecurity', () => {
  it('is on', () => expect(prefs.webSecurity).toBe(true));
});

describe('7. Content Security Policy', () => {
  it('is the strict policy: self only, no inline, no eval, no remote origin', () => {
    expect(cspHeader()).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    );
    expect(cspHeader()).not.toMatch(/unsafe-|https?:|\*|ws:/);
  });
  it('is sent with every app:// response, errors included', async () => {
    const ok = await serveAppRequest(new Request('app://airlock/index.html'), rendererRoot);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-security-policy')).toBe(cspHeader());
    const missing = await serveAppRequest(new Request('app://airlock/nope.js'), rendererRoot);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-security-policy')).toBe(cspHeader());
  });
});

describe('8. allowRunningInsecureContent', () => {
  it('is off', () => expect(prefs.allowRunningInsecureContent).toBe(false));
});

describe('9. experimental features', () => {
  it('are off', () => expect(prefs.experimentalFeatures).toBe(false));
});

describe('10. enableBlinkFeatures', () => {
  it('is not set, and the command-line equivalent is refused when packaged', () => {
    expect('enableBlinkFeatures' in prefs).toBe(false);
    expect(forbiddenSwitchesPresent((s) => s === 'enable-blink-features')).toEqual(['enable-blink-features']);
  });
});

describe('11. no allowpopups for <webview>', () => {
  it('webviewTag is off and any attach is refused with allowpopups stripped', () => {
    expect(prefs.webviewTag).toBe(false);
    const c = hardenedContents();
    const ev = fakeEvent();
    const params: Record<string, string> = { src: 'https://evil.example/', allowpopups: 'true' };
    c.emit('will-attach-webview', ev, {}, params);
    expect(ev.defaultPrevented).toBe(true);
    expect(params.allowpopups).toBeUndefined();
  });
});

describe('12. verify <webview> options before creation', () => {
  it('neuters the guest preferences and refuses the attach', () => {
    const c = hardenedContents();
    const ev = fakeEvent();
    const wp: Record<string, unknown> = { preload: '/tmp/evil.js', nodeIntegration: true, contextIsolation: false, sandbox: false };
    c.emit('will-attach-webview', ev, wp, { src: 'app://airlock/index.html' });
    expect(ev.defaultPrevented).toBe(true);
    expect(wp).toEqual({ nodeIntegration: false, contextIsolation: true, sandbox: true });
  });
});

describe('13. disable navigation', () => {
  for (const name of ['will-navigate', 'will-frame-navigate', 'will-redirect']) {
    it(`${name} is prevented, foreign or not`, () => {
      const c = hardenedContents();
      for (const url of ['https://evil.example/', 'file:///etc/passwd', 'app://airlock/index.html', 'javascript:alert(1)']) {
        const ev = fakeEvent(url);
        c.emit(name, ev, url);
        expect(ev.defaultPrevented, `${name} ${url}`).toBe(true);
      }
    });
  }
  it('dropping a file or link does not navigate', () => expect(prefs.navigateOnDragDrop).toBe(false));
  it('applies to every WebContents the app creates', async () => {
    const { fx } = await startedShell();
    const other = new FakeContents();
    fx.app.emit('web-contents-created', fakeEvent(), other);
    const ev = fakeEvent('https://evil.example/');
    other.emit('will-navigate', ev);
    expect(ev.defaultPrevented).toBe(true);
    const winEv = fakeEvent('https://evil.example/');
    fx.windows[0]!.webContents.emit('will-navigate', winEv);
    expect(winEv.defaultPrevented).toBe(true);
  });
});

describe('14. disable new windows', () => {
  it('window.open and target=_blank are denied', () => {
    const c = hardenedContents();
    expect(c.windowOpenHandler).not.toBeNull();
    for (const url of ['https://evil.example/', 'app://airlock/index.html', 'about:blank']) {
      expect(c.windowOpenHandler!({ url })).toEqual({ action: 'deny' });
    }
  });
});

describe('15. no shell.openExternal with untrusted content', () => {
  it('the shell never imports shell or calls openExternal', () => {
    const dirs = [here, path.join(repo, 'electron', 'preload')];
    const sources = dirs.flatMap((d) =>
      fs
        .readdirSync(d)
        .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
        .map((f) => path.join(d, f)),
    );
    expect(sources.length).toBeGreaterThan(5);
    for (const file of sources) {
      const text = fs.readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/\.openExternal\s*\(/);
      expect(text, file).not.toMatch(/import\s*{[^}]*\bshell\b[^}]*}\s*from\s*['"]electron['"]/);
    }
  });
  it('the openExternal permission is denied', () => {
    expect(hardenedSession().request('openExternal')).toBe(false);
  });
});

describe('16. a current version of Electron', () => {
  it('is pinned exactly, installed as pinned, and 45 or newer', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const pinned = pkg.devDependencies.electron;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = (JSON.parse(fs.readFileSync(require.resolve('electron/package.json'), 'utf8')) as { version: string }).version;
    expect(installed).toBe(pinned);
    expect(Number(installed.split('.')[0])).toBeGreaterThanOrEqual(45);
  });
});

describe('17. validate the sender of all IPC messages', () => {
  function setup() {
    const core = fakeCore();
    const contents = new FakeContents();
    contents.commit('app://airlock/index.html');
    const client = core.newClient({ shell: 'electron', source: 'electron:window-test' });
    const handler = createCallHandler({ core, clientFor: (id) => (id === contents.id ? client : undefined), log: quiet });
    const call = (senderFrame: FakeFrame | null, sender: FakeContents = contents) =>
      handler({ senderFrame, sender } as unknown as InvokeEventLike, 'hosts:list', {});
    return { core, contents, call };
  }

  it('dispatches a call from the main frame of our window', async () => {
    const { core, contents, call } = setup();
    await expect(call(contents.mainFrame)).resolves.toEqual({ ok: true, value: { pong: true } });
    expect(core.dispatched).toHaveLength(1);
  });

  it('refuses a subframe, a foreign origin, file://, a missing or disposed frame, and a window we did not create', async () => {
    const { core, contents, call } = setup();
    const disposed = new FakeFrame('app://airlock/index.html');
    Object.defineProperty(disposed, 'url', { get: () => { throw new Error('Render frame was disposed'); } });
    const foreignContents = new FakeContents();
    foreignContents.commit('app://airlock/index.html');
    const cases: Array<[string, FakeFrame | null, FakeContents?]> = [
      ['subframe', new FakeFrame('app://airlock/index.html', contents.mainFrame)],
      ['foreign origin', new FakeFrame('https://evil.example/')],
      ['other app:// host', new FakeFrame('app://evil/index.html')],
      ['file://', new FakeFrame('file:///tmp/x.html')],
      ['null frame', null],
      ['disposed frame', disposed],
      ['frame not the sender main frame', new FakeFrame('app://airlock/index.html')],
      ['window we did not create', foreignContents.mainFrame, foreignContents],
    ];
    for (const [name, frame, sender] of cases) {
      const r = await call(frame, sender);
      expect(r, name).toEqual({ ok: false, error: { code: 'FORBIDDEN', message: expect.any(String) } });
    }
    expect(core.dispatched).toHaveLength(0);
  });

  it('registers exactly one IPC handler, on the call channel', async () => {
    const { fx } = await startedShell();
    expect([...fx.ipcMain.handlers.keys()]).toEqual([IPC_CALL]);
  });
});

describe('18. avoid file://; serve from a custom protocol with containment', () => {
  it('resolves app:// inside the renderer directory only', () => {
    for (const url of [
      'app://airlock/../../etc/passwd',
      'app://airlock/%2e%2e/%2e%2e/etc/passwd',
      'app://airlock/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
      'app://airlock/assets/..%2f..%2f..%2fetc/passwd',
      'app://airlock/..%5c..%5cetc%5cpasswd',
      'app://airlock/.%2e/secret',
    ]) {
      const r = resolveAppUrl(url, '/srv/renderer');
      expect(r.ok, url).toBe(false);
    }
    expect(resolveAppUrl('app://airlock/assets/index.js', '/srv/renderer')).toEqual({ ok: true, filePath: path.resolve('/srv/renderer/assets/index.js') });
  });
  it('blocks file: requests and never loads a file:// URL', async () => {
    expect(isAllowedRequestUrl('file:///etc/passwd')).toBe(false);
    const { fx } = await startedShell();
    expect(fx.windows.flatMap((w) => w.loaded).every((u) => u.startsWith('app://airlock/'))).toBe(true);
  });
});

describe('19. Electron fuses', () => {
  const config = (require('js-yaml') as { load(s: string): unknown }).load(
    fs.readFileSync(path.join(repo, 'build', 'electron-builder.yml'), 'utf8'),
  ) as Record<string, unknown>;

  it('flips the hardening fuses', () => {
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
    expect(config.asar).toBe(true);
    expect(config.appId).toBe('org.airlock.console');
    expect(config.productName).toBe('Airlock');
  });

  it("uses key names electron-builder's own schema accepts", async () => {
    const scheme = JSON.parse(fs.readFileSync(require.resolve('app-builder-lib/scheme.json'), 'utf8')) as {
      definitions: { FuseOptionsV1: { properties: Record<string, unknown> } };
    };
    for (const key of Object.keys(config.electronFuses as object)) expect(Object.keys(scheme.definitions.FuseOptionsV1.properties)).toContain(key);
    const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
      validateConfiguration(c: unknown, logger: unknown): Promise<void>;
    };
    const { DebugLogger } = require('builder-util') as { DebugLogger: new (enabled: boolean) => unknown };
    await expect(validateConfiguration(config, new DebugLogger(false))).resolves.toBeUndefined();
    await expect(
      validateConfiguration({ ...config, electronFuses: { ...(config.electronFuses as object), runAsNod: false } }, new DebugLogger(false)),
    ).rejects.toThrow(/electronFuses/);
  });
});

describe('20. do not expose Electron APIs to untrusted content', () => {
  function fakeIpc() {
    const invoked: unknown[][] = [];
    const listeners = new Map<string, Array<(e: unknown, ...a: unknown[]) => void>>();
    const ipc: IpcLike & { invoked: unknown[][]; fire(channel: string, ...a: unknown[]): void } = {
      invoked,
      async invoke(...args: unknown[]) {
        invoked.push(args);
        return { ok: true, value: null };
      },
      send() {},
      on(channel, l) {
        listeners.set(channel, [...(listeners.get(channel) ?? []), l]);
      },
      removeListener(channel, l) {
        listeners.set(channel, (listeners.get(channel) ?? []).filter((x) => x !== l));
      },
      fire(channel, ...a) {
        for (const l of listeners.get(channel) ?? []) l({ sender: ipc, senderId: 0 }, ...a);
      },
    };
    return ipc;
  }

  it('exposes only per-area functions named after the contract channels, plus on()', () => {
    const ipc = fakeIpc();
    const api = buildApi(ipc) as unknown as Record<string, unknown>;
    const exposed: string[] = [];
    for (const [area, value] of Object.entries(api)) {
      if (area === 'on') {
        expect(typeof value).toBe('function');
        continue;
      }
      expect(typeof value, area).toBe('object');
      for (const [verb, fn] of Object.entries(value as Record<string, unknown>)) {
        expect(typeof fn, `${area}.${verb}`).toBe('function');
        exposed.push(`${area}:${verb}`);
      }
    }
    expect(exposed.sort()).toEqual([...channelNames].sort());
    for (const generic of ['invoke', 'send', 'sendSync', 'ipcRenderer', 'call', 'postMessage']) expect(api[generic], generic).toBeUndefined();
    const seen = new Set<unknown>();
    const walk = (v: unknown): void => {
      if (v === ipc) throw new Error('ipcRenderer reachable from the API');
      if (typeof v !== 'object' || v === null || seen.has(v)) return;
      seen.add(v);
      for (const x of Object.values(v)) walk(x);
    };
    walk(api);
  });

  it('sends each call on the one call channel with its own channel name', async () => {
    const ipc = fakeIpc();
    const api = buildApi(ipc) as unknown as { hosts: { add(i: unknown): Promise<unknown> } };
    await api.hosts.add({ name: 'gpu-1' });
    expect(ipc.invoked).toEqual([[IPC_CALL, 'hosts:add', { name: 'gpu-1' }]]);
  });

  it('forwards declared events only, payload only (never the IpcRendererEvent)', () => {
    const ipc = fakeIpc();
    const api = buildApi(ipc);
    const eventName = Object.keys(events)[0] as keyof typeof events;
    const got: unknown[][] = [];
    const off = api.on(eventName, (...args: unknown[]) => got.push(args));
    ipc.fire(IPC_EVENT, { event: eventName, payload: { id: 't1', data: 'x' } });
    expect(got).toEqual([[{ id: 't1', data: 'x' }]]);
    expect(() => (api.on as (e: string, l: () => void) => void)('not:declared', () => {})).toThrow(TypeError);
    off();
    ipc.fire(IPC_EVENT, { event: eventName, payload: { id: 't1', data: 'y' } });
    expect(got).toHaveLength(1);
  });
});

describe('sender checks are the pure function the handler uses', () => {
  it('isTrustedSender', () => {
    const top = new FakeFrame('app://airlock/index.html');
    expect(isTrustedSender(top)).toBe(true);
    expect(isTrustedSender(new FakeFrame('app://airlock/index.html', top))).toBe(false);
    expect(isTrustedSender(new FakeFrame('app://AIRLOCK/index.html'))).toBe(true);
    expect(isTrustedSender(new FakeFrame('app://airlock.evil/index.html'))).toBe(false);
    expect(isTrustedSender(new FakeFrame('app://user@airlock/index.html'))).toBe(false);
    expect(isTrustedSender(new FakeFrame('devtools://devtools/bundled/index.html'))).toBe(false);
    const detached = new FakeFrame('app://airlock/index.html');
    detached.detached = true;
    expect(isTrustedSender(detached)).toBe(false);
    expect(isTrustedSender(undefined)).toBe(false);
  });
  it('DevTools requests are allowed only when DevTools are enabled', () => {
    expect(isAllowedRequestUrl('devtools://devtools/bundled/x.js')).toBe(false);
    expect(isAllowedRequestUrl('devtools://devtools/bundled/x.js', { allowDevtools: true })).toBe(true);
    expect(hardenedSession({ allowDevtools: false }).cancels('devtools://devtools/x')).toBe(true);
  });
});

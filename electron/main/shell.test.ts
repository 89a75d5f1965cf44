import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MenuItemConstructorOptions } from 'electron';
import { IPC_CALL, IPC_EVENT } from '../preload/ipc-channels';
import { APP_ENTRY_URL, menuTemplate, webPreferencesFor } from './hardening';
import { appPaths, startShell, windowOptions } from './shell';
import { FakeFrame, fakeCore, fakeElectron, fakeEvent } from './fixtures/electron-fakes';

const quiet = (): void => {};
const mainDir = '/opt/airlock/resources/app.asar/dist/electron';

async function start(opts: Parameters<typeof fakeElectron>[0] = {}, env: NodeJS.ProcessEnv = {}) {
  const fx = fakeElectron(opts);
  const core = fakeCore();
  const configs: unknown[] = [];
  await startShell({
    electron: fx.electron,
    createCore: async (config) => {
      configs.push(config);
      return core;
    },
    mainDir,
    env,
    log: quiet,
    closeTimeoutMs: 50,
  });
  return { fx, core, configs };
}

describe('appPaths', () => {
  it('finds the preload beside main and the renderer beside dist/electron', () => {
    expect(appPaths(mainDir)).toEqual({
      preloadPath: path.join(mainDir, 'preload.cjs'),
      rendererDir: '/opt/airlock/resources/app.asar/dist/renderer',
    });
  });
});

describe('startShell', () => {
  it('sets the sandbox, the scheme and the instance lock before ready, then hardens, serves and loads', async () => {
    const { fx } = await start();
    const at = (c: string) => fx.calls.indexOf(c);
    expect(at('enableSandbox')).toBeGreaterThanOrEqual(0);
    expect(at('enableSandbox')).toBeLessThan(at('whenReady'));
    expect(at('registerSchemesAsPrivileged')).toBeLessThan(at('whenReady'));
    expect(at('requestSingleInstanceLock')).toBeLessThan(at('whenReady'));
    expect(at('protocol.handle:app')).toBeGreaterThan(at('whenReady'));
    expect(at(`ipcMain.handle:${IPC_CALL}`)).toBeLessThan(at('new BrowserWindow'));
    expect(at(`loadURL:${APP_ENTRY_URL}`)).toBeGreaterThan(at('new BrowserWindow'));
    expect(fx.protocol.privileged.map((s) => s.scheme)).toEqual(['app']);
    expect(fx.windows).toHaveLength(1);
    expect(fx.windows[0]!.options).toEqual(windowOptions(path.join(mainDir, 'preload.cjs'), false));
  });

  it('creates the core for the electron shell in <appData>/Airlock (as the CLI) with the agent socket', async () => {
    const { configs } = await start({}, { SSH_AUTH_SOCK: '/run/agent.sock' });
    expect(configs).toEqual([{ dataDir: '/fake/appData/Airlock', shell: 'electron', sshAgent: '/run/agent.sock', requireTotpFor: ['admin', 'officer'], mediaRoots: ['/media', '/mnt', '/run/media'], version: '0.1.0-test' }]);
    const none = await start({}, {});
    expect(none.configs[0]).toMatchObject({ sshAgent: null });
  });

  it('gives the window its own client and dispatches its calls through the checked handler', async () => {
    const { fx, core } = await start();
    const win = fx.windows[0]!;
    expect(core.clients).toHaveLength(1);
    expect(core.clients[0]!.source).toBe(`electron:window-${win.webContents.id}`);
    const handler = fx.ipcMain.handlers.get(IPC_CALL)!;
    await expect(handler({ senderFrame: win.webContents.mainFrame, sender: win.webContents }, 'hosts:list', {})).resolves.toMatchObject({ ok: true });
    expect(core.dispatched[0]?.client).toBe(core.clients[0]);
    const sub = new FakeFrame('app://airlock/index.html', win.webContents.mainFrame);
    await expect(handler({ senderFrame: sub, sender: win.webContents }, 'hosts:list', {})).resolves.toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN' },
    });
    expect(core.dispatched).toHaveLength(1);
  });

  it("routes the core's events to the window", async () => {
    const { fx, core } = await start();
    const name = 'terminal:data';
    core.clients[0]!.emit(name, { id: 't1', data: 'hi' });
    expect(fx.windows[0]!.webContents.sent).toEqual([{ channel: IPC_EVENT, args: [{ event: name, payload: { id: 't1', data: 'hi' }, seq: 1 }] }]);
  });

  it('closes the client with the window and the core before quitting', async () => {
    const { fx, core } = await start();
    fx.windows[0]!.close();
    await Promise.resolve();
    expect(core.closedClients).toEqual([core.clients[0]]);
    const ev = fakeEvent();
    fx.app.emit('will-quit', ev);
    expect(ev.defaultPrevented).toBe(true);
    await new Promise((r) => setTimeout(r, 10));
    expect(core.closed).toBe(true);
    expect(fx.app.quitRequested).toBe(1);
    const again = fakeEvent();
    fx.app.emit('will-quit', again);
    expect(again.defaultPrevented).toBe(false);
  });

  it('quits even when the core never finishes closing', async () => {
    const { fx, core } = await start();
    core.close = () => new Promise<void>(() => {});
    fx.app.emit('will-quit', fakeEvent());
    await new Promise((r) => setTimeout(r, 120));
    expect(fx.app.quitRequested).toBe(1);
  });

  it('quits when all windows are closed', async () => {
    const { fx } = await start();
    fx.app.emit('window-all-closed');
    expect(fx.app.quitRequested).toBe(1);
  });

  it('a second instance quits at once and creates nothing', async () => {
    const { fx, configs } = await start({ singleInstance: false });
    expect(fx.calls).toContain('quit');
    expect(fx.calls).not.toContain('whenReady');
    expect(fx.windows).toHaveLength(0);
    expect(configs).toHaveLength(0);
  });

  it('a packaged build refuses debugging and sandbox-disabling switches', async () => {
    const { fx, configs } = await start({ isPackaged: true, switches: ['remote-debugging-port'] });
    expect(fx.app.exitCode).toBe(1);
    expect(fx.dialog.errors[0]?.content).toContain('--remote-debugging-port');
    expect(fx.calls).not.toContain('whenReady');
    expect(configs).toHaveLength(0);
  });

  it('a development build allows DevTools, packaged builds do not', async () => {
    const dev = await start({ isPackaged: false, switches: ['remote-debugging-port'] });
    expect(dev.fx.windows[0]!.options.webPreferences).toEqual(webPreferencesFor(path.join(mainDir, 'preload.cjs'), { devTools: true }));
    expect(dev.fx.defaultSession.cancels('devtools://devtools/bundled/x.js')).toBe(false);
    const prod = await start({ isPackaged: true });
    expect((prod.fx.windows[0]!.options.webPreferences as { devTools: boolean }).devTools).toBe(false);
    expect(prod.fx.defaultSession.cancels('devtools://devtools/bundled/x.js')).toBe(true);
  });

  it('shows an error and exits when the core cannot start', async () => {
    const fx = fakeElectron();
    await startShell({
      electron: fx.electron,
      createCore: async () => {
        throw new Error('The database was written by a newer Airlock');
      },
      mainDir,
      env: {},
      log: quiet,
    });
    expect(fx.dialog.errors).toEqual([{ title: 'Airlock cannot start', content: 'The database was written by a newer Airlock' }]);
    expect(fx.app.exitCode).toBe(1);
    expect(fx.windows).toHaveLength(0);
    expect(fx.ipcMain.handlers.size).toBe(0);
  });

  it('installs the production menu', async () => {
    const { fx } = await start({ isPackaged: true });
    expect(fx.Menu.applied).toEqual({ template: menuTemplate({ isDev: false, platform: process.platform }) });
  });
});

describe('menuTemplate', () => {
  const roles = (t: MenuItemConstructorOptions[]): string[] =>
    t.flatMap((m) => [...(m.role ? [m.role] : []), ...(Array.isArray(m.submenu) ? roles(m.submenu) : [])]);
  it('keeps the edit roles and drops reload and DevTools in production', () => {
    for (const platform of ['linux', 'darwin', 'win32'] as const) {
      const prod = roles(menuTemplate({ isDev: false, platform }));
      expect(prod).toEqual(expect.arrayContaining(['copy', 'paste', 'cut', 'selectAll', 'undo', 'redo', 'quit']));
      for (const r of ['toggleDevTools', 'reload', 'forceReload']) expect(prod).not.toContain(r);
    }
    expect(roles(menuTemplate({ isDev: true, platform: 'linux' }))).toContain('toggleDevTools');
  });
});

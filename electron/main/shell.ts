/**
 * The Electron shell's wiring: app lifecycle, the one window, the app:// protocol,
 * IPC. Every decision lives in hardening.ts, protocol.ts and ipc.ts; this file only
 * applies them, in the order Electron requires. It takes the Electron API as a
 * parameter (main.ts passes the real module) so the wiring itself is tested with
 * recording fakes in shell.test.ts.
 */
import path from 'node:path';
import type {
  App,
  BrowserWindow,
  BrowserWindowConstructorOptions,
  Dialog,
  IpcMain,
  Menu,
  MenuItemConstructorOptions,
  Protocol,
  WebContents,
} from 'electron';
import { totpPolicyFromEnv } from '../core/session/policy';
import { mediaRootsFromEnv } from '../core/store/store';
import type { ClientContext, Core, CoreConfig } from '../core/types';
import {
  APP_ENTRY_URL,
  APP_ORIGIN,
  APP_SCHEME,
  forbiddenSwitchesPresent,
  hardenSession,
  hardenWebContents,
  menuTemplate,
  privilegedSchemes,
  webPreferencesFor,
  type Log,
  type SessionLike,
} from './hardening';
import { createCallHandler, registerAcks, registerIpc, windowEvents, type WindowEvents } from './ipc';
import { blockedSchemeResponse, serveAppRequest } from './protocol';

export type WindowLike = Pick<BrowserWindow, 'on' | 'once' | 'loadURL' | 'show' | 'focus' | 'restore' | 'isMinimized' | 'isDestroyed'> & {
  readonly webContents: Pick<WebContents, 'id' | 'send' | 'isDestroyed' | 'getURL' | 'on'>;
};

/** The parts of the `electron` module the shell uses. */
export interface ElectronApi {
  app: Pick<
    App,
    'enableSandbox' | 'requestSingleInstanceLock' | 'quit' | 'exit' | 'on' | 'whenReady' | 'getPath' | 'getVersion' | 'isPackaged' | 'commandLine'
  >;
  protocol: Pick<Protocol, 'registerSchemesAsPrivileged' | 'handle'>;
  session: { readonly defaultSession: SessionLike };
  BrowserWindow: new (options: BrowserWindowConstructorOptions) => WindowLike;
  ipcMain: Pick<IpcMain, 'handle' | 'removeHandler' | 'on' | 'removeListener'>;
  Menu: { buildFromTemplate(template: MenuItemConstructorOptions[]): Menu; setApplicationMenu(menu: Menu | null): void };
  dialog: Pick<Dialog, 'showErrorBox'>;
}

export interface ShellDeps {
  electron: ElectronApi;
  createCore(config: CoreConfig): Promise<Core>;
  /** Directory of the bundled main file (dist/electron); the preload and renderer are found from it. */
  mainDir: string;
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  log?: Log;
  /** How long quitting waits for the core to close (flush the audit trail, close SSH) before giving up. */
  closeTimeoutMs?: number;
}

/** Where the build puts things: main at dist/electron/main.mjs, preload beside it, renderer at dist/renderer. */
export function appPaths(mainDir: string): { preloadPath: string; rendererDir: string } {
  return {
    preloadPath: path.join(mainDir, 'preload.cjs'),
    rendererDir: path.resolve(mainDir, '..', 'renderer'),
  };
}

/** Schemes the renderer may never load; refused by protocol.handle behind the session's request filter. */
export const BLOCKED_SCHEMES = ['http', 'https', 'file'] as const;

export function windowOptions(preloadPath: string, isDev: boolean): BrowserWindowConstructorOptions {
  return {
    width: 1280,
    height: 820,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'Airlock',
    backgroundColor: '#0f1115',
    webPreferences: webPreferencesFor(preloadPath, { devTools: isDev }),
  };
}

/**
 * Start the shell. The synchronous part (everything before the first await) runs
 * before Electron's `ready`, which is where the scheme and sandbox must be set.
 */
export async function startShell(deps: ShellDeps): Promise<void> {
  const { app, protocol, session, BrowserWindow, ipcMain, Menu, dialog } = deps.electron;
  const env = deps.env ?? process.env;
  const platform = deps.platform ?? process.platform;
  const log: Log = deps.log ?? ((m) => console.warn(`[airlock] ${m}`));
  const isDev = !app.isPackaged;
  const { preloadPath, rendererDir } = appPaths(deps.mainDir);

  // --- before ready ---------------------------------------------------------
  if (!isDev) {
    const bad = forbiddenSwitchesPresent((s) => app.commandLine.hasSwitch(s));
    if (bad.length > 0) {
      const message = `Airlock refuses to start with these command-line switches: ${bad.map((s) => `--${s}`).join(', ')}. They disable its protections or open it to remote control.`;
      log(message);
      dialog.showErrorBox('Airlock', message);
      app.exit(1);
      return;
    }
  }
  app.enableSandbox();
  protocol.registerSchemesAsPrivileged(privilegedSchemes());
  if (!app.requestSingleInstanceLock()) {
    // Another console already runs on this data directory: one writer, one window.
    app.quit();
    return;
  }

  let core: Core | null = null;
  let mainWindow: WindowLike | null = null;
  const clients = new Map<number, ClientContext>();
  /** Each window's event channel, for its preload's acknowledgements. */
  const windowEventsById = new Map<number, WindowEvents>();

  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents, { log }));
  app.on('session-created', (s) => hardenSession(s, { allowDevtools: isDev, log }));
  app.on('second-instance', () => {
    if (mainWindow && !mainWindow.isDestroyed()) {
      if (mainWindow.isMinimized()) mainWindow.restore();
      mainWindow.focus();
    }
  });
  app.on('window-all-closed', () => app.quit());
  let coreClosed = false;
  let closing = false;
  app.on('will-quit', (event) => {
    if (core === null || coreClosed) return;
    event.preventDefault();
    if (closing) return;
    closing = true;
    const c = core;
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, deps.closeTimeoutMs ?? 5000).unref?.());
    Promise.race([c.close(), timeout])
      .catch((e: unknown) => log(`closing the core failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        coreClosed = true;
        app.quit();
      });
  });

  await app.whenReady();

  // --- after ready ----------------------------------------------------------
  hardenSession(session.defaultSession, { allowDevtools: isDev, log });
  protocol.handle(APP_SCHEME, (request) => serveAppRequest(request, rendererDir));
  for (const scheme of BLOCKED_SCHEMES) protocol.handle(scheme, () => blockedSchemeResponse());
  Menu.setApplicationMenu(Menu.buildFromTemplate(menuTemplate({ isDev, platform })));

  try {
    core = await deps.createCore({
      // The same folder as the CLI's default (`airlock --data`), in dev and packaged builds alike:
      // Electron's own userData follows package.json's lower-case name in dev.
      dataDir: env.AIRLOCK_DATA ?? path.join(app.getPath('appData'), 'Airlock'),
      shell: 'electron',
      sshAgent: env.SSH_AUTH_SOCK ?? null,
      requireTotpFor: totpPolicyFromEnv(env.AIRLOCK_TOTP_POLICY),
      mediaRoots: mediaRootsFromEnv(env),
      version: app.getVersion(),
    });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    log(`the core failed to start: ${message}`);
    dialog.showErrorBox('Airlock cannot start', message);
    app.exit(1);
    return;
  }
  const theCore = core;

  registerIpc(ipcMain, createCallHandler({ core: theCore, clientFor: (id) => clients.get(id), appOrigin: APP_ORIGIN, log }));
  registerAcks(ipcMain, { eventsFor: (id) => windowEventsById.get(id), appOrigin: APP_ORIGIN });

  const win = new BrowserWindow(windowOptions(preloadPath, isDev));
  mainWindow = win;
  const contentsId = win.webContents.id;
  const events = windowEvents(win.webContents, APP_ORIGIN, log);
  windowEventsById.set(contentsId, events);
  clients.set(
    contentsId,
    theCore.newClient({ shell: 'electron', source: `electron:window-${contentsId}`, emit: events.send, buffered: events.buffered }),
  );
  win.once('ready-to-show', () => win.show());
  win.on('closed', () => {
    const client = clients.get(contentsId);
    clients.delete(contentsId);
    windowEventsById.delete(contentsId);
    if (mainWindow === win) mainWindow = null;
    if (client) theCore.closeClient(client).catch((e: unknown) => log(`closing the window's client failed: ${String(e)}`));
  });
  win.webContents.on('render-process-gone', (_event, details) => log(`renderer gone: ${details.reason}`));
  try {
    await win.loadURL(APP_ENTRY_URL);
  } catch (e) {
    log(`loading ${APP_ENTRY_URL} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Recording fakes of the few Electron objects the shell touches, for unit tests of
 * the glue only (the Electron binary cannot run on the build machines). They
 * record what was registered so a test can fire the real handler and check the
 * decision. Never used outside *.test.ts.
 */
import type { ClientContext, Core, CoreConfig } from '../core/types';
import type { Result } from '../../shared/domain/errors';
import type { ElectronApi } from './shell';

type AnyFn = (...args: any[]) => unknown;

export class FakeEmitter {
  readonly listeners = new Map<string, AnyFn[]>();
  on(event: string, listener: AnyFn): this {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }
  once(event: string, listener: AnyFn): this {
    const wrapped: AnyFn = (...args) => {
      this.off(event, wrapped);
      return listener(...args);
    };
    return this.on(event, wrapped);
  }
  off(event: string, listener: AnyFn): this {
    this.listeners.set(event, (this.listeners.get(event) ?? []).filter((l) => l !== listener));
    return this;
  }
  emit(event: string, ...args: unknown[]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) l(...args);
  }
  count(event: string): number {
    return this.listeners.get(event)?.length ?? 0;
  }
}

/** An Electron-style event: records whether preventDefault was called. */
export interface FakeEvent {
  url: string;
  defaultPrevented: boolean;
  preventDefault(): void;
}
export function fakeEvent(url = ''): FakeEvent {
  return {
    url,
    defaultPrevented: false,
    preventDefault() {
      this.defaultPrevented = true;
    },
  };
}

let nextFrameId = 1;
export class FakeFrame {
  detached = false;
  readonly processId: number;
  readonly routingId: number;
  constructor(
    public url: string,
    public parent: FakeFrame | null = null,
  ) {
    this.processId = 1;
    this.routingId = nextFrameId++;
  }
  /** A second wrapper object for the same underlying frame (Electron may hand out several). */
  alias(): FakeFrame {
    const f = Object.create(FakeFrame.prototype) as FakeFrame;
    Object.assign(f, { url: this.url, parent: this.parent, detached: this.detached, processId: this.processId, routingId: this.routingId });
    return f;
  }
}

let nextContentsId = 1;
export class FakeContents extends FakeEmitter {
  readonly id = nextContentsId++;
  url = '';
  mainFrame = new FakeFrame('');
  destroyed = false;
  readonly sent: Array<{ channel: string; args: unknown[] }> = [];
  windowOpenHandler: ((details: { url: string }) => { action: string }) | null = null;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
    this.windowOpenHandler = handler;
  }
  send(channel: string, ...args: unknown[]): void {
    this.sent.push({ channel, args });
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  getURL(): string {
    return this.url;
  }
  /** Simulate a document committed in the main frame. */
  commit(url: string): void {
    this.url = url;
    this.mainFrame = new FakeFrame(url);
  }
}

type PermissionRequestHandler = (contents: unknown, permission: string, callback: (granted: boolean) => void, details: unknown) => void;
type BeforeRequestListener = (details: { url: string }, callback: (response: { cancel?: boolean }) => void) => void;

export class FakeSession extends FakeEmitter {
  permissionRequestHandler: PermissionRequestHandler | null = null;
  permissionCheckHandler: ((...args: unknown[]) => boolean) | null = null;
  devicePermissionHandler: ((details: unknown) => boolean) | null = null;
  spellChecker: boolean | null = null;
  beforeRequest: { filter: { urls: string[] }; listener: BeforeRequestListener } | null = null;
  readonly webRequest = {
    onBeforeRequest: (filter: { urls: string[] }, listener: BeforeRequestListener) => {
      this.beforeRequest = { filter, listener };
    },
  };
  setPermissionRequestHandler(h: PermissionRequestHandler): void {
    this.permissionRequestHandler = h;
  }
  setPermissionCheckHandler(h: (...args: unknown[]) => boolean): void {
    this.permissionCheckHandler = h;
  }
  setDevicePermissionHandler(h: (details: unknown) => boolean): void {
    this.devicePermissionHandler = h;
  }
  setSpellCheckerEnabled(enabled: boolean): void {
    this.spellChecker = enabled;
  }

  /** Run a URL through the registered request filter; true = cancelled. */
  cancels(url: string): boolean {
    if (!this.beforeRequest) throw new Error('no onBeforeRequest listener registered');
    let response: { cancel?: boolean } | null = null;
    this.beforeRequest.listener({ url }, (r) => {
      response = r;
    });
    if (response === null) throw new Error('the request filter did not call back');
    return (response as { cancel?: boolean }).cancel === true;
  }

  /** Ask the registered permission request handler; resolves with its answer. */
  request(permission: string): boolean {
    if (!this.permissionRequestHandler) throw new Error('no permission request handler');
    let answer: boolean | null = null;
    this.permissionRequestHandler({}, permission, (g) => {
      answer = g;
    }, { requestingUrl: 'app://airlock/' });
    if (answer === null) throw new Error('the permission handler did not call back');
    return answer;
  }
}

export interface FakeCore extends Core {
  readonly dispatched: Array<{ client: ClientContext; channel: unknown; input: unknown }>;
  readonly closedClients: ClientContext[];
  readonly clients: ClientContext[];
  closed: boolean;
  next: Result<unknown> | (() => Promise<unknown>);
}

export function fakeCore(config: Partial<CoreConfig> = {}): FakeCore {
  const core: FakeCore = {
    config: { dataDir: '/nonexistent', shell: 'electron', ...config },
    dispatched: [],
    closedClients: [],
    clients: [],
    closed: false,
    next: { ok: true, value: { pong: true } },
    newClient(opts) {
      const client: ClientContext = {
        id: `client-${core.clients.length + 1}`,
        shell: opts.shell,
        source: opts.source,
        session: null,
        emit: opts.emit ?? (() => {}),
      };
      core.clients.push(client);
      return client;
    },
    async dispatch(client, channel, input) {
      core.dispatched.push({ client, channel, input });
      const n = core.next;
      return (typeof n === 'function' ? await n() : n) as Result<unknown>;
    },
    async closeClient(client) {
      core.closedClients.push(client);
    },
    async close() {
      core.closed = true;
    },
  };
  return core;
}

export interface FakeElectronOptions {
  isPackaged?: boolean;
  singleInstance?: boolean;
  switches?: string[];
}

/** A fake `electron` module for startShell, recording the order of calls. */
export function fakeElectron(opts: FakeElectronOptions = {}) {
  const calls: string[] = [];
  const switches = new Set(opts.switches ?? []);

  class FakeApp extends FakeEmitter {
    isPackaged = opts.isPackaged ?? true;
    readonly commandLine = { hasSwitch: (s: string) => switches.has(s) };
    exitCode: number | null = null;
    quitRequested = 0;
    enableSandbox(): void {
      calls.push('enableSandbox');
    }
    requestSingleInstanceLock(): boolean {
      calls.push('requestSingleInstanceLock');
      return opts.singleInstance ?? true;
    }
    quit(): void {
      calls.push('quit');
      this.quitRequested++;
    }
    exit(code = 0): void {
      calls.push(`exit:${code}`);
      this.exitCode = code;
    }
    whenReady(): Promise<void> {
      calls.push('whenReady');
      return Promise.resolve();
    }
    getPath(name: string): string {
      return `/fake/${name}`;
    }
    getVersion(): string {
      return '0.1.0-test';
    }
  }
  const app = new FakeApp();

  const protocol = {
    privileged: [] as Array<{ scheme: string; privileges?: Record<string, unknown> }>,
    handlers: new Map<string, (request: Request) => Response | Promise<Response>>(),
    registerSchemesAsPrivileged(schemes: Array<{ scheme: string; privileges?: Record<string, unknown> }>) {
      calls.push('registerSchemesAsPrivileged');
      this.privileged.push(...schemes);
    },
    handle(scheme: string, handler: (request: Request) => Response | Promise<Response>) {
      calls.push(`protocol.handle:${scheme}`);
      this.handlers.set(scheme, handler);
    },
  };

  const defaultSession = new FakeSession();
  const windows: FakeWindow[] = [];

  class FakeWindow extends FakeEmitter {
    readonly webContents = new FakeContents();
    readonly loaded: string[] = [];
    shown = false;
    destroyed = false;
    constructor(readonly options: Record<string, unknown>) {
      super();
      windows.push(this);
      calls.push('new BrowserWindow');
      // Electron emits web-contents-created synchronously while constructing the window.
      app.emit('web-contents-created', fakeEvent(), this.webContents);
    }
    async loadURL(url: string): Promise<void> {
      calls.push(`loadURL:${url}`);
      this.loaded.push(url);
      this.webContents.commit(url);
    }
    show(): void {
      this.shown = true;
    }
    focus(): void {}
    restore(): void {}
    isMinimized(): boolean {
      return false;
    }
    isDestroyed(): boolean {
      return this.destroyed;
    }
    close(): void {
      this.destroyed = true;
      this.webContents.destroyed = true;
      this.emit('closed');
    }
  }

  const ipcMain = {
    handlers: new Map<string, AnyFn>(),
    handle(channel: string, handler: AnyFn) {
      calls.push(`ipcMain.handle:${channel}`);
      this.handlers.set(channel, handler);
    },
    removeHandler(channel: string) {
      this.handlers.delete(channel);
    },
    listeners: new Map<string, AnyFn>(),
    on(channel: string, listener: AnyFn) {
      calls.push(`ipcMain.on:${channel}`);
      this.listeners.set(channel, listener);
    },
    removeListener(channel: string) {
      this.listeners.delete(channel);
    },
  };
  const Menu = {
    applied: null as unknown,
    buildFromTemplate(template: unknown) {
      return { template };
    },
    setApplicationMenu(menu: unknown) {
      this.applied = menu;
    },
  };
  const dialog = {
    errors: [] as Array<{ title: string; content: string }>,
    showErrorBox(title: string, content: string) {
      this.errors.push({ title, content });
    },
  };

  const electron = {
    app,
    protocol,
    session: { defaultSession },
    BrowserWindow: FakeWindow,
    ipcMain,
    Menu,
    dialog,
  };
  return { electron: electron as unknown as ElectronApi, app, protocol, defaultSession, windows, ipcMain, Menu, dialog, calls };
}


/**
 * ============================================================================
 *  SECURITY-CRITICAL. Do not change without reading docs/security.md and
 *  https://www.electronjs.org/docs/latest/tutorial/security. Every function
 *  here answers a named threat; hardening.test.ts fails if one is removed.
 * ============================================================================
 *
 * The decisions of the Electron shell, kept pure: they take Electron-like
 * objects as parameters and never import 'electron' at runtime (type-only
 * imports are erased), so they are unit-tested in plain Node.
 */
import type {
  CustomScheme,
  MenuItemConstructorOptions,
  Privileges,
  Session,
  WebContents,
  WebFrameMain,
  WebPreferences,
} from 'electron';

/** The renderer is served only from this scheme and host; `file://` is never used (checklist 18). */
export const APP_SCHEME = 'app';
export const APP_HOST = 'airlock';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/** Schemes DevTools uses; allowed only while DevTools is enabled (unpackaged development builds). */
const DEVTOOLS_SCHEMES = new Set(['devtools:', 'chrome-devtools:']);

export type Log = (message: string) => void;
const defaultLog: Log = (m) => console.warn(`[airlock:security] ${m}`);

/** URLs in logs are attacker-chosen: cap their length so a denied request cannot flood the log. */
function short(url: string): string {
  return url.length > 200 ? `${url.slice(0, 200)}…` : url;
}

/**
 * Privileges of `app://`. `standard` gives it a real origin (`app://airlock`) so the
 * same-origin policy and CSP `'self'` work; `secure` makes it a secure context like
 * https. It never bypasses CSP, has no service workers (a worker could outlive and
 * rewrite the app's responses) and carries no extension support.
 */
export function schemePrivileges(): Privileges {
  return {
    standard: true,
    secure: true,
    // ES module scripts (Vite's output) are fetched in CORS mode; without these
    // Chromium refuses them from a custom scheme. Our responses send no
    // Access-Control-Allow-Origin, so no other origin can read them.
    supportFetchAPI: true,
    corsEnabled: true,
    codeCache: true,
    bypassCSP: false,
    allowServiceWorkers: false,
    stream: false,
    allowExtensions: false,
  };
}

export function privilegedSchemes(): CustomScheme[] {
  return [{ scheme: APP_SCHEME, privileges: schemePrivileges() }];
}

/**
 * The one policy of the renderer. No remote origin anywhere, no inline script or
 * style, no eval (zod runs jitless, renderer/zod-setup.ts): an HTML injection
 * cannot run code, load code, or send data anywhere (checklist 7).
 */
export function cspHeader(): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
  ].join('; ');
}

export interface WebPreferencesOptions {
  /** DevTools only in unpackaged development builds: in production they are a code-execution console. */
  devTools?: boolean;
}

/**
 * The web preferences of every window we create. Each line is a checklist item:
 * the renderer is untrusted (it renders host output), so it gets no Node, runs in
 * the OS sandbox, and its page world cannot reach the preload's world.
 */
export function webPreferencesFor(preloadPath: string, opts: WebPreferencesOptions = {}): WebPreferences {
  return {
    preload: preloadPath,
    contextIsolation: true, // 3
    sandbox: true, // 4
    nodeIntegration: false, // 2
    nodeIntegrationInWorker: false, // 2
    nodeIntegrationInSubFrames: false, // 2
    webviewTag: false, // 11, 12
    webSecurity: true, // 6
    allowRunningInsecureContent: false, // 8
    experimentalFeatures: false, // 9
    // 10: enableBlinkFeatures is deliberately absent.
    navigateOnDragDrop: false, // 13: dropping a file or link must not navigate away
    spellcheck: false, // the spellchecker would fetch dictionaries from a CDN
    safeDialogs: true, // a hostile page cannot loop alert() to lock the console
    plugins: false,
    enableWebSQL: false,
    devTools: opts.devTools === true,
  };
}

/** The origin of a URL, computed by hand: WHATWG URL reports 'null' for custom schemes in Node. */
export function originOf(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol === `${APP_SCHEME}:`) {
    if (u.username !== '' || u.password !== '' || u.port !== '') return null;
    return u.host === '' ? null : `${u.protocol}//${u.host.toLowerCase()}`;
  }
  return u.origin === 'null' ? null : u.origin;
}

export interface RequestPolicy {
  allowDevtools?: boolean;
}

/**
 * Which URLs the renderer may load (checklist 1, 18): the app's own origin only.
 * http(s), ws(s) and file are refused: the console runs on an isolated network and
 * must never fetch code or leak data, and file:// would expose the whole disk.
 */
export function isAllowedRequestUrl(url: string, policy: RequestPolicy = {}): boolean {
  if (originOf(url) === APP_ORIGIN) return true;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    return false;
  }
  // data: never reaches the network; the CSP limits it to images.
  if (protocol === 'data:') return true;
  if (policy.allowDevtools === true && DEVTOOLS_SCHEMES.has(protocol)) return true;
  return false;
}

/** Only what hardenSession touches, so tests pass small fakes. */
export type SessionLike = Pick<
  Session,
  | 'setPermissionRequestHandler'
  | 'setPermissionCheckHandler'
  | 'setDevicePermissionHandler'
  | 'setSpellCheckerEnabled'
  | 'on'
> & { webRequest: Pick<Session['webRequest'], 'onBeforeRequest'> };

export interface HardenSessionOptions extends RequestPolicy {
  log?: Log;
}

/**
 * Applied to every session (the default one and any created later).
 * Threats: a compromised renderer asking for camera, microphone, geolocation,
 * USB/HID/serial devices, notifications or `openExternal` (checklist 5, 15);
 * loading remote or file content (1, 18); dropping files on disk via downloads.
 */
export function hardenSession(session: SessionLike, opts: HardenSessionOptions = {}): void {
  const log = opts.log ?? defaultLog;
  session.setPermissionRequestHandler((_contents, permission, callback) => {
    log(`permission request denied: ${permission}`);
    callback(false);
  });
  session.setPermissionCheckHandler(() => false);
  session.setDevicePermissionHandler(() => false);
  session.setSpellCheckerEnabled(false);
  session.webRequest.onBeforeRequest({ urls: ['<all_urls>'] }, (details, callback) => {
    const allowed = isAllowedRequestUrl(details.url, opts);
    if (!allowed) log(`request blocked: ${short(details.url)}`);
    callback({ cancel: !allowed });
  });
  session.on('will-download', (event, item) => {
    log(`download refused: ${short(item.getURL())}`);
    event.preventDefault();
  });
}

/** Only what hardenWebContents touches. */
export type WebContentsLike = Pick<WebContents, 'on' | 'setWindowOpenHandler'>;

export interface HardenContentsOptions {
  log?: Log;
}

/**
 * Applied to every WebContents (`app.on('web-contents-created')`): windows,
 * DevTools, anything else. The console is a single page: it never navigates,
 * never opens windows and never hosts a <webview>, so all of these are refused
 * outright rather than filtered (checklist 11–15). A navigation is how an
 * injected link would turn the preload's API over to a foreign page.
 */
export function hardenWebContents(contents: WebContentsLike, opts: HardenContentsOptions = {}): void {
  const log = opts.log ?? defaultLog;
  contents.on('will-navigate', (event) => {
    log(`navigation denied: ${short(event.url)}`);
    event.preventDefault();
  });
  contents.on('will-frame-navigate', (event) => {
    log(`frame navigation denied: ${short(event.url)}`);
    event.preventDefault();
  });
  contents.on('will-redirect', (event) => {
    log(`redirect denied: ${short(event.url)}`);
    event.preventDefault();
  });
  contents.on('will-attach-webview', (event, webPreferences, params) => {
    // Belt and braces: webviewTag is off, but if a <webview> ever got this far
    // its preferences are neutered before the attach is refused.
    delete webPreferences.preload;
    webPreferences.nodeIntegration = false;
    webPreferences.contextIsolation = true;
    webPreferences.sandbox = true;
    delete params.allowpopups;
    log(`webview refused: ${short(params.src ?? '')}`);
    event.preventDefault();
  });
  contents.setWindowOpenHandler((details) => {
    log(`window.open denied: ${short(details.url)}`);
    return { action: 'deny' };
  });
}

/** A frame as the IPC check sees it (a `WebFrameMain` fits). */
export interface FrameLike {
  readonly url: WebFrameMain['url'];
  /** Null for a top-level frame. */
  readonly parent: object | null;
  readonly detached?: WebFrameMain['detached'];
}

/**
 * Whether an IPC message comes from the app itself (checklist 17): a live main
 * frame (not an iframe, which could be foreign content) showing the app origin.
 * Reading a disposed frame throws in Electron: that is an untrusted sender too.
 */
export function isTrustedSender(frame: FrameLike | null | undefined, appOrigin: string = APP_ORIGIN): boolean {
  if (frame === null || frame === undefined) return false;
  try {
    if (frame.detached === true) return false;
    if (frame.parent !== null) return false;
    return originOf(frame.url) === appOrigin;
  } catch {
    return false;
  }
}

/**
 * The application menu. In production it keeps the edit roles (copy and paste
 * are needed for fingerprints, keys and the terminal) and drops reload and
 * DevTools: reloading discards state mid-ceremony, DevTools is a console into the
 * renderer that holds an unlocked session.
 */
export function menuTemplate(opts: { isDev: boolean; platform: NodeJS.Platform }): MenuItemConstructorOptions[] {
  const template: MenuItemConstructorOptions[] = [];
  if (opts.platform === 'darwin') {
    template.push({ label: 'Airlock', submenu: [{ role: 'about' }, { type: 'separator' }, { role: 'hide' }, { role: 'quit' }] });
  } else {
    template.push({ label: 'File', submenu: [{ role: 'quit' }] });
  }
  template.push({
    label: 'Edit',
    submenu: [
      { role: 'undo' },
      { role: 'redo' },
      { type: 'separator' },
      { role: 'cut' },
      { role: 'copy' },
      { role: 'paste' },
      { role: 'selectAll' },
    ],
  });
  const view: MenuItemConstructorOptions[] = [
    { role: 'resetZoom' },
    { role: 'zoomIn' },
    { role: 'zoomOut' },
    { type: 'separator' },
    { role: 'togglefullscreen' },
  ];
  if (opts.isDev) view.unshift({ role: 'reload' }, { role: 'forceReload' }, { role: 'toggleDevTools' }, { type: 'separator' });
  template.push({ label: 'View', submenu: view });
  template.push({ label: 'Window', submenu: [{ role: 'minimize' }, { role: 'close' }] });
  return template;
}

/**
 * Chromium/Node switches that would hand control of a packaged console to
 * whoever launched it (a debugger port drives the unlocked UI; no-sandbox and
 * disable-web-security undo the renderer's confinement; extensions and proxy or
 * host rules inject code or redirect traffic). The fuses cover Node's
 * `--inspect*`; these are Chromium's. A packaged build refuses to start with any.
 */
export const FORBIDDEN_SWITCHES = [
  'remote-debugging-port',
  'remote-debugging-pipe',
  'remote-allow-origins',
  'inspect',
  'inspect-brk',
  'inspect-port',
  'js-flags',
  'no-sandbox',
  'disable-web-security',
  'disable-site-isolation-trials',
  'ignore-certificate-errors',
  'load-extension',
  'proxy-server',
  'proxy-pac-url',
  'host-rules',
  'host-resolver-rules',
  'enable-blink-features',
] as const;

export function forbiddenSwitchesPresent(hasSwitch: (name: string) => boolean): string[] {
  return FORBIDDEN_SWITCHES.filter((s) => hasSwitch(s));
}

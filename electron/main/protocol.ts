/**
 * SECURITY-CRITICAL: the `app://airlock/` protocol that serves the built renderer
 * (checklist 1, 7, 18). The renderer asks for URLs; this module decides which file,
 * if any, answers. Plain Node (fs, path, the global fetch Response): no 'electron'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { APP_ORIGIN, cspHeader, originOf } from './hardening';

export type ResolvedAppUrl =
  | { ok: true; filePath: string }
  | { ok: false; status: 400 | 403 | 404; reason: string };

const ENTRY = 'index.html';
/** `app://airlock` then a path, a query, a fragment or nothing, case-insensitively like Chromium. */
const PREFIX = /^app:\/\/airlock(?=[/\\?#]|$)/i;

/**
 * Whether `child` lies inside `root` (or is root). `path.relative`, never a prefix
 * test: `/srv/renderer-evil` starts with `/srv/renderer` but is not inside it.
 */
export function isContained(root: string, child: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(child));
  if (rel === '') return true;
  if (path.isAbsolute(rel)) return false; // another drive on Windows
  return rel !== '..' && !rel.startsWith(`..${path.sep}`);
}

/**
 * Map an `app://airlock/...` URL to a file under `rootDir`, or refuse.
 *
 * Threat: a URL that reads outside the renderer build (`/../../etc/passwd`, the
 * same with `%2e%2e`, encoded `%2f` or `%5c` separators, a NUL byte). Chromium
 * normalises dot segments before the handler sees them, but the handler does not
 * rely on it: the raw path is inspected segment by segment and any traversal
 * attempt is refused outright (403) rather than silently "fixed"; then the result
 * is contained with `path.relative`.
 */
export function resolveAppUrl(url: string, rootDir: string): ResolvedAppUrl {
  if (typeof url !== 'string' || !PREFIX.test(url)) return { ok: false, status: 400, reason: 'not an app://airlock URL' };
  if (originOf(url) !== APP_ORIGIN) return { ok: false, status: 400, reason: 'not the app origin' };

  const afterHost = url.replace(PREFIX, '');
  const rawPath = afterHost.split(/[?#]/, 1)[0] ?? '';
  const segments: string[] = [];
  for (const raw of rawPath.split(/[/\\]/)) {
    if (raw === '') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return { ok: false, status: 400, reason: 'malformed percent-encoding' };
    }
    if (seg.includes('\0')) return { ok: false, status: 400, reason: 'NUL in path' };
    if (seg.includes('/') || seg.includes('\\')) return { ok: false, status: 403, reason: 'encoded path separator' };
    if (seg === '.' || seg === '..') return { ok: false, status: 403, reason: 'path traversal' };
    segments.push(seg);
  }
  if (segments.length === 0) segments.push(ENTRY);

  const root = path.resolve(rootDir);
  const filePath = path.resolve(root, ...segments);
  if (filePath === root || !isContained(root, filePath)) {
    return { ok: false, status: 403, reason: 'outside the renderer directory' };
  }
  return { ok: true, filePath };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
};

/** Unknown types are opaque bytes; with `nosniff` the renderer will not run them as script. */
export function contentTypeFor(filePath: string): string {
  return CONTENT_TYPES[path.extname(filePath).toLowerCase()] ?? 'application/octet-stream';
}

/** Headers of every app:// response, errors included. */
export function appResponseHeaders(contentType: string): Record<string, string> {
  return {
    'Content-Type': contentType,
    'Content-Security-Policy': cspHeader(),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), usb=(), serial=(), hid=(), bluetooth=(), payment=()',
    'Cache-Control': 'no-cache',
  };
}

function errorResponse(status: number, reason: string): Response {
  return new Response(`${status} ${reason}\n`, { status, headers: appResponseHeaders('text/plain; charset=utf-8') });
}

/**
 * The `protocol.handle('app', …)` handler. After the URL check, the file's real
 * path (symlinks resolved; Electron's fs resolves inside the ASAR too) is
 * contained again, so a link planted in the build cannot point outside it.
 */
export async function serveAppRequest(request: Pick<Request, 'url' | 'method'>, rootDir: string): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return errorResponse(405, 'method not allowed');
  const resolved = resolveAppUrl(request.url, rootDir);
  if (!resolved.ok) return errorResponse(resolved.status, resolved.reason);
  let realRoot: string;
  let realFile: string;
  try {
    realRoot = await fs.promises.realpath(rootDir);
    realFile = await fs.promises.realpath(resolved.filePath);
  } catch {
    return errorResponse(404, 'not found');
  }
  if (realFile === realRoot || !isContained(realRoot, realFile)) return errorResponse(403, 'outside the renderer directory');
  try {
    const stat = await fs.promises.stat(realFile);
    if (!stat.isFile()) return errorResponse(404, 'not found');
    const body = request.method === 'HEAD' ? null : await fs.promises.readFile(realFile);
    return new Response(body, { status: 200, headers: appResponseHeaders(contentTypeFor(realFile)) });
  } catch {
    return errorResponse(404, 'not found');
  }
}

/**
 * Answer for schemes the renderer must never load (http, https, file), installed
 * with `protocol.handle` as a second fence behind the session's request filter.
 */
export function blockedSchemeResponse(): Response {
  return errorResponse(403, 'blocked by Airlock: the console loads nothing outside app://airlock');
}

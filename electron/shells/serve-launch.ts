/**
 * Opening `airlock serve`'s one-time link in Chromium without showing its token to other users.
 *
 * A browser's command line is world-readable (`/proc/PID/cmdline`, `ps`) for as long as the
 * browser runs, so `chromium --app=http://127.0.0.1:PORT/#token=T` would hand the token to every
 * local user until the page redeemed it, a race any of them could win. Instead the launcher writes
 * a small page into the browser's private profile directory (0700, ours) as a 0600 file, and the
 * command line names only that file; the page forwards the browser to the link. Only the user
 * who started Airlock (and root) can read the file; the token in it works once and expires.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const LAUNCHER_NAME = 'open-airlock.html';

/** A one-time link as `airlock serve` prints it; anything else is refused before it goes into HTML. */
const LINK = /^http:\/\/127\.0\.0\.1:\d{1,5}\/#token=[A-Za-z0-9_-]{16,128}$/;

/** Write the launcher page for `url` into `dir` (which must be private to this user); returns its path. */
export function writeLauncher(dir: string, url: string): string {
  if (!LINK.test(url)) throw new Error(`not an airlock serve link: ${url.replace(/#.*/, '#…')}`);
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`${dir} is not owned by this user`);
  if ((st.mode & 0o077) !== 0) throw new Error(`${dir} is readable by other users (mode ${(st.mode & 0o777).toString(8)})`);
  const file = path.join(dir, LAUNCHER_NAME);
  // The link matched LINK: no character in it needs escaping in an attribute.
  const html =
    '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">' +
    `<meta http-equiv="refresh" content="0;url=${url}"><title>Opening Airlock…</title></head><body></body></html>\n`;
  // 'wx': never through a file or link someone else put there.
  fs.writeFileSync(file, html, { mode: 0o600, flag: 'wx' });
  return file;
}

/** Chromium's flags for the console window: the launcher file, never the link itself. */
export function chromiumAppFlags(launcher: string, profileDir: string, asRoot: boolean): string[] {
  const flags = [
    `--app=${pathToFileURL(launcher).href}`,
    `--user-data-dir=${profileDir}`,
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  if (asRoot) flags.push('--no-sandbox');
  return flags;
}

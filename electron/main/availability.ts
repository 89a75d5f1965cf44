/**
 * Whether an Electron binary exists on this machine, answered without loading
 * the `electron` package: its index.js downloads the binary when it is missing,
 * which on an air-gapped machine hangs or fails. Plain Node; the start script uses
 * it to choose between the Electron shell and the browser shell.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface AvailabilityOptions {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  /** The electron package's directory; found with require.resolve (which does not run it) when omitted. */
  electronDir?: string | null;
}

/** The executable's path inside an Electron dist directory, as electron/install.js names it. */
export function platformExecutable(platform: NodeJS.Platform = process.platform): string | null {
  switch (platform) {
    case 'darwin':
      return 'Electron.app/Contents/MacOS/Electron';
    case 'linux':
    case 'freebsd':
    case 'openbsd':
      return 'electron';
    case 'win32':
      return 'electron.exe';
    default:
      return null;
  }
}

/** Resolving a package's package.json finds it without executing it. */
export function findElectronPackageDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    return path.dirname(require.resolve('electron/package.json'));
  } catch {
    return null;
  }
}

function isExecutableFile(p: string, platform: NodeJS.Platform): boolean {
  try {
    if (!fs.statSync(p).isFile()) return false;
    if (platform !== 'win32') fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** path.txt names the executable relative to dist/; a value that escapes dist/ is ignored. */
function readPathTxt(electronDir: string): string | null {
  try {
    const txt = fs.readFileSync(path.join(electronDir, 'path.txt'), 'utf8').trim();
    if (txt === '' || path.isAbsolute(txt) || txt.split(/[/\\]/).includes('..')) return null;
    return txt;
  } catch {
    return null;
  }
}

/**
 * The path of a usable Electron binary, or null:
 * 1. `$ELECTRON_OVERRIDE_DIST_PATH/<platform executable>` if it exists (Electron's own override);
 * 2. `node_modules/electron/dist/<path.txt or platform executable>` if it exists;
 * 3. otherwise null (the caller falls back to the browser shell).
 */
export function electronBinaryPath(opts: AvailabilityOptions = {}): string | null {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const exe = platformExecutable(platform);
  if (exe === null) return null;

  const override = env.ELECTRON_OVERRIDE_DIST_PATH;
  if (override !== undefined && override.trim() !== '') {
    const candidate = path.resolve(override, exe);
    if (isExecutableFile(candidate, platform)) return candidate;
  }

  const electronDir = opts.electronDir === undefined ? findElectronPackageDir() : opts.electronDir;
  if (electronDir !== null) {
    const name = readPathTxt(electronDir) ?? exe;
    const candidate = path.join(electronDir, 'dist', name);
    if (isExecutableFile(candidate, platform)) return candidate;
  }
  return null;
}

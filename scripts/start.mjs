#!/usr/bin/env node
// `npm start`: set up what is missing, build what is stale, then open the console —
// in Electron when its binary is installed, else in the browser shell (`airlock serve`)
// with Debian's Chromium in --app mode when there is a display, else print the URL.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { build, ensureDebian, ensureNpmDeps, root } from './setup.mjs';

ensureNpmDeps();
build();

const { tsImport } = await import('tsx/esm/api');
const { electronBinaryPath } = await tsImport('../electron/main/availability.ts', import.meta.url);
const { writeLauncher, chromiumAppFlags } = await tsImport('../electron/shells/serve-launch.ts', import.meta.url);
const args = process.argv.slice(2);
const electron = electronBinaryPath();

if (electron) {
  console.error(`Starting Airlock in Electron (${electron})`);
  const child = spawn(electron, [path.join(root, 'dist', 'electron', 'main.mjs'), ...args], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  console.error(
    'The Electron binary is not installed on this machine (it is downloaded from GitHub, which is out of reach here;\n' +
      'set ELECTRON_OVERRIDE_DIST_PATH to a local Electron to use it). Using the browser shell: airlock serve.',
  );
  const hasDisplay = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
  if (hasDisplay) ensureDebian(['chromium']);
  const serve = spawn(process.execPath, [path.join(root, 'bin', 'airlock.mjs'), 'serve', '--json', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: serve.stdout });
  lines.once('line', (line) => {
    const { url, dataDir } = JSON.parse(line);
    console.error(`Airlock (browser shell) is serving ${dataDir}`);
    if (hasDisplay && fs.existsSync('/usr/bin/chromium')) {
      // The link's token must not be on Chromium's command line (world-readable in /proc): the
      // window opens a launcher page in the private profile directory instead (serve-launch.ts).
      const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-chromium-'));
      const launcher = writeLauncher(profile, url);
      const forget = () => fs.rmSync(launcher, { force: true });
      // Chromium reads it at start; the token in it works once and expires anyway.
      setTimeout(forget, 60_000).unref();
      const flags = chromiumAppFlags(launcher, profile, process.getuid?.() === 0);
      spawn('/usr/bin/chromium', flags, { stdio: 'ignore', detached: false }).on('exit', () => (forget(), serve.kill('SIGTERM')));
      console.error('Opened Chromium in app mode. Close its window or press Ctrl+C to stop.');
    } else {
      console.log(`No display: open this one-time URL in a browser on this machine (it works once, within 5 minutes):\n\n  ${url}\n\nPress Ctrl+C to stop.`);
    }
  });
  const stop = () => serve.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  serve.on('exit', (code) => process.exit(code ?? 0));
}

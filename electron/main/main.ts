/**
 * Electron main entry, bundled to dist/electron/main.mjs. Thin on purpose: the
 * wiring is in shell.ts, the decisions in hardening.ts, protocol.ts and ipc.ts.
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCore } from '../core/app';
import { startShell } from './shell';

// Before the core opens the data directory: every file this process creates is its owner's only
// (the core also makes an existing data directory 0700 and its files 0600: electron/core/db/data-dir.ts).
process.umask(0o077);

startShell({
  electron: { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session },
  createCore,
  mainDir: path.dirname(fileURLToPath(import.meta.url)),
}).catch((e: unknown) => {
  console.error('[airlock] the Electron shell failed to start', e);
  app.exit(1);
});

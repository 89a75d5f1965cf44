/**
 * Electron main entry, bundled to dist/electron/main.mjs. Thin on purpose: the
 * wiring is in shell.ts, the decisions in hardening.ts, protocol.ts and ipc.ts.
 */
import { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session } from 'electron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCore } from '../core/app';
import { startShell } from './shell';

startShell({
  electron: { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session },
  createCore,
  mainDir: path.dirname(fileURLToPath(import.meta.url)),
}).catch((e: unknown) => {
  console.error('[airlock] the Electron shell failed to start', e);
  app.exit(1);
});

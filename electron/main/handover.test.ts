/**
 * Issue 11, "Two people, one console", in the Electron shell without an Electron binary: the real
 * core (a temp SQLite file) behind the real IPC handler of startShell, with the fake `electron`
 * module. A hand-over is sign-out then sign-in on the same window's client: no reload, no second
 * window, no restart; one person's typos in the window lock only their own account.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCore } from '../core/app';
import type { Core } from '../core/types';
import { IPC_CALL } from '../preload/ipc-channels';
import { APP_ENTRY_URL } from './hardening';
import { startShell } from './shell';
import { fakeElectron } from './fixtures/electron-fakes';

const ADMIN = { admin: 'alice', password: 'correct horse battery staple' };
const BOB = { name: 'bob', password: 'bob own password' };
const dirs: string[] = [];
const cores: Core[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function electronWithRealCore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-handover-'));
  dirs.push(dir);
  const fx = fakeElectron();
  await startShell({
    electron: fx.electron,
    // The shell's own config, on a temp directory, with a cheap KDF and no TOTP policy (tests only).
    createCore: async (config) => {
      const core = await createCore({ ...config, dataDir: dir, kdf: { memoryKiB: 1024, iterations: 1 }, requireTotpFor: [] });
      cores.push(core);
      return core;
    },
    mainDir: '/opt/airlock/resources/app.asar/dist/electron',
    env: {},
    log: () => {},
    closeTimeoutMs: 50,
  });
  const win = fx.windows[0]!;
  const handler = fx.ipcMain.handlers.get(IPC_CALL)!;
  const call = (channel: string, input: unknown) =>
    handler({ senderFrame: win.webContents.mainFrame, sender: win.webContents }, channel, input) as Promise<{
      ok: boolean;
      value?: { user?: { name: string } | null } & Record<string, unknown>;
      error?: { code: string; message: string };
    }>;
  return { fx, win, call };
}

describe('Electron hand-over: sign out, the next person signs in, in the same window', () => {
  it('switches people on one window client without a reload or another window', async () => {
    const { fx, win, call } = await electronWithRealCore();
    expect(await call('session:setup', ADMIN)).toMatchObject({ ok: true });
    expect(await call('users:create', { ...BOB, roles: ['officer'], mustChangePassword: false })).toMatchObject({ ok: true });
    expect(await call('session:logout', {})).toMatchObject({ ok: true });
    expect((await call('session:status', {})).value?.user).toBeNull();
    // The next person's typos lock only the name typed (the window is this machine, not a shared lock)…
    for (let i = 1; i <= 5; i++) {
      expect((await call('session:login', { name: ADMIN.admin, password: `wrong ${i}` })).error?.code).toBe(i < 5 ? 'BAD_CREDENTIALS' : 'LOCKED_OUT');
    }
    // …and they sign in in the same window at once.
    expect(await call('session:login', BOB)).toMatchObject({ ok: true, value: { name: BOB.name } });
    expect((await call('session:status', {})).value?.user?.name).toBe(BOB.name);
    // Alice's session ended with her sign-out: bob does not inherit it (his roles, not hers).
    expect((await call('users:list', {})).error?.code).toBe('FORBIDDEN');
    // One window, loaded once: nothing was reloaded or reopened.
    expect(fx.windows).toHaveLength(1);
    expect(win.loaded).toEqual([APP_ENTRY_URL]);
    expect(fx.calls.filter((c) => c.startsWith('loadURL:'))).toHaveLength(1);
  });

  it('offers no sign-in links (those are the browser console’s): the answer says to sign out instead', async () => {
    const { call } = await electronWithRealCore();
    await call('session:setup', ADMIN);
    const r = await call('session:signInLink', {});
    expect(r.error?.code).toBe('CONFLICT');
    expect(r.error?.message).toMatch(/sign out and let the next person sign in/);
    expect((await call('session:status', {})).value).toMatchObject({ shell: 'electron', lockout: { threshold: 5, baseSeconds: 30, maxSeconds: 900 } });
  });
});

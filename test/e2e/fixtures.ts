/**
 * E2E fixtures: a fresh lab of real sshd hosts, a fresh data directory, and the
 * console running as a real process — `airlock serve` driven by Debian's
 * Chromium, or the Electron app where an Electron binary is installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { _electron, expect, test as base, type ElectronApplication, type Page } from '@playwright/test';
import { electronBinaryPath } from '../../electron/main/availability';
import { authorizeKey, labDown, labUp } from '../lab/lab';
import { spawnServe, stopProcess } from '../support/serve';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Shell = 'browser' | 'electron';
export interface ShellOptions {
  shell: Shell;
}

/** The serve shell's TOTP policy: 'off' (the suite's default lab setting) or 'required' (the product default). */
export type TotpPolicy = 'off' | 'required';

export type Lab = Awaited<ReturnType<typeof labUp>>;
export type LabHost = Lab['hosts'][number];

export interface AirlockApp {
  page: Page;
  shell: Shell;
  dataDir: string;
}

export const ADMIN = { name: 'admin', password: 'correct horse battery staple' };

/** Where an Electron binary is, or why there is none (electron@45 downloads it lazily, impossible offline). */
let labCounter = 0;

export const test = base.extend<ShellOptions & { totpPolicy: TotpPolicy; serveEnv: Record<string, string>; lab: Lab; app: AirlockApp }>({
  shell: ['browser', { option: true }],
  totpPolicy: ['off', { option: true }],
  /** Extra environment for the console process (serve or Electron), e.g. AIRLOCK_MEDIA_ROOTS. */
  serveEnv: [{}, { option: true }],


  lab: async ({}, use, testInfo) => {
    const id = `e2e${process.pid % 1000}${++labCounter}`;
    const lab = await labUp({ id, hosts: 2 });
    try {
      await testInfo.attach('lab.json', { body: JSON.stringify(lab.hosts, null, 2), contentType: 'application/json' });
      await use(lab);
    } finally {
      await labDown({ id });
    }
  },

  app: async ({ shell, totpPolicy, serveEnv, playwright, launchOptions }, use, testInfo) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'airlock-e2e-'));
    const logs: string[] = [];
    let child: ChildProcess | null = null;
    let electronApp: ElectronApplication | null = null;
    let closeBrowser: (() => Promise<void>) | null = null;
    try {
      let page: Page;
      if (shell === 'electron') {
        // The config only defines the electron project when a binary exists (playwright.config.ts).
        const executablePath = electronBinaryPath();
        if (!executablePath) throw new Error('the electron project ran without an Electron binary');
        electronApp = await _electron.launch({
          executablePath,
          args: [path.join(ROOT, 'dist', 'electron', 'main.mjs')],
          env: { ...cleanEnv(), ...serveEnv, AIRLOCK_DATA: dataDir, AIRLOCK_TOTP_POLICY: totpPolicy },
          cwd: ROOT,
        });
        electronApp.process().stderr?.on('data', (b: Buffer) => logs.push(`[electron] ${b.toString()}`));
        page = await electronApp.firstWindow();
      } else {
        const served = await startServe(dataDir, logs, { ...serveEnv, AIRLOCK_TOTP_POLICY: totpPolicy });
        child = served.child;
        const browser = await playwright.chromium.launch({ ...launchOptions, headless: true });
        closeBrowser = () => browser.close();
        const context = await browser.newContext({ viewport: { width: 1480, height: 900 } });
        page = await context.newPage();
        await page.goto(served.url);
      }
      page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
      await use({ page, shell, dataDir });
      if (testInfo.status !== testInfo.expectedStatus) {
        await testInfo.attach('failure.png', { body: await page.screenshot({ fullPage: true }), contentType: 'image/png' }).catch(() => {});
      }
    } finally {
      await testInfo.attach('console-and-core.log', { body: logs.join('\n'), contentType: 'text/plain' }).catch(() => {});
      writeFileSync(testInfo.outputPath('console-and-core.log'), logs.join('\n') + '\n');
      await electronApp?.close().catch(() => {});
      await closeBrowser?.().catch(() => {});
      if (child) await stop(child);
      rmSync(dataDir, { recursive: true, force: true });
    }
    // Uncaught exceptions and CSP violations in the renderer are bugs even when the flow got through
    // (a violation means something — eval, an inline style, a remote fetch — was blocked).
    const pageErrors = logs.filter((l) => l.startsWith('[pageerror]'));
    expect(pageErrors, 'uncaught errors in the renderer').toEqual([]);
    const cspViolations = logs.filter((l) => l.startsWith('[console.') && /Content Security Policy/.test(l));
    expect(cspViolations, 'CSP violations in the renderer').toEqual([]);
  },
});

export { expect };

/** The serve shell must not pick up the developer's ssh-agent: tests use Airlock's own identity. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'SSH_AUTH_SOCK') env[k] = v;
  return env;
}

/** `node bin/airlock.mjs serve --data DIR --json` prints one JSON line with the one-time URL (test/support/serve.ts). */
export async function startServe(
  dataDir: string,
  logs: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; url: string }> {
  return spawnServe({ dataDir, env: { ...cleanEnv(), ...env }, onStderr: (t) => logs.push(`[serve] ${t.trimEnd()}`) });
}

export const stop = (child: ChildProcess): Promise<void> => stopProcess(child);

// ---------- UI steps shared by the specs ----------

export async function firstRunSetup(page: Page, user = ADMIN): Promise<void> {
  await expect(page.getByTestId('setup-form')).toBeVisible();
  await page.getByTestId('setup-name').fill(user.name);
  await page.getByTestId('setup-password').fill(user.password);
  await page.getByTestId('setup-confirm').fill(user.password);
  await page.getByTestId('setup-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(user.name, { timeout: 30_000 });
}

export async function signIn(page: Page, user = ADMIN): Promise<void> {
  await expect(page.getByTestId('login-form')).toBeVisible();
  await page.getByTestId('login-name').fill(user.name);
  await page.getByTestId('login-password').fill(user.password);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(user.name);
}

/** Read Airlock's public key from the Identity view and put it in every lab host's authorized_keys. */
export async function authorizeAirlock(page: Page, lab: Lab): Promise<string> {
  await page.getByTestId('nav-identity').click();
  const box = page.getByTestId('identity-pubkey');
  await expect(box).toHaveValue(/^ssh-ed25519 AAAA\S+/);
  const key = (await box.inputValue()).trim();
  await authorizeKey(lab, key);
  return key;
}

/** Enrol a lab host through the dialog, checking the fingerprint shown is the host's real one; waits for the scan that follows. */
export async function enrolHost(page: Page, host: LabHost): Promise<void> {
  await page.getByTestId('nav-hosts').click();
  await page.getByTestId('enrol-open').click();
  await page.getByTestId('enrol-name').fill(host.name);
  await page.getByTestId('enrol-address').fill(host.address);
  await page.getByTestId('enrol-port').fill(String(host.port));
  await page.getByTestId('enrol-user').fill(host.user);
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-fingerprint')).toHaveText(host.fingerprint, { timeout: 20_000 });
  await expect(page.getByTestId('enrol-pinned-warning')).toHaveCount(0);
  await page.getByTestId('enrol-confirm').click();
  await expect(page.getByTestId('enrol-dialog')).toHaveCount(0);
  await expect(page.getByTestId(`host-row-${host.name}`)).toBeVisible();
  await expect(page.getByTestId(`host-fingerprint-${host.name}`)).toHaveAttribute('title', host.fingerprint);
  // Enrolling scans the host at once (issue 11): wait for that scan, so a spec's next step starts from its result.
  await expect(page.getByTestId(`host-row-${host.name}`)).toHaveAttribute('data-busy', 'false', { timeout: 45_000 });
}

/** Scan one host from its row and wait for the status the scan should end in. */
export async function scanHost(page: Page, name: string, expected: string): Promise<void> {
  await page.getByTestId('nav-hosts').click();
  await page.getByTestId(`host-scan-${name}`).click();
  await expect(page.getByTestId(`host-status-${name}`)).toHaveAttribute('data-status', expected, { timeout: 45_000 });
  await expect(page.getByTestId(`host-scan-${name}`)).toBeEnabled({ timeout: 45_000 });
}

/** Run the CLI on a data directory (`node bin/airlock.mjs ARGS --data DIR --json`); resolves with exit code and output. */
export function cli(
  dataDir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'airlock.mjs'), ...args, '--data', dataDir, '--json'], {
      cwd: ROOT,
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A second console on the same data directory (its own serve process and one-time URL, in its
 * own browser): how a second person signs in while the first stays signed in.
 */
export async function secondConsole(
  dataDir: string,
  playwright: { chromium: { launch(o: object): Promise<import('@playwright/test').Browser> } },
  launchOptions: object,
  env: Record<string, string> = {},
): Promise<{ page: Page; close(): Promise<void>; logs: string[] }> {
  const logs: string[] = [];
  const served = await startServe(dataDir, logs, env);
  const browser = await playwright.chromium.launch({ ...launchOptions, headless: true });
  const page = await (await browser.newContext({ viewport: { width: 1480, height: 900 } })).newPage();
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  await page.goto(served.url);
  return {
    page,
    logs,
    close: async () => {
      await browser.close().catch(() => {});
      await stop(served.child);
    },
  };
}

/** Sign in as a user whose password an administrator set: choose a new one on the forced form. */
export async function chooseOwnPassword(page: Page, oldPassword: string, newPassword: string): Promise<void> {
  await expect(page.getByTestId('restricted')).toHaveAttribute('data-restriction', 'password-change');
  await page.getByTestId('password-old').fill(oldPassword);
  await page.getByTestId('password-new').fill(newPassword);
  await page.getByTestId('password-confirm').fill(newPassword);
  await page.getByTestId('password-submit').click();
}

// ---------- helpers for the identity, approval-policy and audit specs (added; the ones above are unchanged) ----------

/** Fill and submit the Users view's create form (the two-person dialog, if any, is the caller's business). */
export async function createUser(page: Page, name: string, password: string, roles: string[]): Promise<void> {
  await page.getByTestId('nav-users').click();
  await page.getByTestId('user-create-name').fill(name);
  await page.getByTestId('user-create-password').fill(password);
  for (const r of ['admin', 'officer', 'auditor']) {
    await page.getByTestId(`user-create-role-${r}`).setChecked(roles.includes(r));
  }
  await page.getByTestId('user-create-submit').click();
}

/** Open a per-user action from the Users view's row menu (the dialog opens; the caller confirms). */
export async function openUserAction(
  page: Page,
  name: string,
  kind: 'roles' | 'enable' | 'disable' | 'resetPassword' | 'resetTotp' | 'unlock' | 'remove',
): Promise<void> {
  await page.getByTestId('nav-users').click();
  await page.getByTestId(`user-action-${name}`).selectOption(kind);
  await expect(page.getByTestId('user-action-dialog')).toBeVisible();
}

/** Sign in on the login form as any user; resolves once the form was submitted (the caller checks the outcome). */
export async function submitLogin(page: Page, name: string, password: string): Promise<void> {
  await expect(page.getByTestId('login-form')).toBeVisible();
  await page.getByTestId('login-name').fill(name);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

/**
 * The second person of the two-person rule, on their own page: a user an administrator created
 * signs in for the first time (their initial password, then one of their own), sees the request
 * waiting for them, opens it, checks the reason it was filed with, and approves it with their own.
 */
export async function approveAs(
  page: Page,
  user: { name: string; initial: string; password: string },
  id: string,
  reasons: { filed: string; decision: string },
): Promise<void> {
  await submitLogin(page, user.name, user.initial);
  await chooseOwnPassword(page, user.initial, user.password);
  await expect(page.getByTestId('topbar-user')).toHaveText(user.name);
  await expect(page.getByTestId('approvals-badge')).toHaveAttribute('data-awaiting', '1');
  await page.getByTestId('nav-approvals').click();
  await page.getByTestId(`approval-row-${id}`).click();
  await expect(page.getByTestId('approval-detail-reason')).toHaveText(reasons.filed);
  await page.getByTestId('approval-decision-reason').fill(reasons.decision);
  await page.getByTestId('approval-approve').click();
  await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'approved');
}

/** Apply the audit view's filters (empty strings clear a field) and wait for the filtered count. */
export async function filterAudit(
  page: Page,
  f: { channel?: string; actor?: string; outcome?: string; target?: string; since?: string; until?: string },
): Promise<void> {
  await page.getByTestId('nav-audit').click();
  await page.getByTestId('audit-filter-channel').fill(f.channel ?? '');
  await page.getByTestId('audit-filter-actor').fill(f.actor ?? '');
  await page.getByTestId('audit-filter-outcome').selectOption(f.outcome ?? '');
  await page.getByTestId('audit-filter-target').fill(f.target ?? '');
  await page.getByTestId('audit-filter-since').fill(f.since ?? '');
  await page.getByTestId('audit-filter-until').fill(f.until ?? '');
  await page.getByTestId('audit-filter-apply').click();
  // The first page for these filters is shown (not the previous filters' rows).
  await expect(page.getByTestId('audit-table')).toHaveAttribute('data-loading', 'false');
  await expect(page.getByTestId('audit-count')).toContainText('matching events');
}

/**
 * A TOTP code the core has not accepted yet: it refuses a code whose 30 s step is not after the
 * last accepted one, so this waits (polling the clock) until the authenticator shows a new code.
 */
export async function freshTotpCode(totp: { generate(o?: { timestamp?: number }): string }, used: Set<string>): Promise<string> {
  for (;;) {
    const code = totp.generate();
    if (!used.has(code)) {
      used.add(code);
      return code;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * The audit alarm in the real UI (issue 9, point 2). A data directory is prepared with the CLI
 * (an administrator, an auditor, an officer; enough events that the CLI writes a signed
 * checkpoint and audit.head); then an attacker holding the file cuts the tail across that
 * checkpoint with SQLite directly. `airlock serve` starts on it: the console raises the alarm. The
 * banner is shown in the app shell to the administrator and the auditor, the audit view names the
 * cut, and an officer acknowledges it there — after which the banner is gone for everyone.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Page } from '@playwright/test';
import { canonical } from '../../electron/core/audit/canonical';
import { chainHash } from '../../electron/core/audit/chain';
import { ADMIN, cli, expect, startServe, stop, test } from './fixtures';

const AUDITOR = { name: 'aud1', password: 'an auditor password here' };
const OFFICER = { name: 'off1', password: 'an officer password here' };

/** n chained events after the head, with the trail's own recipe. */
function seed(dbFile: string, n: number): void {
  const db = new Database(dbFile);
  try {
    const head = db.prepare('SELECT seq, ts, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; ts: string; hash: string };
    const insert = db.prepare('INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    let prev = head.hash;
    let seq = head.seq;
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        seq++;
        const body = { seq, ts: head.ts, actor: ADMIN.name, roles: ['admin'], session: null, shell: 'cli', channel: 'hosts:list', phase: 'outcome', target: null, params: { request: seq - 1 }, outcome: 'ok', errorCode: null };
        const text = canonical(body);
        const hash = chainHash(prev, text);
        insert.run(seq, body.ts, body.actor, body.channel, text, prev, hash);
        prev = hash;
      }
    })();
  } finally {
    db.close();
  }
}

async function signIn(page: Page, user: { name: string; password: string }) {
  await page.getByTestId('login-name').fill(user.name);
  await page.getByTestId('login-password').fill(user.password);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(user.name);
}

test('a cut audit trail raises the alarm: the banner for admin and auditor, an officer acknowledges', async ({ playwright, launchOptions }) => {
  test.setTimeout(120_000);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'airlock-e2e-alarm-'));
  const logs: string[] = [];
  let child: Awaited<ReturnType<typeof startServe>>['child'] | null = null;
  let browser: Awaited<ReturnType<typeof playwright.chromium.launch>> | null = null;
  try {
    const as = (u: { name: string; password: string }) => ({ AIRLOCK_USER: u.name, AIRLOCK_PASSWORD: u.password, AIRLOCK_TOTP_POLICY: 'off' });
    expect((await cli(dataDir, ['init', '--admin', ADMIN.name], { AIRLOCK_NEW_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' })).code).toBe(0);
    for (const [u, role] of [[AUDITOR, 'auditor'], [OFFICER, 'officer']] as const) {
      const pw = path.join(dataDir, `${u.name}.pw`);
      writeFileSync(pw, u.password, { mode: 0o600 });
      const r = await cli(dataDir, ['users', 'create', u.name, '--role', role, '--no-password-change', '--new-password-file', pw], as(ADMIN));
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    // Enough events for a checkpoint: the next CLI sign-in signs one and writes audit.head.
    seed(path.join(dataDir, 'airlock.db'), 1000);
    expect((await cli(dataDir, ['audit', 'list', '--limit', '1'], as(ADMIN))).code).toBe(0);
    const db = new Database(path.join(dataDir, 'airlock.db'));
    const cp = db.prepare("SELECT max(seq) FROM audit_events WHERE channel = 'audit:checkpoint'").pluck().get() as number;
    expect(cp).toBeGreaterThan(1000);
    // The attacker: the tail cut across the checkpoint, straight in SQLite.
    db.exec('DROP TRIGGER audit_no_delete');
    db.prepare('DELETE FROM audit_events WHERE seq > ?').run(cp - 10);
    db.close();

    const served = await startServe(dataDir, logs, { AIRLOCK_TOTP_POLICY: 'off' });
    child = served.child;
    browser = await playwright.chromium.launch({ ...launchOptions, headless: true });
    const page = await (await browser.newContext({ viewport: { width: 1480, height: 900 } })).newPage();
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    await page.goto(served.url);

    // The administrator sees the banner in the shell, and the cut named in the audit view.
    await signIn(page, ADMIN);
    const banner = page.getByTestId('audit-alarm-banner');
    await expect(banner).toBeVisible();
    await expect(banner).toHaveAttribute('data-kind', 'truncated');
    await page.getByTestId('nav-audit').click();
    await expect(page.getByTestId('audit-alarm-active')).toContainText(`truncated at event #${cp - 9}`);
    await expect(page.getByTestId('audit-alarm-acknowledge')).toHaveCount(0); // not an officer
    await page.getByTestId('audit-verify').click();
    await expect(page.getByTestId('audit-verify-result')).toHaveAttribute('data-ok', 'false');
    await expect(page.getByTestId('audit-verify-bad-seq')).toHaveText(`#${cp - 9}`);
    await page.getByTestId('signout').click();

    // So does the auditor.
    await signIn(page, AUDITOR);
    await expect(page.getByTestId('audit-alarm-banner')).toBeVisible();
    await page.getByTestId('signout').click();

    // The officer acknowledges in the audit view; the banner goes.
    await signIn(page, OFFICER);
    await expect(page.getByTestId('audit-alarm-banner')).toBeVisible();
    await page.getByTestId('nav-audit').click();
    await page.getByTestId('audit-alarm-reason').fill('tail restored from the syslog copy; incident 7');
    await page.getByTestId('audit-alarm-acknowledge').click();
    await expect(page.getByTestId('audit-alarm-banner')).toHaveCount(0);
    await expect(page.getByTestId('audit-alarm-past')).toContainText('acknowledged by off1');
    await page.getByTestId('signout').click();
    await signIn(page, ADMIN);
    await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
    await expect(page.getByTestId('audit-alarm-banner')).toHaveCount(0);
    expect(logs.filter((l) => l.startsWith('[pageerror]'))).toEqual([]);
  } finally {
    await browser?.close().catch(() => {});
    if (child) await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

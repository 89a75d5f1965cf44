/**
 * One's own account page, through the real UI and core (TOTP optional: the suite's lab policy):
 *
 * - change password: a wrong current password is refused, a weak or mismatched new one cannot be
 *   submitted, the change works, and afterwards only the new password signs in;
 * - TOTP: enrol (the secret read from the screen, codes computed here with otpauth as any RFC 6238
 *   authenticator would), regenerate recovery codes (the old ones stop working, a new one signs in
 *   once and the count drops), remove TOTP (the password alone signs in again), enrol again, and
 *   re-enrol on a new device (the old device's codes and the recovery codes on screen stop working
 *   and are not offered again; the new device's codes sign in);
 * - the trail, read in the UI, records each of these and none of the secrets typed.
 */
import * as OTPAuth from 'otpauth';
import type { Page } from '@playwright/test';
import { ADMIN, expect, filterAudit, firstRunSetup, freshTotpCode, submitLogin, test } from './fixtures';

function authenticator(secret: string): OTPAuth.TOTP {
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
}

/** Account page → enrol → secret → first code → ten recovery codes acknowledged. */
async function enrol(page: Page, used: Set<string>): Promise<{ secret: string; totp: OTPAuth.TOTP; recovery: string[] }> {
  await page.getByTestId('nav-account').click();
  await page.getByTestId('account-totp-enrol').click();
  await page.getByTestId('totp-begin').click();
  await expect(page.getByTestId('totp-qr')).toHaveAttribute('src', /^data:image\/svg\+xml;base64,/);
  const secret = (await page.getByTestId('totp-secret').innerText()).trim();
  expect(secret).toMatch(/^[A-Z2-7]+=*$/);
  const totp = authenticator(secret);
  await page.getByTestId('totp-code').fill(await freshTotpCode(totp, used));
  await page.getByTestId('totp-confirm').click();
  const items = page.getByTestId('totp-recovery-codes').locator('li');
  await expect(items).toHaveCount(10);
  const recovery = (await items.allInnerTexts()).map((c) => c.trim());
  await page.getByTestId('totp-recovery-stored').check();
  await page.getByTestId('totp-recovery-done').click();
  await expect(page.getByTestId('account-totp')).toHaveAttribute('data-enrolled', 'true');
  await expect(page.getByTestId('account-totp')).toContainText('10 recovery codes left');
  return { secret, totp, recovery };
}

/** Password accepted, the code step shown. */
async function passwordThenCode(page: Page, password: string): Promise<void> {
  await submitLogin(page, ADMIN.name, password);
  await expect(page.getByTestId('login-totp')).toBeVisible();
  await expect(page.getByTestId('topbar-user')).toHaveCount(0);
}

async function signOut(page: Page): Promise<void> {
  await page.getByTestId('signout').click();
  await expect(page.getByTestId('login-form')).toBeVisible();
}

test('change own password, then only the new one signs in', async ({ app }) => {
  const { page } = app;
  const next = 'a brand new admin passphrase';
  await firstRunSetup(page);
  await page.getByTestId('nav-account').click();

  // The form refuses to submit what the policy or the confirmation would refuse.
  await page.getByTestId('password-old').fill(ADMIN.password);
  await page.getByTestId('password-new').fill('too short');
  await expect(page.getByTestId('password-hint')).toHaveClass(/warn-line/);
  await expect(page.getByTestId('password-submit')).toBeDisabled();
  await page.getByTestId('password-new').fill(next);
  await expect(page.getByTestId('password-hint')).toHaveText('Meets the password policy.');
  await page.getByTestId('password-confirm').fill(`${next}!`);
  await expect(page.getByTestId('password-submit')).toBeDisabled();

  // A wrong current password is refused by the core.
  await page.getByTestId('password-old').fill('not the current password');
  await page.getByTestId('password-confirm').fill(next);
  await page.getByTestId('password-submit').click();
  await expect(page.getByTestId('password-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');

  await page.getByTestId('password-old').fill(ADMIN.password);
  await page.getByTestId('password-submit').click();
  await expect(page.getByTestId('account-note')).toHaveText('Password changed.');
  await expect(page.getByTestId('password-error')).toHaveCount(0);
  await expect(page.getByTestId('password-old')).toHaveValue('');

  await signOut(page);
  await submitLogin(page, ADMIN.name, ADMIN.password);
  await expect(page.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
  await page.getByTestId('login-password').fill(next);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);

  // On record: one refused attempt and one change, with neither password in the trail.
  await filterAudit(page, { channel: 'session:changePassword', actor: ADMIN.name });
  const rows = page.getByTestId('audit-table').locator('[data-testid=audit-row]');
  await expect(rows).toHaveCount(4);
  await expect(rows.nth(0)).toHaveAttribute('data-outcome', 'ok');
  await expect(rows.nth(2)).toHaveAttribute('data-outcome', 'error');
  await expect(rows.nth(2)).toContainText('BAD_CREDENTIALS');
  await rows.nth(1).click();
  const detail = page.getByTestId('audit-detail');
  await expect(detail).toContainText('newPassword');
  await expect(detail).not.toContainText(next);
  await expect(detail).not.toContainText(ADMIN.password);
});

test('TOTP on the account page: enrol, new recovery codes, remove, enrol again, re-enrol on a new device', async ({ app }) => {
  test.setTimeout(180_000);
  const { page } = app;
  const used = new Set<string>();
  await firstRunSetup(page);
  await page.getByTestId('nav-account').click();
  await expect(page.getByTestId('account-totp')).toHaveAttribute('data-enrolled', 'false');
  await expect(page.getByTestId('account-recovery-regenerate')).toHaveCount(0);

  // ---- enrol
  const first = await enrol(page, used);

  // ---- new recovery codes (after a confirmation): ten others, shown once.
  let asked = '';
  page.once('dialog', (d) => {
    asked = d.message();
    void d.accept();
  });
  await page.getByTestId('account-recovery-regenerate').click();
  const fresh = page.getByTestId('account-recovery-codes').locator('li');
  await expect(fresh).toHaveCount(10);
  expect(asked).toContain('The old ones stop working');
  const recovery = (await fresh.allInnerTexts()).map((c) => c.trim());
  expect(recovery.filter((c) => first.recovery.includes(c))).toEqual([]);
  await page.getByTestId('account-recovery-codes').getByRole('button', { name: 'I have stored them' }).click();
  await expect(page.getByTestId('account-recovery-codes')).toHaveCount(0);
  await expect(page.getByTestId('account-totp')).toContainText('10 recovery codes left');

  // An old recovery code is refused; a new one signs in, once.
  await signOut(page);
  await passwordThenCode(page, ADMIN.password);
  await page.getByTestId('login-use-recovery').click();
  await page.getByTestId('login-totp').fill(first.recovery[0]!);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
  await expect(page.getByTestId('topbar-user')).toHaveCount(0);
  await page.getByTestId('login-totp').fill(recovery[3]!);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
  await page.getByTestId('nav-account').click();
  await expect(page.getByTestId('account-totp')).toContainText('9 recovery codes left');
  await signOut(page);
  await passwordThenCode(page, ADMIN.password);
  await page.getByTestId('login-use-recovery').click();
  await page.getByTestId('login-totp').fill(recovery[3]!);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
  await page.getByTestId('login-totp').fill(recovery[4]!);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);

  // ---- remove TOTP (after a confirmation): the password alone signs in again.
  await page.getByTestId('nav-account').click();
  page.once('dialog', (d) => {
    asked = d.message();
    void d.accept();
  });
  await page.getByTestId('account-totp-disable').click();
  await expect(page.getByTestId('account-totp')).toHaveAttribute('data-enrolled', 'false');
  await expect(page.getByTestId('account-note')).toHaveText('TOTP removed.');
  expect(asked).toBe('Remove your TOTP second factor?');
  await signOut(page);
  await submitLogin(page, ADMIN.name, ADMIN.password);
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);

  // ---- enrol again: a new secret.
  const second = await enrol(page, used);
  expect(second.secret).not.toBe(first.secret);

  // ---- re-enrol on a new device while enrolled, with new recovery codes still on screen: enrolment
  // replaces them, so they must not be offered again afterwards as codes to store.
  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('account-recovery-regenerate').click();
  await expect(page.getByTestId('account-recovery-codes').locator('li')).toHaveCount(10);
  const replaced = (await page.getByTestId('account-recovery-codes').locator('li').allInnerTexts()).map((c) => c.trim());
  await expect(page.getByTestId('account-totp-enrol')).toHaveText('Re-enrol on a new device');
  const third = await enrol(page, used);
  expect(third.secret).not.toBe(second.secret);
  await expect(page.getByTestId('account-note')).toHaveText('TOTP enrolled.');
  await expect(page.getByTestId('account-recovery-codes')).toHaveCount(0);

  // The old device's code is refused; the new device's code signs in.
  await signOut(page);
  await passwordThenCode(page, ADMIN.password);
  await page.getByTestId('login-totp').fill(second.totp.generate());
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
  await expect(page.getByTestId('topbar-user')).toHaveCount(0);
  await page.getByTestId('login-use-recovery').click();
  await page.getByTestId('login-totp').fill(replaced[0]!);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
  await page.getByTestId('login-use-recovery').click();
  await page.getByTestId('login-totp').fill(await freshTotpCode(third.totp, used));
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);

  // On record, by the admin: three enrolments, two sets of new recovery codes, one removal —
  // and none of the codes typed.
  const table = page.getByTestId('audit-table');
  for (const [channel, n] of [
    ['totp:confirm', 3],
    ['totp:recoveryCodes', 2],
    ['totp:disable', 1],
  ] as const) {
    await filterAudit(page, { channel, actor: ADMIN.name, outcome: 'ok' });
    await expect(table.locator('[data-testid=audit-row]'), channel).toHaveCount(n);
  }
  await filterAudit(page, { channel: 'session:login', actor: ADMIN.name, outcome: 'pending' });
  await table.locator('[data-testid=audit-row]').first().click();
  const detail = page.getByTestId('audit-detail');
  await expect(detail).toContainText('"totp"');
  for (const secret of [first.secret, second.secret, third.secret, recovery[3]!, recovery[4]!, ADMIN.password]) {
    await expect(detail).not.toContainText(secret);
  }
});

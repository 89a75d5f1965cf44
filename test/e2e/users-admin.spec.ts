/**
 * User administration in the Users view, beyond create and disable, through the real UI and core:
 *
 * - the last enabled admin cannot be disabled, removed or lose the admin role: each attempt is
 *   refused in the action dialog with the core's reason, and nothing changed;
 * - on another user (erin, signed in on a console of her own on the same data directory):
 *   reset TOTP (she signs in again with her password alone), set roles (her console shows them),
 *   reset password (the old one stops working, the new one forces her to choose her own),
 *   unlock after a lockout (five wrong passwords from the CLI; her right password is refused until
 *   an admin unlocks), disable and enable (with a new initial password), and remove — and the
 *   audit trail, read in the UI, has every one of these operations by the admin.
 */
import * as OTPAuth from 'otpauth';
import type { Page } from '@playwright/test';
import {
  ADMIN,
  chooseOwnPassword,
  cli,
  createUser,
  expect,
  filterAudit,
  firstRunSetup,
  freshTotpCode,
  openUserAction,
  secondConsole,
  submitLogin,
  test,
} from './fixtures';

test('the last enabled admin cannot be disabled, removed or demoted, and the UI says why', async ({ app }) => {
  const { page } = app;
  await firstRunSetup(page);
  await page.getByTestId('nav-users').click();
  await expect(page.getByTestId(`user-row-${ADMIN.name}`)).toBeVisible();

  for (const kind of ['disable', 'remove'] as const) {
    await openUserAction(page, ADMIN.name, kind);
    await page.getByTestId('user-action-confirm').click();
    const error = page.getByTestId('user-action-error');
    await expect(error).toHaveAttribute('data-code', 'CONFLICT');
    await expect(error).toContainText(`"${ADMIN.name}" is the last enabled administrator and cannot be ${kind === 'disable' ? 'disabled' : 'removed'}`);
    // The dialog stays open with the refusal; closing it leaves the account as it was.
    await page.getByTestId('user-action-dialog').getByRole('button', { name: 'Cancel' }).click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(page.getByTestId(`user-row-${ADMIN.name}`)).toHaveAttribute('data-disabled', 'false');
  }

  await openUserAction(page, ADMIN.name, 'roles');
  await page.getByTestId('user-action-role-auditor').check();
  await page.getByTestId('user-action-role-admin').uncheck();
  await page.getByTestId('user-action-confirm').click();
  await expect(page.getByTestId('user-action-error')).toHaveAttribute('data-code', 'CONFLICT');
  await expect(page.getByTestId('user-action-error')).toContainText('is the last enabled administrator and cannot lose the admin role');
  await page.getByTestId('user-action-dialog').getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId(`user-roles-${ADMIN.name}`)).toHaveText('admin');
  await expect(page.getByTestId('topbar-roles')).toContainText('admin');

  // Still a working administrator: the Users view lists the account, enabled.
  await page.getByTestId('nav-hosts').click();
  await page.getByTestId('nav-users').click();
  await expect(page.getByTestId(`user-row-${ADMIN.name}`)).toHaveAttribute('data-disabled', 'false');
  await expect(page.getByTestId(`user-roles-${ADMIN.name}`)).toHaveText('admin');

  // The refusals are on record, as errors of the channels that were refused.
  await filterAudit(page, { actor: ADMIN.name, outcome: 'error', target: ADMIN.name });
  const table = page.getByTestId('audit-table');
  for (const channel of ['users:disable', 'users:remove', 'users:setRoles']) {
    await expect(table.locator(`[data-testid=audit-row][data-channel="${channel}"]`)).toHaveCount(1);
  }
});

test('reset TOTP, set roles, reset password, unlock, disable, enable and remove another user', async ({ app, playwright, launchOptions }) => {
  test.setTimeout(240_000);
  const { page, dataDir } = app;
  const erin = { name: 'erin', initial: 'erin initial password 1', own: 'erin picks her own words' };
  await firstRunSetup(page);
  await createUser(page, erin.name, erin.initial, ['auditor']);
  await expect(page.getByTestId(`user-row-${erin.name}`)).toContainText('new password');

  const e = await secondConsole(dataDir, playwright, launchOptions);
  const ep = e.page;
  /**
   * Erin's console notices her session ended at its next call (here: a click in the nav to another
   * view; a sign-in lands on the view of the address, so she may be on Approvals already).
   */
  const sessionEnded = async () => {
    const here = await ep.locator('nav [aria-current="page"]').getAttribute('data-testid');
    await ep.getByTestId(here === 'nav-approvals' ? 'nav-identity' : 'nav-approvals').click();
    await expect(ep.getByTestId('login-form')).toBeVisible();
    await expect(ep.getByTestId('login-name')).toHaveValue(erin.name);
  };
  try {
    // Erin signs in with the initial password and must choose her own.
    await submitLogin(ep, erin.name, erin.initial);
    await chooseOwnPassword(ep, erin.initial, erin.own);
    await expect(ep.getByTestId('topbar-user')).toHaveText(erin.name);
    await expect(ep.getByTestId('topbar-roles')).toHaveText('auditor');

    // ---- reset TOTP: erin enrols an authenticator (optional under this lab's policy); the admin removes it.
    await ep.getByTestId('nav-account').click();
    await ep.getByTestId('account-totp-enrol').click();
    await ep.getByTestId('totp-begin').click();
    const secret = (await ep.getByTestId('totp-secret').innerText()).trim();
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
    await ep.getByTestId('totp-code').fill(await freshTotpCode(totp, new Set()));
    await ep.getByTestId('totp-confirm').click();
    await ep.getByTestId('totp-recovery-stored').check();
    await ep.getByTestId('totp-recovery-done').click();
    await expect(ep.getByTestId('account-totp')).toHaveAttribute('data-enrolled', 'true');

    await page.getByTestId('nav-hosts').click();
    await page.getByTestId('nav-users').click();
    const erinRow = page.getByTestId(`user-row-${erin.name}`);
    await expect(erinRow.locator('td').nth(5)).toHaveText('enrolled');
    await openUserAction(page, erin.name, 'resetTotp');
    await expect(page.getByTestId('user-action-dialog')).toContainText('authenticator and recovery codes stop working');
    await page.getByTestId('user-action-confirm').click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(erinRow.locator('td').nth(5)).toHaveText('—');
    await expect(page.getByTestId(`user-action-${erin.name}`).locator('option[value=resetTotp]')).toHaveCount(0);

    // Her sessions ended; her password alone lets her in again (no code asked).
    await sessionEnded();
    await ep.getByTestId('login-password').fill(erin.own);
    await ep.getByTestId('login-submit').click();
    await expect(ep.getByTestId('topbar-user')).toHaveText(erin.name);
    await expect(ep.getByTestId('login-totp')).toHaveCount(0);
    await ep.getByTestId('nav-account').click();
    await expect(ep.getByTestId('account-totp')).toHaveAttribute('data-enrolled', 'false');

    // ---- set roles: auditor → officer + auditor.
    await openUserAction(page, erin.name, 'roles');
    await expect(page.getByTestId('user-action-role-auditor')).toBeChecked();
    await page.getByTestId('user-action-role-officer').check();
    await page.getByTestId('user-action-confirm').click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(page.getByTestId(`user-roles-${erin.name}`)).toHaveText('officerauditor');

    // ---- reset password: her sessions end, the old password stops working, the new one must be replaced.
    const reset = 'admin set this one for erin';
    const erinFinal = 'erin chose this after reset';
    await openUserAction(page, erin.name, 'resetPassword');
    await expect(page.getByTestId('user-action-dialog')).toContainText('must choose a new password at next sign-in');
    // The policy is shown while typing and the button waits for a valid password.
    await page.getByTestId('user-action-password').fill('short');
    await expect(page.getByTestId('user-action-confirm')).toBeDisabled();
    await page.getByTestId('user-action-password').fill(reset);
    await page.getByTestId('user-action-confirm').click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(page.getByTestId(`user-row-${erin.name}`)).toContainText('new password');

    await sessionEnded();
    await ep.getByTestId('login-password').fill(erin.own);
    await ep.getByTestId('login-submit').click();
    await expect(ep.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
    await ep.getByTestId('login-password').fill(reset);
    await ep.getByTestId('login-submit').click();
    await chooseOwnPassword(ep, reset, erinFinal);
    await expect(ep.getByTestId('topbar-user')).toHaveText(erin.name);
    // The roles set above are the ones her new session has.
    await expect(ep.getByTestId('topbar-roles')).toContainText('officer');
    await expect(ep.getByTestId('topbar-roles')).toContainText('auditor');
    await ep.getByTestId('signout').click();

    // ---- unlock: five wrong passwords (from the CLI, a source of its own) lock the name "erin".
    for (let i = 1; i <= 5; i++) {
      const r = await cli(dataDir, ['audit', 'list', '--limit', '1', '--user', erin.name], { AIRLOCK_PASSWORD: `wrong password number ${i}` });
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain(i < 5 ? 'BAD_CREDENTIALS' : 'LOCKED_OUT');
    }
    // Even her right password is refused now, from her own console.
    await submitLogin(ep, erin.name, erinFinal);
    await expect(ep.getByTestId('login-error')).toHaveAttribute('data-code', 'LOCKED_OUT');
    await expect(ep.getByTestId('topbar-user')).toHaveCount(0);

    await page.getByTestId('nav-hosts').click();
    await page.getByTestId('nav-users').click();
    await expect(page.getByTestId(`user-row-${erin.name}`).locator('td').nth(7).locator('.badge-error')).toBeVisible();
    await openUserAction(page, erin.name, 'unlock');
    await page.getByTestId('user-action-confirm').click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(page.getByTestId(`user-row-${erin.name}`).locator('td').nth(7)).toHaveText('—');
    await expect(page.getByTestId(`user-action-${erin.name}`).locator('option[value=unlock]')).toHaveCount(0);

    await submitLogin(ep, erin.name, erinFinal);
    await expect(ep.getByTestId('topbar-user')).toHaveText(erin.name);

    // ---- disable: signed out, and her password no longer works.
    await openUserAction(page, erin.name, 'disable');
    await page.getByTestId('user-action-confirm').click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(page.getByTestId(`user-row-${erin.name}`)).toHaveAttribute('data-disabled', 'true');
    await sessionEnded();
    await ep.getByTestId('login-password').fill(erinFinal);
    await ep.getByTestId('login-submit').click();
    await expect(ep.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');

    // ---- enable, with a new initial password she must replace.
    const again = 'erin is back with this one';
    await openUserAction(page, erin.name, 'enable');
    await page.getByTestId('user-action-password').fill(again);
    await page.getByTestId('user-action-confirm').click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(page.getByTestId(`user-row-${erin.name}`)).toHaveAttribute('data-disabled', 'false');
    await expect(page.getByTestId(`user-row-${erin.name}`)).toContainText('new password');
    await ep.getByTestId('login-password').fill(erinFinal);
    await ep.getByTestId('login-submit').click();
    await expect(ep.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
    await ep.getByTestId('login-password').fill(again);
    await ep.getByTestId('login-submit').click();
    await chooseOwnPassword(ep, again, 'erin once more with feeling');
    await expect(ep.getByTestId('topbar-user')).toHaveText(erin.name);

    // ---- remove: gone from the list, signed out, cannot sign in.
    await openUserAction(page, erin.name, 'remove');
    await expect(page.getByTestId('user-action-dialog')).toContainText('removed for good');
    await page.getByTestId('user-action-confirm').click();
    await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
    await expect(page.getByTestId(`user-row-${erin.name}`)).toHaveCount(0);
    await sessionEnded();
    await ep.getByTestId('login-password').fill('erin once more with feeling');
    await ep.getByTestId('login-submit').click();
    await expect(ep.getByTestId('login-error')).toHaveAttribute('data-code', 'BAD_CREDENTIALS');
    expect(e.logs.filter((l) => l.startsWith('[pageerror]'))).toEqual([]);
  } finally {
    await e.close();
  }

  // The trail, read in the UI: every administrative operation on erin, by the admin, succeeded.
  await expectAdminOps(page, erin.name, [
    'users:create',
    'users:resetTotp',
    'users:setRoles',
    'users:resetPassword',
    'users:unlock',
    'users:disable',
    'users:enable',
    'users:remove',
  ]);
});

async function expectAdminOps(page: Page, target: string, channels: string[]): Promise<void> {
  await filterAudit(page, { actor: ADMIN.name, outcome: 'ok', target });
  const table = page.getByTestId('audit-table');
  for (const channel of channels) {
    await expect(table.locator(`[data-testid=audit-row][data-channel="${channel}"]`), channel).toHaveCount(1);
  }
}

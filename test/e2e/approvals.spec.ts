/**
 * Step-up and the two-person rule, through the real UI and the real core.
 *
 * - step-up: with the step-up window at its minimum (1 min), a sensitive action after it lapsed
 *   opens the password prompt, and the original call completes after it — without retyping.
 * - idle lock: with the idle lock at 1 min, a second user's untouched console falls back to the
 *   sign-in form with the name prefilled.
 * - two-person: admin A creates officer B; A's attempt to create another admin is refused with
 *   APPROVAL_REQUIRED and filed with a reason; A is told why A cannot approve; B (own console on
 *   the same data directory, forced to pick a password first) approves; A executes; the new
 *   admin exists, and the trail shows the request, the decision and the execution.
 */
import { ADMIN, approveAs, chooseOwnPassword, expect, firstRunSetup, secondConsole, test } from './fixtures';
import type { Page } from '@playwright/test';

async function createUser(page: Page, name: string, password: string, roles: string[]): Promise<void> {
  await page.getByTestId('nav-users').click();
  await page.getByTestId('user-create-name').fill(name);
  await page.getByTestId('user-create-password').fill(password);
  for (const r of ['admin', 'officer', 'auditor']) {
    await page.getByTestId(`user-create-role-${r}`).setChecked(roles.includes(r));
  }
  await page.getByTestId('user-create-submit').click();
}

test('step-up after the window lapsed, and the idle lock, with both windows at one minute', async ({ app, playwright, launchOptions }) => {
  test.setTimeout(150_000);
  const { page, dataDir } = app;
  await firstRunSetup(page);
  await expect(page.getByTestId('totp-policy-off')).toBeVisible();

  // Shortest step-up window and idle lock; the sign-in a moment ago still counts for these calls.
  await page.getByTestId('nav-account').click();
  await page.getByTestId('settings-stepup').fill('1');
  await page.getByTestId('settings-idle').fill('1');
  await page.getByTestId('settings-submit').click();
  await expect(page.getByTestId('settings-note')).toHaveText('Saved.');
  const dave = { name: 'dave', initial: 'a long enough initial pass', password: 'dave picks a fine password' };
  await createUser(page, dave.name, dave.initial, ['auditor']);
  await expect(page.getByTestId('user-row-dave')).toBeVisible();
  await expect(page.getByTestId('stepup-dialog')).toHaveCount(0);

  // Dave signs in on a console of his own and then leaves it alone.
  const d = await secondConsole(dataDir, playwright, launchOptions);
  try {
    await d.page.getByTestId('login-name').fill(dave.name);
    await d.page.getByTestId('login-password').fill(dave.initial);
    await d.page.getByTestId('login-submit').click();
    await chooseOwnPassword(d.page, dave.initial, dave.password);
    await expect(d.page.getByTestId('topbar-user')).toHaveText(dave.name);

    // Let a minute pass (the minimum of both settings; the core's clock decides). The admin keeps
    // working (non-passive calls), so only the step-up window lapses for them.
    for (let i = 0; i < 4; i++) {
      await page.waitForTimeout(16_000);
      await page.getByTestId(i % 2 ? 'nav-users' : 'nav-hosts').click();
    }
    await page.getByTestId('nav-users').click();

    // Dave's idle console locked itself: the sign-in form, his name prefilled.
    await expect(d.page.getByTestId('login-form')).toBeVisible({ timeout: 15_000 });
    await expect(d.page.getByTestId('login-name')).toHaveValue(dave.name);
    await expect(d.page.getByTestId('login-notice')).toBeVisible();
    expect(d.logs.filter((l) => l.startsWith('[pageerror]'))).toEqual([]);
  } finally {
    await d.close();
  }

  await page.getByTestId('user-action-dave').selectOption('disable');
  await page.getByTestId('user-action-confirm').click();
  const dialog = page.getByTestId('stepup-dialog');
  await expect(dialog).toBeVisible();
  // A wrong password is refused inside the prompt; the action has not happened.
  await page.getByTestId('stepup-password').fill('not my password at all');
  await page.getByTestId('stepup-submit').click();
  await expect(page.getByTestId('stepup-error')).toBeVisible();
  await expect(page.getByTestId('user-row-dave')).toHaveAttribute('data-disabled', 'false');
  await page.getByTestId('stepup-password').fill(ADMIN.password);
  await page.getByTestId('stepup-submit').click();
  await expect(dialog).toHaveCount(0);
  // The original call was retried by the client wrapper: dave is disabled.
  await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
  await expect(page.getByTestId('user-row-dave')).toHaveAttribute('data-disabled', 'true');
});

test('two-person rule: a second admin needs another person to approve', async ({ app, playwright, launchOptions }) => {
  test.setTimeout(120_000);
  const { page, dataDir } = app;
  const bob = { name: 'bob', initial: 'initial password for bob', password: 'bob chooses his own pass' };
  await firstRunSetup(page);

  // A creates officer B (no second person needed for that).
  await createUser(page, bob.name, bob.initial, ['officer']);
  await expect(page.getByTestId(`user-row-${bob.name}`)).toContainText('new password');

  // A tries to create another admin: refused, filed as a request with a reason.
  await createUser(page, 'carol', 'initial password carol', ['admin']);
  await expect(page.getByTestId('approval-dialog')).toBeVisible();
  await expect(page.getByTestId('approval-message')).not.toBeEmpty();
  await page.getByTestId('approval-reason').fill('Carol joins the on-call rota');
  await page.getByTestId('approval-submit').click();
  await expect(page.getByTestId('approval-dialog')).toHaveCount(0);
  await expect(page.getByTestId('user-create-error')).toHaveAttribute('data-code', 'APPROVAL_REQUIRED');
  const id = /#(\d+)/.exec(await page.getByTestId('user-create-error').innerText())![1]!;
  await expect(page.getByTestId('user-row-carol')).toHaveCount(0);

  // A cannot approve A's own request, and is told why.
  await page.getByTestId('nav-approvals').click();
  await page.getByTestId(`approval-row-${id}`).click();
  await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'pending');
  await expect(page.getByTestId('approval-cannot-approve')).toBeVisible();
  await expect(page.getByTestId('approval-approve')).toHaveCount(0);
  await expect(page.getByTestId('approval-execute')).toHaveCount(0);

  // B signs in on a console of their own, chooses a password, and approves.
  const b = await secondConsole(dataDir, playwright, launchOptions);
  try {
    const bp = b.page;
    await approveAs(bp, bob, id, { filed: 'Carol joins the on-call rota', decision: 'Confirmed with the security lead' });
    expect(b.logs.filter((l) => l.startsWith('[pageerror]'))).toEqual([]);
  } finally {
    await b.close();
  }

  // A executes; carol exists with the admin role.
  await page.getByTestId('approvals-refresh').click();
  await expect(page.getByTestId('approvals-badge')).toHaveAttribute('data-ready', '1', { timeout: 15_000 });
  await page.getByTestId(`approval-row-${id}`).click();
  await page.getByTestId('approval-execute').click();
  await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'executed');
  await page.getByTestId('nav-users').click();
  await expect(page.getByTestId('user-roles-carol')).toContainText('admin');

  // The trail has the request, the decision by bob and the execution.
  await page.getByTestId('nav-audit').click();
  const table = page.getByTestId('audit-table');
  for (const [channel, actor] of [
    ['approvals:request', ADMIN.name],
    ['approvals:approve', bob.name],
    ['approvals:execute', ADMIN.name],
  ] as const) {
    await page.getByTestId('audit-filter-channel').fill(channel);
    await page.getByTestId('audit-filter-actor').fill(actor);
    await page.getByTestId('audit-filter-outcome').selectOption('ok');
    await page.getByTestId('audit-filter-apply').click();
    await expect(table.locator(`[data-testid=audit-row][data-channel="${channel}"]`).first()).toBeVisible();
  }
});

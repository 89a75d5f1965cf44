/**
 * Issue 11, "Two people, one console": a second person signs in beside the first in the SAME
 * `airlock serve` (no second process, no restart), through a one-time link the first person's
 * console hands out; typos in the second window lock no one else out of it; the two-person rule
 * runs across the two windows (A files, B approves, A's operation runs); a sign-out hands the
 * window over at once (empty, focused name field) while the other person stays signed in; and the
 * Account page states the lockout rule the core applies.
 */
import { ADMIN, approveAs, createUser, expect, firstRunSetup, submitLogin, test } from './fixtures';

declare const document: { activeElement: { getAttribute(name: string): string | null } | null };

test('two people, one console: a link for the second window, B approves what A filed, A runs it', async ({ app }) => {
  test.setTimeout(150_000);
  const { page } = app;
  const bob = { name: 'bob', initial: 'initial password for bob', password: 'bob chooses his own pass' };
  await firstRunSetup(page);

  // The Account page states the rule the core applies (the serve shell runs with the defaults).
  await page.getByTestId('nav-account').click();
  await expect(page.getByTestId('account-lockout-account')).toContainText(
    'After 5 wrong passwords (or codes) an account is locked for 30 s; each further one doubles the lock, up to 15 min.',
  );
  await expect(page.getByTestId('account-lockout-machine')).toContainText('after 20 failures in a row, one more every 30 s.');

  // A creates officer B, then files a two-person request: another administrator.
  await createUser(page, bob.name, bob.initial, ['officer']);
  await expect(page.getByTestId(`user-row-${bob.name}`)).toContainText('new password');
  await createUser(page, 'carol', 'initial password carol', ['admin']);
  await expect(page.getByTestId('approval-dialog')).toBeVisible();
  await page.getByTestId('approval-reason').fill('Carol joins the on-call rota');
  await page.getByTestId('approval-submit').click();
  await expect(page.getByTestId('approval-dialog')).toHaveCount(0);
  await expect(page.getByTestId('user-create-error')).toHaveAttribute('data-code', 'APPROVAL_REQUIRED');
  const id = /#(\d+)/.exec(await page.getByTestId('user-create-error').innerText())![1]!;

  // A hands out a sign-in link for the person beside them.
  await page.getByTestId('nav-account').click();
  await page.getByTestId('signin-link-new').click();
  const link = page.getByTestId('signin-link-url');
  await expect(link).toHaveValue(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{43}$/);
  const url = await link.inputValue();
  await expect(page.getByTestId('signin-link-expiry')).toContainText('Works once, until');

  // B opens it in a window of their own (another browser context: no shared storage) in the same serve.
  const browser = page.context().browser()!;
  const second = await browser.newContext({ viewport: { width: 1480, height: 900 } });
  const errors: string[] = [];
  try {
    const bp = await second.newPage();
    bp.on('pageerror', (e) => errors.push(e.message));
    await bp.goto(url);
    await expect(bp.getByTestId('login-form')).toBeVisible();
    // The link is spent: opening it again gives no session.
    const spent = await second.newPage();
    await spent.goto(url);
    await expect(spent.getByTestId('boot-error')).toBeVisible();
    await spent.close();

    // Five wrong passwords in B's window (a mistyped name, from 127.0.0.1 like every tab)…
    for (let i = 1; i <= 5; i++) {
      await submitLogin(bp, 'alcie', `a wrong password ${i}`);
      await expect(bp.getByTestId('login-error')).toHaveAttribute('data-code', i < 5 ? 'BAD_CREDENTIALS' : 'LOCKED_OUT');
    }
    // …lock that name only: bob signs in from the same window and approves A's request.
    await approveAs(bp, bob, id, { filed: 'Carol joins the on-call rota', decision: 'Confirmed at the console, side by side' });

    // A, still signed in in the first window, runs it: carol is an administrator.
    await page.getByTestId('nav-approvals').click();
    await expect(page.getByTestId('approvals-badge')).toHaveAttribute('data-ready', '1', { timeout: 15_000 });
    await page.getByTestId(`approval-row-${id}`).click();
    await page.getByTestId('approval-execute').click();
    await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'executed');
    await page.getByTestId('nav-users').click();
    await expect(page.getByTestId('user-roles-carol')).toContainText('admin');

    // B signs out: the sign-in form at once, name empty and focused for the next person…
    await bp.getByTestId('signout').click();
    await expect(bp.getByTestId('login-form')).toBeVisible();
    await expect(bp.getByTestId('login-name')).toHaveValue('');
    await expect.poll(() => bp.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? null)).toBe('login-name');
    await expect(bp.getByTestId('login-notice')).toContainText('Signed out');
    // …and A is still signed in.
    await page.getByTestId('nav-hosts').click();
    await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
    await expect(page.getByTestId('login-form')).toHaveCount(0);
    // The next person signs in in B's window without a reload or a new link.
    await submitLogin(bp, bob.name, bob.password);
    await expect(bp.getByTestId('topbar-user')).toHaveText(bob.name);
  } finally {
    await second.close();
  }
  expect(errors).toEqual([]);

  // The trail says who handed out a link (never the link itself).
  await page.getByTestId('nav-audit').click();
  await page.getByTestId('audit-filter-channel').fill('session:signInLink');
  await page.getByTestId('audit-filter-apply').click();
  await expect(page.locator('[data-testid=audit-row][data-channel="session:signInLink"]').first()).toBeVisible();
});

/**
 * Routes (issue 11): every view has a URL; deep links, Back/Forward, a reload and a sign-in again
 * land on the view the URL names; the palette opens with Ctrl+K, filters, navigates and closes.
 */
import { ADMIN, expect, firstRunSetup, signIn, test } from './fixtures';

const views = ['hosts', 'terminal', 'provision', 'audit', 'approvals', 'keys', 'models', 'grants', 'identity', 'users', 'account'];

test('deep links, Back/Forward, reload and sign-in keep the view; unknown routes fall back', async ({ app }) => {
  const { page } = app;
  await firstRunSetup(page);
  await expect(page).toHaveURL(/#\/hosts$/);
  const base = page.url().replace(/#.*$/, '');
  for (const v of views) {
    await page.goto(`${base}#/${v}`);
    await expect(page.getByTestId(`nav-${v}`)).toHaveAttribute('aria-current', 'page');
  }
  await page.getByTestId('nav-audit').click();
  await page.getByTestId('nav-users').click();
  await page.goBack();
  await expect(page.getByTestId('nav-audit')).toHaveAttribute('aria-current', 'page');
  await page.goForward();
  await expect(page.getByTestId('nav-users')).toHaveAttribute('aria-current', 'page');
  await page.reload();
  await expect(page.getByTestId('nav-users')).toHaveAttribute('aria-current', 'page');
  await page.goto(`${base}#/no-such-view`);
  await expect(page).toHaveURL(/#\/hosts$/);
  await page.goto(`${base}#/audit`);
  await page.getByTestId('signout').click();
  await signIn(page, ADMIN);
  await expect(page.getByTestId('nav-audit')).toHaveAttribute('aria-current', 'page');

  // The palette: Ctrl+K, filter, Enter navigates, Esc closes and focus returns.
  await page.getByTestId('nav-identity').focus();
  await page.keyboard.press('Control+k');
  await expect(page.getByTestId('palette-input')).toBeFocused();
  await expect(page.getByTestId('palette-shortcuts')).toContainText('Ctrl+K');
  await page.keyboard.type('go to users');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('palette')).toHaveCount(0);
  await expect(page.getByTestId('nav-users')).toHaveAttribute('aria-current', 'page');
  await page.getByTestId('nav-identity').focus();
  await page.keyboard.press('Control+k');
  await page.keyboard.type('enrol');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('enrol-dialog')).toBeVisible();
  await page.keyboard.press('Escape');
  await page.getByTestId('nav-identity').focus();
  await page.keyboard.press('Control+k');
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('palette')).toHaveCount(0);
  await expect(page.getByTestId('nav-identity')).toBeFocused();
});

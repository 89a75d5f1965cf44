/**
 * TOTP through the real UI with the product's policy (AIRLOCK_TOTP_POLICY=required): first run →
 * forced enrolment (the secret read from the screen, codes computed here with otpauth, as any
 * RFC 6238 authenticator would) → recovery codes acknowledged → sign out → password → code → in;
 * a wrong code and a wrong recovery code are refused; a recovery code works once.
 */
import * as OTPAuth from 'otpauth';
import type { Page } from '@playwright/test';
import { ADMIN, expect, test } from './fixtures';

test.use({ totpPolicy: 'required' });

/** A code the core has not seen yet (it refuses a replayed code within its time step). */
async function freshCode(totp: OTPAuth.TOTP, used: Set<string>): Promise<string> {
  for (;;) {
    const code = totp.generate();
    if (!used.has(code)) {
      used.add(code);
      return code;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function signInWithPassword(page: Page): Promise<void> {
  await expect(page.getByTestId('login-form')).toBeVisible();
  await page.getByTestId('login-name').fill(ADMIN.name);
  await page.getByTestId('login-password').fill(ADMIN.password);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-totp')).toBeVisible();
}

test('required TOTP: enrol at first run, then sign in with a code or a recovery code', async ({ app }) => {
  test.setTimeout(120_000);
  const { page } = app;
  const used = new Set<string>();

  await expect(page.getByTestId('setup-form')).toBeVisible();
  await page.getByTestId('setup-name').fill(ADMIN.name);
  await page.getByTestId('setup-password').fill(ADMIN.password);
  await page.getByTestId('setup-confirm').fill(ADMIN.password);
  await page.getByTestId('setup-submit').click();

  // Restricted: only enrolment is on offer; no console, no "policy off" banner.
  const restricted = page.getByTestId('restricted');
  await expect(restricted).toHaveAttribute('data-restriction', 'totp-enrolment', { timeout: 30_000 });
  await expect(page.getByTestId('nav-hosts')).toHaveCount(0);
  await expect(page.getByTestId('totp-policy-off')).toHaveCount(0);
  await page.getByTestId('totp-begin').click();
  await expect(page.getByTestId('totp-qr')).toHaveAttribute('src', /^data:image\/svg\+xml;base64,/);
  const secret = (await page.getByTestId('totp-secret').innerText()).trim();
  expect(secret).toMatch(/^[A-Z2-7]+=*$/);
  const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });

  // A wrong first code is refused; the right one finishes enrolment.
  await page.getByTestId('totp-code').fill(totp.generate({ timestamp: Date.now() + 10 * 60_000 }));
  await page.getByTestId('totp-confirm').click();
  await expect(page.getByTestId('totp-error')).toBeVisible();
  await page.getByTestId('totp-code').fill(await freshCode(totp, used));
  await page.getByTestId('totp-confirm').click();

  // Ten recovery codes, once, and a confirmation before going on.
  const codes = page.getByTestId('totp-recovery-codes').locator('li');
  await expect(codes).toHaveCount(10);
  const recovery = (await codes.allInnerTexts()).map((c) => c.trim());
  await expect(page.getByTestId('totp-recovery-done')).toBeDisabled();
  await page.getByTestId('totp-recovery-stored').check();
  await page.getByTestId('totp-recovery-done').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
  await page.getByTestId('nav-account').click();
  await expect(page.getByTestId('account-totp')).toHaveAttribute('data-enrolled', 'true');

  // Sign out; the password alone is not enough.
  await page.getByTestId('signout').click();
  await signInWithPassword(page);
  await expect(page.getByTestId('topbar-user')).toHaveCount(0);

  // A wrong code is refused.
  await page.getByTestId('login-totp').fill(totp.generate({ timestamp: Date.now() - 10 * 60_000 }));
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-error')).toBeVisible();
  await expect(page.getByTestId('topbar-user')).toHaveCount(0);

  // The right code lets us in.
  await page.getByTestId('login-totp').fill(await freshCode(totp, used));
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);

  // A recovery code works instead of a code — once.
  await page.getByTestId('signout').click();
  await signInWithPassword(page);
  await page.getByTestId('login-use-recovery').click();
  await page.getByTestId('login-totp').fill(recovery[0]!);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);
  await page.getByTestId('signout').click();
  await signInWithPassword(page);
  await page.getByTestId('login-use-recovery').click();
  await page.getByTestId('login-totp').fill(recovery[0]!);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('login-error')).toBeVisible();
  await expect(page.getByTestId('topbar-user')).toHaveCount(0);
});

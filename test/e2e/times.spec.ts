/**
 * Issue 11: one time format. Every time on screen is local time with its zone
 * (`2026-12-03 14:05:09 CET`) with the exact ISO 8601 instant in `dateTime` and `title`; a
 * "reachable" with no successful scan for 15 minutes is shown grey as "unknown" with its age; a
 * host whose GPU driver fails is not green; clock event reasons are words, not hex masks. Views
 * covered: Hosts, Audit, Users.
 */
import type { Locator, Page } from '@playwright/test';
import { setGpuProfile } from '../lab/lab';
import { formatTime } from '../../renderer/components/time';
import { ADMIN, authorizeAirlock, cli, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const LOCAL = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (?:[A-Z]{2,5}|GMT[+-]\d{1,2}(?::\d{2})?)$/;

/** A <time> shows the one format, in the page's own zone, for the instant in its title. */
async function expectOneFormat(page: Page, t: Locator) {
  const zone = await page.evaluate(() => new Intl.DateTimeFormat().resolvedOptions().timeZone);
  const iso = await t.getAttribute('title');
  expect(iso).toMatch(ISO);
  expect(await t.getAttribute('datetime')).toBe(iso);
  const text = (await t.innerText()).trim();
  expect(text).toMatch(LOCAL);
  expect(text).toBe(formatTime(iso, zone));
}

test('times: one format with ISO on hover; stale and GPU-failing hosts are not green; reasons in words', async ({ app, lab }) => {
  const { page } = app;
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  await enrolHost(page, h1);
  await enrolHost(page, h2);
  await scanHost(page, h1.name, 'reachable');
  await scanHost(page, h2.name, 'reachable');

  // Hosts: a fresh scan is green; its age is relative, with the local time and ISO on hover.
  const badge = page.getByTestId(`host-status-${h2.name}`);
  await expect(badge).toHaveAttribute('data-shown', 'reachable');
  await expect(badge).toHaveClass(/badge-reachable/);
  const seen = page.getByTestId(`host-last-seen-${h2.name}`);
  await expect(seen).toHaveText(/^(just now|\d+ s ago)$/);
  const seenIso = await seen.getAttribute('datetime');
  expect(seenIso).toMatch(ISO);
  expect(await seen.getAttribute('title')).toBe(`${formatTime(seenIso, await page.evaluate(() => new Intl.DateTimeFormat().resolvedOptions().timeZone))} · ${seenIso}`);

  // The detail: "Scanned" and "Enrolled" in the one format; h100's GPU 0 is power-capped, in words.
  await page.getByTestId(`host-expand-${h2.name}`).click();
  const detail = page.getByTestId(`host-detail-${h2.name}`);
  const times = detail.locator('time');
  await expect(times).toHaveCount(2);
  for (const t of await times.all()) await expectOneFormat(page, t);
  await expect(page.getByTestId(`gpu-reasons-${h2.name}-0`)).toHaveText('software power cap');
  await expect(page.getByTestId(`gpu-reasons-${h2.name}-1`)).toHaveText('GPU idle');
  await expect(page.getByTestId(`gpu-reasons-${h2.name}-0`)).toHaveAttribute('title', /^0x0+4$/);
  await expect(page.getByTestId(`gpu-table-${h2.name}`)).not.toContainText('0x0');

  // A driver that stops answering: the host is reachable by SSH, but not shown green.
  await setGpuProfile(lab, h1.name, (p) => {
    p.failure = 'no-driver';
  });
  await scanHost(page, h1.name, 'reachable');
  const b1 = page.getByTestId(`host-status-${h1.name}`);
  await expect(b1).toHaveAttribute('data-shown', 'GPU error');
  await expect(b1).not.toHaveClass(/badge-reachable/);
  await expect(b1).toHaveAttribute('title', /NVIDIA driver/);

  // Audit: every row's time in the one format (the first few rows shown).
  await page.getByTestId('nav-audit').click();
  const rowTimes = page.getByTestId('audit-row-time');
  await expect(rowTimes.first()).toBeVisible();
  for (const t of (await rowTimes.all()).slice(0, 5)) await expectOneFormat(page, t);
  await page.getByTestId('audit-row').first().click();
  await expectOneFormat(page, page.getByTestId('audit-detail-time'));

  // Users: created and last sign-in in the one format (a CLI run signs the administrator in again).
  expect((await cli(app.dataDir, ['users', 'list'], { AIRLOCK_USER: ADMIN.name, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' })).code).toBe(0);
  await page.getByTestId('nav-users').click();
  await expectOneFormat(page, page.getByTestId(`user-created-${ADMIN.name}`));
  await expectOneFormat(page, page.getByTestId(`user-last-login-${ADMIN.name}`));

  // 20 minutes later (the page's clock; the console measures ages on the core's clock, which it
  // derives from the page's plus the offset it measured): "reachable" is no longer believed.
  await page.clock.setFixedTime(Date.now() + 20 * 60_000);
  await page.getByTestId('nav-hosts').click();
  await expect(badge).toHaveAttribute('data-status', 'reachable');
  await expect(badge).toHaveAttribute('data-shown', 'unknown');
  await expect(badge).not.toHaveClass(/badge-reachable/);
  await expect(badge).toHaveAttribute('title', /Last successful scan 2\d min ago/);
  await expect(seen).toHaveText(/^2\d min ago$/);
});

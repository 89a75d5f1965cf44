/**
 * Network faults never hang the console: a scan stuck on a dead link can be
 * cancelled, and scanning an unreachable host ends with a clear error.
 */
import { cutLink, restoreLink } from '../lab/lab';
import { authorizeAirlock, enrolHost, expect, firstRunSetup, test } from './fixtures';

test('a scan stuck on a cut link is cancelled; an unreachable host fails with a clear error', async ({ app, lab }) => {
  test.setTimeout(120_000);
  const { page } = app;
  const [up, down] = [lab.hosts[0]!, lab.hosts[1]!];

  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  await enrolHost(page, up);
  await enrolHost(page, down);

  await cutLink(lab, down.name);
  try {
    // Scan all: the healthy host finishes, the cut one hangs until cancelled.
    await page.getByTestId('hosts-scan-all').click();
    const cancel = page.getByTestId('hosts-scan-cancel');
    await expect(cancel).toBeVisible();
    await cancel.click();
    // Well before the 15 s connect timeout: cancellation reaches the SSH handshake.
    await expect(page.getByTestId('scan-results')).toContainText('Scan cancelled', { timeout: 8_000 });
    await expect(page.getByTestId(`scan-failure-${down.name}`)).toContainText('CANCELLED');
    await expect(page.getByTestId('hosts-scan-all')).toBeEnabled();

    // Scanning the unreachable host alone ends with a timeout/unreachable error, not a hang.
    await page.getByTestId(`host-scan-${down.name}`).click();
    await expect(page.getByTestId(`host-status-${down.name}`)).toHaveAttribute('data-status', 'unreachable', { timeout: 40_000 });
    await expect(page.getByTestId(`host-scan-error-${down.name}`)).toHaveAttribute('data-code', /^(TIMEOUT|HOST_UNREACHABLE)$/);
    await expect(page.getByTestId(`host-error-${down.name}`)).not.toHaveText('—');
  } finally {
    await restoreLink(lab, down.name);
  }

  // Once the link is back, the same host scans fine.
  await page.getByTestId(`host-scan-${down.name}`).click();
  await expect(page.getByTestId(`host-status-${down.name}`)).toHaveAttribute('data-status', 'reachable', { timeout: 30_000 });
});

/**
 * A host whose key changes after enrolment is refused: the scan fails with
 * key-changed, the error names both fingerprints, and re-enrolling the same
 * address shows the red warning.
 */
import { replaceHostKey } from '../lab/lab';
import { authorizeAirlock, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

test('a changed host key is a hard refusal naming both fingerprints', async ({ app, lab }) => {
  const { page } = app;
  const host = lab.hosts[0]!;
  const pinned = host.fingerprint;

  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  await enrolHost(page, host);
  await scanHost(page, host.name, 'reachable');

  const fresh = await replaceHostKey(lab, host.name);
  expect(fresh, 'the lab host has a new key').toMatch(/^SHA256:/);
  expect(fresh).not.toBe(pinned);

  await scanHost(page, host.name, 'key-changed');
  const error = page.getByTestId(`host-error-${host.name}`);
  await expect(error).toHaveAttribute('title', new RegExp(escape(pinned)));
  await expect(error).toHaveAttribute('title', new RegExp(escape(fresh)));
  await expect(page.getByTestId(`host-scan-error-${host.name}`)).toHaveAttribute('data-code', 'HOST_KEY_CHANGED');

  // The terminal refuses too.
  await page.getByTestId('nav-terminal').click();
  await page.getByTestId('terminal-host').selectOption(host.name);
  await page.getByTestId('terminal-open').click();
  await expect(page.getByTestId('terminal-error')).toHaveAttribute('data-code', 'HOST_KEY_CHANGED');
  await expect(page.getByTestId('terminal-status')).toHaveAttribute('data-phase', 'idle');

  // Enrolling the same address again shows the key differs from the pinned one.
  await page.getByTestId('nav-hosts').click();
  await page.getByTestId('enrol-open').click();
  await page.getByTestId('enrol-name').fill(`${host.name}-again`);
  await page.getByTestId('enrol-address').fill(host.address);
  await page.getByTestId('enrol-port').fill(String(host.port));
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-pinned-warning')).toBeVisible();
  await expect(page.getByTestId('enrol-pinned-warning')).toContainText(pinned);
  await expect(page.getByTestId('enrol-fingerprint')).toHaveText(fresh);
  await page.getByTestId('enrol-cancel').click();
  await expect(page.getByTestId(`host-key-changed-help-${host.name}`)).toBeVisible();
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

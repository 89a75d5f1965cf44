/**
 * Terminal tabs (issue 11): two sessions to two lab hosts in two tabs, each labelled with its host
 * and pinned key, each keeping its own output while the other is shown; Alt+N switches; the ×
 * or Delete on a focused tab closes it.
 */
import { authorizeAirlock, enrolHost, expect, firstRunSetup, test } from './fixtures';

test('two terminals to two hosts in two tabs keep their own output', async ({ app, lab }) => {
  test.setTimeout(120_000);
  const { page } = app;
  const [a, b] = [lab.hosts[0]!, lab.hosts[1]!];
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  await enrolHost(page, a);
  await enrolHost(page, b);
  await page.getByTestId('nav-terminal').click();
  for (const h of [a, b]) {
    await page.getByTestId('terminal-host').selectOption(h.name);
    await page.getByTestId('terminal-open').click();
    const panel = page.locator(`[data-testid=terminal-panel][data-host="${h.name}"]`);
    await expect(panel.getByTestId('terminal-status')).toHaveAttribute('data-phase', 'open', { timeout: 30_000 });
    await expect(panel.getByTestId('terminal-tab-fingerprint')).toHaveAttribute('data-fingerprint', h.fingerprint);
    const rows = panel.locator('.xterm-rows');
    await expect(rows).not.toHaveText(/^\s*$/, { timeout: 20_000 });
    await panel.getByTestId('terminal-screen').click();
    await page.keyboard.type(`echo "out-${h.name}-$((6*7))"\n`);
    await expect(rows).toContainText(`out-${h.name}-42`, { timeout: 20_000 });
    const tab = page.locator(`[data-testid=terminal-tab][data-host="${h.name}"]`);
    await expect(tab.getByTestId('terminal-tab-fp')).toHaveText(h.fingerprint.slice(0, 15) + '…' + h.fingerprint.slice(-4));
    await expect(tab.getByTestId('terminal-tab-select')).toHaveAttribute('title', new RegExp(h.fingerprint.replace(/[+/]/g, '\\$&')));
  }
  // Alt+1: back to the first tab; its output is still there, the other's is not in it.
  await page.keyboard.press('Alt+1');
  const first = page.locator(`[data-testid=terminal-panel][data-host="${a.name}"]`);
  await expect(first).toHaveAttribute('data-active', 'true');
  await expect(first.locator('.xterm-rows')).toContainText(`out-${a.name}-42`);
  await expect(first.locator('.xterm-rows')).not.toContainText(`out-${b.name}-42`);
  // Closing a tab closes its session and leaves the other.
  await page.locator(`[data-testid=terminal-tab][data-host="${a.name}"]`).getByTestId('terminal-tab-close').click();
  await expect(page.getByTestId('terminal-tab')).toHaveCount(1);
  const second = page.locator(`[data-testid=terminal-panel][data-host="${b.name}"]`);
  await expect(second).toHaveAttribute('data-active', 'true');
  await expect(second.locator('.xterm-rows')).toContainText(`out-${b.name}-42`);
  // From the keyboard: the strip holds only tabs; Delete on the focused tab closes it.
  const last = page.locator(`[data-testid=terminal-tab][data-host="${b.name}"]`).getByTestId('terminal-tab-select');
  await last.focus();
  await page.keyboard.press('Delete');
  await expect(page.getByTestId('terminal-tab')).toHaveCount(0);
});

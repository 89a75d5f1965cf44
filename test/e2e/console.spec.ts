/**
 * One operator's first hour, through the real UI, against the real core and
 * real sshd hosts: first run → sign in → trust → enrol → scan → terminal → audit.
 */
import { ADMIN, authorizeAirlock, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

test('first run, enrol a lab host, scan its GPUs, run a command, audit it all', async ({ app, lab }, testInfo) => {
  const { page } = app;
  const host = lab.hosts[0]!;

  // First run: the setup screen creates the first administrator.
  await firstRunSetup(page);
  await expect(page.getByTestId('shell-kind')).toHaveAttribute('data-shell', app.shell);
  await expect(page.getByTestId('topbar-roles')).toContainText('admin');
  await expect(page.getByTestId('nav-users')).toBeVisible();

  // Sign out, then a wrong password is refused with the core's message, then the right one works.
  await page.getByTestId('signout').click();
  await expect(page.getByTestId('login-form')).toBeVisible();
  await page.getByTestId('login-name').fill(ADMIN.name);
  await page.getByTestId('login-password').fill('not the right password');
  await page.getByTestId('login-submit').click();
  const loginError = page.getByTestId('login-error');
  await expect(loginError).toBeVisible();
  await expect(loginError).not.toHaveText('');
  await expect(page.getByTestId('topbar-user')).toHaveCount(0);
  await page.getByTestId('login-password').fill(ADMIN.password);
  await page.getByTestId('login-submit').click();
  await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);

  // Identity: the key shown in the UI is the one the hosts must trust.
  await authorizeAirlock(page, lab);
  await expect(page.getByTestId('identity-fingerprint')).toHaveText(/^SHA256:[A-Za-z0-9+/]{43}$/);

  // Enrol host 1: the fingerprint shown for confirmation is the lab host's real one.
  await enrolHost(page, host);
  await expect(page.getByTestId(`host-status-${host.name}`)).not.toHaveAttribute('data-status', 'unconfirmed');

  // Scan: reachable, with its GPUs.
  await scanHost(page, host.name, 'reachable');
  await expect(page.getByTestId(`host-gpus-${host.name}`)).toHaveText('8 × NVIDIA A100-SXM4-80GB');
  await expect(page.getByTestId(`host-error-${host.name}`)).toHaveText('—');
  await page.getByTestId(`host-expand-${host.name}`).click();
  const gpuTable = page.getByTestId(`gpu-table-${host.name}`);
  await expect(gpuTable.locator('tbody tr')).toHaveCount(8);
  await expect(gpuTable.locator('tbody tr').first()).toContainText('NVIDIA A100-SXM4-80GB');

  // A second host, then "Scan all" (with its cancellable request id) reports per-host outcomes.
  const second = lab.hosts[1]!;
  await enrolHost(page, second);
  await page.getByTestId('hosts-scan-all').click();
  await expect(page.getByTestId('hosts-scan-cancel')).toBeVisible();
  await expect(page.getByTestId('scan-results')).toContainText('2 ok, 0 failed', { timeout: 45_000 });
  await expect(page.getByTestId(`host-status-${second.name}`)).toHaveAttribute('data-status', 'reachable');
  await expect(page.getByTestId('hosts-summary')).toContainText('2 hosts');

  if (process.env.AIRLOCK_SCREENSHOT === '1') {
    // The docs' screenshots are a11y.spec.ts's (docs/screenshots/); this one stays with the test's output.
    await page.screenshot({ path: testInfo.outputPath('hosts.png') });
  }

  // Terminal: open a PTY on the host and run a command.
  await page.getByTestId('nav-terminal').click();
  await page.getByTestId('terminal-host').selectOption(host.name);
  await expect(page.getByTestId('terminal-fingerprint')).toContainText(host.fingerprint);
  await page.getByTestId('terminal-open').click();
  await expect(page.getByTestId('terminal-status')).toHaveAttribute('data-phase', 'open', { timeout: 30_000 });
  const rows = page.locator('[data-testid=terminal-screen] .xterm-rows');
  // Wait for the shell prompt before typing.
  await expect(rows).not.toHaveText(/^\s*$/, { timeout: 20_000 });
  await page.getByTestId('terminal-screen').click();
  await page.keyboard.type('hostname\n');
  await page.keyboard.type('echo "marker-$((6*7))"\n');
  await expect(rows).toContainText('marker-42', { timeout: 20_000 });
  // 24-bit colour output renders in its colour under the strict CSP (see renderer cspStyles.ts).
  await page.keyboard.type("printf '\\033[38;2;255;100;0m%s\\033[0m\\n' truecolor-ok\n");
  await expect(rows.getByText('truecolor-ok', { exact: true })).toHaveCSS('color', 'rgb(255, 100, 0)');
  // `hostname` prints the lab host's name on a line of its own (the prompt may contain it too).
  const lines = (await rows.innerText()).replace(/\u00a0/g, ' ').split('\n').map((l) => l.trim());
  const typedAt = lines.findIndex((l) => l.endsWith('hostname'));
  expect(typedAt, 'the typed command is echoed').toBeGreaterThanOrEqual(0);
  expect(lines[typedAt + 1], 'the output of `hostname`').toBe(host.name);

  // Copy: double-click a word in the terminal to select it, copy it with the button.
  const markerRow = rows.locator('div', { hasText: /^marker-42/ }).first();
  const box = (await markerRow.boundingBox())!;
  await page.mouse.dblclick(box.x + 12, box.y + box.height / 2);
  await page.getByTestId('terminal-copy').click();
  await expect(page.getByTestId('terminal-note')).toContainText('Copied');

  await page.getByTestId('terminal-close').click();
  await expect(page.getByTestId('terminal-status')).toHaveAttribute('data-phase', 'closed');

  // Audit: the actions are in the trail, and the chain verifies.
  await page.getByTestId('nav-audit').click();
  const table = page.getByTestId('audit-table');
  for (const channel of ['hosts:add', 'hosts:scan', 'terminal:open']) {
    await page.getByTestId('audit-filter-channel').fill(channel);
    await page.getByTestId('audit-filter-apply').click();
    await expect(table.locator(`[data-testid=audit-row][data-channel="${channel}"]`).first()).toBeVisible();
  }
  // The table is virtualised (only rows in view are in the DOM): count older rows through a server-side filter.
  await page.getByTestId('audit-filter-channel').fill('hosts:add');
  await page.getByTestId('audit-filter-outcome').selectOption('ok');
  await page.getByTestId('audit-filter-apply').click();
  await expect(table.locator('[data-testid=audit-row][data-channel="hosts:add"][data-outcome="ok"]')).toHaveCount(2);
  await page.getByTestId('audit-filter-outcome').selectOption('');
  // Server-side filter.
  await page.getByTestId('audit-filter-channel').fill('terminal:open');
  await page.getByTestId('audit-filter-apply').click();
  await expect(table.locator('[data-testid=audit-row]').first()).toHaveAttribute('data-channel', 'terminal:open');
  await expect(table.locator('[data-testid=audit-row]:not([data-channel="terminal:open"])')).toHaveCount(0);

  await page.getByTestId('audit-verify').click();
  const verdict = page.getByTestId('audit-verify-result');
  await expect(verdict).toHaveAttribute('data-ok', 'true');
  await expect(verdict).toContainText('Chain OK');
});

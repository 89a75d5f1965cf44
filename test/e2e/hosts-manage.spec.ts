/**
 * Host management in the UI (issue 11), with real lab hosts: the empty Hosts view (Airlock's key
 * for authorized_keys, a link to Identity), "Copied" feedback on copy buttons (and what a failed
 * copy says), a scan right after enrolling, editing a host's user, port and address (the pinned
 * key stays), and accepting a changed host key after comparing both side by side (audited;
 * refused when the host presents yet another key). Then the playbook's parameters as a form:
 * an invalid value is an inline error and Plan is disabled, fixing it enables Plan, the
 * "Advanced: JSON" view round-trips with the form, and the plan's counter says "checked".
 */
import { replaceHostKey } from '../lab/lab';
import { authorizeAirlock, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

// The root tsconfig has no DOM library: the page's globals, loosely typed, for in-page callbacks.
declare const navigator: any;
declare const document: any;

test('hosts: empty view, copy feedback, scan on enrol, edit, accept a changed key', async ({ app, lab }) => {
  test.setTimeout(180_000);
  const { page } = app;
  const [host, other] = [lab.hosts[0]!, lab.hosts[1]!];
  const pinned = host.fingerprint;
  await firstRunSetup(page);

  // ---------- the empty view: the key for authorized_keys, a copy button, a way to Identity ----------
  await page.getByTestId('nav-hosts').click();
  const empty = page.getByTestId('hosts-empty');
  await expect(empty).toBeVisible();
  await expect(empty).toContainText('authorized_keys');
  await expect(page.getByTestId('hosts-empty-pubkey')).toHaveText(/^ssh-ed25519 AAAA\S+/);
  const copy = page.getByTestId('hosts-empty-copy');
  await expect(copy).toHaveText('Copy key');
  await copy.click();
  await expect(copy).toHaveText('Copied');
  await expect(page.getByTestId('hosts-empty-copy-status')).toHaveText('Copied to the clipboard.');
  await expect(page.getByTestId('hosts-empty-copy-status')).toHaveAttribute('aria-live', 'polite');
  // The label comes back by itself.
  await expect(copy).toHaveText('Copy key', { timeout: 10_000 });
  // A clipboard that refuses: the button and a visible line say so, and what to do.
  await page.evaluate(() => {
    Object.defineProperty(navigator, 'clipboard', { value: { writeText: () => Promise.reject(new Error('denied')) }, configurable: true });
    document.execCommand = () => false;
  });
  await copy.click();
  await expect(copy).toHaveText('Copy failed');
  await expect(page.getByTestId('hosts-empty-copy-status')).toHaveText('Copy failed: select the text and copy it.');
  await expect(page.getByTestId('hosts-empty-copy-status')).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('topbar-user')).toBeVisible({ timeout: 30_000 });

  // The link goes to the Identity view, whose copy button gives the same feedback.
  await page.getByTestId('nav-hosts').click();
  await page.getByTestId('hosts-empty-identity').click();
  await expect(page.getByTestId('identity-view')).toBeVisible();
  await page.getByTestId('identity-copy').click();
  await expect(page.getByTestId('identity-copy')).toHaveText('Copied');
  await expect(page.getByTestId('identity-copy-status')).toHaveText('Copied to the clipboard.');

  // ---------- enrolling scans at once: the row shows the result ----------
  await authorizeAirlock(page, lab);
  await enrolHost(page, host);
  await expect(page.getByTestId('hosts-empty')).toHaveCount(0);
  await expect(page.getByTestId(`host-status-${host.name}`)).toHaveAttribute('data-status', 'reachable');
  await expect(page.getByTestId(`host-gpus-${host.name}`)).not.toHaveText('—');

  // ---------- edit: user (checked by the next scan), invalid port, address (the pinned key stays) ----------
  const row = page.getByTestId(`host-row-${host.name}`);
  const dialog = page.getByTestId('edit-host-dialog');
  // The dialog behaves like the others: Escape closes it, focus returns to its button.
  await page.getByTestId(`host-edit-${host.name}`).click();
  await expect(page.getByTestId('edit-host-address')).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await expect(page.getByTestId(`host-edit-${host.name}`)).toBeFocused();
  await page.getByTestId(`host-edit-${host.name}`).click();
  await expect(dialog).toBeVisible();
  await expect(page.getByTestId('edit-host-key-note')).toContainText(pinned);
  await expect(page.getByTestId('edit-host-save')).toBeDisabled();
  await page.getByTestId('edit-host-port').fill('0');
  await expect(page.getByTestId('edit-host-problem')).toHaveText('Port: 1–65535');
  await expect(page.getByTestId('edit-host-save')).toBeDisabled();
  await page.getByTestId('edit-host-port').fill(String(host.port));
  await page.getByTestId('edit-host-user').fill('nobody');
  await page.getByTestId('edit-host-save').click();
  await expect(dialog).toHaveCount(0);
  await expect(row).toContainText('nobody');
  await scanHost(page, host.name, 'auth-failed');
  await page.getByTestId(`host-edit-${host.name}`).click();
  await page.getByTestId('edit-host-user').fill(host.user);
  await page.getByTestId('edit-host-save').click();
  await expect(dialog).toHaveCount(0);
  await scanHost(page, host.name, 'reachable');

  // Pointed at another host's address: it is scanned at once and refused (that host has another key).
  await page.getByTestId(`host-edit-${host.name}`).click();
  await page.getByTestId('edit-host-address').fill(other.address);
  await page.getByTestId('edit-host-port').fill(String(other.port));
  await page.getByTestId('edit-host-save').click();
  await expect(dialog).toHaveCount(0);
  await expect(page.getByTestId(`host-status-${host.name}`)).toHaveAttribute('data-status', 'key-changed', { timeout: 45_000 });
  await expect(page.getByTestId(`host-fingerprint-${host.name}`)).toHaveAttribute('title', pinned);
  await page.getByTestId(`host-edit-${host.name}`).click();
  await page.getByTestId('edit-host-address').fill(host.address);
  await page.getByTestId('edit-host-port').fill(String(host.port));
  await page.getByTestId('edit-host-save').click();
  await expect(page.getByTestId(`host-status-${host.name}`)).toHaveAttribute('data-status', 'reachable', { timeout: 45_000 });

  // ---------- a changed key: the row offers to accept it; both keys side by side ----------
  const fresh = await replaceHostKey(lab, host.name);
  await scanHost(page, host.name, 'key-changed');
  await expect(page.getByTestId(`host-key-changed-help-${host.name}`)).toContainText('Accept new key');
  await page.getByTestId(`host-repin-${host.name}`).click();
  const repin = page.getByTestId('repin-dialog');
  await expect(page.getByTestId('repin-pinned-fingerprint')).toHaveText(pinned, { timeout: 20_000 });
  await expect(page.getByTestId('repin-presented-fingerprint')).toHaveText(fresh);
  await expect(page.getByTestId('enrol-pinned-warning')).toContainText(pinned);
  await expect(repin).toContainText('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');

  // The host changes its key again before the person confirms: nothing is pinned.
  const third = await replaceHostKey(lab, host.name);
  await page.getByTestId('repin-confirm').click();
  await expect(page.getByTestId('repin-error')).toHaveAttribute('data-code', 'HOST_KEY_MISMATCH');
  await expect(page.getByTestId('repin-error')).toContainText(third);
  await page.getByTestId('repin-cancel').click();
  await expect(page.getByTestId(`host-fingerprint-${host.name}`)).toHaveAttribute('title', pinned);

  // Compared again, accepted: pinned, scanned at once, reachable.
  await page.getByTestId(`host-repin-${host.name}`).click();
  await expect(page.getByTestId('repin-presented-fingerprint')).toHaveText(third, { timeout: 20_000 });
  await page.getByTestId('repin-confirm').click();
  await expect(repin).toHaveCount(0);
  await expect(page.getByTestId(`host-fingerprint-${host.name}`)).toHaveAttribute('title', third);
  await expect(page.getByTestId(`host-status-${host.name}`)).toHaveAttribute('data-status', 'reachable', { timeout: 45_000 });
  await expect(page.getByTestId(`host-repin-${host.name}`)).toHaveCount(0);

  // In the audit trail: the refused and the accepted re-pin, and the edits.
  await page.getByTestId('nav-audit').click();
  const table = page.getByTestId('audit-table');
  await page.getByTestId('audit-filter-channel').fill('hosts:repin');
  await page.getByTestId('audit-filter-apply').click();
  await expect(table.locator('[data-testid=audit-row][data-channel="hosts:repin"][data-outcome="ok"]').first()).toBeVisible();
  await expect(table.locator('[data-testid=audit-row][data-channel="hosts:repin"][data-outcome="error"]').first()).toBeVisible();
  await page.getByTestId('audit-filter-channel').fill('hosts:update');
  await page.getByTestId('audit-filter-apply').click();
  await expect(table.locator('[data-testid=audit-row][data-channel="hosts:update"][data-outcome="ok"]')).not.toHaveCount(0);
});

test("provisioning: the playbook's parameters as a form, checked before Plan, round-tripping with JSON", async ({ app, lab }) => {
  test.setTimeout(180_000);
  const { page } = app;
  const host = lab.hosts[0]!;
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  await enrolHost(page, host);

  await page.getByTestId('nav-provision').click();
  await page.getByTestId('prov-tab-run').click();
  await page.getByTestId('prov-playbook').selectOption('lab-gpu-node');
  await page.getByTestId('prov-mode-names').check();
  await page.getByTestId(`prov-check-${host.name}`).check();
  const plan = page.getByTestId('prov-plan');
  await expect(page.getByTestId('prov-params-form')).toBeVisible();
  await expect(plan).toBeEnabled();

  // Generated inputs: a number, a boolean, an enum, a list of text.
  const connections = page.getByTestId('prov-param-model-connections');
  await expect(connections).toHaveValue('2');
  await expect(page.getByTestId('prov-param-model-rehash')).not.toBeChecked();
  await expect(page.getByTestId('prov-param-sshd-permitRootLogin')).toHaveValue('prohibit-password');
  await expect(page.getByTestId('prov-param-sshd-ciphers')).toHaveValue(/chacha20-poly1305@openssh.com\n/);

  // Invalid → the error in words next to the field, Plan disabled.
  await connections.fill('12');
  const error = page.getByTestId('prov-param-error-model-connections');
  await expect(error).toHaveText('a whole number from 1 to 8');
  await expect(connections).toHaveAttribute('aria-invalid', 'true');
  await expect(plan).toBeDisabled();
  await expect(page.getByTestId('prov-params-invalid-summary')).toHaveText('1 parameter needs fixing before Plan.');
  await page.getByTestId('prov-param-model-model').fill('');
  await expect(page.getByTestId('prov-param-error-model-model')).toHaveText('cannot be empty');
  await page.getByTestId('prov-param-model-model').fill('tiny-llm');
  // Fixed → no error, Plan enabled.
  await connections.fill('3');
  await expect(error).toHaveCount(0);
  await expect(plan).toBeEnabled();
  await page.getByTestId('prov-param-model-rehash').check();
  await page.getByTestId('prov-param-sshd-permitRootLogin').selectOption('no');

  // Advanced: JSON shows exactly the overrides the form made…
  await page.getByTestId('prov-params-view-json').click();
  const json = page.getByTestId('prov-params');
  expect(JSON.parse(await json.inputValue())).toEqual({ model: { connections: 3, rehash: true }, sshd: { permitRootLogin: 'no' } });
  // …and what is typed there is what the form shows; an invalid value is reported there too.
  await json.fill('{"model": {"connections": "x"}}');
  await expect(page.getByTestId('prov-params-invalid')).toContainText('model.connections');
  await expect(plan).toBeDisabled();
  await page.getByTestId('prov-params-view-form').click();
  await expect(connections).toHaveValue('x');
  await expect(error).toHaveText('a whole number from 1 to 8');
  await page.getByTestId('prov-params-view-json').click();
  await json.fill('{"model": {"connections": 5}}');
  await page.getByTestId('prov-params-view-form').click();
  await expect(connections).toHaveValue('5');
  await expect(page.getByTestId('prov-param-model-rehash')).not.toBeChecked();
  await expect(page.getByTestId('prov-param-sshd-permitRootLogin')).toHaveValue('prohibit-password');
  // Not JSON: the form cannot be shown until it is.
  await page.getByTestId('prov-params-view-json').click();
  await json.fill('{"model": ');
  await expect(page.getByTestId('prov-params-error')).toBeVisible();
  await expect(page.getByTestId('prov-params-view-form')).toBeDisabled();
  await json.fill('{"model": {"connections": 4}}');
  await page.getByTestId('prov-params-view-form').click();
  await expect(connections).toHaveValue('4');

  // Plan works, and its counter counts steps checked.
  await plan.click();
  const live = page.getByTestId('prov-live');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 120_000 });
  const counter = live.getByTestId(`prov-host-counter-${host.name}`);
  await expect(counter).toHaveText(/^\d\/6 steps checked$/);
  const checked = await live.locator(`[data-testid^="prov-step-${host.name}-"][data-status]`).evaluateAll((els: Array<{ getAttribute(n: string): string | null }>) =>
    els.filter((e) => ['ok', 'would-change', 'failed'].includes(e.getAttribute('data-status') ?? '')).length,
  );
  await expect(counter).toHaveAttribute('data-done', String(checked));
  expect(checked).toBeGreaterThan(0);
});

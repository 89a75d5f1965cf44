/**
 * Every dialog a user can reach behaves as one (renderer/components/Modal.tsx): focus moves into
 * it and stays there (20 Tabs and 20 Shift+Tabs never leave it, also after its content changed,
 * as the enrol dialog's does after "Fetch host key"), the page behind it is inert (the app root,
 * and a dialog under a dialog), Escape closes it, and focus returns to the control that opened it.
 * The attestation dialog is reached with an attestation the CLI makes (a one-step GPU check).
 *
 * Also: the Users view's create form starts with no role ticked and starts over after each creation.
 */
import fs from 'node:fs';
import type { Locator, Page } from '@playwright/test';
import { replaceHostKey } from '../lab/lab';
import { ADMIN, authorizeAirlock, cli, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

// The root tsconfig has no DOM library (core code must not see one): the page's globals, loosely
// typed, for the callbacks that run in the page (as in hostile.spec.ts).
declare const document: any;

/** Where focus is: inside the dialog (not on <body>, not behind it). */
async function focusInside(page: Page, testId: string): Promise<{ inside: boolean; on: string }> {
  return page.evaluate((id) => {
    const d = document.querySelector(`[data-testid="${id}"]`);
    const a = document.activeElement;
    const on = a ? `${a.tagName.toLowerCase()}${a.getAttribute('data-testid') ? `[${a.getAttribute('data-testid')}]` : ''}` : 'null';
    return { inside: !!d && !!a && a !== document.body && d.contains(a), on };
  }, testId);
}

/** Focus is in the dialog, stays there over 20 Tabs and 20 Shift+Tabs, and the page behind is inert. */
async function expectTrapped(page: Page, testId: string): Promise<void> {
  const dialog = page.getByTestId(testId);
  await expect(dialog).toBeVisible();
  await expect.poll(() => focusInside(page, testId).then((f) => f.inside), { message: `focus is in ${testId}` }).toBe(true);
  const seen = new Set<string>();
  for (const key of ['Tab', 'Shift+Tab']) {
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press(key);
      const f = await focusInside(page, testId);
      expect(f.inside, `${key} #${i + 1} left ${testId} (focus on ${f.on})`).toBe(true);
      seen.add(f.on);
    }
  }
  // Tab went round (more than one stop) unless the dialog has a single control.
  expect(seen.size).toBeGreaterThan(1);
  const behind = await page.evaluate((id) => {
    const d = document.querySelector(`[data-testid="${id}"]`)!;
    const root = document.getElementById('root')!;
    const buttons = Array.from(root.querySelectorAll('button'));
    return {
      rootInert: root.inert,
      dialogInRoot: root.contains(d),
      dialogInert: d.closest('[inert]') !== null,
      // A button behind the dialog does not take focus.
      behindFocusable: buttons.some((b: any) => {
        b.focus();
        return document.activeElement === b;
      }),
    };
  }, testId);
  expect(behind).toEqual({ rootInert: true, dialogInRoot: false, dialogInert: false, behindFocusable: false });
  // The probe above moved nothing: focus is still in the dialog.
  expect((await focusInside(page, testId)).inside).toBe(true);
}

/** How many `hosts:probe` calls the console has received: its audit trail, read with the CLI (any shell). */
async function probesOnRecord(dataDir: string): Promise<number> {
  const r = await cli(dataDir, ['audit', 'list', '--limit', '1000'], { AIRLOCK_USER: ADMIN.name, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' });
  expect(r.code, r.stderr).toBe(0);
  const { events } = JSON.parse(r.stdout) as { events: Array<{ channel: string; phase: string }> };
  return events.filter((e) => e.channel === 'hosts:probe' && e.phase === 'request').length;
}

/** Escape closes the dialog and focus is back on its opener; the page is no longer inert. */
async function expectEscapeReturns(page: Page, testId: string, opener: Locator): Promise<void> {
  await page.keyboard.press('Escape');
  await expect(page.getByTestId(testId)).toHaveCount(0);
  await expect(opener).toBeFocused();
  expect(await page.evaluate(() => document.getElementById('root')!.inert)).toBe(false);
}

test('host dialogs: enrol (before and after "Fetch host key"), import, confirm key, remove, attestation, edit, accept new key, palette, apply', async ({ app, lab }, testInfo) => {
  test.setTimeout(360_000);
  const { page } = app;
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  await page.getByTestId('nav-hosts').click();

  // Enrol, step 1: Escape closes it, focus back on "Enrol host".
  const enrolOpen = page.getByTestId('enrol-open');
  await enrolOpen.click();
  await expectTrapped(page, 'enrol-dialog');
  await expect(page.getByTestId('enrol-name')).toBeFocused();
  await expectEscapeReturns(page, 'enrol-dialog', enrolOpen);

  // Step 2: the button that had focus went busy and the content was replaced; focus stays inside.
  await enrolOpen.click();
  await page.getByTestId('enrol-name').fill(h1.name);
  await page.getByTestId('enrol-address').fill(h1.address);
  await page.getByTestId('enrol-port').fill(String(h1.port));
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-fingerprint')).toHaveText(h1.fingerprint, { timeout: 20_000 });
  await expectTrapped(page, 'enrol-dialog');
  // Back to step 1 (the focused button is replaced) and forward again: still inside.
  const probes = await probesOnRecord(app.dataDir);
  await page.getByTestId('enrol-back').click();
  await expect(page.getByTestId('enrol-name')).toHaveValue(h1.name);
  // Back stays on step 1 (it once submitted the form again: React reused the button as the submit).
  await expect(page.getByTestId('enrol-probe')).toBeEnabled();
  await expect(page.getByTestId('enrol-fingerprint')).toHaveCount(0);
  await expectTrapped(page, 'enrol-dialog');
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-fingerprint')).toHaveText(h1.fingerprint, { timeout: 20_000 });
  // Since Back, the console got one probe: the one just asked for. A Back that submitted the form
  // would have sent one before it, and its request is on the trail before the service ran.
  expect(await probesOnRecord(app.dataDir)).toBe(probes + 1);
  await expectTrapped(page, 'enrol-dialog');
  await expectEscapeReturns(page, 'enrol-dialog', enrolOpen);
  await enrolHost(page, h1);

  // Import ssh_config: Escape, then a real import closed with its button.
  const importOpen = page.getByTestId('import-ssh-config');
  await importOpen.click();
  await expectTrapped(page, 'import-dialog');
  await expectEscapeReturns(page, 'import-dialog', importOpen);
  await importOpen.click();
  const config = `Host ${h2.name}\n  HostName ${h2.address}\n  Port ${h2.port}\n  User ${h2.user}\n`;
  await page.getByTestId('import-file').setInputFiles({ name: 'config', mimeType: 'text/plain', buffer: Buffer.from(config) });
  await page.getByTestId('import-submit').click();
  await expect(page.getByTestId('import-result')).toBeVisible();
  await expectTrapped(page, 'import-dialog');
  await page.getByTestId('import-close').click();
  await expect(page.getByTestId('import-dialog')).toHaveCount(0);
  await expect(importOpen).toBeFocused();

  // Confirm key of the imported host (the dialog probes as it opens).
  const confirmOpen = page.getByTestId(`host-confirm-key-${h2.name}`);
  await confirmOpen.click();
  await expect(page.getByTestId('confirm-key-dialog').getByTestId('enrol-fingerprint')).toHaveText(h2.fingerprint, { timeout: 20_000 });
  await expectTrapped(page, 'confirm-key-dialog');
  await expectEscapeReturns(page, 'confirm-key-dialog', confirmOpen);

  // Remove.
  const removeOpen = page.getByTestId(`host-remove-${h1.name}`);
  await removeOpen.click();
  await expectTrapped(page, 'remove-dialog');
  await expect(page.getByTestId('remove-dialog').getByRole('button', { name: 'Cancel' })).toBeFocused();
  await expectEscapeReturns(page, 'remove-dialog', removeOpen);

  // The attestation dialog: an attestation made by a one-step playbook (a GPU check) applied to h1
  // with the CLI, opened from the Attestations list.
  const asAdmin = { AIRLOCK_USER: ADMIN.name, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' };
  const playbook = testInfo.outputPath('dialog-gpu-check.json');
  fs.writeFileSync(playbook, JSON.stringify({ format: 'airlock.playbook/v1', name: 'dialog-gpu-check', version: '1.0', steps: [{ id: 'gpu', type: 'gpu-driver-check', params: { minCount: 1 } }] }));
  const imported = await cli(app.dataDir, ['provision', 'import-playbook', playbook], asAdmin);
  expect(imported.code, imported.stderr).toBe(0);
  const applied = await cli(app.dataDir, ['provision', 'apply', '--playbook', 'dialog-gpu-check', '--hosts', h1.name], asAdmin);
  expect(applied.code, applied.stderr).toBe(0);
  const attId = (JSON.parse(applied.stdout) as { hosts: Array<{ attestationId: string | null }> }).hosts[0]!.attestationId;
  expect(attId).toBeTruthy();
  await page.getByTestId('nav-provision').click();
  await page.getByTestId('prov-tab-attestations').click();
  const attestationOpen = page.getByTestId(`prov-attestation-show-${attId}`);
  await attestationOpen.click();
  await expect(page.getByTestId('attestation-json')).toContainText('"format": "airlock.attestation/v1"');
  await expectTrapped(page, 'attestation-dialog');
  await expectEscapeReturns(page, 'attestation-dialog', attestationOpen);
  await page.getByTestId('nav-hosts').click();

  // A host whose key changed still opens its dialogs the same way (the row shows its long error).
  await scanHost(page, h1.name, 'reachable');
  await replaceHostKey(lab, h1.name);
  await scanHost(page, h1.name, 'key-changed');
  await removeOpen.click();
  await expectTrapped(page, 'remove-dialog');
  await expectEscapeReturns(page, 'remove-dialog', removeOpen);
  // Edit (address, port, user) and Accept new key (both fingerprints side by side, after its probe).
  const editOpen = page.getByTestId(`host-edit-${h1.name}`);
  await editOpen.click();
  await expectTrapped(page, 'edit-host-dialog');
  await expectEscapeReturns(page, 'edit-host-dialog', editOpen);
  const repinOpen = page.getByTestId(`host-repin-${h1.name}`);
  await repinOpen.click();
  await expectTrapped(page, 'repin-dialog');
  await expect(page.getByTestId('repin-presented-fingerprint')).not.toBeEmpty({ timeout: 20_000 });
  await expectTrapped(page, 'repin-dialog');
  await expectEscapeReturns(page, 'repin-dialog', repinOpen);

  // The command palette (Ctrl+K) is a dialog too: focus goes back to where it was.
  const navHosts = page.getByTestId('nav-hosts');
  await navHosts.focus();
  await page.keyboard.press('Control+k');
  await expect(page.getByTestId('palette-input')).toBeFocused();
  await expectTrapped(page, 'palette');
  await expectEscapeReturns(page, 'palette', navHosts);

  // Provisioning: the apply confirmation.
  await page.getByTestId('nav-provision').click();
  // (The view keeps the tab it was left on: Attestations, above.)
  await page.getByTestId('prov-tab-run').click();
  await page.getByTestId('prov-playbook').selectOption('lab-gpu-node');
  await page.getByTestId('prov-mode-all').check();
  const applyOpen = page.getByTestId('prov-apply');
  await applyOpen.click();
  await expectTrapped(page, 'prov-apply-dialog');
  await expectEscapeReturns(page, 'prov-apply-dialog', applyOpen);
});

test('users: the create form starts with no role and starts over; the action, approval and step-up dialogs', async ({ app }) => {
  test.setTimeout(180_000);
  const { page } = app;
  await firstRunSetup(page);
  const signedInAt = Date.now();
  // The shortest step-up window, so that a sensitive action after it asks for the password again.
  await page.getByTestId('nav-account').click();
  await page.getByTestId('settings-stepup').fill('1');
  await page.getByTestId('settings-submit').click();
  await expect(page.getByTestId('settings-note')).toHaveText('Saved.');

  // ---------- the create form ----------
  await page.getByTestId('nav-users').click();
  const roles = ['admin', 'officer', 'auditor'] as const;
  const expectBlank = async () => {
    await expect(page.getByTestId('user-create-name')).toHaveValue('');
    await expect(page.getByTestId('user-create-password')).toHaveValue('');
    for (const r of roles) await expect(page.getByTestId(`user-create-role-${r}`)).not.toBeChecked();
    await expect(page.getByTestId('user-create-must-change')).toBeChecked();
  };
  await expectBlank();
  await page.getByTestId('user-create-name').fill('uma');
  await page.getByTestId('user-create-password').fill('uma initial password 1');
  // No role chosen: nothing to create yet, and the form says what is missing.
  await expect(page.getByTestId('user-create-submit')).toBeDisabled();
  await expect(page.getByTestId('user-create-roles-hint')).toHaveText('Choose at least one role.');
  await page.getByTestId('user-create-role-officer').check();
  await page.getByTestId('user-create-role-auditor').check();
  await page.getByTestId('user-create-must-change').uncheck();
  await page.getByTestId('user-create-submit').click();
  await expect(page.getByTestId('user-roles-uma')).toContainText('officer');
  await expect(page.getByTestId('user-roles-uma')).toContainText('auditor');
  await expect(page.getByTestId('user-roles-uma')).not.toContainText('admin');
  await expectBlank();
  await page.getByTestId('user-create-name').fill('vic');
  await page.getByTestId('user-create-password').fill('vic initial password 1');
  await page.getByTestId('user-create-role-auditor').check();
  await page.getByTestId('user-create-submit').click();
  await expect(page.getByTestId('user-roles-vic')).toHaveText('auditor');
  await expect(page.getByTestId('user-row-vic')).toContainText('new password');
  await expect(page.getByTestId('user-row-uma')).not.toContainText('new password');
  await expectBlank();

  // ---------- a user's action dialog ----------
  const actionOpen = page.getByTestId('user-action-vic');
  // A person picks from the select with it focused (selectOption alone does not focus it).
  await actionOpen.focus();
  await actionOpen.selectOption('roles');
  await expectTrapped(page, 'user-action-dialog');
  await expectEscapeReturns(page, 'user-action-dialog', actionOpen);

  // ---------- the approval prompt (a policy change always needs a second person) ----------
  await page.getByTestId('nav-approvals').click();
  await page.getByTestId('policy-edit-users:grantAdmin').click();
  await page.getByTestId('policy-expiry').fill('60');
  const policySubmit = page.getByTestId('policy-submit');
  await policySubmit.click();
  await expectTrapped(page, 'approval-dialog');
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('approval-dialog')).toHaveCount(0);
  await expect.poll(() => page.evaluate(() => document.activeElement !== document.body && !document.getElementById('root')!.inert)).toBe(true);
  if (await policySubmit.count()) await expect(policySubmit).toBeFocused();

  // ---------- the step-up prompt, over the action dialog that asked for it ----------
  const wait = signedInAt + 65_000 - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  await page.getByTestId('nav-users').click();
  await actionOpen.focus();
  await actionOpen.selectOption('disable');
  const confirm = page.getByTestId('user-action-confirm');
  await confirm.click();
  await expectTrapped(page, 'stepup-dialog');
  // The action dialog under the prompt is inert as well.
  expect(await page.getByTestId('user-action-dialog').evaluate((d) => d.closest('[inert]') !== null)).toBe(true);
  await expect(page.getByTestId('stepup-password')).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('stepup-dialog')).toHaveCount(0);
  // Back in the action dialog, on the button that asked; it is live again, and Escape closes it too.
  await expect(confirm).toBeFocused();
  expect(await page.getByTestId('user-action-dialog').evaluate((d) => d.closest('[inert]') !== null)).toBe(false);
  await expectEscapeReturns(page, 'user-action-dialog', actionOpen);
  await expect(page.getByTestId('user-row-vic')).toHaveAttribute('data-disabled', 'false');

  // Done for real: the prompt answered, vic disabled.
  await actionOpen.selectOption('disable');
  await confirm.click();
  await expect(page.getByTestId('stepup-dialog')).toBeVisible();
  await page.getByTestId('stepup-password').fill(ADMIN.password);
  await page.getByTestId('stepup-submit').click();
  await expect(page.getByTestId('user-row-vic')).toHaveAttribute('data-disabled', 'true');
  await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
});

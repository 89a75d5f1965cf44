/**
 * Editing the two-person policy in the Approvals view, through the real UI and core. Changing the
 * policy is itself a two-person operation:
 *
 * - admin A edits the users:grantAdmin row (approvers: admin only; expiry 60 min): the call is
 *   refused with APPROVAL_REQUIRED and filed with a reason; the row is unchanged while the request
 *   waits; A cannot approve it; the approvals:setPolicy row cannot be made optional;
 * - officer B (own console, same data directory) approves; A executes; the row shows the change;
 * - the change takes effect: a new admin grant is announced with the new role and expiry, and
 *   B — an officer — is now told that deciding needs the role admin;
 * - the trail, read in the UI, has the request, B's approval and the executed policy change.
 */
import { ADMIN, approveAs, createUser, expect, filterAudit, firstRunSetup, secondConsole, test } from './fixtures';

const OP = 'users:grantAdmin';

test('a policy change is filed by one admin, approved by another person, executed, and then in force', async ({ app, playwright, launchOptions }) => {
  test.setTimeout(150_000);
  const { page, dataDir } = app;
  const bob = { name: 'bob', initial: 'initial password for bob', password: 'bob chooses his own pass' };
  await firstRunSetup(page);
  await createUser(page, bob.name, bob.initial, ['officer']);
  await expect(page.getByTestId(`user-row-${bob.name}`)).toBeVisible();

  // The policy as installed.
  await page.getByTestId('nav-approvals').click();
  await expect(page.getByTestId(`policy-roles-${OP}`)).toHaveText('admin, officer');
  await expect(page.getByTestId(`policy-expiry-${OP}`)).toHaveText('1440 min');
  await expect(page.getByTestId(`policy-required-${OP}`)).toHaveAttribute('data-required', 'true');

  // The rule about the policy itself can be re-scoped but never made optional.
  await page.getByTestId('policy-edit-approvals:setPolicy').click();
  await expect(page.getByTestId('policy-required')).toBeChecked();
  await expect(page.getByTestId('policy-required')).toBeDisabled();
  await page.getByTestId('policy-form').getByRole('button', { name: 'Close' }).click();
  await expect(page.getByTestId('policy-form')).toHaveCount(0);

  // A asks for: approvers admin only, expiry 60 minutes.
  await page.getByTestId(`policy-edit-${OP}`).click();
  await expect(page.getByTestId('policy-role-admin')).toBeChecked();
  await expect(page.getByTestId('policy-role-officer')).toBeChecked();
  await page.getByTestId('policy-role-officer').uncheck();
  await page.getByTestId('policy-expiry').fill('60');
  await page.getByTestId('policy-submit').click();
  await expect(page.getByTestId('approval-dialog')).toBeVisible();
  await expect(page.getByTestId('approval-message')).toContainText(
    `Set the two-person policy for ${OP}: required, approvers admin, expires after 60 min needs a second person's approval`,
  );
  const reason = 'Only administrators should vouch for new administrators';
  await page.getByTestId('approval-reason').fill(reason);
  await page.getByTestId('approval-submit').click();
  await expect(page.getByTestId('approval-dialog')).toHaveCount(0);
  await expect(page.getByTestId('policy-form-error')).toHaveAttribute('data-code', 'APPROVAL_REQUIRED');
  const id = /#(\d+)/.exec(await page.getByTestId('policy-form-error').innerText())![1]!;

  // Nothing changed yet; the request waits, and A may not decide it.
  await expect(page.getByTestId(`policy-roles-${OP}`)).toHaveText('admin, officer');
  await expect(page.getByTestId(`policy-expiry-${OP}`)).toHaveText('1440 min');
  await page.getByTestId(`approval-row-${id}`).click();
  await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'pending');
  await expect(page.getByTestId(`approval-row-${id}`)).toContainText('approvals:setPolicy');
  await expect(page.getByTestId('approval-cannot-approve')).toContainText('a different person must decide it');
  await expect(page.getByTestId('approval-approve')).toHaveCount(0);
  await expect(page.getByTestId('approval-execute')).toHaveCount(0);

  const b = await secondConsole(dataDir, playwright, launchOptions);
  try {
    const bp = b.page;
    // B approves the policy change, but cannot execute it: only the person who filed it runs it.
    await approveAs(bp, bob, id, { filed: reason, decision: 'Agreed at the security review' });
    await expect(bp.getByTestId('approval-detail')).toContainText(`Set the two-person policy for ${OP}`);
    await expect(bp.getByTestId('approval-execute')).toHaveCount(0);
    // Approved is not executed: the policy B sees is still the old one.
    await expect(bp.getByTestId(`policy-roles-${OP}`)).toHaveText('admin, officer');

    // A executes; the row shows the new policy, changed by A.
    await page.getByTestId('approvals-refresh').click();
    await expect(page.getByTestId('approvals-badge')).toHaveAttribute('data-ready', '1');
    await page.getByTestId(`approval-row-${id}`).click();
    await page.getByTestId('approval-execute').click();
    await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'executed');
    await expect(page.getByTestId(`policy-roles-${OP}`)).toHaveText('admin');
    await expect(page.getByTestId(`policy-expiry-${OP}`)).toHaveText('60 min');
    await expect(page.getByTestId(`policy-required-${OP}`)).toHaveAttribute('data-required', 'true');
    await expect(page.getByTestId(`policy-updated-${OP}`)).toContainText(`by ${ADMIN.name}`);

    // In force: a new admin grant names the new approver role and expiry…
    await createUser(page, 'carol', 'initial password carol', ['admin']);
    await expect(page.getByTestId('approval-dialog')).toBeVisible();
    await expect(page.getByTestId('approval-message')).toContainText('another person who is an administrator must approve it within 60 minutes');
    await page.getByTestId('approval-reason').fill('Carol joins the on-call rota');
    await page.getByTestId('approval-submit').click();
    await expect(page.getByTestId('user-create-error')).toHaveAttribute('data-code', 'APPROVAL_REQUIRED');
    const carolId = /#(\d+)/.exec(await page.getByTestId('user-create-error').innerText())![1]!;

    // …and officer B may no longer decide it.
    await bp.getByTestId('approvals-refresh').click();
    await expect(bp.getByTestId(`approval-row-${carolId}`)).toHaveAttribute('data-status', 'pending');
    await expect(bp.getByTestId('approvals-counts')).toContainText('1 pending · 0 awaiting your decision');
    await bp.getByTestId(`approval-row-${carolId}`).click();
    await expect(bp.getByTestId('approval-detail')).toHaveAttribute('data-status', 'pending');
    await expect(bp.getByTestId('approval-cannot-approve')).toContainText('Deciding needs the role admin');
    await expect(bp.getByTestId('approval-approve')).toHaveCount(0);
    // B's console shows the policy in force, too.
    await expect(bp.getByTestId(`policy-roles-${OP}`)).toHaveText('admin');
    expect(b.logs.filter((l) => l.startsWith('[pageerror]'))).toEqual([]);
  } finally {
    await b.close();
  }

  // The trail: the request by A, the approval by B, the executed policy change by A.
  const table = page.getByTestId('audit-table');
  for (const [channel, actor] of [
    ['approvals:request', ADMIN.name],
    ['approvals:approve', bob.name],
    ['approvals:execute', ADMIN.name],
    ['approvals:setPolicy', ADMIN.name],
  ] as const) {
    await filterAudit(page, { channel, actor, outcome: 'ok' });
    await expect(table.locator(`[data-testid=audit-row][data-channel="${channel}"]`).first(), channel).toBeVisible();
  }
  // approvals:setPolicy: A's direct attempt refused (APPROVAL_REQUIRED), then one run, naming the approval it ran under.
  await filterAudit(page, { channel: 'approvals:setPolicy' });
  const rows = table.locator('[data-testid=audit-row]');
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(2)).toHaveAttribute('data-outcome', 'refused');
  await expect(rows.nth(2)).toContainText('APPROVAL_REQUIRED');
  await expect(rows.nth(1)).toHaveAttribute('data-outcome', 'pending');
  await expect(rows.nth(0)).toHaveAttribute('data-outcome', 'ok');
  await rows.nth(1).click();
  const detail = page.getByTestId('audit-detail');
  await expect(detail).toContainText(`"approval": ${id}`);
  await expect(detail).toContainText('"expiryMinutes": 60');
  await expect(detail).toContainText(`"operation": "${OP}"`);
});

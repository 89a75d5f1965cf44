/**
 * Issue 9 point 13: an audit trail people can read.
 *
 * An admin's console left alone writes nothing to the trail and asks the core nothing (it used to
 * poll approvals:list every 10 s: two events a poll, ~17,000 a day). When a second person decides
 * the admin's request from another process (the CLI on the same data directory), the core pushes
 * approvals:changed over the browser shell's WebSocket and the badge updates after exactly one
 * audited read of the queue.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { cli, createUser, expect, firstRunSetup, test } from './fixtures';

/** Every /api/call the page makes, by channel, from now on. */
function recordCalls(page: Page): string[] {
  const calls: string[] = [];
  page.on('request', (req) => {
    if (!req.url().endsWith('/api/call')) return;
    try {
      calls.push(String((JSON.parse(req.postData() ?? '{}') as { channel?: unknown }).channel));
    } catch {
      calls.push('(unreadable)');
    }
  });
  return calls;
}

test('an idle console writes no audit events; a decision made elsewhere reaches the badge by push', async ({ app }) => {
  test.setTimeout(150_000);
  const { page, dataDir } = app;
  const bob = { name: 'bob', initial: 'initial password for bob', password: 'bob chooses his own pass' };
  await firstRunSetup(page);

  // The admin creates officer bob, then files a request to create a second admin.
  await createUser(page, bob.name, bob.initial, ['officer']);
  await expect(page.getByTestId(`user-row-${bob.name}`)).toBeVisible();
  await createUser(page, 'carol', 'initial password carol', ['admin']);
  await page.getByTestId('approval-reason').fill('Carol joins the on-call rota');
  await page.getByTestId('approval-submit').click();
  await expect(page.getByTestId('user-create-error')).toHaveAttribute('data-code', 'APPROVAL_REQUIRED');
  const id = /#(\d+)/.exec(await page.getByTestId('user-create-error').innerText())![1]!;
  // Nothing for the admin to do yet: their own request is not theirs to approve.
  await expect(page.getByTestId('approvals-badge')).toHaveCount(0);

  // Bob chooses his own password from the CLI (another process on the same database).
  const passwd = await cli(dataDir, ['users', 'passwd'], { AIRLOCK_USER: bob.name, AIRLOCK_PASSWORD: bob.initial, AIRLOCK_NEW_PASSWORD: bob.password });
  expect(passwd.code, passwd.stderr).toBe(0);

  const db = new Database(path.join(dataDir, 'airlock.db'), { readonly: true, fileMustExist: true });
  try {
    // Checkpoints are the trail signing itself (only over new events), not a call: left out of the count.
    const events = (after = 0) =>
      db.prepare("SELECT seq, actor, channel FROM audit_events WHERE seq > ? AND channel <> 'audit:checkpoint' ORDER BY seq").all(after) as Array<{
        seq: number;
        actor: string;
        channel: string;
      }>;
    const headSeq = () => db.prepare('SELECT COALESCE(MAX(seq), 0) FROM audit_events').pluck().get() as number;

    // Idle: the admin is signed in, the console is open, nobody touches it.
    // (A moment for the reads the last steps prompted to finish.)
    await page.waitForTimeout(1000);
    const calls = recordCalls(page);
    const idleFrom = headSeq();
    await page.waitForTimeout(35_000);
    expect(events(idleFrom), 'audit events an idle console wrote').toEqual([]);
    expect(calls, 'calls an idle console made').toEqual([]);

    // Bob approves from the CLI; the admin's badge shows the request ready to execute.
    const approvedFrom = headSeq();
    const approve = await cli(dataDir, ['approvals', 'approve', id, '--reason', 'Confirmed with the security lead'], {
      AIRLOCK_USER: bob.name,
      AIRLOCK_PASSWORD: bob.password,
    });
    expect(approve.code, approve.stderr).toBe(0);
    await expect(page.getByTestId('approvals-badge')).toHaveAttribute('data-ready', '1');
    await expect(page.getByTestId('approvals-badge')).toHaveAttribute('data-awaiting', '0');
    // One read of the queue, prompted by the push, and audited as such; nothing else from the admin.
    expect(calls).toEqual(['approvals:list']);
    const admins = events(approvedFrom).filter((e) => e.actor !== bob.name);
    expect(admins.map((e) => `${e.actor} ${e.channel}`)).toEqual(['admin approvals:list', 'admin approvals:list']);
    expect(events(approvedFrom).some((e) => e.actor === bob.name && e.channel === 'approvals:approve')).toBe(true);
  } finally {
    db.close();
  }
});

/**
 * The two-person rule, end to end through the real core on a temp SQLite file, with an
 * injected clock: request → approve (another person, step-up) → execute once with exactly the
 * approved input; rejection, cancellation, expiry; self-approval refused, including through an
 * account made, promoted or taken over during the request's life; the policy guarding itself.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

let now = Date.UTC(2026, 0, 1, 9);
const clock = () => new Date(now);
const later = (ms: number) => (now += ms);
const MIN = 60_000;
let t: TestCore;
let alice: TestClient;
let olga: TestClient;

const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code);
const NEW_ADMIN = { name: 'bob', password: 'bob initial password', roles: ['admin'] };

beforeEach(async () => {
  now = Date.UTC(2026, 0, 1, 9);
  t = await testCore({ clock });
  alice = t.client();
  await alice.ok('session:setup', ADMIN);
  // An officer whose account, roles and password all predate every request below.
  await alice.ok('users:create', { name: 'olga', password: 'olga own password', roles: ['officer'], mustChangePassword: false });
  olga = t.client();
  await olga.ok('session:login', { name: 'olga', password: 'olga own password' });
  later(MIN);
});
afterEach(async () => t.close());

/** alice asks for a second admin and files the request. */
async function fileNewAdmin(input: Record<string, unknown> = NEW_ADMIN) {
  const refused = await alice.call('users:create', input);
  expect(refused).toMatchObject({ ok: false, error: { code: 'APPROVAL_REQUIRED' } });
  return alice.ok('approvals:request', { channel: 'users:create', input, reason: 'second admin for the night shift' });
}

describe('the two-person rule', () => {
  it('runs an approved request once, with exactly the approved input, and audits every step', async () => {
    const refused = await alice.call('users:create', NEW_ADMIN);
    expect(refused).toMatchObject({ ok: false, error: { code: 'APPROVAL_REQUIRED', message: expect.stringMatching(/needs a second person's approval: request it, with a reason/) } });
    expect((await alice.ok('users:list', {})).map((u) => u.name)).toEqual(['alice', 'olga']);

    const q = await alice.ok('approvals:request', { channel: 'users:create', input: NEW_ADMIN, reason: 'second admin for the night shift' });
    expect(q).toMatchObject({
      status: 'pending',
      operation: 'users:grantAdmin',
      channel: 'users:create',
      summary: 'Create user bob with roles admin',
      input: { name: 'bob', roles: ['admin'], password: '[sealed]', mustChangePassword: true },
      requestedBy: 'alice',
      approverRoles: ['admin', 'officer'],
      expiresAt: new Date(now + 24 * 60 * MIN).toISOString(),
      canApprove: false,
      cannotApproveReason: 'You filed this request: a different person must decide it.',
      canExecute: false,
      canCancel: true,
    });
    expect((await olga.ok('approvals:list', {})).counts).toEqual({ pending: 1, awaitingMe: 1, readyToExecute: 0 });
    expect((await alice.ok('approvals:list', {})).counts).toEqual({ pending: 1, awaitingMe: 0, readyToExecute: 0 });

    // Self-approval is impossible.
    expect(await alice.call('approvals:approve', { id: q.id, reason: 'I trust me' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    // Executing before approval runs nothing.
    expect(code(await alice.call('approvals:execute', { id: q.id }))).toBe('CONFLICT');

    const approved = await olga.ok('approvals:approve', { id: q.id, reason: 'confirmed with alice by phone' });
    expect(approved).toMatchObject({ status: 'approved', decidedBy: 'olga', decisionReason: 'confirmed with alice by phone', canApprove: false });
    expect((await alice.ok('approvals:list', { status: 'open' })).counts.readyToExecute).toBe(1);
    expect(code(await olga.call('approvals:execute', { id: q.id }))).toBe('FORBIDDEN'); // only the requester

    const done = await alice.ok('approvals:execute', { id: q.id });
    expect(done.request).toMatchObject({ status: 'executed', resultCode: null, canExecute: false });
    expect(done.value).toMatchObject({ name: 'bob', roles: ['admin'], createdBy: 'alice', mustChangePassword: true });
    expect(code(await alice.call('approvals:execute', { id: q.id }))).toBe('CONFLICT'); // once
    const bob = t.client();
    await bob.ok('session:login', { name: 'bob', password: 'bob initial password' });

    const { events } = await alice.ok('audit:list', { limit: 200 });
    const raw = JSON.stringify(events);
    expect(raw).not.toContain('bob initial password');
    expect(events.find((e) => e.channel === 'approvals:request' && e.phase === 'request')?.params).toMatchObject({
      channel: 'users:create',
      input: { name: 'bob', password: expect.anything() },
    });
    expect(events.find((e) => e.channel === 'users:create' && e.phase === 'request' && (e.params as { approval?: number }).approval === q.id)).toBeTruthy();
    for (const ch of ['approvals:approve', 'approvals:execute']) {
      expect(events.find((e) => e.channel === ch && e.phase === 'outcome' && e.outcome === 'ok'), ch).toBeTruthy();
    }
    expect(events.find((e) => e.channel === 'users:create' && e.outcome === 'refused')?.errorCode).toBe('APPROVAL_REQUIRED');
    expect((await alice.ok('audit:verify', {})).ok).toBe(true);
  });

  it('refuses approval from an account created during the request’s life — by the requester or anyone', async () => {
    const q = await fileNewAdmin();
    later(MIN);
    // alice makes a sock-puppet officer (no approval needed for that) and tries to approve through it.
    await alice.ok('users:create', { name: 'sock', password: 'sock own password', roles: ['officer'], mustChangePassword: false });
    const sock = t.client();
    await sock.ok('session:login', { name: 'sock', password: 'sock own password' });
    const view = await sock.ok('approvals:get', { id: q.id });
    expect(view).toMatchObject({ canApprove: false, cannotApproveReason: expect.stringMatching(/created after this request/) });
    expect(await sock.call('approvals:approve', { id: q.id, reason: 'sure' })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringMatching(/created after this request was filed/) },
    });
    expect((await sock.ok('approvals:list', {})).counts.awaitingMe).toBe(0);
    // A request filed after sock existed is another matter.
    expect((await alice.ok('approvals:get', { id: q.id })).status).toBe('pending');
  });

  it('refuses approval from an account promoted or whose password was reset during the request’s life', async () => {
    await alice.ok('users:create', { name: 'aude', password: 'aude own password', roles: ['auditor'], mustChangePassword: false });
    const aude = t.client();
    await aude.ok('session:login', { name: 'aude', password: 'aude own password' });
    later(MIN);
    const q = await fileNewAdmin();
    // Promote an existing auditor to officer after filing: still refused.
    await alice.ok('users:setRoles', { name: 'aude', roles: ['auditor', 'officer'] });
    expect(await aude.call('approvals:approve', { id: q.id, reason: 'looks fine' })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringMatching(/roles changed after/) },
    });
    // Take over the real officer by resetting her password: refused as well.
    await alice.ok('users:resetPassword', { name: 'olga', password: 'alice knows this one' });
    const fakeOlga = t.client();
    await fakeOlga.ok('session:login', { name: 'olga', password: 'alice knows this one' });
    await fakeOlga.ok('session:changePassword', { oldPassword: 'alice knows this one', newPassword: 'alice picked this too' });
    expect(await fakeOlga.call('approvals:approve', { id: q.id, reason: 'looks fine' })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringMatching(/reset your password or TOTP after/) },
    });
    // An auditor never decides, whatever the policy.
    expect(code(await aude.call('approvals:reject', { id: q.id, reason: 'not like this' }))).toBe('FORBIDDEN');
  });

  it('rejects: nothing runs, and a rejected request cannot be approved or executed', async () => {
    const q = await fileNewAdmin();
    const r = await olga.ok('approvals:reject', { id: q.id, reason: 'we agreed on one admin per shift' });
    expect(r).toMatchObject({ status: 'rejected', decidedBy: 'olga' });
    expect(code(await olga.call('approvals:approve', { id: q.id, reason: 'changed my mind' }))).toBe('CONFLICT');
    expect(code(await alice.call('approvals:execute', { id: q.id }))).toBe('CONFLICT');
    expect((await alice.ok('users:list', {})).map((u) => u.name)).toEqual(['alice', 'olga']);
    expect(code(await olga.call('approvals:reject', { id: q.id, reason: 'x' }))).toBe('INVALID_INPUT'); // a reason is required
  });

  it('lets only the requester cancel, while pending or approved', async () => {
    const q = await fileNewAdmin();
    expect(code(await olga.call('approvals:cancel', { id: q.id }))).toBe('FORBIDDEN');
    await olga.ok('approvals:approve', { id: q.id, reason: 'fine' });
    expect((await alice.ok('approvals:cancel', { id: q.id })).status).toBe('cancelled');
    expect(code(await alice.call('approvals:execute', { id: q.id }))).toBe('CONFLICT');
    expect(code(await alice.call('approvals:cancel', { id: q.id }))).toBe('CONFLICT');
  });

  it('expires requests that are not approved, or not executed, in time', async () => {
    const q1 = await fileNewAdmin();
    const q2 = await fileNewAdmin({ ...NEW_ADMIN, name: 'carol' });
    await olga.ok('approvals:approve', { id: q2.id, reason: 'fine' });
    later(24 * 60 * MIN);
    await olga.ok('session:login', { name: 'olga', password: 'olga own password' });
    await alice.ok('session:login', { name: 'alice', password: ADMIN.password });
    expect((await olga.ok('approvals:get', { id: q1.id })).status).toBe('expired');
    expect(code(await olga.call('approvals:approve', { id: q1.id, reason: 'late' }))).toBe('CONFLICT');
    expect(await alice.call('approvals:execute', { id: q2.id })).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: expect.stringMatching(/expired/) } });
    expect((await olga.ok('approvals:list', { status: 'expired' })).requests.map((r) => r.id).sort()).toEqual([q1.id, q2.id].sort());
  });

  it('keeps an approval usable when execution is refused before it runs (step-up), and burns it when it ran and failed', async () => {
    const q = await fileNewAdmin();
    const q2 = await fileNewAdmin({ ...NEW_ADMIN, name: 'carol' });
    await olga.ok('approvals:approve', { id: q.id, reason: 'fine' });
    await olga.ok('approvals:approve', { id: q2.id, reason: 'fine' });
    later(6 * MIN);
    expect(code(await alice.call('approvals:execute', { id: q.id }))).toBe('STEP_UP_REQUIRED');
    expect((await alice.ok('approvals:get', { id: q.id })).status).toBe('approved');
    await alice.ok('session:stepUp', { password: ADMIN.password });
    await alice.ok('approvals:execute', { id: q.id });
    // carol's name gets taken another way meanwhile: the request was bound to "no account named
    // carol", so the approval is void; it fails without running and is never retried.
    await alice.ok('users:create', { name: 'carol', password: 'carol own password', roles: ['auditor'] });
    expect(await alice.call('approvals:execute', { id: q2.id })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', message: expect.stringMatching(/an account named "carol" was created since/) },
    });
    expect(await alice.ok('approvals:get', { id: q2.id })).toMatchObject({ status: 'failed', resultCode: 'APPROVAL_VOID' });
    expect((await alice.ok('users:list', {})).find((u) => u.name === 'carol')?.roles).toEqual(['auditor']);
    expect(code(await alice.call('approvals:execute', { id: q2.id }))).toBe('CONFLICT');
  });

  it('guards adding the admin role and re-enabling an admin, but not other role changes', async () => {
    expect(await alice.ok('users:setRoles', { name: 'olga', roles: ['officer', 'auditor'] })).toMatchObject({ roles: ['officer', 'auditor'] });
    expect(code(await alice.call('users:setRoles', { name: 'olga', roles: ['officer', 'admin'] }))).toBe('APPROVAL_REQUIRED');
    const q = await alice.ok('approvals:request', { channel: 'users:setRoles', input: { name: 'olga', roles: ['officer', 'admin'] }, reason: 'olga joins the admins' });
    expect(q.summary).toBe('Give olga the roles officer, admin (adds admin)');
    // olga did not file it, but it is about her: she may not approve her own promotion.
    expect(await olga.call('approvals:approve', { id: q.id, reason: 'yes please' })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringMatching(/about your own account/) },
    });
    // A second officer whose account and roles predate the request may decide it.
    later(MIN);
    expect(code(await alice.call('users:create', { name: 'otto', password: 'otto own password', roles: ['officer'], mustChangePassword: false }))).toBe('ok');
    const q2 = await alice.ok('approvals:request', { channel: 'users:setRoles', input: { name: 'olga', roles: ['admin'] }, reason: 'olga joins the admins' });
    const otto = t.client();
    await otto.ok('session:login', { name: 'otto', password: 'otto own password' });
    expect((await otto.ok('approvals:get', { id: q2.id })).canApprove).toBe(true);
    expect((await otto.ok('approvals:get', { id: q.id })).canApprove).toBe(false); // otto is newer than the first request
  });

  it('cancels the open requests of a requester who is disabled', async () => {
    // bob becomes an admin through the rule, files his own request, and is then disabled.
    const q = await fileNewAdmin();
    await olga.ok('approvals:approve', { id: q.id, reason: 'fine' });
    await alice.ok('approvals:execute', { id: q.id });
    const bob = t.client();
    await bob.ok('session:login', { name: 'bob', password: 'bob initial password' });
    await bob.ok('session:changePassword', { oldPassword: 'bob initial password', newPassword: 'bob chose his own' });
    later(MIN);
    const mine = await bob.ok('approvals:request', { channel: 'users:create', input: { ...NEW_ADMIN, name: 'dave' }, reason: 'dave too' });
    await alice.ok('users:disable', { name: 'bob' });
    expect((await alice.ok('approvals:get', { id: mine.id })).status).toBe('cancelled');
    // With two admins, alice may still not disable or remove herself.
    expect(code(await alice.call('users:enable', { name: 'bob', password: 'bob is back now' }))).toBe('APPROVAL_REQUIRED');
  });

  it('protects the last enabled admin and oneself when there are two admins', async () => {
    const q = await fileNewAdmin();
    await olga.ok('approvals:approve', { id: q.id, reason: 'fine' });
    await alice.ok('approvals:execute', { id: q.id });
    expect(await alice.call('users:disable', { name: 'alice' })).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: 'You cannot disable your own account.' } });
    expect(await alice.call('users:remove', { name: 'alice' })).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: 'You cannot remove your own account.' } });
    await alice.ok('users:disable', { name: 'bob' });
    expect(await alice.call('users:setRoles', { name: 'alice', roles: ['officer'] })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', message: expect.stringMatching(/last enabled administrator/) },
    });
  });
});

describe('the policy', () => {
  it('declares the operations, including those without a channel yet', async () => {
    const policy = await olga.ok('approvals:policy', {});
    expect(policy.map((p) => p.operation)).toEqual([
      'users:grantAdmin',
      'approvals:setPolicy',
      'provision:disableEgressLockdown',
      'models:grantPhi',
      'models:approvePhi',
      'keys:rotateRoot',
      'keys:reshareRoot',
      'audit:delete',
    ]);
    for (const p of policy) expect(p, p.operation).toMatchObject({ required: true, expiryMinutes: 1440 });
    expect(policy.find((p) => p.operation === 'users:grantAdmin')).toMatchObject({ implemented: true, channels: ['users:create', 'users:setRoles', 'users:enable'] });
    expect(policy.find((p) => p.operation === 'keys:rotateRoot')).toMatchObject({ implemented: true, channels: ['keys:beginRotateRoot'], approverRoles: ['officer'] });
    expect(policy.find((p) => p.operation === 'models:grantPhi')).toMatchObject({ implemented: true, channels: ['grants:add'], approverRoles: ['officer'] });
    expect(policy.find((p) => p.operation === 'models:approvePhi')).toMatchObject({ implemented: true, channels: ['models:approve'], approverRoles: ['officer'] });
    expect(policy.find((p) => p.operation === 'audit:delete')).toMatchObject({ implemented: false, channels: [], approverRoles: ['officer'] });
  });

  it('changing the policy itself needs a second person, and then applies', async () => {
    const change = { operation: 'users:grantAdmin', approverRoles: ['officer'], expiryMinutes: 60, required: false };
    expect(code(await olga.call('approvals:setPolicy', change))).toBe('APPROVAL_REQUIRED');
    const q = await olga.ok('approvals:request', { channel: 'approvals:setPolicy', input: change, reason: 'lab install: one admin at a time' });
    expect(q.summary).toBe('Set the two-person policy for users:grantAdmin: NOT required, approvers officer, expires after 60 min');
    expect(code(await olga.call('approvals:approve', { id: q.id, reason: 'approving myself' }))).toBe('FORBIDDEN');
    await alice.ok('approvals:approve', { id: q.id, reason: 'agreed in the change board' });
    await olga.ok('approvals:execute', { id: q.id });
    expect((await alice.ok('approvals:policy', {})).find((p) => p.operation === 'users:grantAdmin')).toMatchObject({ required: false, updatedBy: 'olga' });
    // Now a second admin is a direct call.
    expect(await alice.ok('users:create', NEW_ADMIN)).toMatchObject({ roles: ['admin'] });
    // The row guarding the policy cannot be switched off.
    const off = { operation: 'approvals:setPolicy', approverRoles: ['officer'], expiryMinutes: 60, required: false };
    const q2 = await olga.ok('approvals:request', { channel: 'approvals:setPolicy', input: off, reason: 'try' });
    await alice.ok('approvals:approve', { id: q2.id, reason: 'testing the guard' });
    expect(await olga.call('approvals:execute', { id: q2.id })).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: expect.stringMatching(/cannot be turned off/) } });
  });

  it('refuses to file what needs no second person or could not run', async () => {
    expect(code(await alice.call('approvals:request', { channel: 'users:create', input: { ...NEW_ADMIN, roles: ['auditor'] }, reason: 'no need' }))).toBe('CONFLICT');
    expect(code(await alice.call('approvals:request', { channel: 'hosts:remove', input: { name: 'gpu1' }, reason: 'no rule' }))).toBe('CONFLICT');
    expect(code(await alice.call('approvals:request', { channel: 'users:create', input: { ...NEW_ADMIN, name: 'olga' }, reason: 'taken' }))).toBe('CONFLICT');
    expect(code(await alice.call('approvals:request', { channel: 'users:create', input: { ...NEW_ADMIN, password: 'password1234' }, reason: 'weak' }))).toBe('WEAK_PASSWORD');
    expect(code(await olga.call('approvals:request', { channel: 'users:create', input: NEW_ADMIN, reason: 'not her channel' }))).toBe('FORBIDDEN');
    expect(code(await alice.call('approvals:request', { channel: 'users:create', input: { name: 1 }, reason: 'bad input' }))).toBe('INVALID_INPUT');
  });
});

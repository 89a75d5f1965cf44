/**
 * Issue 9, points 3 and 4: an account is an identity (an id never handed out twice and a random
 * uid), not a name or a reusable row number. Attacked from the other side: a removed account's
 * live session held by one process while another process (the real `airlock` CLI) removes it and
 * creates the next account; an approved request whose target is removed and re-created, reset,
 * or whose approver no longer qualifies. Real SQLite files, the real core, an injected clock.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../electron/core/app';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

const root = path.resolve(__dirname, '../..');
let now = Date.UTC(2026, 0, 1, 9);
const clock = () => new Date(now);
const later = (ms: number) => (now += ms);
const MIN = 60_000;
let t: TestCore;
let alice: TestClient;
const tmp: string[] = [];

const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code);

beforeAll(() => {
  // The second process is the real bundled command.
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
});
beforeEach(async () => {
  now = Date.UTC(2026, 0, 1, 9);
  t = await testCore({ clock, stepUpMinutes: 60 });
  alice = t.client();
  await alice.ok('session:setup', ADMIN);
});
afterEach(async () => {
  await t.close();
  tmp.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

/** Create a user who already chose their own password, and sign them in. */
async function user(name: string, roles: Array<'admin' | 'officer' | 'auditor'>, password = `${name} own password`) {
  await alice.ok('users:create', { name, password, roles, mustChangePassword: false });
  const c = t.client();
  await c.ok('session:login', { name, password });
  return c;
}

const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AIRLOCK_')));

/** The real `airlock` CLI, a second process on the same data directory. */
function airlock(args: string[], newPassword?: string) {
  let extra: string[] = [];
  if (newPassword !== undefined) {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ids-pw-'));
    tmp.push(d);
    fs.writeFileSync(path.join(d, 'pw'), `${newPassword}\n`, { mode: 0o600 });
    extra = ['--new-password-file', path.join(d, 'pw')];
  }
  const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, ...extra, '--data', t.dir], {
    encoding: 'utf8',
    env: { ...cleanEnv, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Read the database file as it is on disk (read-only, a separate connection). */
function onDisk<T>(sql: string, ...args: unknown[]): T[] {
  const db = new Database(path.join(t.dir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}
const idOf = (name: string) => onDisk<{ id: number }>('SELECT id FROM users WHERE name = ?', name)[0]?.id;

describe('account ids and sessions', () => {
  it('ends a removed account’s live session instead of handing it to the next account (the CLI removes and creates in another process)', async () => {
    // mallory holds the highest id and a live session in this process (as `airlock serve` would).
    const mallory = await user('mallory', ['auditor']);
    const malloryId = idOf('mallory')!;
    expect(malloryId).toBe(Math.max(...onDisk<{ id: number }>('SELECT id FROM users').map((r) => r.id)));
    expect(code(await mallory.call('approvals:list', {}))).toBe('ok');

    const removed = airlock(['users', 'remove', 'mallory']);
    expect(removed.code, removed.stderr).toBe(0);
    const created = airlock(['users', 'create', 'eve', '--role', 'officer', '--no-password-change'], 'eve picked this password');
    expect(created.code, created.stderr).toBe(0);

    // The old session is dead, not eve's (before the fix it was eve, an officer, here)…
    expect((await mallory.ok('session:status', {})).user).toBeNull();
    expect(code(await mallory.call('approvals:list', {}))).toBe('UNAUTHENTICATED');
    expect(code(await mallory.call('session:stepUp', { password: 'eve picked this password' }))).toBe('UNAUTHENTICATED');
    // …and eve did not get the removed account's id.
    expect(idOf('eve')).toBeGreaterThan(malloryId);
    // eve herself signs in normally.
    const eve = t.client();
    await eve.ok('session:login', { name: 'eve', password: 'eve picked this password' });
    expect((await eve.ok('session:status', {})).user).toMatchObject({ name: 'eve', roles: ['officer'] });
  });

  it('ends a session whose account was replaced under the same id even when the epoch matches (identity compared on every call)', async () => {
    const bob = await user('bob', ['auditor']);
    const bobRow = onDisk<{ id: number; uid: string }>('SELECT id, uid FROM users WHERE name = ?', 'bob')[0]!;
    expect(bobRow.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Another process forces a new account into bob's id with bob's epoch (a raw write, as an old
    // build or a restore would): only the uid tells them apart, and it is checked.
    const db = new Database(path.join(t.dir, DB_FILE));
    try {
      db.pragma('foreign_keys = ON');
      db.prepare('DELETE FROM users WHERE id = ?').run(bobRow.id);
      db.prepare(
        "INSERT INTO users (id, name, roles, password_hash, created_at) VALUES (?, 'bob', '[\"officer\"]', 'x', '2026-01-01T09:00:00.000Z')",
      ).run(bobRow.id);
    } finally {
      db.close();
    }
    expect(code(await bob.call('approvals:list', {}))).toBe('UNAUTHENTICATED');
  });

  it('never hands out an id twice, also after a restart', async () => {
    await alice.ok('users:create', { name: 'bob', password: 'bob own password', roles: ['auditor'], mustChangePassword: false });
    const bobId = idOf('bob')!;
    await alice.ok('users:remove', { name: 'bob' });
    await alice.ok('users:create', { name: 'carol', password: 'carol own password', roles: ['auditor'], mustChangePassword: false });
    const carolId = idOf('carol')!;
    expect(carolId).toBeGreaterThan(bobId);
    await alice.ok('users:remove', { name: 'carol' });

    const dir = t.dir;
    tmp.push(dir);
    await t.core.close();
    t = await testCore({ clock, dataDir: dir, stepUpMinutes: 60 });
    const a = t.client();
    await a.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    await a.ok('users:create', { name: 'dave', password: 'dave own password', roles: ['auditor'], mustChangePassword: false });
    expect(idOf('dave')).toBeGreaterThan(carolId);
    expect(onDisk<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'users'")[0]?.seq).toBe(idOf('dave'));
  });

  it('records the acting account’s identity on every audit event: a later account with the same name is told apart', async () => {
    const bob1 = await user('bob', ['auditor']);
    await bob1.ok('hosts:list', {});
    const uid1 = onDisk<{ uid: string }>('SELECT uid FROM users WHERE name = ?', 'bob')[0]!.uid;
    await alice.ok('users:remove', { name: 'bob' });
    const bob2 = await user('bob', ['auditor'], 'bob second password');
    await bob2.ok('hosts:list', {});
    const uid2 = onDisk<{ uid: string }>('SELECT uid FROM users WHERE name = ?', 'bob')[0]!.uid;
    expect(uid2).not.toBe(uid1);

    const { events } = await alice.ok('audit:list', { actor: 'bob', channel: 'hosts:list', limit: 50 });
    expect(events.map((e) => e.principal)).toEqual(expect.arrayContaining([uid1, uid2]));
    for (const e of events) expect([uid1, uid2]).toContain(e.principal);
    const aliceUid = onDisk<{ uid: string }>('SELECT uid FROM users WHERE name = ?', 'alice')[0]!.uid;
    const all = (await alice.ok('audit:list', { actor: 'alice', limit: 50 })).events;
    expect(all.length).toBeGreaterThan(0);
    // (A sign-in's request event is written before anyone is signed in: no principal yet.)
    const signedIn = all.filter((e) => !(e.phase === 'request' && (e.channel === 'session:setup' || e.channel === 'session:login')));
    for (const e of signedIn) expect(e.principal, `${e.channel} ${e.phase}`).toBe(aliceUid);
    // Refusals before sign-in name nobody.
    expect(code(await t.client().call('hosts:list', {}))).toBe('UNAUTHENTICATED');
    const refused = (await alice.ok('audit:list', { channel: 'hosts:list', limit: 50 })).events.filter((e) => e.outcome === 'refused');
    expect(refused.at(-1)?.principal ?? refused[0]?.principal).toBeNull();
    expect((await alice.ok('audit:verify', {})).ok).toBe(true);
  });

  it('keeps sign-in lockout per user name and source (it defends the name against guessing) and lets it grant nothing', async () => {
    await alice.ok('users:create', { name: 'bob', password: 'bob own password', roles: ['auditor'], mustChangePassword: false });
    // The guesses come from the browser shell (their source is locked too, and stays locked).
    for (let i = 0; i < 5; i++) await t.client('browser').call('session:login', { name: 'bob', password: `guess ${i} wrong` });
    expect(code(await t.client().call('session:login', { name: 'bob', password: 'bob own password' }))).toBe('LOCKED_OUT');
    // Removing the account lifts the name's lock with it; the next "bob" is a different account
    // that inherits neither the lock nor anything else of the first.
    await alice.ok('users:remove', { name: 'bob' });
    await alice.ok('users:create', { name: 'bob', password: 'bob second password', roles: ['auditor'], mustChangePassword: false });
    expect(code(await t.client().call('session:login', { name: 'bob', password: 'bob own password' }))).toBe('BAD_CREDENTIALS');
    await t.client().ok('session:login', { name: 'bob', password: 'bob second password' });
    expect(code(await t.client('browser').call('session:login', { name: 'bob', password: 'bob second password' }))).toBe('LOCKED_OUT');
  });
});

describe('approvals bound to the account (and host) they act on', () => {
  let olga: TestClient;
  beforeEach(async () => {
    olga = await user('olga', ['officer']);
    await alice.ok('users:create', { name: 'off5', password: 'off5 own password', roles: ['officer'], mustChangePassword: false });
    later(MIN);
  });

  async function approvedPromotion(approver: TestClient = olga) {
    const input = { name: 'off5', roles: ['officer', 'admin'] };
    expect(code(await alice.call('users:setRoles', input))).toBe('APPROVAL_REQUIRED');
    const q = await alice.ok('approvals:request', { channel: 'users:setRoles', input, reason: 'off5 joins the admins' });
    await approver.ok('approvals:approve', { id: q.id, reason: 'confirmed in person' });
    return q.id;
  }
  const rolesOf = async (name: string) => (await alice.ok('users:list', {})).find((u) => u.name === name)?.roles;

  it('refuses to make a puppet admin: off5 removed and re-created by the requester after the approval', async () => {
    const id = await approvedPromotion();
    await alice.ok('users:remove', { name: 'off5' });
    // The requester re-creates "off5" with a password of her choosing (no approval needed for an officer).
    await alice.ok('users:create', { name: 'off5', password: 'alice knows this one', roles: ['officer'], mustChangePassword: false });
    const r = await alice.call('approvals:execute', { id });
    expect(r).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: expect.stringMatching(/"off5" is no longer the same account/) } });
    expect(await rolesOf('off5')).toEqual(['officer']);
    expect(await alice.ok('approvals:get', { id })).toMatchObject({ status: 'failed', resultCode: 'APPROVAL_VOID', canExecute: false });
    expect(code(await alice.call('approvals:execute', { id }))).toBe('CONFLICT');
    const puppet = t.client();
    await puppet.ok('session:login', { name: 'off5', password: 'alice knows this one' });
    expect(code(await puppet.call('users:list', {}))).toBe('FORBIDDEN');
  });

  it('refuses to approve a request whose account was replaced after it was filed', async () => {
    const input = { name: 'off5', roles: ['officer', 'admin'] };
    const q = await alice.ok('approvals:request', { channel: 'users:setRoles', input, reason: 'off5 joins the admins' });
    await alice.ok('users:remove', { name: 'off5' });
    await alice.ok('users:create', { name: 'off5', password: 'alice knows this one', roles: ['officer'], mustChangePassword: false });
    expect(await olga.ok('approvals:get', { id: q.id })).toMatchObject({ canApprove: false, cannotApproveReason: expect.stringMatching(/no longer the same account/) });
    expect(code(await olga.call('approvals:approve', { id: q.id, reason: 'looks fine' }))).toBe('FORBIDDEN');
  });

  it('refuses when the target account’s credentials were reset after the approval (the requester would know the password)', async () => {
    const id = await approvedPromotion();
    await alice.ok('users:resetPassword', { name: 'off5', password: 'alice set this one' });
    const r = await alice.call('approvals:execute', { id });
    expect(r).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: expect.stringMatching(/set "off5"'s password or TOTP since/) } });
    expect(await rolesOf('off5')).toEqual(['officer']);
  });

  it('re-judges the approval under the current policy: an approver demoted, disabled, or no longer named by the policy does not count', async () => {
    // Demoted after approving.
    const demoted = await approvedPromotion();
    await alice.ok('users:setRoles', { name: 'olga', roles: ['auditor'] });
    expect(await alice.call('approvals:execute', { id: demoted })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', message: expect.stringMatching(/approver olga no longer holds a role the policy requires/) },
    });
    expect(await rolesOf('off5')).toEqual(['officer']);
    expect(await alice.ok('approvals:get', { id: demoted })).toMatchObject({ status: 'failed', resultCode: 'APPROVAL_VOID' });

    // Disabled after approving.
    await alice.ok('users:create', { name: 'oscar', password: 'oscar own password', roles: ['officer'], mustChangePassword: false });
    const oscar = t.client();
    await oscar.ok('session:login', { name: 'oscar', password: 'oscar own password' });
    later(MIN);
    const disabled = await approvedPromotion(oscar);
    await alice.ok('users:disable', { name: 'oscar' });
    expect(await alice.call('approvals:execute', { id: disabled })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', message: expect.stringMatching(/approver oscar is disabled/) },
    });

    // Approved by an admin; then the policy is changed (itself through two people) to officers only.
    await alice.ok('users:setRoles', { name: 'olga', roles: ['officer'] });
    const bobAdmin = { name: 'bob', password: 'bob own password', roles: ['admin'], mustChangePassword: false };
    await alice.ok('users:create', { name: 'olive', password: 'olive own password', roles: ['officer'], mustChangePassword: false });
    const olive = t.client();
    await olive.ok('session:login', { name: 'olive', password: 'olive own password' });
    later(MIN);
    const qb = await alice.ok('approvals:request', { channel: 'users:create', input: bobAdmin, reason: 'second admin' });
    await olive.ok('approvals:approve', { id: qb.id, reason: 'looks right' });
    await alice.ok('approvals:execute', { id: qb.id });
    const bob = t.client();
    await bob.ok('session:login', { name: 'bob', password: 'bob own password' });
    later(MIN);
    const byAdmin = await approvedPromotion(bob);
    const policy = { operation: 'users:grantAdmin', approverRoles: ['officer'], expiryMinutes: 1440, required: true };
    const qp = await alice.ok('approvals:request', { channel: 'approvals:setPolicy', input: policy, reason: 'officers only' });
    await olive.ok('approvals:approve', { id: qp.id, reason: 'agreed' });
    await alice.ok('approvals:execute', { id: qp.id });
    expect(await alice.call('approvals:execute', { id: byAdmin })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', message: expect.stringMatching(/approver bob no longer holds a role the policy requires for users:grantAdmin \(officer\)/) },
    });
    expect(await rolesOf('off5')).toEqual(['officer']);
    // The audit trail shows the refusals.
    const { events } = await alice.ok('audit:list', { channel: 'approvals:execute', limit: 50 });
    expect(events.filter((e) => e.phase === 'outcome' && e.errorCode === 'CONFLICT').length).toBeGreaterThanOrEqual(3);
  });

  it('still executes an approval whose account, approver and policy are unchanged', async () => {
    const id = await approvedPromotion();
    const done = await alice.ok('approvals:execute', { id });
    expect(done.value).toMatchObject({ name: 'off5', roles: ['officer', 'admin'] });
  });

  it('binds a policy change to the policy row: an older request cannot silently revert a newer change', async () => {
    const older = await alice.ok('approvals:request', {
      channel: 'approvals:setPolicy',
      input: { operation: 'keys:rotateRoot', approverRoles: ['officer'], expiryMinutes: 60, required: true },
      reason: 'one hour',
    });
    const newer = await alice.ok('approvals:request', {
      channel: 'approvals:setPolicy',
      input: { operation: 'keys:rotateRoot', approverRoles: ['officer'], expiryMinutes: 120, required: true },
      reason: 'two hours',
    });
    await olga.ok('approvals:approve', { id: older.id, reason: 'looks right' });
    await olga.ok('approvals:approve', { id: newer.id, reason: 'looks right' });
    await alice.ok('approvals:execute', { id: newer.id });
    expect(await alice.call('approvals:execute', { id: older.id })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', message: expect.stringMatching(/policy for keys:rotateRoot was changed since/) },
    });
    expect((await alice.ok('approvals:policy', {})).find((p) => p.operation === 'keys:rotateRoot')?.expiryMinutes).toBe(120);
  });

  it('binds a host operation to the host: removed and re-added under the same name with another key, the approval is void', async () => {
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ids-keys-'));
    tmp.push(keyDir);
    const pub = (n: string) => {
      expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, n)]).status).toBe(0);
      return fs.readFileSync(path.join(keyDir, `${n}.pub`), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    };
    const first = await alice.ok('hosts:importKnownHosts', { text: `10.77.0.5 ${pub('k1')}\n` });
    const name = first.added[0]!.name;
    const input = { host: name };
    const q = await alice.ok('approvals:request', { channel: 'provision:disableEgressLockdown', input, reason: 'debug egress' });
    await olga.ok('approvals:approve', { id: q.id, reason: 'looks right' });
    await alice.ok('hosts:remove', { name });
    await alice.ok('hosts:importKnownHosts', { text: `10.77.0.5 ${pub('k2')}\n` });
    await alice.ok('session:stepUp', { password: ADMIN.password });
    expect(await alice.call('approvals:execute', { id: q.id })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', message: expect.stringMatching(new RegExp(`host "${name}" is no longer the same host`)) },
    });
    expect(await alice.ok('approvals:get', { id: q.id })).toMatchObject({ status: 'failed', resultCode: 'APPROVAL_VOID' });
  });
});

/**
 * Identity, end to end through the real core on a temp SQLite file: users and their vault slots,
 * the password policy, lockout with back-off, the idle lock and step-up — with an injected clock.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../electron/core/app';
import type { CoreConfig } from '../../electron/core/types';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

let now = Date.UTC(2026, 0, 1, 9);
let t: TestCore;
const clock = () => new Date(now);
const later = (ms: number) => (now += ms);
const MIN = 60_000;

async function core(extra: Partial<CoreConfig> = {}) {
  return testCore({ clock, ...extra });
}
beforeEach(async () => {
  now = Date.UTC(2026, 0, 1, 9);
  t = await core();
});
afterEach(async () => t.close());

async function admin(c: TestCore = t): Promise<TestClient> {
  const a = c.client();
  const s = await a.ok('session:status', {});
  if (s.setupRequired) await a.ok('session:setup', ADMIN);
  else await a.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
  return a;
}

/** Create a user who already chose their own password, and sign them in. */
async function user(a: TestClient, name: string, roles: Array<'admin' | 'officer' | 'auditor'>, password = `${name} own password`) {
  await a.ok('users:create', { name, password, roles, mustChangePassword: false });
  const c = t.client();
  await c.ok('session:login', { name, password });
  return c;
}

const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code);

describe('users and their vault slots', () => {
  it('creates a user who must choose their own password, which re-wraps their slot', async () => {
    const a = await admin();
    const created = await a.ok('users:create', { name: 'olga', password: 'temporary password 1', roles: ['officer', 'auditor'] });
    expect(created).toMatchObject({ roles: ['officer', 'auditor'], mustChangePassword: true, createdBy: 'alice', disabled: false });
    const olga = t.client();
    await olga.ok('session:login', { name: 'olga', password: 'temporary password 1' });
    expect((await olga.ok('session:status', {})).user).toMatchObject({ restriction: 'password-change' });
    expect(code(await olga.call('hosts:list', {}))).toBe('PASSWORD_CHANGE_REQUIRED');
    expect(code(await olga.call('session:changePassword', { oldPassword: 'wrong', newPassword: 'olga chose this' }))).toBe('BAD_CREDENTIALS');
    expect(code(await olga.call('session:changePassword', { oldPassword: 'temporary password 1', newPassword: 'temporary password 1' }))).toBe('WEAK_PASSWORD');
    await olga.ok('session:changePassword', { oldPassword: 'temporary password 1', newPassword: 'olga chose this' });
    expect((await olga.ok('session:status', {})).user?.restriction).toBeNull();
    expect(await olga.ok('hosts:list', {})).toEqual([]);
    // The old password opens nothing any more; the new one opens the vault (the SSH key is readable).
    expect(code(await t.client().call('session:login', { name: 'olga', password: 'temporary password 1' }))).toBe('BAD_CREDENTIALS');
    const again = t.client();
    await again.ok('session:login', { name: 'olga', password: 'olga chose this' });
    expect((await again.ok('identity:show', {})).publicKey).toMatch(/^ssh-ed25519 /);
  });

  it('changing one’s own password ends one’s other sessions but keeps this one', async () => {
    const a = await admin();
    const s1 = await user(a, 'bob', ['auditor']);
    const s2 = t.client();
    await s2.ok('session:login', { name: 'bob', password: 'bob own password' });
    await s1.ok('session:changePassword', { oldPassword: 'bob own password', newPassword: 'bob newer password' });
    expect(await s1.ok('hosts:list', {})).toEqual([]);
    expect(code(await s2.call('hosts:list', {}))).toBe('UNAUTHENTICATED');
  });

  it('resets a password: a new slot from the admin’s vault key, the user’s sessions end, they must change it', async () => {
    const a = await admin();
    const bob = await user(a, 'bob', ['officer']);
    const v = await a.ok('users:resetPassword', { name: 'bob', password: 'reset by alice 1' });
    expect(v).toMatchObject({ mustChangePassword: true });
    expect(code(await bob.call('hosts:list', {}))).toBe('UNAUTHENTICATED');
    expect(code(await t.client().call('session:login', { name: 'bob', password: 'bob own password' }))).toBe('BAD_CREDENTIALS');
    const b2 = t.client();
    await b2.ok('session:login', { name: 'bob', password: 'reset by alice 1' });
    await b2.ok('session:changePassword', { oldPassword: 'reset by alice 1', newPassword: 'bob picks again' });
    expect((await b2.ok('identity:show', {})).publicKey).toMatch(/^ssh-ed25519 /);
    expect(code(await a.call('users:resetPassword', { name: 'alice', password: 'resetting myself' }))).toBe('CONFLICT');
  });

  it('disables: sessions end, the slot is destroyed, sign-in refused; enabling needs a new password', async () => {
    const a = await admin();
    const bob = await user(a, 'bob', ['auditor']);
    expect(await a.ok('users:disable', { name: 'bob' })).toMatchObject({ disabled: true });
    expect(code(await bob.call('hosts:list', {}))).toBe('UNAUTHENTICATED');
    expect(await t.client().call('session:login', { name: 'bob', password: 'bob own password' })).toEqual({
      ok: false,
      error: { code: 'BAD_CREDENTIALS', message: 'Wrong user name or password.' },
    });
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(path.join(t.dir, DB_FILE), { readonly: true });
    const bobId = (raw.prepare("SELECT id FROM users WHERE name = 'bob'").get() as { id: number }).id;
    expect(raw.prepare('SELECT count(*) AS n FROM vault_slots WHERE user_id = ?').get(bobId)).toEqual({ n: 0 });
    raw.close();
    expect(await a.ok('users:enable', { name: 'bob', password: 'bob is back again' })).toMatchObject({ disabled: false, mustChangePassword: true });
    const b = t.client();
    await b.ok('session:login', { name: 'bob', password: 'bob is back again' });
    await b.ok('session:changePassword', { oldPassword: 'bob is back again', newPassword: 'bob back for good' });
    expect((await b.ok('identity:show', {})).publicKey).toMatch(/^ssh-ed25519 /);
  });

  it('removes a user: their slot is destroyed, the remaining users still unlock the vault', async () => {
    const a = await admin();
    await user(a, 'bob', ['officer']);
    await user(a, 'carol', ['auditor']);
    await a.ok('users:remove', { name: 'bob' });
    expect((await a.ok('users:list', {})).map((u) => u.name)).toEqual(['alice', 'carol']);
    expect(code(await t.client().call('session:login', { name: 'bob', password: 'bob own password' }))).toBe('BAD_CREDENTIALS');
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(path.join(t.dir, DB_FILE), { readonly: true });
    expect((raw.prepare('SELECT count(*) AS n FROM vault_slots').get() as { n: number }).n).toBe(2);
    raw.close();
    // Every remaining user unlocks the same vault: the sealed SSH key opens for each.
    for (const [name, password] of [['alice', ADMIN.password], ['carol', 'carol own password']]) {
      const c = t.client();
      await c.ok('session:login', { name: name!, password: password! });
      expect((await c.ok('identity:show', {})).publicKey, name).toMatch(/^ssh-ed25519 /);
    }
  });

  it('changes roles (several per user), applied to live sessions at once', async () => {
    const a = await admin();
    const bob = await user(a, 'bob', ['auditor']);
    expect(code(await bob.call('users:list', {}))).toBe('FORBIDDEN');
    await a.ok('users:setRoles', { name: 'bob', roles: ['auditor', 'officer'] });
    expect((await bob.ok('session:status', {})).user?.roles).toEqual(['auditor', 'officer']);
    await a.ok('users:setRoles', { name: 'bob', roles: ['auditor'] });
    expect((await bob.ok('session:status', {})).user?.roles).toEqual(['auditor']);
  });

  it('never leaves the installation without an enabled administrator', async () => {
    const a = await admin();
    for (const [channel, input] of [
      ['users:disable', { name: 'alice' }],
      ['users:remove', { name: 'alice' }],
      ['users:setRoles', { name: 'alice', roles: ['officer'] }],
    ] as const) {
      const r = await a.call(channel, input);
      expect(r, channel).toMatchObject({ ok: false, error: { code: 'CONFLICT', message: expect.stringMatching(/last enabled administrator/) } });
    }
    expect((await a.ok('users:list', {}))[0]).toMatchObject({ name: 'alice', roles: ['admin'], disabled: false });
  });

  it('applies a change made by another process (the CLI while serve runs) to live sessions', async () => {
    const a = await admin();
    const bob = await user(a, 'bob', ['auditor']);
    const other = await testCore({ clock, dataDir: t.dir });
    try {
      const a2 = await admin(other);
      await a2.ok('users:disable', { name: 'bob' });
    } finally {
      await other.close();
    }
    expect(code(await bob.call('hosts:list', {}))).toBe('UNAUTHENTICATED');
  });
});

describe('the password policy', () => {
  it('is enforced with WEAK_PASSWORD and a message naming the rule, everywhere a password is set', async () => {
    const fresh = await core();
    try {
      const c = fresh.client();
      expect(await c.call('session:setup', { admin: 'root_admin', password: 'short' })).toEqual({
        ok: false,
        error: { code: 'WEAK_PASSWORD', message: 'Use at least 12 characters (this one has 5).' },
      });
      expect(await c.call('session:setup', { admin: 'root_admin', password: 'Root_Admin' + '12' })).toMatchObject({ ok: false, error: { code: 'WEAK_PASSWORD' } });
      expect(await c.call('session:setup', { admin: 'root_admin', password: 'password1234' })).toMatchObject({
        ok: false,
        error: { code: 'WEAK_PASSWORD', message: expect.stringMatching(/most commonly used/) },
      });
      expect((await c.ok('session:status', {})).setupRequired).toBe(true);
      await c.ok('session:setup', { admin: 'root_admin', password: 'a sound passphrase' });
      expect(code(await c.call('users:create', { name: 'bob', password: 'bob', roles: ['auditor'] }))).toBe('WEAK_PASSWORD');
      expect(code(await c.call('users:create', { name: 'bob', password: 'qwerty123456', roles: ['auditor'] }))).toBe('WEAK_PASSWORD');
      expect(code(await c.call('users:create', { name: 'bob', password: 'x'.repeat(257), roles: ['auditor'] }))).toBe('WEAK_PASSWORD');
      expect(code(await c.call('session:changePassword', { oldPassword: 'a sound passphrase', newPassword: 'iloveyou1234' }))).toBe('WEAK_PASSWORD');
    } finally {
      await fresh.close();
    }
  });
});

describe('lockout', () => {
  const wrong = (c: TestClient, name = 'alice') => c.call('session:login', { name, password: 'not the password' });

  it('locks a user name after 5 failures, with back-off, audited, and refuses even the right password meanwhile', async () => {
    await admin();
    const c = t.client();
    for (let i = 0; i < 4; i++) expect(code(await wrong(c))).toBe('BAD_CREDENTIALS');
    const fifth = await wrong(c);
    expect(fifth).toMatchObject({ ok: false, error: { code: 'LOCKED_OUT' } });
    if (!fifth.ok) expect(fifth.error.message).toMatch(/Too many failed sign-ins for "alice": try again in 30 s, after 2026-01-01T09:00:30.000Z/);
    expect(code(await c.call('session:login', { name: 'alice', password: ADMIN.password }))).toBe('LOCKED_OUT');
    // From another source too: the lock is on the user name.
    const elsewhere = t.client('browser');
    expect(code(await elsewhere.call('session:login', { name: 'alice', password: ADMIN.password }))).toBe('LOCKED_OUT');
    later(30_000);
    expect(code(await wrong(c))).toBe('LOCKED_OUT'); // the sixth failure: 60 s
    later(59_000);
    expect(code(await c.call('session:login', { name: 'alice', password: ADMIN.password }))).toBe('LOCKED_OUT');
    later(1_000);
    await c.ok('session:login', { name: 'alice', password: ADMIN.password });
    // Failures and lockouts are on the audit trail.
    const { events } = await c.ok('audit:list', { channel: 'session:login', limit: 100 });
    const outcomes = events.filter((e) => e.phase === 'outcome').map((e) => e.errorCode);
    expect(outcomes.filter((x) => x === 'BAD_CREDENTIALS')).toHaveLength(4);
    expect(outcomes.filter((x) => x === 'LOCKED_OUT').length).toBeGreaterThanOrEqual(4);
    const req = events.find((e) => e.phase === 'request')!;
    expect(req.target).toBe('alice');
    // Redacted (or an HMAC once the audit key is unsealed): never the password itself.
    expect((req.params as { password?: unknown }).password).toBeDefined();
    expect(JSON.stringify(events)).not.toContain('not the password');
    expect(JSON.stringify(events)).not.toContain(ADMIN.password);
  });

  it('locks a source that tries many user names, and treats unknown names like known ones', async () => {
    const a = await admin();
    await user(a, 'bob', ['auditor']);
    const attacker = t.client('browser');
    for (const name of ['nobody1', 'nobody2', 'nobody3', 'nobody4']) expect(code(await wrong(attacker, name))).toBe('BAD_CREDENTIALS');
    const r = await wrong(attacker, 'nobody5');
    expect(r).toMatchObject({ ok: false, error: { code: 'LOCKED_OUT', message: expect.stringMatching(/from this client \(browser:test\)/) } });
    expect(code(await attacker.call('session:login', { name: 'bob', password: 'bob own password' }))).toBe('LOCKED_OUT');
    // Another source signs bob in.
    await t.client('electron').ok('session:login', { name: 'bob', password: 'bob own password' });
  });

  it('lets an admin clear a user’s lockout, and shows it in the users list', async () => {
    const a = await admin();
    await user(a, 'bob', ['auditor']);
    for (let i = 0; i < 5; i++) await wrong(t.client(i % 2 ? 'browser' : 'electron'), 'bob');
    expect((await a.ok('users:list', {})).find((u) => u.name === 'bob')?.lockedUntil).toBe('2026-01-01T09:00:30.000Z');
    expect((await a.ok('users:unlock', { name: 'bob' })).lockedUntil).toBeNull();
    await t.client('cli').ok('session:login', { name: 'bob', password: 'bob own password' });
  });

  it('counts parallel guesses one by one (no burst past the threshold)', async () => {
    await admin();
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => wrong(t.client(i % 3 ? 'browser' : 'cli'))));
    const codes = results.map(code);
    expect(codes.filter((c) => c === 'BAD_CREDENTIALS')).toHaveLength(4);
    expect(codes.filter((c) => c === 'LOCKED_OUT')).toHaveLength(8);
  });

  it('throttles step-up and password changes too', async () => {
    const a = await admin();
    for (let i = 0; i < 4; i++) expect(code(await a.call('session:stepUp', { password: 'not it at all' }))).toBe('BAD_CREDENTIALS');
    expect(code(await a.call('session:changePassword', { oldPassword: 'not it at all', newPassword: 'a new good password' }))).toBe('LOCKED_OUT');
    expect(code(await a.call('session:stepUp', { password: ADMIN.password }))).toBe('LOCKED_OUT');
  });
});

describe('idle lock and step-up', () => {
  it('takes the idle time from settings:set, shows it in session:status, and status is not activity', async () => {
    const a = await admin();
    expect(await a.ok('settings:get', {})).toMatchObject({ sessionIdleMinutes: 30, stepUpMinutes: 5, lockout: { threshold: 5, baseSeconds: 30, maxSeconds: 900 } });
    await a.ok('settings:set', { sessionIdleMinutes: 10 });
    const s = await a.ok('session:status', {});
    expect(s).toMatchObject({ idleMinutes: 10, stepUpMinutes: 5, now: '2026-01-01T09:00:00.000Z' });
    expect(s.user).toMatchObject({ lockAt: '2026-01-01T09:10:00.000Z', stepUpUntil: '2026-01-01T09:05:00.000Z' });
    later(9 * MIN);
    await a.ok('session:status', {});
    await a.ok('approvals:list', {}); // a badge poll is passive too
    later(2 * MIN);
    expect((await a.ok('session:status', {})).user).toBeNull();
    expect(code(await a.call('hosts:list', {}))).toBe('UNAUTHENTICATED');
  });

  it('keeps a session alive while it is used', async () => {
    const a = await admin();
    for (let i = 0; i < 5; i++) {
      later(20 * MIN);
      await a.ok('hosts:list', {});
    }
    expect((await a.ok('session:status', {})).user?.name).toBe('alice');
  });

  it('asks for step-up after the window, and a step-up lasts the configured minutes', async () => {
    const a = await admin();
    await a.ok('users:create', { name: 'bob', password: 'bob initial pass', roles: ['auditor'] });
    later(5 * MIN + 1);
    expect((await a.ok('session:status', {})).user?.stepUpUntil).toBeNull();
    const refused = await a.call('users:disable', { name: 'bob' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'STEP_UP_REQUIRED' } });
    expect(code(await a.call('users:disable', { name: 'nobody!' }))).toBe('INVALID_INPUT'); // input first
    expect((await a.ok('users:list', {})).find((u) => u.name === 'bob')?.disabled).toBe(false);
    const up = await a.ok('session:stepUp', { password: ADMIN.password });
    expect(up.stepUpUntil).toBe(new Date(now + 5 * MIN).toISOString());
    await a.ok('settings:set', { stepUpMinutes: 2 });
    later(2 * MIN + 1);
    expect(code(await a.call('users:disable', { name: 'bob' }))).toBe('STEP_UP_REQUIRED');
    await a.ok('session:stepUp', { password: ADMIN.password });
    expect(await a.ok('users:disable', { name: 'bob' })).toMatchObject({ disabled: true });
    const { events } = await a.ok('audit:list', { limit: 200 });
    expect(events.filter((e) => e.channel === 'users:disable' && e.errorCode === 'STEP_UP_REQUIRED').length).toBe(2);
    expect(JSON.stringify(events)).not.toContain(ADMIN.password);
  });
});

describe('secrets at rest', () => {
  it('keeps no password or vault key in the clear in the database files', async () => {
    const a = await admin();
    await a.ok('users:create', { name: 'bob', password: 'bob initial pass', roles: ['auditor'] });
    await a.ok('users:resetPassword', { name: 'bob', password: 'bob second pass!' });
    await t.core.close();
    const bytes = Buffer.concat(fs.readdirSync(t.dir).filter((f) => f.startsWith(DB_FILE)).map((f) => fs.readFileSync(path.join(t.dir, f)))).toString('latin1');
    for (const s of [ADMIN.password, 'bob initial pass', 'bob second pass!']) expect(bytes).not.toContain(s);
    t = await core({ dataDir: t.dir });
  });
});

import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { channelNames, channels, type ChannelName } from '../../shared/contract/index';
import { ErrorCodes } from '../../shared/domain/errors';
import { Roles, type Role } from '../../shared/domain/roles';
import { ADMIN, testCore, type TestCore } from '../../test/support/core';
import { DB_FILE } from './app';

let t: TestCore;
beforeEach(async () => {
  t = await testCore();
});
afterEach(async () => t.close());

describe('first run and sign-in', () => {
  it('reports setup required, creates the first admin once, then refuses a second setup', async () => {
    const c = t.client();
    expect(await c.ok('session:status', {})).toMatchObject({ setupRequired: true, user: null });
    const admin = await c.ok('session:setup', ADMIN);
    expect(admin).toMatchObject({ name: 'alice', roles: ['admin'] });
    expect(await c.ok('session:status', {})).toMatchObject({ setupRequired: false, user: { name: 'alice' } });
    const again = await t.client().call('session:setup', { admin: 'mallory', password: 'another long password' });
    expect(again).toMatchObject({ ok: false, error: { code: 'SETUP_DONE' } });
  });

  it('refuses a wrong password and an unknown user with the same message', async () => {
    await t.client().ok('session:setup', ADMIN);
    const wrong = await t.client().call('session:login', { name: 'alice', password: 'wrong password!!' });
    const nobody = await t.client().call('session:login', { name: 'nobody', password: 'wrong password!!' });
    expect(wrong).toEqual({ ok: false, error: { code: 'BAD_CREDENTIALS', message: 'Wrong user name or password.' } });
    expect(nobody).toEqual(wrong);
  });

  it('requires a session for everything but the public channels, and logout ends it', async () => {
    const c = t.client();
    expect(await c.call('hosts:list', {})).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    await c.ok('session:setup', ADMIN);
    expect(await c.ok('hosts:list', {})).toEqual([]);
    await c.ok('session:logout', {});
    expect(await c.call('hosts:list', {})).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    await c.ok('session:login', { name: 'alice', password: ADMIN.password });
    expect(await c.ok('hosts:list', {})).toEqual([]);
  });

  it('expires an idle session', async () => {
    let now = Date.UTC(2026, 0, 1);
    const idle = await testCore({ clock: () => new Date(now), sessionIdleMinutes: 10 });
    try {
      const c = idle.client();
      await c.ok('session:setup', ADMIN);
      now += 11 * 60_000;
      expect(await c.call('hosts:list', {})).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    } finally {
      await idle.close();
    }
  });
});

describe('vault', () => {
  it('keeps the SSH private key sealed: the database file alone reveals no secret', async () => {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    const id = await c.ok('identity:show', {});
    expect(id.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ airlock@alice$/);
    expect(id.fingerprint).toMatch(/^SHA256:/);
    await t.core.close();
    const bytes = Buffer.concat(
      fs.readdirSync(t.dir).filter((f) => f.startsWith(DB_FILE)).map((f) => fs.readFileSync(path.join(t.dir, f))),
    ).toString('latin1');
    expect(bytes).not.toContain('PRIVATE KEY');
    expect(bytes).not.toContain('openssh-key-v1');
    expect(bytes).not.toContain(ADMIN.password);
    t = await testCore({ dataDir: t.dir });
  });

  it('gives a second user their own slot that unlocks the same vault', async () => {
    const admin = t.client();
    await admin.ok('session:setup', ADMIN);
    await admin.ok('users:create', { name: 'olga', password: 'officer password 1', roles: ['officer'] });
    const olga = t.client();
    expect(await olga.ok('session:login', { name: 'olga', password: 'officer password 1' })).toMatchObject({ roles: ['officer'] });
    // The administrator chose that password: olga must choose her own (a new slot) before anything else.
    expect(await olga.call('identity:show', {})).toMatchObject({ ok: false, error: { code: 'PASSWORD_CHANGE_REQUIRED' } });
    await olga.ok('session:changePassword', { oldPassword: 'officer password 1', newPassword: 'olga chose this one' });
    expect(await olga.ok('identity:show', {})).toMatchObject({ publicKey: expect.stringMatching(/^ssh-ed25519 /) });
    const again = t.client();
    await again.ok('session:login', { name: 'olga', password: 'olga chose this one' });
    expect(await again.ok('identity:show', {})).toMatchObject({ publicKey: expect.stringMatching(/^ssh-ed25519 /) });
  });
});

describe('the dispatcher', () => {
  /** A signed-in client holding exactly `role` (the admin is the first-run admin: a second one needs two persons). */
  async function as(role: Role, core: TestCore = t) {
    const admin = core.client();
    if ((await admin.call('session:status', {})).ok && (await admin.ok('session:status', {})).setupRequired) {
      await admin.ok('session:setup', ADMIN);
    } else await admin.ok('session:login', { name: 'alice', password: ADMIN.password });
    if (role === 'admin') return admin;
    const name = `u-${role}`;
    await admin.ok('users:create', { name, password: 'a long enough password', roles: [role], mustChangePassword: false });
    const c = core.client();
    await c.ok('session:login', { name, password: 'a long enough password' });
    return c;
  }

  it('allows or refuses every channel for every role exactly as the contract declares', async () => {
    const clients = {} as Record<Role, Awaited<ReturnType<typeof as>>>;
    for (const r of Roles) clients[r] = await as(r);
    let checked = 0;
    for (const name of channelNames) {
      const def = channels[name];
      if (def.roles === 'public') continue;
      for (const role of Roles) {
        // A deliberately invalid input: allowed roles get INVALID_INPUT, others FORBIDDEN, and nothing runs.
        const r = await clients[role].call(name, { __fuzz: 1 });
        const allowed = (def.roles as readonly Role[]).includes(role);
        expect(r.ok, `${name} as ${role}`).toBe(false);
        if (!r.ok) expect(r.error.code, `${name} as ${role}`).toBe(allowed ? 'INVALID_INPUT' : 'FORBIDDEN');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  /** A valid input for every `stepUp` channel: the step-up matrix needs calls that would otherwise run. */
  const STEP_UP_SAMPLES: Record<string, Record<string, unknown>> = {
    'totp:begin': {},
    'totp:recoveryCodes': {},
    'totp:disable': {},
    'users:create': { name: 'zed', password: 'a long enough password', roles: ['auditor'] },
    'users:setRoles': { name: 'u-auditor', roles: ['auditor', 'officer'] },
    'users:disable': { name: 'u-auditor' },
    'users:enable': { name: 'u-auditor', password: 'another long password' },
    'users:resetPassword': { name: 'u-auditor', password: 'another long password' },
    'users:resetTotp': { name: 'u-auditor' },
    'users:remove': { name: 'u-auditor' },
    'settings:set': { sessionIdleMinutes: 5 },
    'approvals:approve': { id: 1, reason: 'looks right' },
    'approvals:reject': { id: 1, reason: 'looks wrong' },
    'approvals:execute': { id: 1 },
    'approvals:setPolicy': { operation: 'keys:rotateRoot', approverRoles: ['officer'], expiryMinutes: 60, required: true },
    'hosts:remove': { name: 'gpu1' },
    'provision:importPlaybook': { text: '{}' },
    'provision:apply': { playbook: 'lab-gpu-node', hosts: ['gpu1'] },
    'provision:resume': { runId: 'run-0123456789abcdef' },
    'provision:disableEgressLockdown': { host: 'gpu1' },
    'audit:acknowledgeAlarm': { id: 1, reason: 'investigated' },
    'keys:begin': { kind: 'genesis', officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 2 },
    'keys:beginReshare': { officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 2 },
    'keys:beginRotateRoot': { officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 2 },
    'keys:genesis': { ceremony: 'cer-0123456789abcdef' },
    'keys:rotateKek': { ceremony: 'cer-0123456789abcdef' },
    'keys:reshare': { ceremony: 'cer-0123456789abcdef' },
    'keys:rotateRoot': { ceremony: 'cer-0123456789abcdef' },
    'keys:protectModels': { host: 'gpu1' },
    'keys:issueHostCertificate': { host: 'gpu1' },
    'keys:revokeCertificate': { serial: '4a01', reason: 'keyCompromise' },
    'keys:rotateSshIdentity': { hosts: ['all'] },
    'keys:rotateOwnKey': { purpose: 'attest.signing' },
    'keys:resumeSshRotation': { id: 'rot-0123456789abcdef' },
    'keys:rekeyModels': { hosts: ['all'] },
    'keys:resumeModelsRekey': { id: 'mrk-0123456789abcdef' },
    'keys:resumeCertRenewal': { id: 'crn-0123456789abcdef' },
    'keys:setMinDecryptionVersion': { domain: 'models', version: 2 },
    'models:approve': { name: 'triage', version: 'v1' },
    'models:revoke': { name: 'triage', version: 'v1', reason: 'withdrawn by the vendor' },
    'models:setRegistry': { url: 'http://10.0.0.1:5000' },
    'principals:create': { kind: 'application', name: 'triage-bot' },
    'principals:rotateCredential': { id: 'app:triage-bot' },
    'principals:disable': { id: 'app:triage-bot', reason: 'retired' },
    'grants:add': { principal: 'app:triage-bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: null },
    'grants:revoke': { id: 'gr-0123456789abcdef', reason: 'no longer needed' },
    'enclaves:assign': { host: 'gpu1', enclave: 'general' },
    'policy:push': {},
  };

  it('refuses every stepUp channel with STEP_UP_REQUIRED once the step-up window passed, and FORBIDDEN for other roles first', async () => {
    let now = Date.UTC(2026, 0, 1);
    const c = await testCore({ clock: () => new Date(now) });
    try {
      const clients = {} as Record<Role, Awaited<ReturnType<typeof as>>>;
      for (const r of Roles) clients[r] = await as(r, c);
      const stepUpChannels = channelNames.filter((n) => (channels[n] as { stepUp?: boolean }).stepUp);
      expect(stepUpChannels.sort()).toEqual(Object.keys(STEP_UP_SAMPLES).sort());
      now += 6 * 60_000; // past the 5-minute step-up window, inside the 30-minute idle lock
      for (const name of stepUpChannels) {
        for (const role of Roles) {
          const r = await clients[role].call(name, STEP_UP_SAMPLES[name]!);
          const allowed = (channels[name].roles as readonly Role[]).includes(role);
          expect(r, `${name} as ${role}`).toMatchObject({ ok: false, error: { code: allowed ? 'STEP_UP_REQUIRED' : 'FORBIDDEN' } });
        }
      }
      // Nothing ran: the auditor account is untouched.
      expect((await clients.admin.ok('users:list', {})).find((u) => u.name === 'u-auditor')).toMatchObject({ roles: ['auditor'], disabled: false });
      // A wrong password does not step up; the right one does, for the configured window.
      expect(await clients.admin.call('session:stepUp', { password: 'not the password' })).toMatchObject({ ok: false, error: { code: 'BAD_CREDENTIALS' } });
      const { stepUpUntil } = await clients.admin.ok('session:stepUp', { password: ADMIN.password });
      expect(stepUpUntil).toBe(new Date(now + 5 * 60_000).toISOString());
      expect((await clients.admin.ok('users:setRoles', STEP_UP_SAMPLES['users:setRoles']!)).roles).toEqual(['auditor', 'officer']);
    } finally {
      await c.close();
    }
  });

  it('restricts a session that must enrol TOTP to the whileRestricted channels, without masking FORBIDDEN', async () => {
    const c = await testCore({ requireTotpFor: ['admin', 'officer'] });
    try {
      const admin = c.client();
      await admin.ok('session:setup', ADMIN);
      expect((await admin.ok('session:status', {})).user).toMatchObject({ restriction: 'totp-enrolment', totp: { enrolled: false, required: true } });
      let restricted = 0;
      for (const name of channelNames) {
        const def = channels[name] as { roles: readonly Role[] | 'public'; whileRestricted?: boolean };
        if (def.roles === 'public') continue;
        const r = await admin.call(name, { __fuzz: 1 });
        const expected = !def.roles.includes('admin') ? 'FORBIDDEN' : def.whileRestricted ? 'INVALID_INPUT' : 'TOTP_ENROLMENT_REQUIRED';
        expect(r, name).toMatchObject({ ok: false, error: { code: expected } });
        if (expected === 'TOTP_ENROLMENT_REQUIRED') restricted++;
      }
      expect(restricted).toBeGreaterThan(20);
    } finally {
      await c.close();
    }
  });

  it('audits refusals and both phases of an allowed call, with secrets redacted', async () => {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await c.call('users:create', { name: 'bob', password: 'a long enough password', roles: ['auditor'] });
    const bob = t.client();
    await bob.ok('session:login', { name: 'bob', password: 'a long enough password' });
    await bob.call('users:create', { name: 'eve', password: 'a long enough password', roles: ['admin'] });
    const { events } = await c.ok('audit:list', { limit: 50 });
    const raw = JSON.stringify(events);
    expect(raw).not.toContain('a long enough password');
    expect(raw).not.toContain(ADMIN.password);
    expect(events.find((e) => e.channel === 'users:create' && e.actor === 'bob')).toMatchObject({ outcome: 'refused', errorCode: 'FORBIDDEN' });
    const req = events.find((e) => e.channel === 'users:create' && e.actor === 'alice' && e.phase === 'request');
    expect(req).toMatchObject({ outcome: 'pending', params: { name: 'bob', password: '[redacted]' } });
    expect(events.find((e) => e.channel === 'users:create' && e.actor === 'alice' && e.phase === 'outcome')).toMatchObject({
      outcome: 'ok',
      params: { request: req!.seq },
    });
    expect((await c.ok('audit:verify', {})).ok).toBe(true);
  });

  it('fails closed: when the audit trail cannot be written, the action does not happen', async () => {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    // Another handle on the same file plays the part of a failing disk for audit inserts only.
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(path.join(t.dir, DB_FILE));
    raw.exec("CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;");
    const r = await c.call('users:create', { name: 'carol', password: 'a long enough password', roles: ['officer'] });
    expect(r).toMatchObject({ ok: false, error: { code: 'AUDIT_UNAVAILABLE' } });
    raw.exec('DROP TRIGGER fail_audit');
    raw.close();
    expect((await c.ok('users:list', {})).map((u) => u.name)).toEqual(['alice']);
    expect((await c.ok('audit:verify', {})).ok).toBe(true);
  });

  it('runs nothing when the session ended while the request event was being committed', async () => {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    const before = await c.ok('settings:get', {});
    // The checks pass and the request event is queued for the group commit; before it commits, the
    // session ends (the window that awaiting it opens). The call must not run. settings:set needs
    // nothing of the session once dispatched, so only the dispatcher's re-check can stop it.
    const pending = c.call('settings:set', { sessionIdleMinutes: before.sessionIdleMinutes + 7 });
    await t.core.closeClient(c.ctx);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
    const again = t.client();
    await again.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    expect((await again.ok('settings:get', {})).sessionIdleMinutes).toBe(before.sessionIdleMinutes);
    const { events } = await again.ok('audit:list', { limit: 20 });
    const req = events.find((e) => e.channel === 'settings:set' && e.phase === 'request')!;
    expect(events.find((e) => e.channel === 'settings:set' && e.phase === 'outcome')).toMatchObject({ outcome: 'error', errorCode: 'UNAUTHENTICATED', params: { request: req.seq } });
  });

  it('never crashes on malformed input to any channel (property-based)', async () => {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    const codes = new Set<string>(ErrorCodes);
    const names = [...channelNames, 'nope', 'hosts:', '__proto__', 'constructor'] as ChannelName[];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...names), fc.anything({ withNullPrototype: true, withBigInt: true, withDate: true, withMap: true, withTypedArray: true }), async (name, input) => {
        if (name === 'session:logout') return; // would end the fuzzing session; covered above
        const r = await c.call(name, input as Record<string, unknown>);
        expect(typeof r.ok).toBe('boolean');
        if (!r.ok) {
          expect(codes.has(r.error.code), r.error.code).toBe(true);
          expect(typeof r.error.message).toBe('string');
        }
      }),
      { numRuns: 1500 },
    );
    // Still alive, still signed in, chain still intact.
    expect((await c.ok('session:status', {})).user?.name).toBe('alice');
    expect((await c.ok('audit:verify', {})).ok).toBe(true);
  });
});

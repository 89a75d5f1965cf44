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
    expect(await olga.ok('identity:show', {})).toMatchObject({ publicKey: expect.stringMatching(/^ssh-ed25519 /) });
  });
});

describe('the dispatcher', () => {
  /** A signed-in client holding exactly `role`. */
  async function as(role: Role) {
    const admin = t.client();
    if ((await admin.call('session:status', {})).ok && (await admin.ok('session:status', {})).setupRequired) {
      await admin.ok('session:setup', ADMIN);
    } else await admin.ok('session:login', { name: 'alice', password: ADMIN.password });
    const name = `u-${role}`;
    await admin.call('users:create', { name, password: 'a long enough password', roles: [role] });
    const c = t.client();
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

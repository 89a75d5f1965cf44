/**
 * Issue 11, "Two people, one console": the sign-in lockout is per account; per source only for
 * another machine. Every browser tab of `airlock serve` signs in from 127.0.0.1, so one person's
 * typos must not lock the person beside them out. Real core, real SQLite file, injected clock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CoreConfig, ShellKind } from '../../electron/core/types';
import type { ChannelName, In, Out } from '../../shared/contract/index';
import type { Result } from '../../shared/domain/errors';
import { ADMIN, testCore, type TestCore } from '../support/core';

let now = Date.UTC(2026, 0, 1, 9);
let t: TestCore;
const clock = () => new Date(now);
const later = (ms: number) => (now += ms);

async function core(extra: Partial<CoreConfig> = {}) {
  return testCore({ clock, ...extra });
}

/** A client as a shell makes it: the browser shell's source is its TCP peer, Electron's its window. */
function client(shell: ShellKind, source: string, signInLink?: () => { url: string; expiresAt: string }) {
  const ctx = t.core.newClient({ shell, source, ...(signInLink ? { signInLink } : {}) });
  const call = <C extends ChannelName>(channel: C, input: In<C> | Record<string, unknown>) => t.core.dispatch(ctx, channel, input) as Promise<Result<Out<C>>>;
  return {
    ctx,
    call,
    async ok<C extends ChannelName>(channel: C, input: In<C> | Record<string, unknown>): Promise<Out<C>> {
      const r = await call(channel, input);
      if (!r.ok) throw new Error(`${channel} failed: ${r.error.code}: ${r.error.message}`);
      return r.value;
    },
  };
}
const tab = () => client('browser', '127.0.0.1');
type Client = ReturnType<typeof client>;

const code = (r: { ok: boolean; error?: { code: string } }) => (r.ok ? 'ok' : r.error!.code);
const message = (r: { ok: boolean; error?: { message: string } }) => (r.ok ? 'ok' : r.error!.message);
const wrong = (c: Client, name: string) => c.call('session:login', { name, password: 'not the password' });
const BOB = { name: 'bob', password: 'bob own password' };

async function setUp(): Promise<Client> {
  const a = tab();
  await a.ok('session:setup', ADMIN);
  await a.ok('users:create', { name: BOB.name, password: BOB.password, roles: ['officer'], mustChangePassword: false });
  await a.ok('session:logout', {});
  return a;
}

beforeEach(async () => {
  now = Date.UTC(2026, 0, 1, 9);
  t = await core();
});
afterEach(async () => t.close());

describe('lockout per account, on one machine', () => {
  it("person A's typos in one tab do not lock person B out of the tab beside it (both 127.0.0.1)", async () => {
    await setUp();
    const a = tab();
    const b = tab();
    for (let i = 1; i <= 4; i++) expect(code(await wrong(a, ADMIN.admin))).toBe('BAD_CREDENTIALS');
    expect(code(await wrong(a, ADMIN.admin))).toBe('LOCKED_OUT');
    // B, from the same address, signs in; so does B in an Electron window and on the CLI.
    await b.ok('session:login', BOB);
    await client('electron', 'electron:window-2').ok('session:login', BOB);
    await client('cli', 'pid 77').ok('session:login', BOB);
    expect((await b.ok('session:status', {})).user?.name).toBe(BOB.name);
  });

  it('locks A after 5 wrong passwords, from every shell, even with the right password, until the lock ends', async () => {
    await setUp();
    const a = tab();
    for (let i = 1; i <= 4; i++) expect(code(await wrong(a, ADMIN.admin))).toBe('BAD_CREDENTIALS');
    const fifth = await wrong(a, ADMIN.admin);
    expect(fifth).toMatchObject({ ok: false, error: { code: 'LOCKED_OUT' } });
    expect(message(fifth)).toMatch(/Too many failed sign-ins for "alice": try again in 30 s/);
    for (const c of [a, tab(), client('electron', 'electron:window-1'), client('cli', 'pid 9')]) {
      expect(code(await c.call('session:login', { name: ADMIN.admin, password: ADMIN.password }))).toBe('LOCKED_OUT');
    }
    later(30_000);
    await a.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
  });

  it('answers an unknown name exactly like a known one, wrong password for wrong password, lock for lock', async () => {
    await setUp();
    const c = tab();
    for (let i = 1; i <= 5; i++) {
      const known = await wrong(c, BOB.name);
      const unknown = await wrong(c, 'nobody');
      expect(code(unknown), `attempt ${i}`).toBe(code(known));
      expect(message(unknown).replace('"nobody"', '"NAME"')).toBe(message(known).replace('"bob"', '"NAME"'));
    }
    expect(code(await wrong(c, 'nobody'))).toBe('LOCKED_OUT');
  });

  it('makes guessing names from this machine cost time: 20 failures, then one per 30 s, whatever the names; nobody is locked by it for longer', async () => {
    await setUp();
    const attacker = tab();
    const answers: string[] = [];
    for (let i = 1; i <= 20; i++) answers.push(code(await wrong(attacker, `guess${i}`)));
    expect(answers.slice(0, 19).every((a) => a === 'BAD_CREDENTIALS')).toBe(true);
    const full = await wrong(attacker, 'guess21');
    expect(code(full)).toBe('LOCKED_OUT');
    expect(message(full)).toMatch(/on this machine \(all accounts together\): try again in 30 s/);
    // Known or unknown, every name gets the same answer while the bucket is full.
    expect(message(await tab().call('session:login', BOB))).toBe(message(await tab().call('session:login', { name: 'ghost', password: 'whatever it is' })));
    // It is a rate, not a lock on anyone: 30 s later bob signs in.
    later(30_000);
    await tab().ok('session:login', BOB);
    // Another machine is not slowed by this machine's bucket.
    await client('browser', '10.9.8.7').ok('session:login', BOB);
  });

  it('locks another machine as a source of its own (many names from 10.1.2.3), not this one', async () => {
    await setUp();
    const remote = client('browser', '10.1.2.3');
    for (let i = 1; i <= 4; i++) expect(code(await wrong(remote, `nobody${i}`))).toBe('BAD_CREDENTIALS');
    expect(message(await wrong(remote, 'nobody5'))).toMatch(/from this client \(browser:10\.1\.2\.3\)/);
    expect(code(await remote.call('session:login', BOB))).toBe('LOCKED_OUT');
    await tab().ok('session:login', BOB);
  });

  it("an administrator's unlock lifts the account's lock", async () => {
    const admin = await setUp();
    for (let i = 0; i < 5; i++) await wrong(tab(), BOB.name);
    expect(code(await tab().call('session:login', BOB))).toBe('LOCKED_OUT');
    await admin.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    await admin.ok('users:unlock', { name: BOB.name });
    await tab().ok('session:login', BOB);
  });
});

describe('the rule the Account page shows is the one applied', () => {
  it('session:status carries the configured numbers, and the core locks by them', async () => {
    await t.close();
    t = await core({ lockout: { threshold: 3, baseSeconds: 60, maxSeconds: 600 } });
    await setUp();
    const c = tab();
    expect((await c.ok('session:status', {})).lockout).toEqual({ threshold: 3, baseSeconds: 60, maxSeconds: 600, thisMachine: { burst: 12, everySeconds: 60 } });
    expect(code(await wrong(c, BOB.name))).toBe('BAD_CREDENTIALS');
    expect(code(await wrong(c, BOB.name))).toBe('BAD_CREDENTIALS');
    expect(message(await wrong(c, BOB.name))).toMatch(/try again in 60 s/);
    later(59_000);
    expect(code(await c.call('session:login', BOB))).toBe('LOCKED_OUT');
    later(1_000);
    await c.ok('session:login', BOB);
  });

  it('the defaults: 5 wrong passwords, 30 s doubling up to 15 min', async () => {
    expect((await tab().ok('session:status', {})).lockout).toEqual({ threshold: 5, baseSeconds: 30, maxSeconds: 900, thisMachine: { burst: 20, everySeconds: 30 } });
  });
});

describe('session:signInLink', () => {
  it("hands out the shell's link to a signed-in person only, audited without the link itself", async () => {
    await setUp();
    const link = { url: 'http://127.0.0.1:1/#token=THE-SECRET-TOKEN', expiresAt: '2026-01-01T09:05:00.000Z' };
    let minted = 0;
    const b = client('browser', '127.0.0.1', () => (minted++, link));
    expect(code(await b.call('session:signInLink', {}))).toBe('UNAUTHENTICATED');
    expect(minted).toBe(0);
    await b.ok('session:login', BOB);
    expect(await b.ok('session:signInLink', {})).toEqual(link);
    expect(minted).toBe(1);
    // A shell without links (Electron, the CLI) says how to hand over instead.
    const e = client('electron', 'electron:window-1');
    await e.ok('session:login', BOB);
    const r = await e.call('session:signInLink', {});
    expect(code(r)).toBe('CONFLICT');
    expect(message(r)).toMatch(/sign out and let the next person sign in/);
    const { events } = await b.ok('audit:list', { channel: 'session:signInLink', limit: 20 });
    expect(events.filter((ev) => ev.phase === 'outcome' && ev.outcome === 'ok')).toHaveLength(1);
    expect(events.some((ev) => ev.actor === BOB.name)).toBe(true);
    expect(JSON.stringify(events)).toContain('2026-01-01T09:05:00.000Z');
    expect(JSON.stringify(events)).not.toContain('THE-SECRET-TOKEN');
  });
});

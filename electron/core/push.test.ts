/**
 * Issue 9 point 13: an idle console writes nothing to the audit trail.
 * - The approval queue is pushed (`approvals:changed`), not polled: the event reaches exactly the
 *   clients whose session may call approvals:list, for changes made here, in another process on
 *   the same database, and for expiry (a time, not a write); it carries only a version number.
 * - A `quiet-read` channel's successful calls are not audited; its refusals are.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { channelNames, channels, events, isChannelName } from '../../shared/contract/index';
import { ADMIN, testCore, type TestClient, type TestCore } from '../../test/support/core';
import type { Role } from '../../shared/domain/roles';
import { DB_FILE } from './app';
import { Broadcaster } from './broadcast';
import { eventChecker, Outbox } from './outbox';
import type { ClientContext, SessionInfo } from './types';

const open: TestCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

const PASSWORD = 'a long enough password';
const changes = (c: TestClient) => c.events.filter((e) => e.event === 'approvals:changed');

/** Wait until each client has seen `n` pushes (the watch looks right after each call, or on its 1 s timer). */
async function seen(clients: TestClient[], n: number): Promise<void> {
  await vi.waitFor(() => {
    for (const c of clients) expect(changes(c)).toHaveLength(n);
  }, { timeout: 10_000, interval: 50 });
}

/** A quiet moment: a few turns of the event loop and one timer tick, for pushes that should not come. */
const settle = () => new Promise((r) => setTimeout(r, 1300));

describe('approvals:changed', () => {
  it('reaches every client whose session may list approvals, and nobody else, on every change to the queue', async () => {
    let now = Date.UTC(2026, 0, 1, 9);
    const t = await testCore({ clock: () => new Date(now), sessionIdleMinutes: 3000 });
    open.push(t);
    const admin = t.client('browser');
    await admin.ok('session:setup', ADMIN);
    for (const [name, roles] of [['olga', ['officer']], ['audrey', ['auditor']], ['sam', ['officer']]] as const) {
      await admin.ok('users:create', { name, password: PASSWORD, roles: [...roles], mustChangePassword: name === 'sam' });
    }
    const officer = t.client('browser');
    await officer.ok('session:login', { name: 'olga', password: PASSWORD });
    const auditor = t.client('electron');
    await auditor.ok('session:login', { name: 'audrey', password: PASSWORD });
    // sam must choose a password first: a restricted session may not list approvals, so it hears nothing.
    const restricted = t.client('browser');
    await restricted.ok('session:login', { name: 'sam', password: PASSWORD });
    expect(await restricted.call('approvals:list', {})).toMatchObject({ ok: false, error: { code: 'PASSWORD_CHANGE_REQUIRED' } });
    const anonymous = t.client('browser');
    const gone = t.client('browser');
    await gone.ok('session:login', { name: 'olga', password: PASSWORD });
    await gone.ok('session:logout', {});
    const closed = t.client('electron');
    await closed.ok('session:login', { name: 'audrey', password: PASSWORD });
    await t.core.closeClient(closed.ctx);

    const told = [admin, officer, auditor];
    const untold = [restricted, anonymous, gone, closed];
    await settle();
    for (const c of [...told, ...untold]) expect(changes(c)).toEqual([]);

    // Filed: a request to create a second admin.
    const refused = await admin.call('users:create', { name: 'carol', password: PASSWORD, roles: ['admin'] });
    expect(refused).toMatchObject({ ok: false, error: { code: 'APPROVAL_REQUIRED' } });
    const req = await admin.ok('approvals:request', { channel: 'users:create', input: { name: 'carol', password: PASSWORD, roles: ['admin'] }, reason: 'on-call rota' });
    await seen(told, 1);
    // Only a counter: nothing of the request travels; each client asks approvals:list for what it may see.
    expect(changes(admin)[0]).toEqual({ event: 'approvals:changed', payload: { version: 1 } });
    expect(JSON.stringify(officer.events)).not.toContain('carol');

    // Calls that leave the queue alone push nothing.
    await admin.ok('hosts:list', {});
    await officer.ok('approvals:list', {});
    await settle();
    for (const c of told) expect(changes(c)).toHaveLength(1);

    // Approved by the officer, executed by the requester: a push each.
    await officer.ok('approvals:approve', { id: req.id, reason: 'confirmed by phone' });
    await seen(told, 2);
    await admin.ok('approvals:execute', { id: req.id });
    await seen(told, 3);
    expect(changes(auditor).map((e) => (e.payload as { version: number }).version)).toEqual([1, 2, 3]);

    // Filed and cancelled.
    const second = await admin.ok('approvals:request', { channel: 'users:create', input: { name: 'dan', password: PASSWORD, roles: ['admin'] }, reason: 'second on-call' });
    await seen(told, 4);
    await admin.ok('approvals:cancel', { id: second.id });
    await seen(told, 5);

    // Expiry is a time, not a write: the push comes when it is due, with nobody calling anything.
    await admin.ok('approvals:request', { channel: 'users:create', input: { name: 'eve', password: PASSWORD, roles: ['admin'] }, reason: 'third on-call' });
    await seen(told, 6);
    now += 25 * 60 * 60_000;
    await seen(told, 7);
    // The next read records the expiry; that write is not a second change.
    expect((await admin.ok('approvals:list', { status: 'expired' })).requests).toHaveLength(1);
    await settle();
    for (const c of told) expect(changes(c)).toHaveLength(7);
    for (const c of untold) expect(changes(c)).toEqual([]);
  });

  it('reports a change made by another process on the same database (the CLI while serve runs)', async () => {
    const t = await testCore();
    open.push(t);
    const admin = t.client('browser');
    await admin.ok('session:setup', ADMIN);
    await admin.ok('users:create', { name: 'olga', password: PASSWORD, roles: ['officer'], mustChangePassword: false });
    await settle();
    expect(changes(admin)).toEqual([]);

    // A second core on the same data directory: its own SQLite connection, as a CLI run has.
    const other = await testCore({ dataDir: t.dir });
    open.push(other);
    const cli = other.client('cli');
    await cli.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    await cli.ok('approvals:request', { channel: 'users:create', input: { name: 'carol', password: PASSWORD, roles: ['admin'] }, reason: 'on-call rota' });
    await seen([admin], 1);
    // That process's other writes (its sign-in, its audit events) are no change to the queue.
    await cli.ok('users:list', {});
    await settle();
    expect(changes(admin)).toHaveLength(1);
  });

  it('goes by the audience channel’s roles and restriction, re-read from the session at that moment', () => {
    // Every role may list approvals today; the filter itself is checked with sessions the role
    // matrix does not produce (no role, a role the channel does not name).
    const sessions = new Map<string, SessionInfo>();
    const b = new Broadcaster({ get: (id) => (id ? (sessions.get(id) ?? null) : null) });
    const got: string[] = [];
    const client = (id: string, s: Omit<SessionInfo, 'id' | 'uid'> | null): ClientContext => {
      if (s) sessions.set(id, { id, uid: `uid-${id}`, ...s });
      const c: ClientContext = { id, shell: 'browser', source: 'test', session: s ? { id, uid: `uid-${id}`, ...s } : null, emit: () => got.push(id) };
      b.add(c);
      return c;
    };
    const allowed = channels['approvals:list'].roles as readonly Role[];
    for (const r of allowed) client(`role-${r}`, { user: r, roles: [r] });
    client('no-role', { user: 'x', roles: [] });
    client('other-role', { user: 'y', roles: ['operator' as Role] });
    client('restricted', { user: 'z', roles: ['admin'], restriction: 'totp-enrolment' });
    client('anonymous', null);
    const stale = client('ended', { user: 'w', roles: ['admin'] });
    sessions.delete(stale.id); // the client still holds the id; the session store no longer knows it
    const broken = client('broken', { user: 'v', roles: ['auditor'] });
    broken.emit = () => {
      throw new Error('socket gone');
    };
    expect(b.broadcast('approvals:changed', { version: 1 })).toBe(allowed.length);
    expect(got.sort()).toEqual(allowed.map((r) => `role-${r}`).sort());
    // A payload off the contract never leaves.
    expect(() => b.broadcast('approvals:changed', { version: 2, pending: 1 } as unknown as { version: number })).toThrow();
    // Events without an audience are per-client only.
    expect(() => b.broadcast('terminal:exit', { id: 't', code: 0, reason: null } as never)).toThrow(/audience/);
  });

  it("checks a broadcast's payload once, however many clients' queues it goes to", () => {
    // Composed as the core composes it (app.ts): one checker, shared by the broadcaster and every client's queue.
    const check = eventChecker(() => {});
    const sessions = new Map<string, SessionInfo>();
    const b = new Broadcaster({ get: (id) => (id ? (sessions.get(id) ?? null) : null) }, check);
    const sent: string[] = [];
    for (const id of ['a', 'b', 'c']) {
      const s: SessionInfo = { id, uid: `uid-${id}`, user: id, roles: ['admin'] };
      sessions.set(id, s);
      const outbox = new Outbox({ send: (event) => sent.push(`${id} ${event}`) }, check, () => {});
      b.add({ id, shell: 'browser', source: 'test', session: s, emit: (event, payload) => outbox.push(event, payload), flow: outbox });
    }
    const schema = events['approvals:changed'].payload;
    const parsed = vi.spyOn(schema, 'safeParse');
    try {
      expect(b.broadcast('approvals:changed', { version: 7 })).toBe(3);
      expect(sent).toEqual(['a approvals:changed', 'b approvals:changed', 'c approvals:changed']);
      expect(parsed).toHaveBeenCalledTimes(1);
      // An emit of a payload the checker never returned is parsed as before (and refused if off-contract).
      parsed.mockClear();
      expect(check('approvals:changed', { version: 8 })).toMatchObject({ ok: true });
      expect(check('approvals:changed', { version: 8, pending: 1 })).toEqual({ ok: false });
      expect(parsed).toHaveBeenCalledTimes(2);
      // A checked value is known for its own event only.
      const value = (check('approvals:changed', { version: 9 }) as { value: object }).value;
      expect(check('audit:alarmChanged', value)).toMatchObject({ ok: true });
      expect(parsed).toHaveBeenCalledTimes(3);
    } finally {
      parsed.mockRestore();
    }
  });

  it('is declared in the contract with an audience channel and a payload of a version only', () => {
    const broadcast = Object.entries(events).filter(([, d]) => 'audience' in d && d.audience);
    expect(broadcast.map(([n]) => n).sort()).toEqual(['approvals:changed', 'audit:alarmChanged']);
    for (const [, d] of broadcast) expect(isChannelName((d as { audience: string }).audience)).toBe(true);
    expect(events['approvals:changed'].payload.safeParse({ version: 1, pending: 3 }).success).toBe(false);
    expect(events['audit:alarmChanged'].payload.safeParse({ version: 1, kind: 'cut' }).success).toBe(false);
  });
});

describe('what the dispatcher audits', () => {
  it('does not audit a quiet read, but audits its refusal', async () => {
    const t = await testCore();
    open.push(t);
    const db = new Database(path.join(t.dir, DB_FILE), { readonly: true });
    const count = () => db.prepare("SELECT count(*) FROM audit_events WHERE channel <> 'audit:checkpoint'").pluck().get() as number;
    const last = () => db.prepare('SELECT actor, channel, body FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { channel: string; body: string };
    try {
      const c = t.client('browser');
      await c.ok('session:setup', ADMIN);
      const before = count();
      for (let i = 0; i < 5; i++) await c.ok('session:status', {});
      await t.client('browser').ok('session:status', {}); // not signed in: still a quiet read
      expect(count()).toBe(before);

      // A refusal of the quiet channel (here its input) is on the trail like any other.
      const r = await c.call('session:status', { probe: 1 });
      expect(r).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
      expect(count()).toBe(before + 1);
      expect(last().channel).toBe('session:status');
      expect(JSON.parse(last().body)).toMatchObject({ phase: 'outcome', outcome: 'refused', errorCode: 'INVALID_INPUT' });

      // Everything else still writes its request and outcome: the queue read the push triggers…
      await c.ok('approvals:list', { status: 'open', limit: 1 });
      expect(count()).toBe(before + 3);
      // …and reading the trail itself.
      await c.ok('audit:list', { limit: 1 });
      expect(count()).toBe(before + 5);
    } finally {
      db.close();
    }
  });

  it('declares only the console’s own status read quiet; never a read of the trail, a secret or a change', () => {
    const quiet = channelNames.filter((n) => (channels[n] as { audit?: string }).audit === 'quiet-read');
    // The alarm flag is a status the banner draws, not the trail: the trail's reads stay audited.
    expect(quiet.sort()).toEqual(['audit:alarmStatus', 'session:status']);
    for (const n of ['audit:list', 'audit:verify', 'audit:export', 'audit:acknowledgeAlarm']) {
      if (n in channels) expect(quiet).not.toContain(n);
    }
  });
});

/**
 * Issue 10: the dispatcher reads the channel's declarations (`target`, `session: 'opens'`,
 * `actor`, `carries`), not channel names or guessed field names. The audit trail records what
 * it recorded before (these expectations were written against the name-guessing dispatcher
 * and passed there first).
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { channels, type ChannelName } from '../../shared/contract/index';
import type { ChannelDef } from '../../shared/contract/channel';
import type { AuditInput, AuditTrail } from './audit/audit';
import { Dispatcher, Operations, type CallTools, type Handlers } from './dispatch';
import type { Sessions } from './session/sessions';
import type { ClientContext, SessionInfo } from './types';

const ADMIN: SessionInfo = { id: 'sess-admin-0001', uid: 'u1', user: 'alice', roles: ['admin', 'officer'], restriction: null };

/** A dispatcher over a recording trail, a session table that knows one admin, and handlers that return nothing useful. */
function rig() {
  const recorded: AuditInput[] = [];
  const audit = {
    appendAsync: (input: AuditInput) => {
      recorded.push(input);
      return Promise.resolve({ seq: recorded.length });
    },
  } as unknown as AuditTrail;
  const sessions = {
    get: (id: string | undefined) => (id === ADMIN.id ? ADMIN : id === 'sess-bob-00000001' ? { ...ADMIN, id, uid: 'u2', user: 'bob', roles: ['officer'] } : null),
    steppedUp: () => true,
  } as unknown as Sessions;
  const handlers = new Proxy({} as Handlers, {
    get: (_t, name) => (ctx: { client: ClientContext }) => {
      // A sign-in handler opens a session on the client, as the real one does.
      if (name === 'session:login' || name === 'session:setup') ctx.client.session = { ...ADMIN, id: 'sess-bob-00000001', uid: 'u2', user: 'bob', roles: ['officer'] };
      if (name === 'session:logout') ctx.client.session = null;
      return {};
    },
  });
  // The handlers above read nothing from the call tools: any use of them is a test bug.
  const callTools = (): CallTools => new Proxy({} as CallTools, { get: (_t, k) => () => { throw new Error(`call tool ${String(k)} used in a dispatcher test`); } });
  const dispatcher = new Dispatcher({ handlers, audit, sessions, ops: new Operations(), callTools });
  const client = (session: SessionInfo | null): ClientContext => ({ id: 'c1', shell: 'cli', source: 'test', session, emit: () => {} });
  return { dispatcher, recorded, client };
}

/** What the trail records for one call: the request event's target and actor, the outcome event's actor. */
async function audited(name: ChannelName, input: Record<string, unknown>, signedIn = true) {
  const { dispatcher, recorded, client } = rig();
  await dispatcher.dispatch(client(signedIn ? ADMIN : null), name, input);
  const request = recorded.find((e) => e.phase === 'request');
  const outcome = recorded.find((e) => e.phase === 'outcome');
  return { target: request?.target ?? outcome?.target, actor: request?.actor, after: outcome?.actor, params: request?.params, session: outcome?.session };
}

describe('the audit target and actor of representative channels (as before issue 10)', () => {
  it('records the object each call acts on', async () => {
    expect((await audited('hosts:add', { name: 'gpu-01', address: '10.0.0.5' })).target).toBe('gpu-01');
    expect((await audited('hosts:probe', { address: '10.0.0.9' })).target).toBe('10.0.0.9');
    expect((await audited('hosts:remove', { name: 'gpu-02' })).target).toBe('gpu-02');
    expect((await audited('terminal:open', { host: 'gpu-03' })).target).toBe('gpu-03');
    expect((await audited('terminal:close', { id: 'term-1' })).target).toBe('term-1');
    expect((await audited('users:create', { name: 'carol', password: 'a long enough password', roles: ['officer'] })).target).toBe('carol');
    expect((await audited('store:importModel', { dir: '/media/usb', name: 'llama', version: '3' })).target).toBe('llama');
    expect((await audited('provision:disableEgressLockdown', { host: 'gpu-04' })).target).toBe('gpu-04');
    // Both fields given: the host, as the old field order (name, host, address, id) chose.
    expect((await audited('attest:show', { id: 'att-0123456789abcdef', host: 'gpu-05' })).target).toBe('gpu-05');
    expect((await audited('attest:show', { id: 'att-0123456789abcdef' })).target).toBe('att-0123456789abcdef');
    // Numeric ids were never a target (the approval's id is in the parameters).
    expect((await audited('approvals:approve', { id: 7, reason: 'looks right' })).target).toBeNull();
    expect((await audited('audit:acknowledgeAlarm', { id: 3, reason: 'seen it' })).target).toBeNull();
    expect((await audited('hosts:scan', {})).target).toBeNull();
    expect((await audited('approvals:request', { channel: 'users:create', input: { name: 'dave' }, reason: 'new admin' })).target).toBeNull();
  });

  it('names who signs in before there is a session, and the session the call opened after', async () => {
    const login = await audited('session:login', { name: 'bob', password: 'whatever it is' }, false);
    expect(login).toMatchObject({ target: 'bob', actor: 'bob', after: 'bob', session: 'sess-bob' });
    const setup = await audited('session:setup', { admin: 'bob', password: 'a long enough password' }, false);
    expect(setup).toMatchObject({ target: null, actor: 'bob', after: 'bob', session: 'sess-bob' });
    // Any other call's outcome names the session it started with, whatever the handler did to the client.
    const logout = await audited('session:logout', {});
    expect(logout).toMatchObject({ target: null, actor: 'alice', after: 'alice', session: 'sess-adm' });
  });

  it("redacts the secrets of the call approvals:request carries, by that channel's declaration", async () => {
    const r = await audited('approvals:request', {
      channel: 'users:create',
      input: { name: 'dave', password: 'a long enough password', roles: ['admin'] },
      reason: 'new admin',
    });
    const params = r.params as { input: Record<string, unknown>; channel: string };
    expect(params.channel).toBe('users:create');
    expect(params.input.name).toBe('dave');
    expect(params.input.password).toBe('[redacted]');
  });
});

/** The field names an input schema may hold (objects, unions of objects, pipes and wrappers). */
function inputFields(schema: z.ZodType): string[] {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  if (def.shape) return Object.keys(def.shape as object);
  if (Array.isArray(def.options)) return (def.options as z.ZodType[]).flatMap(inputFields);
  for (const inner of ['in', 'innerType', 'schema'] as const) if (def[inner]) return inputFields(def[inner] as z.ZodType);
  return [];
}

describe('every channel declares its target', () => {
  const looksLikeTarget = ['name', 'host', 'address', 'id'];
  const defs = Object.entries(channels) as Array<[ChannelName, ChannelDef]>;

  it('a channel whose input names an object (name, host, address, id) declares which one, or declares none deliberately', () => {
    const candidates = defs.filter(([, d]) => inputFields(d.in).some((f) => looksLikeTarget.includes(f)));
    // The walk sees the inputs it should (a schema shape it cannot read would make this vacuous).
    expect(candidates.map(([n]) => n)).toEqual(expect.arrayContaining(['hosts:add', 'terminal:open', 'attest:show', 'approvals:approve']));
    const undeclared = candidates.filter(([, d]) => !('target' in d)).map(([n]) => n);
    expect(undeclared).toEqual([]);
  });

  it('a declared target field is a field of the input', () => {
    const wrong = defs.filter(([, d]) => typeof d.target === 'string' && !inputFields(d.in).includes(d.target)).map(([n]) => n);
    expect(wrong).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { can, newRequestId, observed, type Interventions } from './api';
import type { Transport } from '../shared/contract/client';
import type { Result } from '../shared/domain/errors';
import { compareCommand } from './features/hosts/hostKey';

describe('can (UI hint from the contract roles)', () => {
  it('follows the channel table', () => {
    expect(can(['admin'], 'hosts:add')).toBe(true);
    expect(can(['auditor'], 'hosts:add')).toBe(false);
    expect(can(['auditor'], 'audit:verify')).toBe(true);
    expect(can(['officer', 'auditor'], 'users:create')).toBe(false);
    expect(can(undefined, 'hosts:list')).toBe(false);
    expect(can(undefined, 'session:login')).toBe(true);
  });
});

describe('newRequestId', () => {
  it('matches the contract RequestId pattern and is unique', () => {
    const a = newRequestId();
    expect(a).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(newRequestId()).not.toBe(a);
  });
});

describe('compareCommand', () => {
  it('names the host key file for the presented key type', () => {
    expect(compareCommand('ssh-ed25519')).toBe('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
    expect(compareCommand('ecdsa-sha2-nistp256')).toBe('ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub');
    expect(compareCommand('rsa-sha2-512')).toBe('ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub');
  });
});

describe('observed (the client wrapper: step-up, two-person, sign-out)', () => {
  type Call = { channel: string; input: unknown };
  function fakeTransport(results: Array<Result<unknown>>): { t: Transport; calls: Call[] } {
    const calls: Call[] = [];
    return {
      calls,
      t: {
        call: (channel, input) => {
          calls.push({ channel, input });
          return Promise.resolve(results.shift() ?? { ok: true, value: null });
        },
        subscribe: () => () => {},
      },
    };
  }
  const hooks = (over: Partial<Interventions> = {}): Interventions => ({
    stepUp: () => Promise.resolve(true),
    approval: () => Promise.resolve(null),
    unauthenticated: () => {},
    ...over,
  });

  it('retries the original call once after a successful step-up', async () => {
    const { t, calls } = fakeTransport([{ ok: false, error: { code: 'STEP_UP_REQUIRED', message: 'confirm' } }, { ok: true, value: 7 }]);
    let asked = 0;
    const r = await observed(t, () => hooks({ stepUp: () => (asked++, Promise.resolve(true)) })).call('users:disable', { name: 'x' });
    expect(r).toEqual({ ok: true, value: 7 });
    expect(asked).toBe(1);
    expect(calls).toEqual([
      { channel: 'users:disable', input: { name: 'x' } },
      { channel: 'users:disable', input: { name: 'x' } },
    ]);
  });

  it('returns the refusal when the step-up is cancelled', async () => {
    const { t, calls } = fakeTransport([{ ok: false, error: { code: 'STEP_UP_REQUIRED', message: 'confirm' } }]);
    const r = await observed(t, () => hooks({ stepUp: () => Promise.resolve(false) })).call('users:disable', { name: 'x' });
    expect(r.ok).toBe(false);
    expect(calls).toHaveLength(1);
  });

  it('offers APPROVAL_REQUIRED calls for a two-person request with the same channel and input', async () => {
    const { t } = fakeTransport([{ ok: false, error: { code: 'APPROVAL_REQUIRED', message: 'second person' } }]);
    const seen: unknown[] = [];
    const r = await observed(t, () =>
      hooks({ approval: (channel, input) => (seen.push(channel, input), Promise.resolve(42)) }),
    ).call('users:create', { name: 'c', roles: ['admin'] });
    expect(seen).toEqual(['users:create', { name: 'c', roles: ['admin'] }]);
    expect(!r.ok && r.error.code === 'APPROVAL_REQUIRED' && r.error.message.includes('#42')).toBe(true);
  });

  it('signs the UI out on UNAUTHENTICATED, except for status and login', async () => {
    let n = 0;
    const h = () => hooks({ unauthenticated: () => void n++ });
    const un: Result<unknown> = { ok: false, error: { code: 'UNAUTHENTICATED', message: 'gone' } };
    await observed(fakeTransport([un]).t, h).call('hosts:list', {});
    await observed(fakeTransport([un]).t, h).call('session:status', {});
    await observed(fakeTransport([un]).t, h).call('session:login', { name: 'a', password: 'b' });
    expect(n).toBe(1);
  });
});

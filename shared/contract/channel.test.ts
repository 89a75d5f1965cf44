/**
 * The declarations a channel makes are typed by what they name: `twoPerson` by the approval
 * policy's operation list, `target`/`actor`/`carries` by the channel's own input fields. A
 * misspelling is a compile error (`npx tsc -p tsconfig.json`, run in CI, fails when an
 * `@ts-expect-error` below stops being an error), and the values are the ones the policy knows.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ApprovalOperations } from './approvals';
import { channel } from './channel';
import { channels } from './index';

const In = z.object({ name: z.string(), id: z.number(), host: z.string().optional() }).strict();
const base = { in: In, out: z.object({}), roles: ['admin'] as const, summary: 'test' };

describe('channel declarations are typed', () => {
  it('twoPerson names an operation of the approval policy, and a misspelt one does not compile', () => {
    const ok = channel({ ...base, twoPerson: 'users:grantAdmin' });
    // @ts-expect-error — not an operation of the approval policy (a misspelling of users:grantAdmin)
    const misspelt = channel({ ...base, twoPerson: 'users:grantAdmn' });
    expect(ok.twoPerson).toBe('users:grantAdmin');
    expect(misspelt.twoPerson).toBe('users:grantAdmn');
    for (const def of Object.values(channels)) {
      const op = (def as { twoPerson?: string }).twoPerson;
      if (op !== undefined) expect(ApprovalOperations).toContain(op);
    }
  });

  it('target and actor name string fields of the input; carries names fields too', () => {
    const named = channel({ ...base, target: 'name', actor: 'host' });
    const computed = channel({ ...base, target: (i) => i.host ?? i.name });
    // @ts-expect-error — no such input field
    channel({ ...base, target: 'nmae' });
    // @ts-expect-error — `id` is a number: the trail's target is a string
    channel({ ...base, target: 'id' });
    // @ts-expect-error — carries names input fields
    channel({ ...base, carries: { channel: 'chanel', input: 'name' } });
    expect(named.target).toBe('name');
    expect(typeof computed.target === 'function' && computed.target({ name: 'a', id: 1 })).toBe('a');
  });
});

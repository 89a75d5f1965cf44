import { describe, expect, it } from 'vitest';
import { PolicyRetry, type RetryCaller } from './retry';

const caller = (auth: () => { privateKey: string }): RetryCaller => ({ actor: 'alice', principal: null, roles: ['admin'], sessionRef: 's1', shell: 'cli', auth });

describe('the policy retry', () => {
  it('does nothing until armed, runs with the armed credentials, forgets a session that ended, and stops on disarm', async () => {
    const runs: string[] = [];
    const r = new PolicyRetry({ intervalMs: 0, run: async (c, auth) => void runs.push(`${c.actor}:${(auth as { privateKey: string }).privateKey}`) });
    await r.tick();
    expect(runs).toEqual([]);
    r.arm(caller(() => ({ privateKey: 'k1' })));
    await r.tick();
    expect(runs).toEqual(['alice:k1']);
    // The session ended: its getter throws; the retry disarms itself and stays quiet.
    r.arm(
      caller(() => {
        throw new Error('UNAUTHENTICATED');
      }),
    );
    await r.tick();
    r.arm(caller(() => ({ privateKey: 'k2' })));
    r.disarm();
    await r.tick();
    expect(runs).toEqual(['alice:k1']);
  });

  it('runs one retry at a time, and a failing run does not break the next', async () => {
    let calls = 0;
    let release: () => void = () => {};
    const r = new PolicyRetry({
      intervalMs: 0,
      run: () => {
        calls++;
        if (calls === 2) return Promise.reject(new Error('host gone'));
        return new Promise<void>((res) => (release = res));
      },
    });
    r.arm(caller(() => ({ privateKey: 'k' })));
    const a = r.tick();
    const b = r.tick();
    expect(calls).toBe(1);
    release();
    await Promise.all([a, b]);
    await r.tick();
    expect(calls).toBe(2);
    const c = r.tick();
    release();
    await c;
    expect(calls).toBe(3);
  });
});

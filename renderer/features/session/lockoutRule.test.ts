import { describe, expect, it } from 'vitest';
import { lockoutRuleText, spokenSeconds } from './lockoutRule';

describe('the lockout rule in words', () => {
  it('states the default numbers', () => {
    const t = lockoutRuleText({ threshold: 5, baseSeconds: 30, maxSeconds: 900, thisMachine: { burst: 20, everySeconds: 30 } });
    expect(t.account).toMatch(/^After 5 wrong passwords \(or codes\) an account is locked for 30 s; each further one doubles the lock, up to 15 min\./);
    expect(t.machine).toMatch(/after 20 failures in a row, one more every 30 s\./);
  });

  it('follows other configured numbers, and says nothing of doubling when the lock cannot grow', () => {
    const t = lockoutRuleText({ threshold: 1, baseSeconds: 3600, maxSeconds: 3600, thisMachine: { burst: 4, everySeconds: 3600 } });
    expect(t.account).toMatch(/^After 1 wrong password \(or code\) an account is locked for 1 h\. The lock/);
    expect(t.machine).toMatch(/after 4 failures in a row, one more every 1 h\./);
  });

  it('speaks durations', () => {
    expect([0, 1, 59, 60, 90, 900, 3600, 5400, 86400].map(spokenSeconds)).toEqual(['0 s', '1 s', '59 s', '1 min', '1 min 30 s', '15 min', '1 h', '1 h 30 min', '24 h']);
  });
});

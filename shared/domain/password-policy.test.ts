import { describe, expect, it } from 'vitest';
import { PASSWORD_MAX, PASSWORD_MIN, passwordProblem } from './password-policy';

describe('the password policy', () => {
  it('accepts long, uncommon passwords and passphrases', () => {
    for (const p of ['correct horse battery staple', 'a long enough password', 'Tr0ub4dor&3-and-more', 'x'.repeat(3) + 'yz-93kd.lq2!']) {
      expect(passwordProblem(p, 'alice'), p).toBeNull();
    }
    expect(passwordProblem('é'.repeat(6) + 'ütf8-pass!', 'bob')).toBeNull();
  });

  it('refuses too short and too long, counting characters rather than UTF-16 units', () => {
    expect(passwordProblem('short pass', 'alice')).toBe(`Use at least ${PASSWORD_MIN} characters (this one has 10).`);
    expect(passwordProblem('🔑'.repeat(11), 'alice')).toMatch(/at least 12 characters \(this one has 11\)/);
    expect(passwordProblem('y'.repeat(PASSWORD_MAX) + 'z', 'alice')).toMatch(/at most 256 characters/);
  });

  it('refuses the user name, in any case, with or without a few characters added', () => {
    expect(passwordProblem('Administrator_bob', 'administrator_bob')).toMatch(/user name/);
    expect(passwordProblem('administrator_bob1', 'administrator_bob')).toMatch(/user name/);
    expect(passwordProblem('a much longer passphrase with alice in it', 'alice')).toBeNull();
  });

  it('refuses the most common passwords, common words with digits added, patterns and runs', () => {
    for (const p of ['password1234', 'Password123456', 'qwerty123456', '1q2w3e4r5t6y', 'iloveyou1234', 'P@ssw0rd1234', 'letmein!!!!!', 'Welcome2026!!']) {
      expect(passwordProblem(p, 'alice'), p).toMatch(/common/);
    }
    expect(passwordProblem('abcabcabcabc', 'alice')).toMatch(/pattern/);
    expect(passwordProblem('zzzzzzzzzzzz', 'alice')).toMatch(/pattern/);
    expect(passwordProblem('3456789012345', 'alice')).toMatch(/consecutive/);
    expect(passwordProblem('lkjhgfdsapoiu', 'alice')).toMatch(/consecutive/);
  });
});

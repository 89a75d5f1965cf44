import type { LockoutRule } from '../../../shared/contract/session';

/** Whole seconds as people say them: `30 s`, `15 min`, `1 h 30 min`. */
export function spokenSeconds(total: number): string {
  const s = Math.max(0, Math.round(total));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  const m = Math.round(s / 60);
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * The lockout rule in words, from the numbers the core applies (session:status.lockout), never
 * from constants of the renderer's own: the Account page must state what actually happens.
 */
export function lockoutRuleText(rule: LockoutRule): { account: string; machine: string } {
  const grows = rule.maxSeconds > rule.baseSeconds;
  return {
    account:
      `After ${plural(rule.threshold, 'wrong password (or code)', 'wrong passwords (or codes)')} an account is locked for ${spokenSeconds(rule.baseSeconds)}` +
      (grows ? `; each further one doubles the lock, up to ${spokenSeconds(rule.maxSeconds)}.` : '.') +
      ' The lock holds in every window, browser and the CLI; an administrator can lift it (Users → Unlock).' +
      " One person's typos lock only their own account, never the person signed in beside them.",
    machine:
      `Sign-ins from this machine together (every account, known or not): after ${plural(rule.thisMachine.burst, 'failure', 'failures')} in a row, ` +
      `one more every ${spokenSeconds(rule.thisMachine.everySeconds)}. Another machine is locked on its own like an account.`,
  };
}

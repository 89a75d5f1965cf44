import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { ShellKind } from '../types';

export interface LockoutPolicy {
  /** Failures before the first lock. */
  threshold: number;
  /** The first lock; each further failure doubles it… */
  baseMs: number;
  /** …up to this. */
  maxMs: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = { threshold: 5, baseMs: 30_000, maxMs: 15 * 60_000 };

/** Failures older than this (with no lock running) are forgotten. */
const FORGET_MS = 24 * 60 * 60_000;

export const userKey = (name: string) => `user:${name}`;
export const sourceKey = (shell: string, source: string) => `source:${shell}:${source}`;
/**
 * Every failed sign-in from this machine, whatever the account: a leaky bucket, so guessing many
 * user names from here is not free, while nobody is locked out by other people's typos.
 */
export const MACHINE_KEY = 'machine:this';

/**
 * The rate limit on failed sign-ins from this machine, derived from the policy: a burst of
 * 4 × threshold failures (four people each locking their own account stay below it), then one
 * more per `baseMs` (the first lock's length): with the defaults 20, then 2 a minute.
 */
export function machineLimit(p: LockoutPolicy): { burst: number; everyMs: number } {
  return { burst: 4 * p.threshold, everyMs: p.baseMs };
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/;

/**
 * Whether a client is on this machine: an Electron window, a CLI process, or the browser shell's
 * peer when it is a loopback address (every browser tab is 127.0.0.1). Anything else — a source
 * that is not a loopback address — counts as another machine, which gets a lock of its own.
 */
export function isThisMachine(shell: ShellKind, source: string): boolean {
  if (shell === 'electron' || shell === 'cli') return true;
  return LOOPBACK.test(source);
}

/**
 * The throttle keys of a credential check by `client` on account `name`: always the account; then
 * either this machine's bucket (sign-in only: `machine` true) or, for another machine, its source.
 * Threat answered: one person's typos in one browser tab locked every tab (all 127.0.0.1) out.
 */
export function throttleKeys(client: { shell: ShellKind; source: string }, name: string, opts: { machine: boolean }): string[] {
  if (!isThisMachine(client.shell, client.source)) return [userKey(name), sourceKey(client.shell, client.source)];
  return opts.machine ? [userKey(name), MACHINE_KEY] : [userKey(name)];
}

interface Row {
  key: string;
  failures: number;
  locked_until: number;
  last_failure_at: number;
}

/**
 * Sign-in throttling, stored in the database so every shell on this installation — and every
 * one-shot CLI process — counts the same failures:
 * - per account name (`user:NAME`): exponential back-off after `threshold` failures, from every
 *   source. Unknown user names are throttled exactly like known ones, so neither a lockout nor its
 *   message says which names exist;
 * - per source (`source:SHELL:SOURCE`) only for another machine, with the same back-off;
 * - this machine's failed sign-ins together ({@link MACHINE_KEY}): a leaky bucket
 *   ({@link machineLimit}), a rate limit rather than a lock, so guessing names from here costs time.
 */
export class Throttle {
  constructor(private readonly deps: { db: Db; now: () => number; policy: LockoutPolicy }) {}

  /** The lock that ends last among `keys`, if any is running. */
  locked(keys: readonly string[]): { key: string; until: number } | null {
    const now = this.deps.now();
    let worst: { key: string; until: number } | null = null;
    for (const key of keys) {
      const row = this.deps.db.prepare('SELECT * FROM auth_throttle WHERE key = ?').get(key) as Row | undefined;
      if (row && row.locked_until > now && (!worst || row.locked_until > worst.until)) worst = { key, until: row.locked_until };
    }
    return worst;
  }

  /** Throws LOCKED_OUT, saying when to retry, while any of `keys` is locked. Checking is not a failure. */
  assertOpen(keys: readonly string[]): void {
    const lock = this.locked(keys);
    if (lock) throw this.lockedError(lock, null);
  }

  /**
   * Counts one failure against every key. Returns the LOCKED_OUT error to throw when this failure
   * starts (or extends) a lock, else null (the caller throws its own BAD_CREDENTIALS).
   */
  fail(keys: readonly string[], what: string): AirlockError | null {
    const now = this.deps.now();
    const { threshold, baseMs, maxMs } = this.deps.policy;
    const machine = machineLimit(this.deps.policy);
    let lock: { key: string; until: number } | null = null;
    this.deps.db
      .transaction(() => {
        this.deps.db.prepare('DELETE FROM auth_throttle WHERE last_failure_at < ? AND locked_until < ?').run(now - FORGET_MS, now);
        for (const key of keys) {
          const row = this.deps.db.prepare('SELECT * FROM auth_throttle WHERE key = ?').get(key) as Row | undefined;
          let failures = (row?.failures ?? 0) + 1;
          let lockedUntil = row?.locked_until ?? 0;
          if (key === MACHINE_KEY) {
            // Leaky bucket: one failure leaks out per everyMs since the last one; full = wait for one to leak.
            const leaked = row ? Math.floor((now - row.last_failure_at) / machine.everyMs) : 0;
            failures = Math.max(0, (row?.failures ?? 0) - leaked) + 1;
            if (failures >= machine.burst) {
              lockedUntil = now + (failures - machine.burst + 1) * machine.everyMs;
              if (!lock || lockedUntil > lock.until) lock = { key, until: lockedUntil };
            }
          } else if (failures >= threshold) {
            lockedUntil = now + Math.min(baseMs * 2 ** (failures - threshold), maxMs);
            if (!lock || lockedUntil > lock.until) lock = { key, until: lockedUntil };
          }
          this.deps.db
            .prepare(
              `INSERT INTO auth_throttle (key, failures, locked_until, last_failure_at) VALUES (?, ?, ?, ?)
               ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until,
                 last_failure_at = excluded.last_failure_at`,
            )
            .run(key, failures, lockedUntil, now);
        }
      })
      .immediate();
    return lock ? this.lockedError(lock, what) : null;
  }

  /**
   * A successful sign-in forgets the failures of its user name and its source; not this machine's
   * bucket, which only time (or an administrator) empties: one's own account must not buy an
   * attacker more guesses at other names.
   */
  succeed(keys: readonly string[]): void {
    for (const key of keys) if (key !== MACHINE_KEY) this.clear(key);
  }

  /**
   * An administrator's unlock: empties this machine's bucket, and lifts loopback source locks
   * written before sources on this machine stopped being locked (issue 11). Remote sources stay locked.
   */
  clearLoopbackSources(): void {
    this.deps.db
      .prepare(`DELETE FROM auth_throttle WHERE key = ? OR key LIKE 'source:%:127.0.0.1' OR key LIKE 'source:%:::1'`)
      .run(MACHINE_KEY);
  }

  clear(key: string): void {
    this.deps.db.prepare('DELETE FROM auth_throttle WHERE key = ?').run(key);
  }

  /** ISO end of a running lock on one key, for the users list. */
  lockedUntilIso(key: string): string | null {
    const lock = this.locked([key]);
    return lock ? new Date(lock.until).toISOString() : null;
  }

  private lockedError(lock: { key: string; until: number }, what: string | null): AirlockError {
    const seconds = Math.max(1, Math.ceil((lock.until - this.deps.now()) / 1000));
    const who =
      lock.key === MACHINE_KEY
        ? 'on this machine (all accounts together)'
        : lock.key.startsWith('user:')
          ? `for "${lock.key.slice('user:'.length)}"`
          : `from this client (${lock.key.slice('source:'.length)})`;
    return new AirlockError(
      'LOCKED_OUT',
      `${what ? `${what} ` : ''}Too many failed sign-ins ${who}: try again in ${formatWait(seconds)}, after ${new Date(lock.until).toISOString()}.`,
    );
  }
}

function formatWait(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  return `${Math.ceil(seconds / 60)} min`;
}

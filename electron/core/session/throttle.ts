import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';

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

interface Row {
  key: string;
  failures: number;
  locked_until: number;
  last_failure_at: number;
}

/**
 * Sign-in throttling with exponential back-off, per user name and per source (a shell's client
 * address or window), stored in the database so every shell on this installation — and every
 * one-shot CLI process — counts the same failures. Unknown user names are throttled exactly like
 * known ones, so a lockout says nothing about which names exist.
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
    let lock: { key: string; until: number } | null = null;
    this.deps.db
      .transaction(() => {
        this.deps.db.prepare('DELETE FROM auth_throttle WHERE last_failure_at < ? AND locked_until < ?').run(now - FORGET_MS, now);
        for (const key of keys) {
          const row = this.deps.db.prepare('SELECT * FROM auth_throttle WHERE key = ?').get(key) as Row | undefined;
          const failures = (row?.failures ?? 0) + 1;
          let lockedUntil = row?.locked_until ?? 0;
          if (failures >= threshold) {
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

  /** A successful sign-in forgets the failures of its user name and its source. */
  succeed(keys: readonly string[]): void {
    for (const key of keys) this.clear(key);
  }

  /** Lift source locks of loopback clients (the browser shell's tabs all sign in from 127.0.0.1). */
  clearLoopbackSources(): void {
    this.deps.db.prepare(`DELETE FROM auth_throttle WHERE key LIKE 'source:%:127.0.0.1' OR key LIKE 'source:%:::1'`).run();
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
    const who = lock.key.startsWith('user:')
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

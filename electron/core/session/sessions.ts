import { AirlockError } from '../../../shared/domain/errors';
import type { Role } from '../../../shared/domain/roles';
import type { Restriction } from '../../../shared/contract/session';
import type { SessionInfo } from '../types';

interface LiveSession {
  id: string;
  userId: number;
  /** The account identity (users.uid): a later account given the same id or name is not this one. */
  uid: string;
  user: string;
  roles: Role[];
  restriction: Restriction | null;
  vaultKey: Buffer;
  lastActive: number;
  /** When the password (and TOTP) were last proved: sign-in or session:stepUp. */
  authAt: number;
  /** The user's auth_epoch at sign-in: a reset, disable or removal moves it and ends the session. */
  epoch: number;
}

/**
 * The user's current state, read from the database on every call; null ends the session. It must
 * match the account identity (uid), not only the integer id, and the epoch.
 */
export type SessionCheck = (userId: number, uid: string, epoch: number) => { user: string; roles: Role[]; restriction: Restriction | null } | null;

export interface SessionsDeps {
  /** Read on every call, so settings:set takes effect at once. */
  idleMs: () => number;
  stepUpMs: () => number;
  now: () => number;
  random: (n: number) => Buffer;
  check?: SessionCheck;
  /** Called when the last signed-in session of this process ends (sign-out, idle lock, a closed window): the console is locked. */
  onLocked?: () => void;
}

export interface SessionTimes {
  lockAt: number;
  stepUpUntil: number | null;
}

/**
 * Signed-in sessions live only in memory: the unwrapped vault key must not
 * outlive the process, and a restart signs everyone out. Roles and restrictions are
 * re-read from the database on every call, so a change made by another shell
 * (the CLI while `airlock serve` runs) applies at once.
 */
export class Sessions {
  private readonly live = new Map<string, LiveSession>();

  constructor(private readonly opts: SessionsDeps) {}

  open(u: { id: number; uid: string; name: string; roles: Role[]; vaultKey: Buffer; epoch: number; restriction: Restriction | null }): SessionInfo {
    const id = this.opts.random(18).toString('base64url');
    const now = this.opts.now();
    const s: LiveSession = {
      id,
      userId: u.id,
      uid: u.uid,
      user: u.name,
      roles: u.roles,
      restriction: u.restriction,
      vaultKey: u.vaultKey,
      lastActive: now,
      authAt: now,
      epoch: u.epoch,
    };
    this.live.set(id, s);
    return info(s);
  }

  /**
   * The live session for an id, refreshed from the database; expired or revoked sessions are wiped.
   * `touch: false` (status, polling channels) does not count as activity for the idle lock.
   */
  get(id: string | undefined, opts: { touch?: boolean } = {}): SessionInfo | null {
    const s = this.live_(id);
    if (!s) return null;
    if (opts.touch !== false) s.lastActive = this.opts.now();
    return info(s);
  }

  /** The user id behind a live session (for services that act on one's own account). */
  userId(id: string): number {
    return this.mustGet(id).userId;
  }

  /** The account identity behind a live session. */
  uid(id: string): string {
    return this.mustGet(id).uid;
  }

  vaultKey(id: string): Buffer {
    return this.mustGet(id).vaultKey;
  }

  times(id: string | undefined): SessionTimes | null {
    const s = this.live_(id);
    if (!s) return null;
    const until = s.authAt + this.opts.stepUpMs();
    return { lockAt: s.lastActive + this.opts.idleMs(), stepUpUntil: until > this.opts.now() ? until : null };
  }

  /** Whether the session proved its credentials within the step-up window. */
  steppedUp(id: string): boolean {
    const s = this.checked(id);
    return Boolean(s && this.opts.now() - s.authAt <= this.opts.stepUpMs());
  }

  /** After session:stepUp succeeded. Returns the end of the new window (ms). */
  markStepUp(id: string): number {
    const s = this.mustGet(id);
    s.authAt = this.opts.now();
    return s.authAt + this.opts.stepUpMs();
  }

  /** After the user changed their own password: this session stays, their others end. */
  adoptEpoch(id: string, epoch: number): void {
    // Not through the check: the epoch it holds is the one that just moved.
    const s = this.live.get(id);
    if (!s) throw new AirlockError('UNAUTHENTICATED', 'Your session has ended; sign in again.');
    s.epoch = epoch;
  }

  close(id: string): void {
    const s = this.live.get(id);
    if (s) {
      s.vaultKey.fill(0);
      this.live.delete(id);
      if (this.live.size === 0) this.opts.onLocked?.();
    }
  }

  /** Ends every session of a user in this process (other processes notice through the epoch). */
  closeUser(userId: number, exceptId?: string): void {
    for (const s of [...this.live.values()]) if (s.userId === userId && s.id !== exceptId) this.close(s.id);
  }

  closeAll(): void {
    for (const id of [...this.live.keys()]) this.close(id);
  }

  private mustGet(id: string): LiveSession {
    const s = this.checked(id);
    if (!s) throw new AirlockError('UNAUTHENTICATED', 'Your session has ended; sign in again.');
    return s;
  }

  /** The live session, its account checked again (identity, epoch) but its idle clock untouched. */
  private checked(id: string): LiveSession | null {
    const s = this.live.get(id);
    if (!s) return null;
    return this.refresh(s) ? s : null;
  }

  private live_(id: string | undefined): LiveSession | null {
    if (!id) return null;
    const s = this.live.get(id);
    if (!s) return null;
    if (this.opts.now() - s.lastActive > this.opts.idleMs()) {
      this.close(id);
      return null;
    }
    return this.refresh(s) ? s : null;
  }

  private refresh(s: LiveSession): boolean {
    if (!this.opts.check) return true;
    const current = this.opts.check(s.userId, s.uid, s.epoch);
    if (!current) {
      this.close(s.id);
      return false;
    }
    s.user = current.user;
    s.roles = current.roles;
    s.restriction = current.restriction;
    return true;
  }
}

function info(s: LiveSession): SessionInfo {
  return { id: s.id, uid: s.uid, user: s.user, roles: s.roles, restriction: s.restriction };
}

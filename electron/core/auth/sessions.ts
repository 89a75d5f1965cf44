import { AirlockError } from '../../../shared/domain/errors';
import type { Role } from '../../../shared/domain/roles';
import type { SessionInfo } from '../types';

interface LiveSession extends SessionInfo {
  vaultKey: Buffer;
  lastActive: number;
}

/**
 * Signed-in sessions live only in memory: the unwrapped vault key must not
 * outlive the process, and a restart signs everyone out.
 */
export class Sessions {
  private readonly live = new Map<string, LiveSession>();

  constructor(
    private readonly opts: { idleMs: number; now: () => number; random: (n: number) => Buffer },
  ) {}

  open(user: string, roles: Role[], vaultKey: Buffer): SessionInfo {
    const id = this.opts.random(18).toString('base64url');
    const s: LiveSession = { id, user, roles, vaultKey, lastActive: this.opts.now() };
    this.live.set(id, s);
    return { id, user, roles };
  }

  /** The live session for an id, touching its idle timer; expired sessions are wiped. */
  get(id: string | undefined): SessionInfo | null {
    if (!id) return null;
    const s = this.live.get(id);
    if (!s) return null;
    if (this.opts.now() - s.lastActive > this.opts.idleMs) {
      this.close(id);
      return null;
    }
    s.lastActive = this.opts.now();
    return { id: s.id, user: s.user, roles: s.roles };
  }

  vaultKey(id: string): Buffer {
    const s = this.live.get(id);
    if (!s) throw new AirlockError('UNAUTHENTICATED', 'Your session has ended; sign in again.');
    return s.vaultKey;
  }

  close(id: string): void {
    const s = this.live.get(id);
    if (s) {
      s.vaultKey.fill(0);
      this.live.delete(id);
    }
  }

  closeAll(): void {
    for (const id of [...this.live.keys()]) this.close(id);
  }
}

import type { SshConnection } from './connection/types';

/**
 * Keeps authenticated SSH connections for a short while after use, so that a scan followed by a
 * plan followed by an apply costs each host one handshake instead of three (Ansible does the same
 * with OpenSSH's ControlPersist, 60 s by default). A connection is lent to one operation at a time
 * (never shared by two), and comes back to the pool only when it is known to be clean:
 *
 * - only `exec` was used through the lease, and every exec settled normally and before the lease
 *   ended (a timed-out or cancelled exec may leave its channel open);
 * - no SFTP session, tunnel or shell was opened through it (those have state on the host);
 * - the connection is still up.
 *
 * Anything else closes it. Idle connections close after `idleMs`, and all of them with
 * {@link ConnectionPool.drain} (at exit, when a host is removed or its key re-pinned). The key
 * names everything the connection was made with (address, port, user, pinned key, our identity),
 * so a changed pin or identity never reuses an old connection.
 */
export class ConnectionPool {
  private readonly idle = new Map<string, Pooled[]>();
  /** Connections made, and leases served from an idle one (for tests and the bench). */
  opened = 0;
  reused = 0;

  constructor(private readonly opts: { idleMs: number; maxIdlePerKey?: number; maxAgeMs?: number; now?: () => number }) {}

  get enabled(): boolean {
    return this.opts.idleMs > 0;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /**
   * An idle connection for `key`, or a new one from `open` (always a new one with `fresh`: a scan
   * proves the host answers and shows its pinned key now). Close the lease to give it back.
   */
  async lease(key: string, open: () => Promise<SshConnection>, opts: { fresh?: boolean } = {}): Promise<SshConnection> {
    const list = opts.fresh ? undefined : this.idle.get(key);
    while (list?.length) {
      const p = list.pop()!;
      if (list.length === 0) this.idle.delete(key);
      if (p.timer) clearTimeout(p.timer);
      p.timer = null;
      if (!p.conn.closed) {
        this.reused++;
        return new Lease(p, (clean) => this.giveBack(p, clean));
      }
    }
    const conn = await open();
    this.opened++;
    const p: Pooled = { key, conn, born: this.now(), timer: null, lease: null };
    // One listener per connection, for its whole life: a connection the host closes leaves the
    // pool at once, and the lease holding it (if any) hears of it.
    conn.onClose(() => {
      this.unidle(p);
      p.lease?.lost();
    });
    return new Lease(p, (clean) => this.giveBack(p, clean));
  }

  /** Idle connections held now (for tests). */
  idleCount(key?: string): number {
    if (key !== undefined) return this.idle.get(key)?.length ?? 0;
    let n = 0;
    for (const l of this.idle.values()) n += l.length;
    return n;
  }

  /** Close idle connections: all of them, or those whose key starts with `prefix`. */
  drain(prefix = ''): void {
    for (const [key, list] of [...this.idle]) {
      if (!key.startsWith(prefix)) continue;
      this.idle.delete(key);
      for (const p of list) {
        if (p.timer) clearTimeout(p.timer);
        p.timer = null;
        p.conn.close();
      }
    }
  }

  private unidle(p: Pooled): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    const l = this.idle.get(p.key);
    const i = l?.indexOf(p) ?? -1;
    if (l && i >= 0) {
      l.splice(i, 1);
      if (l.length === 0) this.idle.delete(p.key);
    }
  }

  private giveBack(p: Pooled, clean: boolean): void {
    p.lease = null;
    const list = this.idle.get(p.key) ?? [];
    const old = this.now() - p.born >= (this.opts.maxAgeMs ?? 10 * 60_000);
    if (!clean || old || p.conn.closed || !this.enabled || list.length >= (this.opts.maxIdlePerKey ?? 4)) {
      p.conn.close();
      return;
    }
    p.timer = setTimeout(() => {
      this.unidle(p);
      p.conn.close();
    }, this.opts.idleMs);
    p.timer.unref();
    list.push(p);
    this.idle.set(p.key, list);
  }
}

interface Pooled {
  key: string;
  conn: SshConnection;
  born: number;
  timer: NodeJS.Timeout | null;
  lease: Lease | null;
}

/** One operation's use of a pooled connection; `close()` hands it back (or closes it when not clean). */
class Lease implements SshConnection {
  private done = false;
  private clean = true;
  private running = 0;
  private readonly closeCbs: Array<() => void> = [];
  private readonly conn: SshConnection;

  constructor(
    p: Pooled,
    private readonly release: (clean: boolean) => void,
  ) {
    this.conn = p.conn;
    p.lease = this;
  }

  /** The connection went while this lease held it. */
  lost(): void {
    if (this.done) return;
    for (const cb of this.closeCbs.splice(0)) cb();
  }

  get fingerprint() {
    return this.conn.fingerprint;
  }

  get label() {
    return this.conn.label;
  }

  get closed() {
    return this.done || this.conn.closed;
  }

  private live(): SshConnection {
    if (this.done) throw new Error('This connection was already handed back.');
    return this.conn;
  }

  async exec(...args: Parameters<SshConnection['exec']>) {
    const conn = this.live();
    this.running++;
    try {
      return await conn.exec(...args);
    } catch (e) {
      this.clean = false;
      throw e;
    } finally {
      this.running--;
    }
  }

  shell(...args: Parameters<SshConnection['shell']>) {
    this.clean = false;
    return this.live().shell(...args);
  }

  sftp(...args: Parameters<SshConnection['sftp']>) {
    this.clean = false;
    return this.live().sftp(...args);
  }

  forwardOut(...args: Parameters<SshConnection['forwardOut']>) {
    this.clean = false;
    return this.live().forwardOut(...args);
  }

  onClose(cb: () => void) {
    if (this.closed) cb();
    else this.closeCbs.push(cb);
  }

  close() {
    if (this.done) return;
    this.done = true;
    this.closeCbs.length = 0;
    // An exec still running when the lease ends keeps its channel: not clean.
    this.release(this.clean && this.running === 0);
  }
}

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SshConnection } from './connection/types';
import { ConnectionPool } from './pool';

/** The pool's bookkeeping only: a stand-in connection that records what was done to it. */
function fakeConn(name: string) {
  const closeCbs: Array<() => void> = [];
  let closed = false;
  let failNext = false;
  const conn = {
    fingerprint: 'SHA256:x',
    label: name,
    get closed() {
      return closed;
    },
    closes: 0,
    async exec() {
      if (failNext) {
        failNext = false;
        throw new Error('timed out');
      }
      return { code: 0, signal: null, stdout: name, stderr: '', truncated: false };
    },
    async shell() {
      throw new Error('not here');
    },
    async sftp() {
      return {} as never;
    },
    async forwardOut() {
      return {} as never;
    },
    onClose(cb: () => void) {
      closeCbs.push(cb);
    },
    close() {
      if (closed) return;
      closed = true;
      conn.closes++;
      for (const cb of closeCbs) cb();
    },
    /** The host ends the connection. */
    drop() {
      conn.close();
    },
    failNextExec() {
      failNext = true;
    },
    listeners: () => closeCbs.length,
  };
  return conn;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ConnectionPool', () => {
  it('reuses a clean connection for the next lease of the same key, and never for another key', async () => {
    const pool = new ConnectionPool({ idleMs: 30_000 });
    const a = fakeConn('a');
    const l1 = await pool.lease('k', async () => a as unknown as SshConnection);
    await l1.exec('true', { timeoutMs: 1000 });
    l1.close();
    expect(pool.idleCount('k')).toBe(1);
    const l2 = await pool.lease('k', async () => fakeConn('b') as unknown as SshConnection);
    expect((await l2.exec('x', { timeoutMs: 1000 })).stdout).toBe('a');
    const other = await pool.lease('k2', async () => fakeConn('c') as unknown as SshConnection);
    expect((await other.exec('x', { timeoutMs: 1000 })).stdout).toBe('c');
    expect(pool.opened).toBe(2);
    expect(pool.reused).toBe(1);
    // One close listener per connection however often it is lent.
    for (let i = 0; i < 50; i++) (await pool.lease('k', async () => fakeConn('z') as unknown as SshConnection)).close();
    expect(a.listeners()).toBe(1);
    expect(a.closes).toBe(0);
  });

  it('a handed-back lease cannot be used, and is not lent twice at once', async () => {
    const pool = new ConnectionPool({ idleMs: 30_000 });
    const a = fakeConn('a');
    const l1 = await pool.lease('k', async () => a as unknown as SshConnection);
    const l2 = await pool.lease('k', async () => fakeConn('b') as unknown as SshConnection);
    expect((await l2.exec('x', { timeoutMs: 1000 })).stdout).toBe('b');
    l1.close();
    expect(l1.closed).toBe(true);
    await expect(l1.exec('x', { timeoutMs: 1000 })).rejects.toThrow(/handed back/);
  });

  it('closes instead of keeping: a failed exec, an SFTP session, a tunnel, an exec still running', async () => {
    const pool = new ConnectionPool({ idleMs: 30_000 });
    const failed = fakeConn('f');
    const l1 = await pool.lease('k', async () => failed as unknown as SshConnection);
    failed.failNextExec();
    await expect(l1.exec('x', { timeoutMs: 1 })).rejects.toThrow();
    l1.close();
    expect(failed.closes).toBe(1);

    const s = fakeConn('s');
    const l2 = await pool.lease('k', async () => s as unknown as SshConnection);
    await l2.sftp();
    l2.close();
    expect(s.closes).toBe(1);

    const t = fakeConn('t');
    const l3 = await pool.lease('k', async () => t as unknown as SshConnection);
    await l3.forwardOut('127.0.0.1', 80);
    l3.close();
    expect(t.closes).toBe(1);

    const r = fakeConn('r');
    const l4 = await pool.lease('k', async () => r as unknown as SshConnection);
    const running = l4.exec('sleep', { timeoutMs: 1000 });
    l4.close();
    await running;
    expect(r.closes).toBe(1);
    expect(pool.idleCount()).toBe(0);
  });

  it('closes idle connections after idleMs, at drain, past maxAge, and drops one the host closed', async () => {
    vi.useFakeTimers();
    let now = 0;
    const pool = new ConnectionPool({ idleMs: 1000, maxAgeMs: 10_000, now: () => now });
    const a = fakeConn('a');
    (await pool.lease('h1\0x', async () => a as unknown as SshConnection)).close();
    vi.advanceTimersByTime(999);
    expect(a.closes).toBe(0);
    vi.advanceTimersByTime(2);
    expect(a.closes).toBe(1);
    expect(pool.idleCount()).toBe(0);

    const b = fakeConn('b');
    const c = fakeConn('c');
    (await pool.lease('h1\0x', async () => b as unknown as SshConnection)).close();
    (await pool.lease('h2\0x', async () => c as unknown as SshConnection)).close();
    pool.drain('h1\0');
    expect(b.closes).toBe(1);
    expect(c.closes).toBe(0);

    c.drop();
    expect(pool.idleCount()).toBe(0);
    // A new lease after the host dropped it makes a new connection.
    const d = fakeConn('d');
    const l = await pool.lease('h2\0x', async () => d as unknown as SshConnection);
    expect((await l.exec('x', { timeoutMs: 1 })).stdout).toBe('d');
    now = 10_000;
    l.close();
    expect(d.closes).toBe(1); // too old to keep
  });

  it('fresh leases always connect, and are kept afterwards; idleMs 0 keeps nothing', async () => {
    const pool = new ConnectionPool({ idleMs: 30_000 });
    const a = fakeConn('a');
    (await pool.lease('k', async () => a as unknown as SshConnection)).close();
    const b = fakeConn('b');
    const l = await pool.lease('k', async () => b as unknown as SshConnection, { fresh: true });
    expect((await l.exec('x', { timeoutMs: 1 })).stdout).toBe('b');
    l.close();
    expect(pool.idleCount('k')).toBe(2);

    const off = new ConnectionPool({ idleMs: 0 });
    const e = fakeConn('e');
    (await off.lease('k', async () => e as unknown as SshConnection)).close();
    expect(e.closes).toBe(1);
  });

  it('a lease hears when its connection is lost, and its own listeners do not outlive it', async () => {
    const pool = new ConnectionPool({ idleMs: 30_000 });
    const a = fakeConn('a');
    const l1 = await pool.lease('k', async () => a as unknown as SshConnection);
    const heard: string[] = [];
    l1.onClose(() => heard.push('l1'));
    l1.close();
    const l2 = await pool.lease('k', async () => fakeConn('b') as unknown as SshConnection);
    l2.onClose(() => heard.push('l2'));
    a.drop();
    expect(heard).toEqual(['l2']);
    expect(l2.closed).toBe(true);
  });
});

/**
 * The SSH layer against a real OpenSSH sshd started here, on 127.0.0.x and a high port.
 * No mocks: every assertion about what was (not) sent is checked in sshd's own VERBOSE log.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { connect, probeHostKey } from './connection/connect';
import type { SshConnection } from './connection/types';
import { generateIdentity } from '../identity/ssh-key';
import { rejection } from '../../../test/support/errors';

const SSHD = '/usr/sbin/sshd';
/** For ordinary connects and commands: generous, as these 2-core machines run other suites at once. */
const T = 20_000;
const canRun = process.getuid?.() === 0 && existsSync(SSHD);

interface HostKey {
  path: string;
  type: string;
  fingerprint: string;
}

interface Sshd {
  address: string;
  port: number;
  dir: string;
  keys: HostKey[];
  proc: ChildProcess;
  log(): string;
  /** Kill the listener and every session process it forked (they live in their own sessions). */
  kill(): void;
}

const started: Sshd[] = [];
const tempDirs: string[] = [];
const servers: net.Server[] = [];

function keygenFingerprint(pubFile: string): string {
  return execFileSync('ssh-keygen', ['-lf', pubFile], { encoding: 'utf8' }).split(' ')[1]!;
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function killTree(pid: number | undefined): void {
  if (!pid) return;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function startSshd(opts: { authorizedKeys: string[]; keyTypes?: string[] }): Promise<Sshd> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'airlock-sshd-'));
  tempDirs.push(dir);
  chmodSync(dir, 0o755);
  const keys: HostKey[] = (opts.keyTypes ?? ['ed25519']).map((t) => {
    const path = join(dir, `host_${t}`);
    execFileSync('ssh-keygen', ['-q', '-t', t, '-N', '', '-C', 'test-host', '-f', path]);
    const type = readFileSync(`${path}.pub`, 'utf8').split(' ')[0]!;
    return { path, type, fingerprint: keygenFingerprint(`${path}.pub`) };
  });
  writeFileSync(join(dir, 'authorized_keys'), opts.authorizedKeys.join('\n') + '\n', { mode: 0o600 });
  mkdirSync(join(dir, 'home'));
  const logFile = join(dir, 'sshd.log');
  for (let attempt = 0; attempt < 5; attempt++) {
    const address = `127.0.0.${randomInt(2, 250)}`;
    const port = await freePort(address);
    const cfg = join(dir, 'sshd_config');
    writeFileSync(
      cfg,
      [
        `ListenAddress ${address}:${port}`,
        `PidFile ${dir}/sshd.pid`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        'PrintMotd no',
        'PrintLastLog no',
        'AcceptEnv none',
        // Sessions get a HOME of their own: the test machine's dotfiles (slow rc files, shell
        // history) are neither read nor written by the commands and the PTY run here.
        `SetEnv HOME=${dir}/home HISTFILE=/dev/null`,
      ].join('\n') + '\n',
    );
    writeFileSync(logFile, '');
    const args = ['-D', '-f', cfg, ...keys.flatMap((k) => ['-h', k.path]), '-E', logFile, '-o', 'LogLevel=VERBOSE'];
    const proc = spawn(SSHD, args, { stdio: 'ignore' });
    let exited = false;
    proc.on('exit', () => (exited = true));
    const log = () => readFileSync(logFile, 'utf8');
    try {
      await waitFor(() => exited || log().includes(`Server listening on ${address} port ${port}`), 5000, 'sshd to listen');
    } catch {
      killTree(proc.pid);
    }
    if (exited || !log().includes('Server listening')) continue; // most likely the port was taken meanwhile
    const sshd: Sshd = { address, port, dir, keys, proc, log, kill: () => killTree(proc.pid) };
    started.push(sshd);
    return sshd;
  }
  throw new Error(`sshd did not start: ${readFileSync(logFile, 'utf8')}`);
}

/** A TCP listener that accepts and never says a word: an SSH client must give up on its own. */
async function silentListener(): Promise<{ port: number; address: string; accepted: () => number; closed: () => number }> {
  const address = `127.0.0.${randomInt(2, 250)}`;
  let accepted = 0;
  let closed = 0;
  const server = net.createServer((sock) => {
    accepted++;
    // Read (and drop) what arrives: a paused socket would never notice the peer closing.
    sock.resume();
    sock.on('error', () => {});
    sock.on('close', () => closed++);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, address, r));
  return { port: (server.address() as net.AddressInfo).port, address, accepted: () => accepted, closed: () => closed };
}

/**
 * The log lines of the one connection that started after `offset`, once sshd has logged its end.
 * Lines are picked by the client's source port, so a late line of an earlier connection never counts.
 */
async function connectionLog(s: Sshd, offset: number): Promise<string[]> {
  let port = '';
  await waitFor(() => {
    const m = /^Connection from \S+ port (\d+) on /m.exec(s.log().slice(offset));
    port = m?.[1] ?? '';
    return !!port;
  }, 3000, 'the connection in the sshd log');
  const mine = () => s.log().slice(offset).split('\n').filter((l) => new RegExp(`port ${port}\\b`).test(l));
  await waitFor(() => mine().some((l) => /Disconnected from|Connection closed|Connection reset/.test(l)), 3000, 'the end of the connection in the sshd log');
  return mine();
}

/** sshd log lines that only appear once a client has started user authentication. */
const AUTH_LINE = /Accepted|Failed |Postponed|Invalid user|authenticating user|userauth|publickey|input_userauth/i;

const identity = generateIdentity('airlock-integration');
const stranger = generateIdentity('not-authorized');
let sshd: Sshd;

afterAll(() => {
  for (const s of started) s.kill();
  for (const s of servers) s.close();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!canRun)('ssh connection against a real sshd', () => {
  beforeAll(async () => {
    sshd = await startSshd({ authorizedKeys: [identity.publicKey] });
  });

  const target = (fingerprint: string | null, extra: Record<string, unknown> = {}) => ({
    address: sshd.address,
    port: sshd.port,
    user: 'root',
    fingerprint,
    hostName: 'lab-1',
    ...extra,
  });

  it('probe returns the fingerprint ssh-keygen -lf gives for the host key, and never authenticates', async () => {
    const before = sshd.log().length;
    const key = await probeHostKey(sshd.address, sshd.port, { timeoutMs: T });
    expect(key).toEqual({ fingerprint: sshd.keys[0]!.fingerprint, keyType: 'ssh-ed25519' });
    const lines = await connectionLog(sshd, before);
    expect(lines.join('\n')).not.toMatch(AUTH_LINE);
  });

  it('connects with the pinned key and a generated identity; exec returns stdout, stderr and exit code', async () => {
    const before = sshd.log().length;
    const conn = await connect(target(sshd.keys[0]!.fingerprint), { privateKey: identity.privateKey }, { timeoutMs: T });
    try {
      expect(conn.fingerprint).toBe(sshd.keys[0]!.fingerprint);
      const r = await conn.exec('echo out; echo err >&2; exit 3', { timeoutMs: T });
      expect(r).toEqual({ code: 3, signal: null, stdout: 'out\n', stderr: 'err\n', truncated: false });

      const many = await Promise.all([1, 2, 3, 4, 5].map((i) => conn.exec(`echo ${i}`, { timeoutMs: T })));
      expect(many.map((m) => m.stdout)).toEqual(['1\n', '2\n', '3\n', '4\n', '5\n']);

      expect((await conn.exec('cat', { timeoutMs: T, stdin: 'from stdin' })).stdout).toBe('from stdin');
      // A command that reads stdin must not hang when none is given.
      expect((await conn.exec('cat; echo done', { timeoutMs: T })).stdout).toBe('done\n');

      const big = await conn.exec('head -c 300000 /dev/zero | tr "\\0" a; echo tail >&2', { timeoutMs: T, maxOutputBytes: 1000 });
      expect(big).toMatchObject({ code: 0, truncated: true, stderr: 'tail\n' });
      expect(big.stdout).toBe('a'.repeat(1000));

      const killed = await conn.exec('kill -TERM $$', { timeoutMs: T });
      expect(killed).toMatchObject({ code: null, signal: 'SIGTERM' });
    } finally {
      conn.close();
    }
    // The positive control for the "nothing was sent" checks: a real login does show up.
    await waitFor(() => /Accepted publickey for root/.test(sshd.log().slice(before)), 3000, 'the login in the log');
  });

  it('refuses a changed host key: HOST_KEY_CHANGED names both fingerprints, and sshd saw no authentication', async () => {
    const wrongPin = generateIdentity('other').fingerprint;
    const before = sshd.log().length;
    const err = await rejection(connect(target(wrongPin), { privateKey: identity.privateKey }, { timeoutMs: T }));
    expect(err.code).toBe('HOST_KEY_CHANGED');
    expect(err.message).toBe(
      `Host key for lab-1 (${sshd.address}:${sshd.port}) changed: pinned ${wrongPin}, presented ${sshd.keys[0]!.fingerprint}. Refusing to connect; nothing was sent.`,
    );
    const lines = await connectionLog(sshd, before);
    expect(lines.join('\n')).not.toMatch(AUTH_LINE);
    expect(lines.join('\n')).not.toContain('root');
    // The client gave up during key exchange: sshd logs a disconnect before any user is known.
    expect(lines.some((l) => /disconnect.*\[preauth\]/i.test(l))).toBe(true);
  });

  it('refuses an unconfirmed host without even opening a TCP connection', async () => {
    const l = await silentListener();
    const err = await rejection(
      connect({ address: l.address, port: l.port, user: 'root', fingerprint: null, hostName: 'new-host' }, { privateKey: identity.privateKey }, { timeoutMs: 2000 }),
    );
    expect(err.code).toBe('HOST_KEY_UNCONFIRMED');
    expect(err.message).toContain('new-host');
    await sleep(200);
    expect(l.accepted()).toBe(0);
  });

  it('reports a port nobody listens on as HOST_UNREACHABLE', async () => {
    const address = `127.0.0.${randomInt(2, 250)}`;
    const port = await freePort(address);
    const e1 = await rejection(connect({ address, port, user: 'root', fingerprint: sshd.keys[0]!.fingerprint }, { privateKey: identity.privateKey }, { timeoutMs: 3000 }));
    expect(e1.code).toBe('HOST_UNREACHABLE');
    expect(e1.message).toContain('connection refused');
    const e2 = await rejection(probeHostKey(address, port, { timeoutMs: 3000 }));
    expect(e2.code).toBe('HOST_UNREACHABLE');
  });

  it('gives up on a listener that never speaks SSH with TIMEOUT, within the timeout', async () => {
    const l = await silentListener();
    let t = Date.now();
    const e1 = await rejection(connect({ address: l.address, port: l.port, user: 'root', fingerprint: sshd.keys[0]!.fingerprint }, { privateKey: identity.privateKey }, { timeoutMs: 700 }));
    expect(e1.code).toBe('TIMEOUT');
    expect(Date.now() - t).toBeGreaterThanOrEqual(650);
    expect(Date.now() - t).toBeLessThan(1500);
    t = Date.now();
    const e2 = await rejection(probeHostKey(l.address, l.port, { timeoutMs: 700 }));
    expect(e2.code).toBe('TIMEOUT');
    expect(Date.now() - t).toBeLessThan(1500);
    await waitFor(() => l.closed() === 2, 2000, 'both sockets to be closed');
  });

  it('cancels mid-connect with CANCELLED and destroys the socket', async () => {
    const l = await silentListener();
    const ac = new AbortController();
    const t = Date.now();
    const p = connect({ address: l.address, port: l.port, user: 'root', fingerprint: sshd.keys[0]!.fingerprint }, { privateKey: identity.privateKey }, { timeoutMs: 10_000, signal: ac.signal });
    await waitFor(() => l.accepted() === 1, 2000, 'the TCP connection');
    ac.abort();
    const err = await rejection(p);
    expect(err.code).toBe('CANCELLED');
    expect(Date.now() - t).toBeLessThan(2000);
    await waitFor(() => l.closed() === 1, 2000, 'the socket to be closed');

    const pre = new AbortController();
    pre.abort();
    expect((await rejection(probeHostKey(l.address, l.port, { timeoutMs: T, signal: pre.signal }))).code).toBe('CANCELLED');
    expect((await rejection(connect(target(sshd.keys[0]!.fingerprint), {}, { timeoutMs: T, signal: pre.signal }))).code).toBe('CANCELLED');
    await sleep(100);
    expect(l.accepted()).toBe(1);
  });

  it('reports a peer that is not an SSH server as SSH_ERROR, with its text neutralised', async () => {
    const address = `127.0.0.${randomInt(2, 250)}`;
    const rude = net.createServer((sock) => {
      sock.on('error', () => {});
      sock.end('SSH-2.0-\u001b]0;pwned\u0007evil\u001b[2J\r\n' + '\u0000\u0000\u0000\u0010\u0004garbage-garbage!');
    });
    servers.push(rude);
    await new Promise<void>((r) => rude.listen(0, address, r));
    const port = (rude.address() as net.AddressInfo).port;
    const e1 = await rejection(probeHostKey(address, port, { timeoutMs: T }));
    expect(e1.code).toBe('SSH_ERROR');
    expect(e1.message).not.toMatch(/[\u0000-\u001f]/);
    const e2 = await rejection(connect({ address, port, user: 'root', fingerprint: sshd.keys[0]!.fingerprint }, { privateKey: identity.privateKey }, { timeoutMs: T }));
    expect(e2.code).toBe('SSH_ERROR');
  });

  it('refuses an unreadable private key before connecting', async () => {
    const l = await silentListener();
    const err = await rejection(connect({ address: l.address, port: l.port, user: 'root', fingerprint: sshd.keys[0]!.fingerprint }, { privateKey: 'not a key' }, { timeoutMs: T }));
    expect(err.code).toBe('SSH_ERROR');
    expect(err.message).toMatch(/privateKey/);
    await sleep(100);
    expect(l.accepted()).toBe(0);
  });

  it('reports a key the host does not accept as SSH_AUTH_FAILED', async () => {
    const err = await rejection(connect(target(sshd.keys[0]!.fingerprint), { privateKey: stranger.privateKey }, { timeoutMs: T }));
    expect(err.code).toBe('SSH_AUTH_FAILED');
    expect(err.message).toContain('lab-1');
    const none = await rejection(connect(target(sshd.keys[0]!.fingerprint), {}, { timeoutMs: T }));
    expect(none.code).toBe('SSH_AUTH_FAILED');
  });

  it('authenticates through ssh-agent when no private key is given', async () => {
    const sock = join(sshd.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      await waitFor(() => existsSync(sock), 3000, 'ssh-agent');
      const keyFile = join(sshd.dir, 'agent_key');
      writeFileSync(keyFile, identity.privateKey, { mode: 0o600 });
      execFileSync('ssh-add', ['-q', keyFile], { env: { SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const conn = await connect(target(sshd.keys[0]!.fingerprint), { agent: sock }, { timeoutMs: T });
      expect((await conn.exec('echo via-agent', { timeoutMs: T })).stdout).toBe('via-agent\n');
      conn.close();
    } finally {
      agent.kill('SIGKILL');
    }
  });

  it('times out a long exec with TIMEOUT, ends it on the host, and keeps the connection usable', async () => {
    const conn = await connect(target(sshd.keys[0]!.fingerprint), { privateKey: identity.privateKey }, { timeoutMs: T });
    const running = (marker: string) =>
      descendants(sshd.proc.pid!).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
        } catch {
          return false;
        }
      });
    try {
      const t = Date.now();
      // sshd ignores signal requests on root sessions (no privilege separation after a root
      // login), so what ends the command here is the closed channel: its next write gets SIGPIPE.
      const err = await rejection(conn.exec('while :; do echo tick-3141; sleep 0.1; done', { timeoutMs: 500 }));
      expect(err.code).toBe('TIMEOUT');
      expect(Date.now() - t).toBeLessThan(1500);
      expect((await conn.exec('echo still-here', { timeoutMs: T })).stdout).toBe('still-here\n');
      await waitFor(() => running('tick-3141').length === 0, 3000, 'the timed-out command to be gone');

      const ac = new AbortController();
      const p = conn.exec('while :; do echo tick-2718; sleep 0.1; done', { timeoutMs: 10_000, signal: ac.signal });
      setTimeout(() => ac.abort(), 200);
      expect((await rejection(p)).code).toBe('CANCELLED');
      await waitFor(() => running('tick-2718').length === 0, 3000, 'the cancelled command to be gone');
    } finally {
      conn.close();
    }
  });

  it('runs a PTY shell: input, output, resize, exit', async () => {
    const conn = await connect(target(sshd.keys[0]!.fingerprint), { privateKey: identity.privateKey }, { timeoutMs: T });
    try {
      const pty = await conn.shell({ cols: 80, rows: 24 });
      let seen = '';
      pty.onData((d) => (seen += d.toString('utf8')));
      const exited = new Promise<[number | null, string | null]>((r) => pty.onExit((c, reason) => r([c, reason])));
      pty.write('echo hi-$((40+2))\n');
      await waitFor(() => seen.includes('hi-42'), T, 'hi-42 from the PTY');
      pty.write('echo term=$TERM; stty size\n');
      await waitFor(() => /24 80/.test(seen) && seen.includes('term=xterm-256color'), T, 'the initial size');
      pty.resize(132, 43);
      pty.write('stty size\n');
      await waitFor(() => /43 132/.test(seen), T, 'the new size');
      pty.write('exit 7\n');
      expect(await exited).toEqual([7, null]);
    } finally {
      conn.close();
    }
  });

  it('rejects work on a connection that was closed', async () => {
    const conn = await connect(target(sshd.keys[0]!.fingerprint), { privateKey: identity.privateKey }, { timeoutMs: T });
    const closed = new Promise<void>((r) => conn.onClose(r));
    const pending = conn.exec('sleep 30', { timeoutMs: 20_000 });
    await sleep(200);
    conn.close();
    expect((await rejection(pending)).code).toBe('CANCELLED');
    await closed;
    expect((await rejection(conn.exec('true', { timeoutMs: 1000 }))).code).toBe('CANCELLED');
  });
});

describe.skipIf(!canRun)('ssh connection: several host keys, and an sshd that dies', () => {
  it('presents the pinned key type when told it, so an imported ecdsa pin is not taken for a change', async () => {
    const multi = await startSshd({ authorizedKeys: [identity.publicKey], keyTypes: ['ed25519', 'ecdsa'] });
    const ecdsa = multi.keys.find((k) => k.type === 'ecdsa-sha2-nistp256')!;
    const ed = multi.keys.find((k) => k.type === 'ssh-ed25519')!;
    const base = { address: multi.address, port: multi.port, user: 'root', hostName: 'multi' };
    const conn = await connect({ ...base, fingerprint: ecdsa.fingerprint, keyType: ecdsa.type }, { privateKey: identity.privateKey }, { timeoutMs: T });
    expect(conn.fingerprint).toBe(ecdsa.fingerprint);
    conn.close();
    // Without the type, the host presents its preferred (ed25519) key: a different key, refused.
    const err = await rejection(connect({ ...base, fingerprint: ecdsa.fingerprint }, { privateKey: identity.privateKey }, { timeoutMs: T }));
    expect(err.code).toBe('HOST_KEY_CHANGED');
    expect(err.message).toContain(ed.fingerprint);
    // A pinned type the host no longer has is a change too.
    const gone = await rejection(connect({ ...base, fingerprint: ecdsa.fingerprint, keyType: 'ssh-rsa' }, { privateKey: identity.privateKey }, { timeoutMs: T }));
    expect(gone.code).toBe('HOST_KEY_CHANGED');
    multi.kill();
  });

  it('rejects a pending exec (and ends a PTY) when sshd is killed mid-exec: no hang', async () => {
    const doomed = await startSshd({ authorizedKeys: [identity.publicKey] });
    const conn: SshConnection = await connect(
      { address: doomed.address, port: doomed.port, user: 'root', fingerprint: doomed.keys[0]!.fingerprint, hostName: 'doomed' },
      { privateKey: identity.privateKey },
      { timeoutMs: T, keepaliveMs: 500 },
    );
    const closed = new Promise<void>((r) => conn.onClose(r));
    const pty = await conn.shell({ cols: 80, rows: 24 });
    const ptyExit = new Promise<[number | null, string | null]>((r) => pty.onExit((c, reason) => r([c, reason])));
    const pending = conn.exec('sleep 60', { timeoutMs: 60_000 });
    await sleep(300);
    const t = Date.now();
    doomed.kill();
    const err = await rejection(pending);
    expect(['HOST_UNREACHABLE', 'SSH_ERROR']).toContain(err.code);
    expect(err.message).toContain('doomed');
    expect(Date.now() - t).toBeLessThan(3000);
    await closed;
    const [code, reason] = await ptyExit;
    expect(code).toBeNull();
    expect(reason).toMatch(/lost/);
  });
});

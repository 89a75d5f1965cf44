import type { Socket } from 'node:net';
import { Duplex, type Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig, SFTPWrapper, Stats } from 'ssh2';
import { AirlockError } from '../../../shared/domain/errors';
import { FINGERPRINT_RE, fingerprintOfKey, keyTypeOfBlob } from './fingerprint';
import { sanitizeHostText } from './sanitize';

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

export interface SshTarget {
  address: string;
  port: number;
  user: string;
  /** The pinned host-key fingerprint; null means not confirmed yet, and nothing will be attempted. */
  fingerprint: string | null;
  /**
   * The pinned key's type, when known. A host with several host keys presents the one the client
   * prefers; restricting the offer to the pinned type makes it present that one, so a key imported
   * from known_hosts (say ecdsa) is not mistaken for a change when the host also has ed25519.
   */
  keyType?: string | null;
  /** Airlock's name for the host, for messages. */
  hostName?: string;
}

export interface SshAuth {
  /** OpenSSH or PEM private key text. Takes precedence over the agent. */
  privateKey?: string;
  /** ssh-agent socket path (SSH_AUTH_SOCK), used when no private key is given. */
  agent?: string | null;
}

export interface SshOptions {
  /** Bounds the whole connect: TCP, key exchange and authentication. Also the default for opening channels. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Interval of SSH-level keepalives once connected; three unanswered ones drop the connection. */
  keepaliveMs?: number;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Some output was dropped because stdout or stderr exceeded maxOutputBytes. */
  truncated: boolean;
}

export interface ExecOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Cap per stream (stdout and stderr each); default 4 MiB. */
  maxOutputBytes?: number;
  /**
   * What the command reads: a string, sent whole, or a stream, piped as it produces data (the
   * command's stdin ends when the stream does). Without it stdin is closed at once.
   */
  stdin?: string | Readable;
  /**
   * Called with each chunk of stdout as it arrives, uncapped and raw (host output: untrusted).
   * The result still holds the capped text. A callback that throws is ignored.
   */
  onStdout?(chunk: Buffer): void;
  /** As {@link ExecOptions.onStdout}, for stderr. */
  onStderr?(chunk: Buffer): void;
}

/** What {@link SftpSession.stat} tells about a path. */
export interface SftpStat {
  size: number;
  /** Permission bits and file type, as stat(2) gives them. */
  mode: number;
  isFile: boolean;
  isDirectory: boolean;
  /** Seconds since the epoch. */
  mtime: number;
}

/** SFTP open flags (draft-ietf-secsh-filexfer-02), for {@link SftpSession.open}. */
export const SFTP_OPEN = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

/**
 * An SFTP session (one `sftp` subsystem channel) on an {@link SshConnection}. Every promise
 * settles: requests are bounded by the session's timeout, and fail with the connection's own
 * error (HOST_UNREACHABLE, TIMEOUT, CANCELLED) once it is gone. Closed with the connection.
 */
export interface SftpSession {
  /** ssh2's SFTP client underneath, for what is not wrapped here (no timeouts there). */
  readonly raw: SFTPWrapper;
  /** Whether the server announced an extension, e.g. `posix-rename@openssh.com`, `fsync@openssh.com`. */
  hasExtension(name: string): boolean;
  /** Open a file; `flags` is an {@link SFTP_OPEN} combination. Resolves to the handle. */
  open(path: string, flags: number, mode?: number): Promise<Buffer>;
  /**
   * Write `length` bytes of `data` from `offset` at file `position`. Callback style and untimed, for
   * pipelining: keep many writes outstanding and bound their wait yourself. The bytes are copied
   * before this returns, so `data` may be reused at once. The callback is called exactly once.
   */
  write(handle: Buffer, data: Buffer, offset: number, length: number, position: number, cb: (err: AirlockError | null) => void): void;
  /** fsync(2) on the host (`fsync@openssh.com`). Resolves false, doing nothing, when the server lacks it. */
  fsync(handle: Buffer): Promise<boolean>;
  fchmod(handle: Buffer, mode: number): Promise<void>;
  close(handle: Buffer): Promise<void>;
  /** Attributes of a path (following symlinks), or null when nothing is there. */
  stat(path: string): Promise<SftpStat | null>;
  /** Rename, replacing `to` atomically (`posix-rename@openssh.com`; plain SFTP rename where the server lacks it, which refuses an existing target). */
  rename(from: string, to: string): Promise<void>;
  /** Remove a file; no error when it is already gone. */
  unlink(path: string): Promise<void>;
  /** Create one directory (not its parents). */
  mkdir(path: string, mode?: number): Promise<void>;
  /** Set a file's size (cut it, or extend it with a hole). */
  truncate(path: string, size: number): Promise<void>;
  /**
   * Close the session's channel; pending requests fail with CANCELLED. Resolves once the server
   * has closed it too (OpenSSH's sftp-server has then handled every request it received), or
   * after at most 5 s, or at once when the connection is gone.
   */
  end(): Promise<void>;
  readonly closed: boolean;
}

export interface PtySession {
  /** Raw bytes from the PTY. Data is held back (flow-controlled) until the first callback is registered. */
  onData(cb: (chunk: Buffer) => void): void;
  /** Called once: with the exit code, or null and a reason (a signal, a lost connection). */
  onExit(cb: (code: number | null, reason: string | null) => void): void;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  /**
   * Stop reading the channel (the reader is slow): ssh2 stops widening the SSH window, so the host
   * stops sending once it is full. Nothing is lost; `resume` delivers what was held back.
   */
  pause(): void;
  resume(): void;
  close(): void;
}

export interface ChannelOptions {
  /** Bounds the channel open (and, for SFTP, each request); default: the connect timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SshConnection {
  readonly fingerprint: string;
  /** The host as messages name it: Airlock's name and address, e.g. `gpu-1 (10.0.0.5:22)`. */
  readonly label: string;
  /** Whether the connection is gone (closed by us, or lost). */
  readonly closed: boolean;
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
  shell(opts: { cols: number; rows: number; term?: string }): Promise<PtySession>;
  /** Open an SFTP session; it is closed with the connection. */
  sftp(opts?: ChannelOptions): Promise<SftpSession>;
  /**
   * A `direct-tcpip` tunnel: a byte stream to `host:port` as the host itself connects to it (so
   * `127.0.0.1` is the host's loopback). Destroyed, with the connection's error, when the
   * connection goes. Data from it is untrusted.
   */
  forwardOut(host: string, port: number, opts?: ChannelOptions): Promise<Duplex>;
  close(): void;
  onClose(cb: () => void): void;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
const DEFAULT_KEEPALIVE_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 3;
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function label(address: string, port: number, hostName?: string): string {
  return hostName ? `${hostName} (${hostPort(address, port)})` : hostPort(address, port);
}

function clampTimeout(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_TIMEOUT_MS) : 1;
}

const UNREACHABLE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is sshd listening on that port?)',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host is down',
  ENOTFOUND: 'name not found',
  EAI_AGAIN: 'name lookup failed',
  EADDRNOTAVAIL: 'address not available',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection broken',
};

interface Ssh2Error extends Error {
  code?: string;
  level?: string;
}

/** Map an ssh2/socket error to a user-facing one. Server-provided text in messages is sanitised. */
function mapError(err: unknown, where: string, user?: string): AirlockError {
  if (err instanceof AirlockError) return err;
  const e = (err ?? {}) as Ssh2Error;
  const msg = sanitizeHostText(typeof e.message === 'string' ? e.message : String(err), 300);
  if (e.code && UNREACHABLE_CODES[e.code]) {
    return new AirlockError('HOST_UNREACHABLE', `Cannot reach ${where}: ${UNREACHABLE_CODES[e.code]}.`);
  }
  if (e.code === 'ETIMEDOUT' || e.level === 'client-timeout') {
    return new AirlockError('TIMEOUT', `Timed out talking to ${where}.`);
  }
  if (e.level === 'client-authentication') {
    return new AirlockError(
      'SSH_AUTH_FAILED',
      `Authentication to ${where}${user ? ` as ${user}` : ''} failed: the host did not accept Airlock's key (is it in that user's authorized_keys?).`,
    );
  }
  if (e.level === 'agent') {
    return new AirlockError('SSH_AUTH_FAILED', `Authentication to ${where} failed: the ssh-agent could not be used (${msg}).`);
  }
  if (e.level === 'client-dns') return new AirlockError('HOST_UNREACHABLE', `Cannot reach ${where}: ${msg}.`);
  return new AirlockError('SSH_ERROR', `SSH error with ${where}: ${msg}`);
}

function cancelled(what: string): AirlockError {
  return new AirlockError('CANCELLED', `${what} was cancelled.`);
}

/** ssh2's names for the algorithms that present a key of a given type. */
function hostKeyAlgorithmsFor(keyType: string | null | undefined): string[] | undefined {
  if (!keyType) return undefined;
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  if (keyType === 'ssh-ed25519' || /^ecdsa-sha2-nistp(256|384|521)$/.test(keyType) || keyType === 'ssh-dss') return [keyType];
  return undefined;
}

interface Attempt<T> {
  promise: Promise<T>;
  client: Ssh2Client;
}

/**
 * The shared machinery of probe and connect: one ssh2 client, one deadline covering everything up
 * to `ready`, cancellation that destroys the socket, and a promise that always settles.
 */
function attempt<T>(
  where: string,
  opts: SshOptions,
  build: (client: Ssh2Client) => { config: ConnectConfig; onError: (err: unknown) => AirlockError | T; onReady?: () => T },
): Attempt<T> {
  const client = new Client();
  const promise = new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (ok: boolean, v: T | AirlockError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (ok) resolve(v as T);
      else {
        // Destroy, not end: nothing more is to be sent to a host we are giving up on.
        client.destroy();
        reject(v);
      }
    };
    const onAbort = () => finish(false, cancelled(`Connecting to ${where}`));
    const timer = setTimeout(
      () => finish(false, new AirlockError('TIMEOUT', `Connecting to ${where} timed out after ${opts.timeoutMs} ms.`)),
      clampTimeout(opts.timeoutMs),
    );
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const { config, onError, onReady } = build(client);
    const handle = (err: unknown) => {
      const r = onError(err);
      if (r instanceof AirlockError) finish(false, r);
      else finish(true, r);
    };
    // Never removed: ssh2 can emit errors after we settled, and an unhandled 'error' would crash the core.
    client.on('error', handle);
    client.on('close', () => handle(Object.assign(new Error('the connection closed before it was ready'), { level: 'protocol' })));
    if (onReady) client.on('ready', () => finish(true, onReady()));
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 validates its config synchronously; an unreadable private key is the usual cause.
      const msg = sanitizeHostText(err instanceof Error ? err.message : String(err), 200);
      finish(false, new AirlockError('SSH_ERROR', `Could not start the SSH connection to ${where}: ${msg}`));
    }
  });
  return { promise, client };
}

/**
 * Read a host's key without authenticating: the verifier refuses every key, so the session ends
 * right after the key exchange and no user name or credential is ever sent. With `keyType`, only
 * that type is offered, so a host with several keys presents that one (the one to compare with).
 */
export async function probeHostKey(
  address: string,
  port: number,
  opts: SshOptions & { keyType?: string | null },
): Promise<{ fingerprint: string; keyType: string }> {
  const hostKeyAlgos = hostKeyAlgorithmsFor(opts.keyType);
  const where = hostPort(address, port);
  let seen: { fingerprint: string; keyType: string } | null = null;
  const { promise, client } = attempt<{ fingerprint: string; keyType: string }>(where, opts, () => ({
    config: {
      host: address,
      port,
      username: 'airlock-probe',
      readyTimeout: clampTimeout(opts.timeoutMs) + 1000,
      hostVerifier: (key: Buffer) => {
        seen = { fingerprint: fingerprintOfKey(key), keyType: keyTypeOfBlob(key) ?? 'unknown' };
        return false;
      },
      ...(hostKeyAlgos ? { algorithms: { serverHostKey: hostKeyAlgos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
    },
    onError: (err) => seen ?? mapError(err, where),
  }));
  const result = await promise;
  // ssh2 ends the socket after a refused key already; this covers a server that keeps it open.
  client.destroy();
  return result;
}

/**
 * Open an authenticated SSH connection to a host whose key is pinned. A host whose key differs
 * from the pin gets nothing past the key exchange: the check runs before authentication starts.
 */
export async function connect(target: SshTarget, auth: SshAuth, opts: SshOptions): Promise<SshConnection> {
  const where = label(target.address, target.port, target.hostName);
  const pin = target.fingerprint;
  if (pin === null) {
    throw new AirlockError(
      'HOST_KEY_UNCONFIRMED',
      `The host key of ${where} has not been confirmed yet; Airlock does not connect to a host before its key is pinned.`,
    );
  }
  if (!FINGERPRINT_RE.test(pin)) {
    throw new AirlockError('INVALID_INPUT', `The pinned fingerprint of ${where} is not a SHA256 fingerprint.`);
  }
  if (opts.signal?.aborted) throw cancelled(`Connecting to ${where}`);

  let mismatch: string | null = null;
  const hostKeyAlgos = hostKeyAlgorithmsFor(target.keyType);
  const { promise } = attempt<SshConnection>(where, opts, (client) => {
    const config: ConnectConfig = {
      host: target.address,
      port: target.port,
      username: target.user,
      readyTimeout: clampTimeout(opts.timeoutMs) + 1000,
      keepaliveInterval: opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      hostVerifier: (key: Buffer) => {
        const presented = fingerprintOfKey(key);
        if (presented !== pin) {
          mismatch = presented;
          return false;
        }
        return true;
      },
    };
    if (hostKeyAlgos) config.algorithms = { serverHostKey: hostKeyAlgos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] };
    // Both may be offered: ssh2 tries Airlock's own key first, then the agent's keys.
    if (auth.privateKey) config.privateKey = auth.privateKey;
    if (auth.agent) config.agent = auth.agent;
    return {
      config,
      onError: (err) => {
        if (mismatch) {
          return new AirlockError(
            'HOST_KEY_CHANGED',
            `Host key for ${where} changed: pinned ${pin}, presented ${mismatch}. Refusing to connect; nothing was sent.`,
          );
        }
        const e = err as Ssh2Error;
        if (hostKeyAlgos && e?.level === 'handshake' && /host key/i.test(String(e.message))) {
          return new AirlockError(
            'HOST_KEY_CHANGED',
            `Host ${where} no longer offers the pinned ${target.keyType} key (${pin}). Refusing to connect; nothing was sent.`,
          );
        }
        return mapError(err, where, target.user);
      },
      onReady: () => new Connection(client, where, pin, clampTimeout(opts.timeoutMs)),
    };
  });
  return promise;
}

/**
 * Send a signal request on a session channel. ssh2's `signal()` is a no-op once our side of the
 * channel is ended, and exec always ends stdin at once (so commands reading it do not hang);
 * the request itself is still valid then, so it goes straight to the protocol layer.
 * sshd honours it by killing the session's process group.
 */
function signalChannel(ch: ClientChannel, name: string): void {
  const c = ch as unknown as {
    type?: string;
    outgoing?: { id?: number; state?: string };
    _client?: { _protocol?: { signal?: (id: number, sig: string) => void } };
  };
  try {
    const proto = c._client?._protocol;
    if (c.type === 'session' && (c.outgoing?.state === 'open' || c.outgoing?.state === 'eof') && typeof c.outgoing.id === 'number' && typeof proto?.signal === 'function') {
      proto.signal(c.outgoing.id, name);
    } else ch.signal(name);
  } catch {
    // The connection may be gone; closing the channel is all that is left to do.
  }
}

/** Output of one stream, kept up to a cap; the rest is read and dropped so the remote never blocks. */
class CappedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    const room = this.max - this.size;
    if (room <= 0) {
      if (b.length) this.truncated = true;
      return;
    }
    const part = b.length > room ? b.subarray(0, room) : b;
    if (part.length < b.length) this.truncated = true;
    this.chunks.push(part);
    this.size += part.length;
  }
  text(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}

class Connection implements SshConnection {
  private gone = false;
  private closedByUs = false;
  private lastError: unknown = null;
  private readonly pending = new Set<(err: AirlockError) => void>();
  private readonly closeCbs: Array<() => void> = [];
  /** Open terminals: a channel's own 'close' may never come once the socket is gone. */
  private readonly ptys = new Set<Pty>();
  private readonly sftps = new Set<Sftp>();
  private readonly tunnels = new Set<ClientChannel>();
  private corked = false;
  private bulkUsers = 0;

  constructor(
    private readonly client: Ssh2Client,
    private readonly where: string,
    readonly fingerprint: string,
    private readonly channelTimeoutMs: number,
  ) {
    client.on('error', (err: unknown) => {
      this.lastError = err;
    });
    client.on('close', () => this.onClosed());
  }

  private lostError(): AirlockError {
    if (this.closedByUs) return new AirlockError('CANCELLED', `The connection to ${this.where} was closed.`);
    const mapped = this.lastError ? mapError(this.lastError, this.where) : null;
    if (mapped && mapped.code !== 'SSH_ERROR') {
      return new AirlockError(mapped.code === 'TIMEOUT' ? 'TIMEOUT' : 'HOST_UNREACHABLE', `The connection to ${this.where} was lost: ${mapped.message}`);
    }
    return new AirlockError('HOST_UNREACHABLE', `The connection to ${this.where} was lost.`);
  }

  private onClosed(): void {
    if (this.gone) return;
    this.gone = true;
    const err = this.lostError();
    for (const fail of [...this.pending]) fail(err);
    this.pending.clear();
    for (const pty of [...this.ptys]) pty.finish();
    this.ptys.clear();
    for (const session of [...this.sftps]) session.finish();
    this.sftps.clear();
    // ssh2 closes the tunnels right after this ('close' once a stream is read to its end); the ones
    // nobody reads are destroyed with the reason.
    const tunnels = [...this.tunnels];
    setImmediate(() => {
      for (const t of tunnels) if (this.tunnels.delete(t)) destroyTunnel(t, err);
    });
    for (const cb of this.closeCbs.splice(0)) {
      try {
        cb();
      } catch {
        // A listener's failure must not stop the others from learning the connection is gone.
      }
    }
  }

  onClose(cb: () => void): void {
    if (this.gone) queueMicrotask(cb);
    else this.closeCbs.push(cb);
  }

  close(): void {
    if (this.gone) return;
    this.closedByUs = true;
    this.client.end();
    // end() waits for the peer; a host that never answers must not keep the socket open.
    setTimeout(() => this.client.destroy(), 2000).unref();
  }

  /** Open a channel with a deadline; ssh2 alone would wait for the server indefinitely. */
  private openChannel(
    what: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    open: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void,
  ): Promise<ClientChannel> {
    return this.openAny<ClientChannel>(what, timeoutMs, signal, open, (ch) => ch.close(), (err) => (this.gone ? this.lostError() : mapError(err, this.where)));
  }

  /** {@link openChannel} for any kind of channel: `dispose` closes one that came too late. */
  private openAny<T>(
    what: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    open: (cb: (err: Error | undefined, ch: T) => void) => void,
    dispose: (ch: T) => void,
    mapOpenError: (err: Error) => AirlockError,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      if (this.gone) return reject(this.lostError());
      if (signal?.aborted) return reject(cancelled(what));
      let done = false;
      const fail = (err: AirlockError) => settle(err, null);
      const onAbort = () => fail(cancelled(what));
      const close = (ch: T) => {
        try {
          dispose(ch);
        } catch {
          // The channel or the connection may already be gone.
        }
      };
      const settle = (err: AirlockError | null, ch: T | null) => {
        if (done) {
          // Opened after we gave up: close it so it does not linger on the host.
          if (ch) close(ch);
          return;
        }
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(fail);
        if (err) {
          if (ch) close(ch);
          reject(err);
        } else resolve(ch!);
      };
      const timer = setTimeout(() => fail(new AirlockError('TIMEOUT', `${what} timed out after ${timeoutMs} ms.`)), clampTimeout(timeoutMs));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.add(fail);
      try {
        open((err, ch) => {
          if (err) settle(this.gone ? this.lostError() : mapOpenError(err), ch ?? null);
          else settle(null, ch);
        });
      } catch (err) {
        settle(mapError(err, this.where), null);
      }
    });
  }

  async exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    const what = `A command on ${this.where}`;
    const started = Date.now();
    const timeoutMs = clampTimeout(opts.timeoutMs);
    // ssh2 emits 'exit' while parsing packets: when the channel's confirmation and its exit-status
    // arrive in one read, that happens before the await below returns. Record it from the start.
    let early: { code: number | null; signal: string | null } | null = null;
    const ch = await this.openChannel(what, timeoutMs, opts.signal, (cb) =>
      this.client.exec(command, (err, c) => {
        c?.once('exit', (code: number | null, signal?: string) => {
          early = { code: typeof code === 'number' ? code : null, signal: typeof signal === 'string' ? sanitizeHostText(signal, 32) : null };
        });
        cb(err, c);
      }),
    );
    const max = opts.maxOutputBytes && opts.maxOutputBytes > 0 ? opts.maxOutputBytes : DEFAULT_MAX_OUTPUT_BYTES;
    const out = new CappedBuffer(max);
    const err = new CappedBuffer(max);
    return new Promise<ExecResult>((resolve, reject) => {
      let done = false;
      let exit: { code: number | null; signal: string | null } | null = early;
      const stop = () => {
        // KILL first: closing the channel alone leaves e.g. a `sleep` running on the host.
        signalChannel(ch, 'KILL');
        try {
          ch.close();
        } catch {
          // The channel or the connection may already be gone.
        }
      };
      const fail = (e: AirlockError) => {
        if (done) return;
        done = true;
        cleanup();
        stop();
        reject(e);
      };
      const onAbort = () => fail(cancelled(what));
      const cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(fail);
      };
      const remaining = Math.max(1, timeoutMs - (Date.now() - started));
      const timer = setTimeout(() => fail(new AirlockError('TIMEOUT', `${what} timed out after ${timeoutMs} ms.`)), remaining);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.add(fail);

      ch.on('data', (d: Buffer) => {
        out.push(d);
        if (opts.onStdout) callSafely(opts.onStdout, d);
      });
      ch.stderr.on('data', (d: Buffer) => {
        err.push(d);
        if (opts.onStderr) callSafely(opts.onStderr, d);
      });
      ch.on('exit', (code: number | null, signal?: string) => {
        exit = { code: typeof code === 'number' ? code : null, signal: typeof signal === 'string' ? sanitizeHostText(signal, 32) : null };
      });
      ch.on('error', () => {
        // Reported through 'close' below or through the connection; a channel error alone is not fatal here.
      });
      ch.on('close', () => {
        if (done) return;
        if (!exit && this.gone) return fail(this.lostError());
        done = true;
        cleanup();
        resolve({
          code: exit?.code ?? null,
          signal: exit?.signal ?? null,
          stdout: out.text(),
          stderr: err.text(),
          truncated: out.truncated || err.truncated,
        });
      });
      // Always end stdin, so a command that reads it does not wait forever.
      const stdin = opts.stdin;
      if (typeof stdin === 'string') ch.end(stdin);
      else if (stdin) {
        // A failing source must still end the command's stdin rather than leave it waiting.
        stdin.once('error', () => ch.end());
        stdin.pipe(ch);
      } else ch.end();
    });
  }

  async shell(opts: { cols: number; rows: number; term?: string }): Promise<PtySession> {
    const cols = Math.max(1, Math.min(1000, Math.floor(opts.cols) || 80));
    const rows = Math.max(1, Math.min(1000, Math.floor(opts.rows) || 24));
    const term = opts.term && /^[A-Za-z0-9._-]{1,64}$/.test(opts.term) ? opts.term : 'xterm-256color';
    const ch = await this.openChannel(`Opening a terminal on ${this.where}`, this.channelTimeoutMs, undefined, (cb) =>
      this.client.shell({ term, cols, rows, width: 0, height: 0 }, cb),
    );
    const pty = new Pty(ch, this, () => this.ptys.delete(pty));
    if (this.gone) pty.finish();
    else this.ptys.add(pty);
    return pty;
  }

  /** For Pty: whether the connection underneath went away, and why. */
  lostReason(): string | null {
    return this.gone ? this.lostError().message : null;
  }

  get label(): string {
    return this.where;
  }

  get closed(): boolean {
    return this.gone;
  }

  /** For SftpSession: the connection's error when it is gone, else null. */
  goneError(): AirlockError | null {
    return this.gone ? this.lostError() : null;
  }

  async sftp(opts: ChannelOptions = {}): Promise<SftpSession> {
    const timeoutMs = clampTimeout(opts.timeoutMs ?? this.channelTimeoutMs);
    const raw = await this.openAny<SFTPWrapper>(
      `Opening an SFTP session on ${this.where}`,
      timeoutMs,
      opts.signal,
      (cb) => this.client.sftp(cb),
      (s) => s.end(),
      (err) => {
        const e = mapError(err, this.where);
        // sshd refuses the subsystem (no Subsystem line, or a ForceCommand): say so plainly.
        return e.code === 'SSH_ERROR' ? new AirlockError('SSH_ERROR', `${this.where} did not start an SFTP session (is the sftp subsystem enabled in its sshd?): ${sanitizeHostText(err.message, 200)}`) : e;
      },
    );
    const session = new Sftp(raw, this, timeoutMs, () => this.sftps.delete(session));
    if (this.gone) session.finish();
    else this.sftps.add(session);
    return session;
  }

  async forwardOut(host: string, port: number, opts: ChannelOptions = {}): Promise<Duplex> {
    if (typeof host !== 'string' || !/^[A-Za-z0-9._:%-]{1,253}$/.test(host)) {
      throw new AirlockError('INVALID_INPUT', 'A tunnel destination must be a host name or an IP address.');
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new AirlockError('INVALID_INPUT', 'A tunnel destination port must be 1–65535.');
    const dest = hostPort(host, port);
    const what = `Opening a tunnel to ${dest} on ${this.where}`;
    const ch = await this.openAny<ClientChannel>(
      what,
      clampTimeout(opts.timeoutMs ?? this.channelTimeoutMs),
      opts.signal,
      (cb) => this.client.forwardOut('127.0.0.1', 0, host, port, cb),
      (c) => c.close(),
      (err) => {
        const reason = (err as { reason?: unknown }).reason;
        if (reason === 2 || reason === 'CONNECT_FAILED') {
          return new AirlockError('HOST_UNREACHABLE', `${this.where} could not connect to ${dest} (is anything listening there?).`);
        }
        if (reason === 1 || reason === 'ADMINISTRATIVELY_PROHIBITED') {
          return new AirlockError('SSH_ERROR', `${this.where} refused a tunnel to ${dest}: TCP forwarding is not allowed by its sshd (AllowTcpForwarding).`);
        }
        return new AirlockError('SSH_ERROR', `${what} failed: ${sanitizeHostText(err.message, 200)}`);
      },
    );
    ch.on('error', () => {
      // A channel error reaches the user as the stream's end or through the connection.
    });
    // ssh2 only emits 'close' on a lost connection once the stream has been read to its end; a
    // tunnel nobody reads must still learn it is gone (onClosed destroys it with the reason).
    this.tunnels.add(ch);
    ch.once('close', () => this.tunnels.delete(ch));
    if (this.gone) {
      this.tunnels.delete(ch);
      destroyTunnel(ch, this.lostError());
    }
    return ch;
  }

  /**
   * Coalesce the SSH packets written in this turn of the event loop into one `writev`, instead of
   * one write syscall per 32 KiB packet. Bulk SFTP writes spend most of their system time there.
   */
  batchWrites(): void {
    const sock = (this.client as unknown as { _sock?: Socket })._sock;
    if (this.corked || !sock || typeof sock.cork !== 'function' || sock.destroyed) return;
    this.corked = true;
    sock.cork();
    setImmediate(() => {
      this.corked = false;
      sock.uncork();
    });
  }

  /**
   * While bulk writers are active, also batch what ssh2 writes in reaction to incoming data
   * (queued SFTP writes released by a window adjust, replies to acks): a prepended 'data' listener
   * corks before ssh2 parses. Counted, so several SFTP sessions can ask.
   */
  bulk(on: boolean): void {
    this.bulkUsers = Math.max(0, this.bulkUsers + (on ? 1 : -1));
    const sock = (this.client as unknown as { _sock?: Socket })._sock;
    if (!sock || typeof sock.prependListener !== 'function') return;
    if (on && this.bulkUsers === 1) sock.prependListener('data', this.onBulkData);
    else if (!on && this.bulkUsers === 0) sock.removeListener('data', this.onBulkData);
  }

  private readonly onBulkData = () => this.batchWrites();
}

/**
 * Destroy a tunnel as a stream ('error' with the reason, then 'close'). ssh2's own destroy() only
 * sends a close request, and its channels are built not to emit 'close' on a stream destroy.
 */
function destroyTunnel(ch: ClientChannel, err: AirlockError): void {
  if (ch.destroyed) return;
  Duplex.prototype.destroy.call(ch, err);
  // After the 'error' the destroy just queued.
  process.nextTick(() => ch.emit('close'));
}

function callSafely(cb: (chunk: Buffer) => void, chunk: Buffer): void {
  try {
    cb(chunk);
  } catch {
    // A listener's failure must not break the command.
  }
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

class Sftp implements SftpSession {
  /** end() was called, or the channel or connection went away: no new requests. */
  private closing = false;
  private ended = false;
  private bulkOn = false;
  private readonly pending = new Set<(err: AirlockError) => void>();
  private resolveEnded!: () => void;
  private readonly endedP = new Promise<void>((r) => (this.resolveEnded = r));

  constructor(
    readonly raw: SFTPWrapper,
    private readonly conn: Connection,
    private readonly timeoutMs: number,
    private readonly onFinished: () => void,
  ) {
    raw.on('error', () => {
      // Surfaces as failed requests and 'close'.
    });
    raw.on('close', () => this.finish());
  }

  get closed(): boolean {
    return this.closing || this.conn.closed;
  }

  /** The channel is gone (closed by the server, by end(), or with the connection). */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.closing = true;
    if (this.bulkOn) {
      this.bulkOn = false;
      this.conn.bulk(false);
    }
    this.onFinished();
    this.failPending();
    this.resolveEnded();
  }

  private failPending(): void {
    const err = this.goneError();
    for (const fail of [...this.pending]) fail(err);
    this.pending.clear();
  }

  private goneError(): AirlockError {
    return this.conn.goneError() ?? new AirlockError('CANCELLED', `The SFTP session on ${this.conn.label} was closed.`);
  }

  /** An SFTP failure as the user should see it: the connection's error once it is gone, the server's (sanitised) text otherwise. */
  private mapErr(err: unknown, what: string): AirlockError {
    if (err instanceof AirlockError) return err;
    if (this.closed) return this.goneError();
    const e = (err ?? {}) as { code?: unknown; message?: unknown };
    const msg = sanitizeHostText(typeof e.message === 'string' ? e.message : String(err), 200);
    if (e.code === SFTP_NO_SUCH_FILE) return new AirlockError('NOT_FOUND', `${what} on ${this.conn.label} failed: no such file or directory.`);
    if (e.code === SFTP_PERMISSION_DENIED) return new AirlockError('SSH_ERROR', `${what} on ${this.conn.label} failed: permission denied.`);
    return new AirlockError('SSH_ERROR', `${what} on ${this.conn.label} failed: ${msg}`);
  }

  /** One request with a deadline; fails with the connection's error if it goes away meanwhile. */
  private request<T>(what: string, send: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) return reject(this.goneError());
      let done = false;
      const fail = (e: AirlockError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.pending.delete(fail);
        reject(e);
      };
      const timer = setTimeout(() => fail(new AirlockError('TIMEOUT', `${what} on ${this.conn.label} timed out after ${this.timeoutMs} ms.`)), this.timeoutMs);
      this.pending.add(fail);
      try {
        send((err, v) => {
          if (done) return;
          if (err) return fail(this.mapErr(err, what));
          done = true;
          clearTimeout(timer);
          this.pending.delete(fail);
          resolve(v as T);
        });
      } catch (err) {
        fail(this.mapErr(err, what));
      }
    });
  }

  hasExtension(name: string): boolean {
    const ext = (this.raw as unknown as { _extensions?: Record<string, string> })._extensions;
    return !!ext && Object.prototype.hasOwnProperty.call(ext, name);
  }

  open(path: string, flags: number, mode?: number): Promise<Buffer> {
    return this.request<Buffer>(`Opening ${path}`, (cb) => this.raw.open(path, flags as unknown as 'r', mode === undefined ? {} : { mode }, cb));
  }

  write(handle: Buffer, data: Buffer, offset: number, length: number, position: number, cb: (err: AirlockError | null) => void): void {
    if (this.closed) {
      const err = this.goneError();
      process.nextTick(cb, err);
      return;
    }
    if (!this.bulkOn) {
      this.bulkOn = true;
      this.conn.bulk(true);
    }
    this.conn.batchWrites();
    let called = false;
    const done = (err: Error | null | undefined) => {
      if (called) return;
      called = true;
      cb(err ? this.mapErr(err, 'Writing') : null);
    };
    try {
      this.raw.write(handle, data, offset, length, position, done);
    } catch (err) {
      process.nextTick(done, err as Error);
    }
  }

  async fsync(handle: Buffer): Promise<boolean> {
    if (!this.hasExtension('fsync@openssh.com')) return false;
    await this.request<unknown>('Flushing a file to disk', (cb) => this.raw.ext_openssh_fsync(handle, (err) => cb(err)));
    return true;
  }

  fchmod(handle: Buffer, mode: number): Promise<void> {
    return this.request<void>('Setting a file mode', (cb) => this.raw.fchmod(handle, mode, (err) => cb(err)));
  }

  close(handle: Buffer): Promise<void> {
    return this.request<void>('Closing a file', (cb) => this.raw.close(handle, (err) => cb(err)));
  }

  async stat(path: string): Promise<SftpStat | null> {
    try {
      const st = await this.request<Stats>(`Reading the attributes of ${path}`, (cb) => this.raw.stat(path, cb));
      return { size: st.size, mode: st.mode, isFile: st.isFile(), isDirectory: st.isDirectory(), mtime: st.mtime };
    } catch (err) {
      if (err instanceof AirlockError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }

  rename(from: string, to: string): Promise<void> {
    const what = `Renaming ${from} to ${to}`;
    if (this.hasExtension('posix-rename@openssh.com')) return this.request<void>(what, (cb) => this.raw.ext_openssh_rename(from, to, (err) => cb(err)));
    return this.request<void>(what, (cb) => this.raw.rename(from, to, (err) => cb(err)));
  }

  async unlink(path: string): Promise<void> {
    try {
      await this.request<void>(`Removing ${path}`, (cb) => this.raw.unlink(path, (err) => cb(err)));
    } catch (err) {
      if (err instanceof AirlockError && err.code === 'NOT_FOUND') return;
      throw err;
    }
  }

  mkdir(path: string, mode?: number): Promise<void> {
    return this.request<void>(`Creating the directory ${path}`, (cb) => this.raw.mkdir(path, mode === undefined ? {} : { mode }, (err) => cb(err)));
  }

  truncate(path: string, size: number): Promise<void> {
    return this.request<void>(`Setting the size of ${path}`, (cb) => this.raw.setstat(path, { size }, (err) => cb(err)));
  }

  end(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.failPending();
      try {
        this.raw.end();
      } catch {
        // Already gone with the connection.
      }
    }
    if (!this.ended) {
      // A host that never confirms the close must not hold the caller.
      const timer = setTimeout(() => this.finish(), Math.min(this.timeoutMs, 5000));
      timer.unref();
      void this.endedP.then(() => clearTimeout(timer));
    }
    return this.endedP;
  }

}

class Pty implements PtySession {
  private exited: { code: number | null; reason: string | null } | null = null;
  private exitStatus: { code: number | null; reason: string | null } | null = null;
  private readonly exitCbs: Array<(code: number | null, reason: string | null) => void> = [];
  private readonly dataCbs: Array<(chunk: Buffer) => void> = [];
  private flowing = false;

  constructor(
    private readonly ch: ClientChannel,
    private readonly conn: Connection,
    private readonly onFinished: () => void,
  ) {
    ch.on('exit', (code: number | null, signal?: string) => {
      this.exitStatus = {
        code: typeof code === 'number' ? code : null,
        reason: typeof signal === 'string' ? `killed by ${sanitizeHostText(signal, 32)}` : null,
      };
    });
    ch.on('error', () => {
      // Surfaces as 'close'.
    });
    ch.on('close', () => this.finish());
  }

  finish(): void {
    if (this.exited) return;
    this.onFinished();
    const lost = this.conn.lostReason();
    this.exited = this.exitStatus ?? { code: null, reason: lost ?? 'closed' };
    const { code, reason } = this.exited;
    for (const cb of this.exitCbs.splice(0)) {
      try {
        cb(code, reason);
      } catch {
        // One listener's failure must not hide the exit from the others.
      }
    }
  }

  onData(cb: (chunk: Buffer) => void): void {
    this.dataCbs.push(cb);
    if (!this.flowing) {
      this.flowing = true;
      const emit = (d: Buffer) => {
        for (const f of this.dataCbs) {
          try {
            f(d);
          } catch {
            // Keep delivering to the other listeners.
          }
        }
      };
      this.ch.on('data', emit);
      this.ch.stderr.on('data', emit);
    }
  }

  onExit(cb: (code: number | null, reason: string | null) => void): void {
    if (this.exited) {
      const { code, reason } = this.exited;
      queueMicrotask(() => cb(code, reason));
    } else this.exitCbs.push(cb);
  }

  write(data: string | Buffer): void {
    if (this.exited) return;
    this.ch.write(data);
  }

  resize(cols: number, rows: number): void {
    if (this.exited) return;
    const c = Math.max(1, Math.min(1000, Math.floor(cols) || 80));
    const r = Math.max(1, Math.min(1000, Math.floor(rows) || 24));
    this.ch.setWindow(r, c, 0, 0);
  }

  pause(): void {
    this.ch.pause();
    this.ch.stderr.pause();
  }

  resume(): void {
    this.ch.resume();
    this.ch.stderr.resume();
  }

  close(): void {
    if (this.exited) return;
    this.ch.close();
  }
}

/**
 * An open connection (one ssh2 client) and the channels on it: commands (exec), terminals (shell),
 * SFTP sessions and tunnels. Every wait is bounded, and everything open fails with the
 * connection's own error once it is gone.
 */
import { Duplex } from 'node:stream';
import type { Client as Ssh2Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { AirlockError } from '../../../../shared/domain/errors';
import { sanitizeHostText } from '../sanitize';
import { clientSocket, signalChannel } from '../ssh2-internals';
import { clampTimeout, hostPort } from './common';
import { cancelled, mapError } from './errors';
import { CappedBuffer, callSafely } from './output';
import { Pty } from './pty';
import { Sftp } from './sftp-session';
import { DEFAULT_MAX_OUTPUT_BYTES, type ChannelOptions, type ExecOptions, type ExecResult, type PtySession, type SftpSession, type SshConnection } from './types';

export class Connection implements SshConnection {
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
    const sock = clientSocket(this.client);
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
    const sock = clientSocket(this.client);
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

/** An SFTP session (one `sftp` subsystem channel) on a connection: bounded requests, mapped errors. */
import type { SFTPWrapper, Stats } from 'ssh2';
import { AirlockError } from '../../../../shared/domain/errors';
import { sanitizeHostText } from '../sanitize';
import { sftpHasExtension } from '../ssh2-internals';
import type { Connection } from './channels';
import type { SftpSession, SftpStat } from './types';

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

export class Sftp implements SftpSession {
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
    return sftpHasExtension(this.raw, name);
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

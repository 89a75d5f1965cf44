/** A terminal (a `shell` channel with a PTY) on a connection. */
import type { ClientChannel } from 'ssh2';
import { sanitizeHostText } from '../sanitize';
import type { Connection } from './channels';
import type { PtySession } from './types';

export class Pty implements PtySession {
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

import { StringDecoder } from 'node:string_decoder';
import { AirlockError } from '../../../shared/domain/errors';
import type { HostsService } from '../hosts/service';
import type { PtySession, SshAuth, SshConnection } from '../ssh/connection';
import type { ClientContext } from '../types';

interface OpenTerminal {
  id: string;
  clientId: string;
  host: string;
  conn: SshConnection;
  pty: PtySession;
  bytesIn: number;
  bytesOut: number;
  /** Times the channel was paused for a slow client. */
  pauses: number;
}

/**
 * PTY sessions for the xterm.js view. A terminal belongs to the client that opened it:
 * another window or tab cannot type into it or read it.
 */
export class TerminalService {
  private readonly open = new Map<string, OpenTerminal>();

  constructor(
    private readonly deps: { hosts: HostsService; random: (n: number) => Buffer },
  ) {}

  async start(client: ClientContext, host: string, cols: number, rows: number, auth: SshAuth, signal: AbortSignal) {
    // The pinned host key is checked inside `open` before any authentication happens.
    const conn = await this.deps.hosts.open(host, auth, signal);
    let pty: PtySession;
    try {
      pty = await conn.shell({ cols, rows, term: 'xterm-256color' });
    } catch (e) {
      conn.close();
      throw e;
    }
    const id = this.deps.random(12).toString('base64url');
    const t: OpenTerminal = { id, clientId: client.id, host, conn, pty, bytesIn: 0, bytesOut: 0, pauses: 0 };
    this.open.set(id, t);
    // Bytes go to the terminal as they are: xterm.js is the one place escape sequences belong.
    const decoder = new StringDecoder('utf8');
    // Backpressure: over the client's high-water mark the SSH channel is paused (the host stops
    // sending once the window is full) and resumed below the low-water mark; no byte is dropped.
    let paused = false;
    pty.onData((chunk) => {
      t.bytesOut += chunk.length;
      const text = decoder.write(chunk);
      if (text) client.emit('terminal:data', { id, data: text });
      const flow = client.flow;
      if (!paused && flow?.high) {
        paused = true;
        t.pauses++;
        pty.pause();
        flow.whenLow(() => {
          paused = false;
          if (this.open.get(id) === t) pty.resume();
        });
      }
    });
    pty.onExit((code, reason) => {
      this.open.delete(id);
      conn.close();
      client.emit('terminal:exit', { id, code, reason });
    });
    conn.onClose(() => {
      if (this.open.delete(id)) client.emit('terminal:exit', { id, code: null, reason: 'connection closed' });
    });
    return { id, fingerprint: conn.fingerprint };
  }

  write(client: ClientContext, id: string, data: string): void {
    const t = this.owned(client, id);
    t.bytesIn += Buffer.byteLength(data);
    t.pty.write(data);
  }

  resize(client: ClientContext, id: string, cols: number, rows: number): void {
    this.owned(client, id).pty.resize(cols, rows);
  }

  close(client: ClientContext, id: string): void {
    const t = this.owned(client, id);
    this.open.delete(id);
    t.pty.close();
    t.conn.close();
  }

  closeAllFor(client: ClientContext): void {
    for (const t of [...this.open.values()]) if (t.clientId === client.id) this.close(client, t.id);
  }

  closeAll(): void {
    for (const t of this.open.values()) t.conn.close();
    this.open.clear();
  }

  private owned(client: ClientContext, id: string): OpenTerminal {
    const t = this.open.get(id);
    if (!t || t.clientId !== client.id) throw new AirlockError('NOT_FOUND', 'No such terminal (it may have closed).');
    return t;
  }
}

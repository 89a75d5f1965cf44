/**
 * The fast path of an upload: SFTP WRITE requests framed straight into reused SSH packets,
 * encrypted in place by ssh2's own cipher (see {@link directWrites}).
 */
import { randomFillSync } from 'node:crypto';
import type { SFTPWrapper } from 'ssh2';
import { MAX_CHUNK, MIN_CHUNK } from './transfer';

/** What {@link directWrites} uses of ssh2's SFTP client and its connection (ssh2 1.x; checked before use). */
interface Ssh2SftpInternals {
  server?: unknown;
  _client?: { _sock?: unknown };
  _protocol?: Ssh2Protocol;
  outgoing?: { id?: unknown; window?: unknown; packetSize?: unknown; state?: unknown };
  _buffer?: unknown;
  _requests?: unknown;
  _writeReqid?: unknown;
  _maxWriteLen?: unknown;
  _waitWindow?: unknown;
  _chunkcb?: unknown;
  write: (handle: Buffer, buf: Buffer, off: number, len: number, position: number, cb: (err?: Error, written?: number) => void) => void;
}

interface Ssh2Protocol {
  channelData?: (id: number, data: Buffer) => void;
  /** Set while a key exchange runs: packets are then queued by ssh2, to be encrypted with the new keys. */
  _kexinit?: unknown;
  _cipher?: { constructor?: { name?: string }; encrypt?: (packet: Buffer) => void };
}

/** The longest write ssh2 sends as one request to this server (from `limits@openssh.com`, else its default). */
export function maxWriteLen(raw: SFTPWrapper): number {
  const n = (raw as unknown as Ssh2SftpInternals)._maxWriteLen;
  return typeof n === 'number' && n >= MIN_CHUNK ? n : MAX_CHUNK;
}

/** SSH_FXP_WRITE (draft-ietf-secsh-filexfer-02). */
const FXP_WRITE = 6;
/** SSH_MSG_CHANNEL_DATA (RFC 4254). */
const MSG_CHANNEL_DATA = 94;
/** ssh2's request id mask, so ids go on exactly as its own requests count them. */
const MAX_REQID = 2 ** 32 - 1;
/** Packet buffers kept for reuse per connection and upload (at 32 KiB packets, 16 MiB). */
const POOL_MAX = 512;

/** What a connection's socket tells about its writes (net.Socket; a tunnelled connection's stream may not). */
interface WriteCounters {
  readonly bytesWritten: number;
  readonly writableLength: number;
}

/**
 * SSH packet buffers of one connection, reused once the socket has written them. A packet handed
 * to the socket is kept by it (queued, or referenced by the kernel write under way) until its write
 * completes; bytes written minus bytes still queued (`bytesWritten - writableLength`, public
 * net.Socket counters, over everything ssh2 writes to the socket, in order) is where completed
 * writes end, so a packet that ended at or before that point is free again.
 */
export class PacketPool {
  private readonly free: Buffer[] = [];
  private readonly busy: Array<{ buf: Buffer; end: number }> = [];
  private head = 0;
  private made = 0;
  private broken = false;

  constructor(
    private readonly sock: WriteCounters,
    readonly slot: number,
  ) {}

  /** A buffer of `slot` bytes (a new one, not pooled, past POOL_MAX in use). */
  take(): { buf: Buffer; pooled: boolean } {
    if (this.broken) return { buf: Buffer.allocUnsafe(this.slot), pooled: false };
    const done = this.sock.bytesWritten - this.sock.writableLength;
    while (this.head < this.busy.length && this.busy[this.head]!.end <= done) this.free.push(this.busy[this.head++]!.buf);
    if (this.head > 1024 && this.head * 2 > this.busy.length) {
      this.busy.splice(0, this.head);
      this.head = 0;
    }
    const buf = this.free.pop();
    if (buf) return { buf, pooled: true };
    if (this.made < POOL_MAX) {
      this.made++;
      return { buf: Buffer.allocUnsafeSlow(this.slot), pooled: true };
    }
    return { buf: Buffer.allocUnsafe(this.slot), pooled: false };
  }

  /**
   * Hand `packet` (a view of `buf` from take()) to the socket through `write`, and keep `buf` for
   * reuse once the socket has written it. Only when the socket's count grew by exactly the packet
   * as it was written (what the reuse rule rests on); otherwise this pool stops reusing buffers.
   */
  send(buf: Buffer, pooled: boolean, packet: Buffer, write: (packet: Buffer) => void): void {
    const before = this.sock.bytesWritten;
    write(packet);
    const after = this.sock.bytesWritten;
    if (after - before !== packet.length) this.broken = true;
    else if (pooled && !this.broken) this.busy.push({ buf, end: after });
  }
}

/**
 * SFTP WRITE requests with one copy of the data instead of three, on a session of our own. ssh2's
 * write() builds each request in a new buffer (a copy of the data), the channel copies that into
 * SSH packets, each a new buffer too, and the cipher encrypts those in place. Those buffers, twice
 * the file's size, are memory outside V8's heap, and V8 answers that much of it with a garbage
 * collection every few tens of megabytes ("external memory pressure"): that, not the encryption,
 * was most of the process's CPU on a fast upload. Here each packet (`SSH_MSG_CHANNEL_DATA` carrying
 * the request: its header and data in the first, data in the rest) is written straight into a
 * reused buffer and encrypted there by ssh2's own cipher, so the data is copied once, before this
 * returns (the contract of SftpSession.write), and nothing is allocated per packet.
 *
 * Only for what fits: a request is sent this way while it fits the channel's window whole and
 * ssh2 has nothing queued on the channel (otherwise ssh2's own write() queues it); packets are
 * built here only for AES-GCM (ssh2's binding, what it negotiates with OpenSSH by default) when no
 * key exchange is under way and the socket has the counters the pool needs, and otherwise handed
 * to ssh2's channelData(). Anything of ssh2's not as expected: ssh2's write() throughout.
 */
export function directWrites(raw: SFTPWrapper, pools: Map<unknown, PacketPool | null>): DirectWrites | null {
  const r = raw as unknown as Ssh2SftpInternals;
  const proto = r._protocol;
  const out = r.outgoing;
  if (
    r.server ||
    !proto ||
    typeof proto.channelData !== 'function' ||
    !out ||
    typeof out.id !== 'number' ||
    typeof out.window !== 'number' ||
    typeof out.packetSize !== 'number' ||
    !Array.isArray(r._buffer) ||
    typeof r._requests !== 'object' ||
    r._requests === null ||
    typeof r._writeReqid !== 'number' ||
    typeof r._maxWriteLen !== 'number' ||
    typeof r.write !== 'function'
  ) {
    return null;
  }
  const ssh2Write = r.write;
  const requests = r._requests as Record<number, { cb: (err?: Error) => void }>;
  const channel = out.id;
  const channelData = proto.channelData.bind(proto);
  // Packets of up to packetSize bytes of channel data: 4 length, 1 padding length, 9 message header,
  // at most 19 padding (to a 16-byte block, at least 4), 16 GCM tag.
  const slot = (out.packetSize as number) + 4 + 1 + 9 + 19 + 16;
  const sock = r._client?._sock;
  if (!pools.has(sock)) {
    const counters = sock as Partial<WriteCounters> | undefined;
    pools.set(sock, counters && typeof counters.bytesWritten === 'number' && typeof counters.writableLength === 'number' ? new PacketPool(counters as WriteCounters, slot) : null);
  }
  const pool = pools.get(sock) ?? null;
  let head = Buffer.allocUnsafe(64);
  const rand = Buffer.allocUnsafe(16 * 1024);
  let randAt = rand.length;

  /** One SSH_MSG_CHANNEL_DATA: `prefix` (if any), then buf[from, to). */
  const send = (prefix: Buffer | null, buf: Buffer, from: number, to: number) => {
    const pre = prefix ? prefix.length : 0;
    const dataLen = pre + (to - from);
    const cipher = proto._cipher;
    let pktLen = 4 + 1 + 9 + dataLen;
    let pad = 16 - ((pktLen - 4) & 15);
    if (pad < 4) pad += 16;
    pktLen += pad;
    if (!pool || pktLen + 16 > pool.slot || proto._kexinit !== undefined || cipher?.constructor?.name !== 'AESGCMCipherBinding' || typeof cipher.encrypt !== 'function') {
      if (!prefix) return channelData(channel, buf.subarray(from, to));
      const joined = Buffer.allocUnsafe(dataLen);
      prefix.copy(joined, 0);
      buf.copy(joined, pre, from, to);
      return channelData(channel, joined);
    }
    const { buf: slotBuf, pooled } = pool.take();
    const packet = slotBuf.subarray(0, pktLen + 16);
    packet.writeUInt32BE(pktLen - 4, 0);
    packet[4] = pad;
    packet[5] = MSG_CHANNEL_DATA;
    packet.writeUInt32BE(channel, 6);
    packet.writeUInt32BE(dataLen, 10);
    if (prefix) prefix.copy(packet, 14);
    buf.copy(packet, 14 + pre, from, to);
    // Random padding, as ssh2 makes it, from a reservoir filled 16 KiB at a time (each byte used once).
    if (randAt + pad > rand.length) {
      randomFillSync(rand);
      randAt = 0;
    }
    rand.copy(packet, pktLen - pad, randAt, randAt + pad);
    randAt += pad;
    // ssh2's cipher encrypts in place and writes the packet to the socket.
    pool.send(slotBuf, pooled, packet, (pk) => cipher.encrypt!(pk));
  };

  r.write = function (handle, buf, off, len, position, cb) {
    const packetSize = out.packetSize as number;
    const headLen = 4 + 1 + 4 + 4 + handle.length + 8 + 4;
    const total = headLen + len;
    if (
      out.state !== 'open' ||
      (r._buffer as unknown[]).length > 0 ||
      !Buffer.isBuffer(handle) ||
      !Buffer.isBuffer(buf) ||
      !(len > 0) ||
      !(off >= 0) ||
      off + len > buf.length ||
      len > (r._maxWriteLen as number) ||
      !Number.isSafeInteger(position) ||
      position < 0 ||
      packetSize <= headLen ||
      total > (out.window as number)
    ) {
      ssh2Write.call(this, handle, buf, off, len, position, cb);
      return;
    }
    const reqid = (r._writeReqid = ((r._writeReqid as number) + 1) & MAX_REQID);
    if (head.length < headLen) head = Buffer.allocUnsafe(headLen);
    head.writeUInt32BE(total - 4, 0);
    head[4] = FXP_WRITE;
    head.writeUInt32BE(reqid >>> 0, 5);
    head.writeUInt32BE(handle.length, 9);
    handle.copy(head, 13);
    const p = 13 + handle.length;
    head.writeUInt32BE(Math.floor(position / 2 ** 32), p);
    head.writeUInt32BE(position >>> 0, p + 4);
    head.writeUInt32BE(len, p + 8);
    requests[reqid] = { cb: (err) => (err ? cb(err) : cb(undefined, off + len)) };
    out.window = (out.window as number) - total;
    const first = Math.min(len, packetSize - headLen);
    send(head.subarray(0, headLen), buf, off, off + first);
    for (let at = off + first; at < off + len; at += packetSize) send(null, buf, at, Math.min(off + len, at + packetSize));
  };
  return {
    fits: (handle, len) => out.state === 'open' && (r._buffer as unknown[]).length === 0 && (out.window as number) >= 4 + 1 + 4 + 4 + handle.length + 8 + 4 + len,
    whenWindow: (wake) => {
      // ssh2 calls a channel's _chunkcb on the next window adjust while _waitWindow is set; it only
      // sets them itself when it has queued data, which it has not when fits() said no for the window.
      if ((r._buffer as unknown[]).length > 0 || (r._waitWindow && r._chunkcb)) return;
      r._waitWindow = true;
      r._chunkcb = () => {
        r._chunkcb = undefined;
        wake();
      };
    },
  };
}

/** The window side of {@link directWrites}: a writer waits for room instead of having ssh2 queue copies. */
export interface DirectWrites {
  /** Whether a write of `len` bytes goes out at once, without ssh2 queueing it. */
  fits(handle: Buffer, len: number): boolean;
  /** Call `wake` once the server widens the channel's window (at most once; acknowledgements wake the writer too). */
  whenWindow(wake: () => void): void;
}

/**
 * The fast path of an upload: SFTP WRITE requests framed straight into reused SSH packets,
 * encrypted in place by ssh2's own cipher (see {@link directWrites}).
 */
import { randomFillSync } from 'node:crypto';
import type { SFTPWrapper } from 'ssh2';
import { probeFastPath, type FastPathProbe, type WriteCounters } from '../ssh2-internals';

/** SSH_FXP_WRITE (draft-ietf-secsh-filexfer-02). */
const FXP_WRITE = 6;
/** SSH_MSG_CHANNEL_DATA (RFC 4254). */
const MSG_CHANNEL_DATA = 94;
/** Packet buffers kept for reuse per connection and upload (at 32 KiB packets, 16 MiB). */
const POOL_MAX = 512;

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
 * to ssh2's channelData(). What may be used is decided by ssh2-internals.ts's probeFastPath (the
 * exact ssh2 version, compression off, the cipher, every field used); refused: ssh2's write()
 * throughout. Everything of ssh2's is reached through the probe's typed FastPathSession.
 */
export function directWrites(raw: SFTPWrapper, pools: Map<unknown, PacketPool | null>, probe: FastPathProbe = probeFastPath(raw)): DirectWrites | null {
  const fp = probe.session;
  if (!fp) return null;
  const ssh2Write = fp.replaceWrite(write);
  const channel = fp.channel;
  // Packets of up to packetSize bytes of channel data: 4 length, 1 padding length, 9 message header,
  // at most 19 padding (to a 16-byte block, at least 4), 16 GCM tag.
  const slot = fp.packetSize + 4 + 1 + 9 + 19 + 16;
  const sock = fp.connection;
  if (!pools.has(sock)) pools.set(sock, fp.writeCounters ? new PacketPool(fp.writeCounters, slot) : null);
  const pool = pools.get(sock) ?? null;
  let head = Buffer.allocUnsafe(64);
  const rand = Buffer.allocUnsafe(16 * 1024);
  let randAt = rand.length;

  /** One SSH_MSG_CHANNEL_DATA: `prefix` (if any), then buf[from, to). */
  const send = (prefix: Buffer | null, buf: Buffer, from: number, to: number) => {
    const pre = prefix ? prefix.length : 0;
    const dataLen = pre + (to - from);
    let pktLen = 4 + 1 + 9 + dataLen;
    let pad = 16 - ((pktLen - 4) & 15);
    if (pad < 4) pad += 16;
    pktLen += pad;
    const encrypt = pool && pktLen + 16 <= pool.slot ? fp.encrypterNow() : null;
    if (!pool || !encrypt) {
      if (!prefix) return fp.channelData(buf.subarray(from, to));
      const joined = Buffer.allocUnsafe(dataLen);
      prefix.copy(joined, 0);
      buf.copy(joined, pre, from, to);
      return fp.channelData(joined);
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
    pool.send(slotBuf, pooled, packet, encrypt);
  };

  function write(handle: Buffer, buf: Buffer, off: number, len: number, position: number, cb: (err?: Error, written?: number) => void): void {
    const packetSize = fp!.packetSize;
    const headLen = 4 + 1 + 4 + 4 + handle.length + 8 + 4;
    const total = headLen + len;
    if (
      !fp!.isOpen() ||
      fp!.queued() > 0 ||
      !Buffer.isBuffer(handle) ||
      !Buffer.isBuffer(buf) ||
      !(len > 0) ||
      !(off >= 0) ||
      off + len > buf.length ||
      len > fp!.maxWriteLen() ||
      !Number.isSafeInteger(position) ||
      position < 0 ||
      packetSize <= headLen ||
      total > fp!.window()
    ) {
      ssh2Write(handle, buf, off, len, position, cb);
      return;
    }
    const reqid = fp!.nextRequestId();
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
    fp!.expectReply(reqid, (err) => (err ? cb(err) : cb(undefined, off + len)));
    fp!.useWindow(total);
    const first = Math.min(len, packetSize - headLen);
    send(head.subarray(0, headLen), buf, off, off + first);
    for (let at = off + first; at < off + len; at += packetSize) send(null, buf, at, Math.min(off + len, at + packetSize));
  }
  return {
    fits: (handle, len) => fp.isOpen() && fp.queued() === 0 && fp.window() >= 4 + 1 + 4 + 4 + handle.length + 8 + 4 + len,
    // ssh2 only queues data itself (and then wakes on the window adjust) when it has queued data,
    // which it has not when fits() said no for the window.
    whenWindow: (wake) => fp.whenWindow(wake),
  };
}

/** The window side of {@link directWrites}: a writer waits for room instead of having ssh2 queue copies. */
export interface DirectWrites {
  /** Whether a write of `len` bytes goes out at once, without ssh2 queueing it. */
  fits(handle: Buffer, len: number): boolean;
  /** Call `wake` once the server widens the channel's window (at most once; acknowledgements wake the writer too). */
  whenWindow(wake: () => void): void;
}

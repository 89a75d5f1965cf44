/**
 * Every place Airlock reaches into ssh2 below its public API — the fields and methods with a
 * leading underscore, a channel's `outgoing` state, the protocol object — and nothing else. The
 * rest of `ssh/` uses the typed functions here; lint forbids `._private` access anywhere else in
 * `electron/core/ssh/` (eslint.config.js, proven by test/lint/layering.test.ts).
 *
 * Why reach in at all: see docs/architecture.md ("ssh2's internals, in one guarded module"). In
 * short: a signal on a channel whose stdin we ended, corking the socket, the SFTP server's
 * extensions, and the upload's fast path (sftp/fast-path.ts), which frames SFTP WRITE requests into
 * reused SSH packets and has ssh2's own cipher encrypt them in place.
 *
 * The fast path is only as safe as what it assumes about ssh2, so {@link probeFastPath} checks
 * those assumptions once per SFTP session, before the first write, and says what may be used and
 * why not: the exact ssh2 version this was written for ({@link SSH2_VERSION}, pinned in
 * package.json), every field it touches, compression off (packets built here bypass ssh2's
 * `zlib@openssh.com` compressor: a compressed stream would be corrupted), the negotiated cipher
 * (AES-GCM, ssh2's binding), and no key exchange in progress. What can change later (a key
 * exchange starts, the cipher or the packet writer is replaced by one) is checked again on every
 * packet ({@link FastPathSession.encrypterNow}).
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';

/** The ssh2 version the accesses below were written for and tested with; package.json pins it exactly. */
export const SSH2_VERSION = '1.17.0';

/** The version of the ssh2 package actually loaded (its package.json), or null when it cannot be read. */
export function installedSsh2Version(): string | null {
  try {
    const v = (createRequire(import.meta.url)('ssh2/package.json') as { version?: unknown }).version;
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The connection and its channels
// ---------------------------------------------------------------------------------------------

/** The socket under an ssh2 client (`_sock`), to cork and watch; undefined before connect(). */
export function clientSocket(client: Client): Socket | undefined {
  return (client as unknown as { _sock?: Socket })._sock;
}

/**
 * Start a key exchange on an open connection (ssh2 1.17 has no public rekey on the client). Tests
 * use it to re-key in the middle of an upload.
 */
export function rekey(client: Client): void {
  (client as unknown as { _protocol: { rekey(): void } })._protocol.rekey();
}

/**
 * Send a signal request on a session channel. ssh2's `signal()` is a no-op once our side of the
 * channel is ended, and exec always ends stdin at once (so commands reading it do not hang);
 * the request itself is still valid then, so it goes straight to the protocol layer.
 * sshd honours it by killing the session's process group.
 */
export function signalChannel(ch: ClientChannel, name: string): void {
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

// ---------------------------------------------------------------------------------------------
// SFTP sessions
// ---------------------------------------------------------------------------------------------

/** Whether the SFTP server announced an extension (ssh2 keeps them in `_extensions`). */
export function sftpHasExtension(raw: SFTPWrapper, name: string): boolean {
  const ext = (raw as unknown as { _extensions?: Record<string, string> })._extensions;
  return !!ext && Object.prototype.hasOwnProperty.call(ext, name);
}

/** The longest write ssh2 sends as one request to this server (from `limits@openssh.com`, else its default); undefined when unknown. */
export function sftpMaxWriteLen(raw: SFTPWrapper): number | undefined {
  const n = (raw as unknown as Ssh2SftpInternals)._maxWriteLen;
  return typeof n === 'number' ? n : undefined;
}

/** What the fast path uses of ssh2's SFTP client and its connection (ssh2 1.17; checked before use). */
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
  write: SftpWrite;
}

interface Ssh2Protocol {
  channelData?: (id: number, data: Buffer) => void;
  /** Set while a key exchange runs: packets are then queued by ssh2, to be encrypted with the new keys. */
  _kexinit?: unknown;
  _cipher?: { constructor?: { name?: string }; encrypt?: (packet: Buffer) => void };
  /** The packet writer: ssh2's `PacketWriter`, or `ZlibPacketWriter` once compression is on. */
  _packetRW?: { write?: { constructor?: { name?: string } } };
  /** The key exchange (the current one, or the one under way) and what it negotiated. */
  _kex?: { negotiated?: { cs?: { cipher?: unknown; compress?: unknown } } };
}

/** ssh2's SFTP write, as the fast path replaces it. */
export type SftpWrite = (handle: Buffer, buf: Buffer, off: number, len: number, position: number, cb: (err?: Error, written?: number) => void) => void;

/** What a connection's socket tells about its writes (net.Socket; a tunnelled connection's stream may not). */
export interface WriteCounters {
  readonly bytesWritten: number;
  readonly writableLength: number;
}

/** ssh2's request id mask, so ids go on exactly as its own requests count them. */
const MAX_REQID = 2 ** 32 - 1;

/** The ciphers whose ssh2 binding encrypts a whole packet in place and writes it (`AESGCMCipherBinding`). */
const FAST_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm', 'aes256-gcm'];

/**
 * The typed handle the fast path works through: one SFTP session's channel, its request ids and
 * replies, and its connection's cipher. Only handed out by {@link probeFastPath}.
 */
export interface FastPathSession {
  /** The channel's id on the server's side (what SSH_MSG_CHANNEL_DATA names). */
  readonly channel: number;
  /** The largest channel data one packet may carry (the server's maximum packet size). */
  readonly packetSize: number;
  /** The connection this session is on: one packet pool per key. */
  readonly connection: unknown;
  /** The connection socket's write counters, or null when it has none (a packet pool needs them). */
  readonly writeCounters: WriteCounters | null;
  /** Whether the channel is open (not closing or closed). */
  isOpen(): boolean;
  /** Data ssh2 holds back on this channel for want of window (nothing may overtake it). */
  queued(): number;
  /** Bytes the server's window on this channel still takes. */
  window(): number;
  /** Count `n` bytes sent against the window (as ssh2 does for its own writes). */
  useWindow(n: number): void;
  /** The longest SFTP write the server takes in one request. */
  maxWriteLen(): number;
  /** The next SFTP request id, taken from ssh2's own counter so its requests and ours never collide. */
  nextRequestId(): number;
  /** Have ssh2 call `cb` with the server's status reply to request `id`. */
  expectReply(id: number, cb: (err?: Error) => void): void;
  /**
   * ssh2's packet encryption for a packet built here, if it may be used for the next packet: the
   * probe allowed packets, no key exchange is under way, the cipher is still an AES-GCM binding and
   * the packet writer still uncompressed. The returned function encrypts in place and writes to the
   * socket. Null: hand the data to {@link channelData} instead.
   */
  encrypterNow(): ((packet: Buffer) => void) | null;
  /** Channel data through ssh2's own packet path (it frames, compresses, queues during a key exchange, encrypts). */
  channelData(data: Buffer): void;
  /** Replace the session's write() with `write`; returns ssh2's own, bound to the session. */
  replaceWrite(write: SftpWrite): SftpWrite;
  /**
   * Call `wake` on the next window adjust. ssh2 calls a channel's `_chunkcb` then while `_waitWindow`
   * is set; it only sets them itself when it has queued data (then it wakes nobody of ours, and an
   * acknowledgement will).
   */
  whenWindow(wake: () => void): void;
}

/** What {@link probeFastPath} found, and what the fast path may therefore do on this session. */
export type FastPathProbe = {
  /** The ssh2 version seen (or injected). */
  readonly ssh2Version: string | null;
  /** The negotiated client-to-server cipher, e.g. `aes128-gcm@openssh.com` (null: unknown). */
  readonly cipher: string | null;
  /** The negotiated client-to-server compression: `none`, `zlib@openssh.com`, `zlib` (null: unknown). */
  readonly compression: string | null;
  /** A key exchange was under way when probed. */
  readonly kexInProgress: boolean;
} & (
  | {
      /**
       * `packets`: SFTP requests framed here and their SSH packets built and encrypted here (each
       * packet checked again); `requests`: requests framed here, packets left to ssh2.
       */
      readonly fastPath: 'packets' | 'requests';
      /** Why packets are left to ssh2 (null with `packets`). */
      readonly reason: string | null;
      readonly session: FastPathSession;
    }
  | {
      /** ssh2's own write() throughout. */
      readonly fastPath: 'none';
      readonly reason: string;
      readonly session: null;
    }
);

export interface ProbeOptions {
  /** The ssh2 version to judge by instead of the installed one (tests). */
  ssh2Version?: string | null;
}

/**
 * Check, once per SFTP session, what the fast path may do on it: see the module comment. Nothing
 * of ssh2 is touched unless every field the fast path uses is as expected.
 */
export function probeFastPath(raw: SFTPWrapper, opts: ProbeOptions = {}): FastPathProbe {
  const r = raw as unknown as Ssh2SftpInternals;
  const proto = r._protocol;
  const ssh2Version = opts.ssh2Version !== undefined ? opts.ssh2Version : installedSsh2Version();
  const negotiated = proto?._kex?.negotiated?.cs;
  const cipher = typeof negotiated?.cipher === 'string' ? negotiated.cipher : null;
  const compression = typeof negotiated?.compress === 'string' ? negotiated.compress : null;
  const kexInProgress = !!proto && proto._kexinit !== undefined;
  const facts = { ssh2Version, cipher, compression, kexInProgress };
  const none = (reason: string): FastPathProbe => ({ ...facts, fastPath: 'none', reason, session: null });

  if (ssh2Version !== SSH2_VERSION) {
    return none(`ssh2 is ${ssh2Version ?? 'of an unknown version'}, not ${SSH2_VERSION}, the version the fast path was written for`);
  }
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
    return none("ssh2's SFTP session does not have the fields the fast path uses");
  }
  // Requests framed here still go through channelData, which compresses; but the packets the fast
  // path builds would not be, and a compressed stream is what the server then expects. ssh2's own
  // write() throughout is the plain answer.
  if (compression !== 'none' || writerName(proto) !== 'PacketWriter') {
    return none(`compression is on (${compression ?? 'unknown'}): every packet must go through ssh2's compressor`);
  }

  // Read at each use: ssh2 replaces both arrays (a flushed queue, a closed session).
  const queued = () => (r._buffer as unknown[]).length;
  const channel = out.id;
  const channelData = proto.channelData.bind(proto);
  const sock = r._client?._sock;
  const counters = sock as Partial<WriteCounters> | undefined;
  let why: string | null = null;
  if (kexInProgress) why = 'a key exchange was under way';
  else if (cipher === null || !FAST_CIPHERS.includes(cipher) || proto._cipher?.constructor?.name !== 'AESGCMCipherBinding') {
    why = `the cipher is ${cipher ?? 'unknown'}, not AES-GCM with ssh2's binding`;
  }
  const packets = why === null;

  const session: FastPathSession = {
    channel,
    packetSize: out.packetSize,
    connection: sock,
    writeCounters: counters && typeof counters.bytesWritten === 'number' && typeof counters.writableLength === 'number' ? (counters as WriteCounters) : null,
    isOpen: () => out.state === 'open',
    queued,
    window: () => out.window as number,
    useWindow: (n) => {
      out.window = (out.window as number) - n;
    },
    maxWriteLen: () => r._maxWriteLen as number,
    nextRequestId: () => (r._writeReqid = ((r._writeReqid as number) + 1) & MAX_REQID),
    expectReply: (id, cb) => {
      (r._requests as Record<number, { cb: (err?: Error) => void }>)[id] = { cb };
    },
    encrypterNow: () => {
      if (!packets) return null;
      const c = proto._cipher;
      if (proto._kexinit !== undefined || c?.constructor?.name !== 'AESGCMCipherBinding' || typeof c.encrypt !== 'function' || writerName(proto) !== 'PacketWriter') return null;
      return (packet) => c.encrypt!(packet);
    },
    channelData: (data) => channelData(channel, data),
    replaceWrite: (write) => {
      const ssh2Write = r.write;
      r.write = write;
      return (...args) => ssh2Write.apply(raw, args);
    },
    whenWindow: (wake) => {
      if (queued() > 0 || (r._waitWindow && r._chunkcb)) return;
      r._waitWindow = true;
      r._chunkcb = () => {
        r._chunkcb = undefined;
        wake();
      };
    },
  };
  return { ...facts, fastPath: packets ? 'packets' : 'requests', reason: why, session };
}

function writerName(proto: Ssh2Protocol): string | undefined {
  return proto._packetRW?.write?.constructor?.name;
}

/**
 * Pushing files to a host over SFTP: resumable, verified on the host, atomically renamed into
 * place, and fast (many outstanding write requests per channel, several channels at once, the
 * data copied once into reused SSH packets, the host hashing the part file while it grows).
 *
 * On the host, an upload of `/x/f` works with two files beside it:
 * - `/x/f.airlock-part`: the bytes so far;
 * - `/x/f.airlock-part.json`: `{"v":1,"sha256":…,"size":…,"committed":…}`, what the part file is
 *   meant to become, and how much of it is known good (`committed`: bytes from the start; null
 *   when the part file was written by one stream in order, so all of it is).
 * Only a file whose SHA-256, computed on the host, is the expected one is renamed to `/x/f`.
 */
import { randomFillSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { PassThrough } from 'node:stream';
import { AirlockError } from '../../../shared/domain/errors';
import type { SFTPWrapper } from 'ssh2';
import { SFTP_OPEN, type ExecResult, type SftpSession, type SshConnection } from './connection';
import { sanitizeHostText } from './sanitize';

export interface UploadProgress {
  /** Bytes this call has had acknowledged by the host (the result's `bytesSent`, so far). */
  sent: number;
  /** Bytes of the file known to be on the host: what a resume started from, plus `sent`. */
  done: number;
  total: number;
}

export interface UploadOptions {
  /**
   * 1..n open connections to the same host; more connections mean more streams in parallel. The
   * first one also runs the commands (space check, hashing). Not closed here.
   */
  connections: SshConnection[];
  /**
   * SFTP channels (streams) opened on each connection, 1–4; default 2. sshd lets each channel have
   * at most 2 MiB in flight, which alone caps one channel's throughput once the host is busy. With
   * one stream in all, a resume starts from the part file's size; with several, from the whole
   * prefix last recorded in the sidecar (every 32 MiB).
   */
  channelsPerConnection?: number;
  localPath: string;
  /** Absolute path on the host; no NUL, CR or LF. */
  remotePath: string;
  /** Expected SHA-256 of the local file (hex), computed by the caller. What the host must end up with. */
  sha256: string;
  /** Permission bits of the file on the host; default 0o644. */
  mode?: number;
  /** Called as acknowledgements arrive (at most every 100 ms), and once at the end. */
  onProgress?(p: UploadProgress): void;
  signal?: AbortSignal;
  /**
   * Bytes per SFTP write request (4 KiB – 255 KiB, and at most what the server takes); default
   * 255 KiB. Fewer, larger requests cost OpenSSH's sftp-server and sshd less per byte (on the lab,
   * 128 KiB requests cost sftp-server twice the CPU of 255 KiB ones).
   */
  chunkSize?: number;
  /**
   * The longest the host may keep us waiting: for a command or request to answer, or, while
   * writes are outstanding, for the next acknowledgement. Default 60 s. Hashing a whole file on the
   * host is allowed this plus 1 s per 20 MB.
   */
  timeoutMs?: number;
  /**
   * Write requests kept outstanding per stream; default 16, so 4 MiB in flight per stream
   * (OpenSSH's sftp keeps 64 × 32 KiB = 2 MiB). Fewer go out while the channel's window (2 MiB on
   * OpenSSH) has no room for the next: the rest would only wait in ssh2, as copies.
   */
  requestsPerStream?: number;
}

export interface UploadResult {
  /** Bytes sent by this call (a resumed upload counts only the new ones; 0 when skipped). */
  bytesSent: number;
  /** Where this call started: the bytes of an earlier attempt that were kept. */
  resumedFrom: number;
  /** The SHA-256 the file on the host was verified to have. */
  sha256: string;
  remotePath: string;
  /** The file was already there with this SHA-256: nothing was sent. */
  skipped: boolean;
}

/**
 * POSIX single-quote escaping for a value put into a shell command on a host. Refuses NUL, CR and
 * LF, which no path or value Airlock sends should contain.
 */
export function shellQuote(s: string): string {
  if (typeof s !== 'string' || /[\0\r\n]/.test(s)) {
    throw new AirlockError('INVALID_INPUT', 'A value sent to a host contains a NUL, CR or newline character.');
  }
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The suffixes of the files an upload works with beside its target. */
export const PART_SUFFIX = '.airlock-part';
export const SIDECAR_SUFFIX = '.airlock-part.json';

const DEFAULT_CHUNK = 255 * 1024;
const MIN_CHUNK = 4 * 1024;
/** OpenSSH's sftp-server accepts writes up to 256 KiB per request; keep room for the header. */
const MAX_CHUNK = 255 * 1024;
const DEFAULT_REQUESTS = 16;
const DEFAULT_CHANNELS = 2;
const DEFAULT_TIMEOUT_MS = 60_000;
/** Bytes read from the local file at once, and handed to one stream as a unit. */
const PIECE = 8 * 1024 * 1024;
/** Tell the host-side hasher about new bytes in steps of at least this much. */
const HASH_STEP = 16 * 1024 * 1024;
/** With several streams, record the known-good prefix in the sidecar (over SFTP: no process on the host) every this many bytes. */
const CHECKPOINT_STEP = 32 * 1024 * 1024;
/** Hashing a whole file on the host: allowed time beyond timeoutMs, per byte (20 MB/s). */
const HASH_MS_PER_BYTE = 1 / 20_000;
const PROGRESS_MS = 100;
const SIDECAR_MAX = 4096;

interface Sidecar {
  sha256: string;
  size: number;
  committed: number | null;
}

/** What the host has before an upload: the target, a part file, its sidecar, free space. */
interface RemoteState {
  final: { kind: 'none' | 'dir' | 'other' } | { kind: 'file'; size: number };
  partSize: number | null;
  avail: number;
  /** The nearest existing directory at or above the target's directory (where `avail` was measured). */
  spaceDir: string;
  sidecar: Sidecar | null;
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function checkRemotePath(p: string): string {
  if (typeof p !== 'string' || /[\0\r\n]/.test(p)) {
    throw new AirlockError('INVALID_INPUT', 'The remote path contains a NUL, CR or newline character.');
  }
  const base = p.slice(p.lastIndexOf('/') + 1);
  if (!p.startsWith('/') || p.length > 4000 || base === '' || base === '.' || base === '..') {
    throw new AirlockError('INVALID_INPUT', `The remote path must be an absolute path to a file (got ${JSON.stringify(sanitizeHostText(p, 80))}).`);
  }
  return p;
}

function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

/** The first SHA-256 digest at the start of a line of `sha256sum`/`openssl dgst -r` output. */
function parseDigest(out: string): string | null {
  const m = /^([0-9a-fA-F]{64})(?:[ \t]|$)/m.exec(out);
  return m ? m[1]!.toLowerCase() : null;
}

/**
 * Shell snippet defining `h`, a SHA-256 of stdin or of file arguments: OpenSSL's when it works on
 * this host (it uses the CPU's SHA instructions; coreutils' sha256sum is often several times
 * slower), else sha256sum. Both print the digest first on the line.
 */
const HASHER = `if command -v openssl >/dev/null 2>&1 && printf '' | openssl dgst -sha256 -r >/dev/null 2>&1; then h() { openssl dgst -sha256 -r "$@"; }; else h() { sha256sum -b "$@"; }; fi`;

/** A script of ours (values in it already quoted) as one command, run by /bin/sh whatever the login shell is. */
function sh(script: string): string {
  if (script.includes('\0')) throw new AirlockError('INTERNAL', 'A host script contains a NUL character.');
  return `/bin/sh -c '${script.replace(/'/g, `'\\''`)}'`;
}

function parseSidecar(text: string): Sidecar | null {
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    if (j === null || typeof j !== 'object' || j.v !== 1) return null;
    const { sha256, size, committed } = j;
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return null;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return null;
    if (committed !== null && (typeof committed !== 'number' || !Number.isSafeInteger(committed) || committed < 0)) return null;
    return { sha256, size, committed: committed as number | null };
  } catch {
    return null;
  }
}

function sidecarText(s: Sidecar): string {
  return JSON.stringify({ v: 1, sha256: s.sha256, size: s.size, committed: s.committed });
}

/** Host commands of one upload, through its first connection. */
class Host {
  constructor(
    readonly conn: SshConnection,
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  get label(): string {
    return this.conn.label;
  }

  /** Run a script with /bin/sh; `uncancellable` for the bookkeeping that follows a cancellation. */
  async run(script: string, what: string, opts: { stdin?: string; timeoutMs?: number; okCodes?: number[]; uncancellable?: boolean } = {}): Promise<ExecResult> {
    const r = await this.conn.exec(sh(script), {
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
      signal: opts.uncancellable ? undefined : this.signal,
      stdin: opts.stdin,
      maxOutputBytes: 64 * 1024,
    });
    if (!(opts.okCodes ?? [0]).includes(r.code ?? -1)) {
      const detail = sanitizeHostText(r.stderr.trim().split('\n').slice(-3).join(' / ') || r.stdout.trim().slice(-200), 300);
      throw new AirlockError('SSH_ERROR', `${what} on ${this.label} failed (${r.code === null ? `signal ${r.signal ?? '?'}` : `exit ${r.code}`})${detail ? `: ${detail}` : '.'}`);
    }
    return r;
  }

  async state(remotePath: string): Promise<RemoteState> {
    const f = shellQuote(remotePath);
    const script = [
      `f=${f}; p=${shellQuote(remotePath + PART_SUFFIX)}; s=${shellQuote(remotePath + SIDECAR_SUFFIX)}; d=${shellQuote(dirOf(remotePath))}`,
      `sz() { stat -c %s -- "$1" 2>/dev/null || wc -c < "$1"; }`,
      `if [ -d "$f" ]; then echo "final dir"; elif [ -f "$f" ]; then echo "final $(sz "$f")"; elif [ -e "$f" ] || [ -L "$f" ]; then echo "final other"; else echo "final none"; fi`,
      `if [ -f "$p" ]; then echo "part $(sz "$p")"; else echo "part none"; fi`,
      `a=$d; while [ ! -d "$a" ]; do a=$(dirname -- "$a"); done`,
      `v=$(df -B1 --output=avail -- "$a" 2>/dev/null | tail -n 1 | tr -d ' ')`,
      `case $v in ''|*[!0-9]*) v=$(df -Pk -- "$a" 2>/dev/null | awk 'NR==2 {printf "%.0f", $4 * 1024}') ;; esac`,
      `echo "avail $v"`,
      `printf 'dir %s\\n' "$a"`,
      `echo side`,
      `if [ -f "$s" ]; then head -c ${SIDECAR_MAX} -- "$s"; fi`,
    ].join('\n');
    const r = await this.run(script, `Looking at ${remotePath}`);
    const [head, side = ''] = splitOnce(r.stdout, '\nside\n');
    const line = (key: string) => new RegExp(`^${key} (.*)$`, 'm').exec(head)?.[1] ?? null;
    const fin = line('final');
    const part = line('part');
    const avail = line('avail');
    const spaceDir = line('dir');
    const int = (v: string | null) => (v !== null && /^\d{1,17}$/.test(v) ? Number(v) : null);
    if (fin === null || part === null || int(avail) === null || spaceDir === null) {
      throw new AirlockError('PARSE_ERROR', `Could not read the state of ${remotePath} on ${this.label} (free space, sizes): unexpected output from the host.`);
    }
    const finalSize = int(fin);
    return {
      final: finalSize !== null ? { kind: 'file', size: finalSize } : { kind: fin === 'dir' ? 'dir' : fin === 'other' ? 'other' : 'none' },
      partSize: part === 'none' ? null : int(part),
      avail: int(avail)!,
      spaceDir: sanitizeHostText(spaceDir, 300),
      sidecar: side ? parseSidecar(side.slice(0, SIDECAR_MAX)) : null,
    };
  }

  /** SHA-256 of a whole file on the host, or null when it could not be computed. */
  async sha256(path: string, size: number): Promise<string | null> {
    // Through stdin: sha256sum escapes odd file names in its output, and then the line starts with a backslash.
    const r = await this.run(`${HASHER}\nh < ${shellQuote(path)}`, `Hashing ${path}`, {
      timeoutMs: this.timeoutMs + Math.ceil(size * HASH_MS_PER_BYTE),
      okCodes: [0, 1, 2],
    });
    return r.code === 0 ? parseDigest(r.stdout) : null;
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)];
}

/**
 * The streaming hasher in Python, where the host has it: it maps the file's pages (mmap) and hashes
 * them where they lie in the page cache, with no copy and no pipe in between (a `head | openssl`
 * pipeline costs about twice the CPU; read() into a buffer adds a copy of the whole file, about a
 * third of the hashing cost). Reads exactly the byte counts it is given, one per line; exits 5 if
 * the file is shorter (it checks before mapping; a file cut shorter while mapped kills it with
 * SIGBUS, which is the same failure). Opens the file at the first count, so it can be started
 * before the file exists. After each range it advises the kernel it is done with it
 * (POSIX_FADV_DONTNEED), which starts writing those dirty pages to disk now: the fsync at the end
 * then waits for the tail only, and tens of GB of weights do not sit dirty in the host's page
 * cache until then.
 */
const PY_HASHER = [
  'import hashlib, mmap, os, sys',
  'fd = None',
  'h = hashlib.sha256()',
  'gran = mmap.ALLOCATIONGRANULARITY',
  'pos = 0',
  'for line in sys.stdin.buffer:',
  '    n = int(line)',
  '    if fd is None:',
  '        fd = os.open(sys.argv[1], os.O_RDONLY)',
  '    start = pos',
  '    while n > 0:',
  '        k = min(n, 64 << 20)',
  '        if os.fstat(fd).st_size < pos + k:',
  '            sys.exit(5)',
  '        base = pos - pos % gran',
  '        m = mmap.mmap(fd, pos + k - base, mmap.MAP_SHARED, mmap.PROT_READ, offset=base)',
  '        with memoryview(m) as v, v[pos - base:] as w:',
  '            h.update(w)',
  '        m.close()',
  '        n -= k',
  '        pos += k',
  '    try:',
  '        os.posix_fadvise(fd, start, pos - start, os.POSIX_FADV_DONTNEED)',
  '    except Exception:',
  '        pass',
  'print(h.hexdigest())',
  'sys.stderr.write("airlock-fed\\n")',
].join('\n');

/** Single-quote a multi-line value of ours (Python source) for the shell. */
function quoteLines(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A SHA-256 computed on the host while the part file is written: a command reading the file
 * through one descriptor (opened at the first count), as many bytes at a time as it is told on
 * stdin, so only bytes the host has acknowledged are read and the digest is ready as soon as the
 * last write is (python3's hashlib where it works, else `head` into openssl or sha256sum). Its
 * digest is only trusted when it matches; anything else falls back to hashing the finished file.
 */
class StreamingHash {
  private readonly input = new PassThrough();
  private readonly abort = new AbortController();
  private announced = 0;
  readonly result: Promise<string | null>;

  constructor(conn: SshConnection, partPath: string) {
    const part = shellQuote(partPath);
    const script = [
      `if python3 -c 'import hashlib, mmap, os' >/dev/null 2>&1; then exec python3 -c ${quoteLines(PY_HASHER)} ${part}; fi`,
      HASHER,
      `o=`,
      `{ while IFS= read -r n; do case $n in ''|*[!0-9]*) exit 4 ;; esac; [ -n "$o" ] || { exec 3< ${part} || exit 3; o=1; }; head -c "$n" <&3 || exit 5; done; echo airlock-fed >&2; } | h`,
    ].join('\n');
    this.result = conn
      .exec(sh(script), { timeoutMs: 24 * 3600 * 1000, signal: this.abort.signal, stdin: this.input, maxOutputBytes: 4096 })
      .then((r) => (r.code === 0 && r.stderr.includes('airlock-fed') ? parseDigest(r.stdout) : null))
      .catch(() => null);
  }

  /** The hasher may read up to `bytes` from the start of the part file. */
  advance(bytes: number, force = false): void {
    const delta = bytes - this.announced;
    if (delta <= 0 || (!force && delta < HASH_STEP)) return;
    this.input.write(`${delta}\n`);
    this.announced = bytes;
  }

  /** No more bytes: the digest of everything announced, or null if the hasher did not make it in time. */
  async finish(bytes: number, waitMs: number): Promise<string | null> {
    this.advance(bytes, true);
    this.input.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), waitMs)));
    const got = await Promise.race([this.result, late]);
    clearTimeout(timer);
    if (got === null) this.stop();
    return got;
  }

  stop(): void {
    this.input.end();
    this.abort.abort();
  }
}

interface Piece {
  start: number;
  end: number;
  acked: number;
}

interface Stream {
  index: number;
  sftp: SftpSession;
  handle: Buffer;
  outstanding: number;
  wake: (() => void) | null;
  /** Writes without ssh2's copy (null: ssh2's own write). */
  direct?: DirectWrites | null;
}

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
function maxWriteLen(raw: SFTPWrapper): number {
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
class PacketPool {
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
function directWrites(raw: SFTPWrapper, pools: Map<unknown, PacketPool | null>): DirectWrites | null {
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
interface DirectWrites {
  /** Whether a write of `len` bytes goes out at once, without ssh2 queueing it. */
  fits(handle: Buffer, len: number): boolean;
  /** Call `wake` once the server widens the channel's window (at most once; acknowledgements wake the writer too). */
  whenWindow(wake: () => void): void;
}

function callSafely(f: () => void): void {
  try {
    f();
  } catch {
    // A caller's progress listener must not break the transfer.
  }
}

/**
 * Upload a file to a host, resumably and verified. See the module comment for the files it uses.
 *
 * - The target already there with the right size and SHA-256: skipped, nothing sent.
 * - A part file from an earlier attempt for the same SHA-256 and size: resumed from its known-good
 *   prefix. Any other part file: started over.
 * - Free space is checked first (NO_SPACE), parent directories are created.
 * - After the last write: fsync, close, SHA-256 on the host, and only on a match an atomic rename
 *   and removal of the sidecar. A mismatch is HASH_MISMATCH and removes the part file.
 * - Cancelled (CANCELLED) or a connection lost (HOST_UNREACHABLE / TIMEOUT): the part file stays,
 *   and the next call resumes.
 *
 * One upload per remote path at a time: two at once would write into the same part file.
 */
export async function uploadFile(opts: UploadOptions): Promise<UploadResult> {
  const conns = opts.connections;
  if (!Array.isArray(conns) || conns.length === 0) throw new AirlockError('INVALID_INPUT', 'An upload needs at least one connection.');
  if (conns.length > 32) throw new AirlockError('INVALID_INPUT', 'An upload uses at most 32 connections.');
  const perConn = opts.channelsPerConnection ?? DEFAULT_CHANNELS;
  // sshd allows 10 sessions per connection by default (MaxSessions); the first connection also
  // carries a bookkeeping session, the hasher, and whatever else its owner runs meanwhile.
  if (!Number.isInteger(perConn) || perConn < 1 || perConn > 4) throw new AirlockError('INVALID_INPUT', 'channelsPerConnection must be 1–4.');
  // One entry per stream: each connection as many times as it carries channels.
  const streamConns = conns.flatMap((c) => Array.from({ length: perConn }, () => c));
  if (conns.some((c) => c.fingerprint !== conns[0]!.fingerprint)) {
    throw new AirlockError('INVALID_INPUT', 'The connections of an upload must all go to the same host.');
  }
  const remotePath = checkRemotePath(opts.remotePath);
  const partPath = remotePath + PART_SUFFIX;
  const want = typeof opts.sha256 === 'string' ? opts.sha256.toLowerCase() : '';
  if (!/^[0-9a-f]{64}$/.test(want)) throw new AirlockError('INVALID_INPUT', 'The expected SHA-256 must be 64 hex digits.');
  const mode = opts.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new AirlockError('INVALID_INPUT', 'The file mode must be a number from 0 to 0o7777.');
  const chunk = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.floor(opts.chunkSize ?? DEFAULT_CHUNK)));
  const perStream = Math.min(1024, Math.max(1, Math.floor(opts.requestsPerStream ?? DEFAULT_REQUESTS)));
  const timeoutMs = opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_TIMEOUT_MS;
  const signal = opts.signal;
  const label = conns[0]!.label;
  const what = `Uploading ${remotePath} to ${label}`;
  if (signal?.aborted) throw new AirlockError('CANCELLED', `${what} was cancelled.`);

  let size: number;
  const local = await fsp.open(opts.localPath, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new AirlockError(err.code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_INPUT', `Cannot read the local file ${opts.localPath}: ${err.code ?? err.message}.`);
  });
  try {
    const st = await local.stat();
    if (!st.isFile()) throw new AirlockError('INVALID_INPUT', `${opts.localPath} is not a regular file.`);
    size = st.size;

    const host = new Host(conns[0]!, timeoutMs, signal);
    const progress = (sent: number, done: number) => opts.onProgress && callSafely(() => opts.onProgress!({ sent, done, total: size }));
    // The SFTP sessions open while the host's state is read (each costs a process start on the host):
    // one per stream, and one on the first connection for the bookkeeping (directories, sidecar,
    // checkpoints, the final rename), so that never queues behind megabytes of writes.
    const opening = Promise.allSettled([conns[0]!, ...streamConns].map((c) => c.sftp({ timeoutMs, signal })));
    let hasher: StreamingHash | null = null;
    try {
      const state = await host.state(remotePath);
      if (state.final.kind === 'dir') throw new AirlockError('INVALID_INPUT', `${remotePath} on ${label} is a directory.`);
      if (state.final.kind === 'file' && state.final.size === size && (await host.sha256(remotePath, size)) === want) {
        // Already there. A part file meant to become this same file is of no use any more.
        if (state.sidecar?.sha256 === want) await removeQuietly(host, remotePath);
        progress(0, size);
        return { bytesSent: 0, resumedFrom: 0, sha256: want, remotePath, skipped: true };
      }
      // Resume only a part file meant for exactly this content, from its known-good prefix.
      const side = state.sidecar;
      const part = state.partSize;
      let resumeFrom = 0;
      if (part !== null && side && side.sha256 === want && side.size === size && part <= size) {
        resumeFrom = side.committed === null ? part : Math.min(side.committed, part);
      }
      // Starting over (or cutting the part file back) frees what it held past the resume point; the old
      // target's space only comes back after the rename.
      const avail = state.avail + (part !== null && part > resumeFrom ? part - resumeFrom : 0);
      const needed = size - resumeFrom;
      if (needed > avail) {
        throw new AirlockError(
          'NO_SPACE',
          `Not enough space on ${label} for ${remotePath}: ${needed} bytes (${fmtBytes(needed)}) needed, ${avail} bytes (${fmtBytes(avail)}) available in ${state.spaceDir}.`,
        );
      }

      // An upload it is: the hasher starts now, while the rest is prepared.
      hasher = new StreamingHash(host.conn, partPath);
      const opened = await opening;
      const refused = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (refused) throw refused.reason;
      const [control, ...sessions] = opened.map((o) => (o as PromiseFulfilledResult<SftpSession>).value);
      await mkdirs(control!, dirOf(remotePath), state.spaceDir);
      if (resumeFrom === 0) await control!.unlink(partPath);
      // What lies past the resume point may have holes (several streams): cut it off, so the part file
      // is a contiguous prefix again.
      else if (part !== resumeFrom) await control!.truncate(partPath, resumeFrom);
      await writeSidecar(control!, remotePath, { sha256: want, size, committed: sessions.length > 1 ? resumeFrom : null });

      return await transfer({ control: control!, sessions, hasher, host, local, size, resumeFrom, remotePath, partPath, want, mode, chunk, perStream, timeoutMs, signal, what, progress });
    } finally {
      hasher?.stop();
      // Wait for the channels to close: then the host has handled every write it received, and the
      // part file no longer changes under a caller who looks at it or resumes at once.
      const opened = await opening;
      await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value.end() : undefined)));
    }
  } finally {
    await local.close().catch(() => {});
  }
}

/** `mkdir -p` over SFTP: the directories below `existing` (the nearest one the host reported). */
async function mkdirs(s: SftpSession, dir: string, existing: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const d = `/${parts.slice(0, i).join('/')}`;
    if (existing === '/' ? false : existing === d || existing.startsWith(`${d}/`)) continue;
    try {
      await s.mkdir(d);
    } catch (err) {
      // Already there (made meanwhile, or the reported directory was not this path's ancestor).
      if ((await s.stat(d).catch(() => null))?.isDirectory) continue;
      throw err;
    }
  }
}

/** Replace the sidecar atomically: a temporary file renamed over it. */
async function writeSidecar(s: SftpSession, remotePath: string, side: Sidecar): Promise<void> {
  const file = remotePath + SIDECAR_SUFFIX;
  const data = Buffer.from(sidecarText(side));
  const h = await s.open(`${file}.tmp`, SFTP_OPEN.WRITE | SFTP_OPEN.CREAT | SFTP_OPEN.TRUNC, 0o600);
  try {
    await new Promise<void>((resolve, reject) => s.write(h, data, 0, data.length, 0, (err) => (err ? reject(err) : resolve())));
  } finally {
    await s.close(h);
  }
  await s.rename(`${file}.tmp`, file);
}

interface TransferArgs {
  control: SftpSession;
  sessions: SftpSession[];
  hasher: StreamingHash;
  host: Host;
  local: fsp.FileHandle;
  size: number;
  resumeFrom: number;
  remotePath: string;
  partPath: string;
  want: string;
  mode: number;
  chunk: number;
  perStream: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  what: string;
  progress: (sent: number, done: number) => void;
}

async function transfer(a: TransferArgs): Promise<UploadResult> {
  const { host, size, resumeFrom, remotePath, partPath, want } = a;
  const label = host.label;
  const multi = a.sessions.length > 1;
  const pieces: Piece[] = [];
  for (let s = resumeFrom; s < size; s += PIECE) pieces.push({ start: s, end: Math.min(size, s + PIECE), acked: 0 });

  let failure: AirlockError | null = null;
  let chunk = a.chunk;
  const streams: Stream[] = [];
  const hasher = a.hasher;
  let nextPiece = 0;
  let lowPiece = 0;
  let lowWater = resumeFrom;
  let sent = 0;
  let lastAck = Date.now();
  let lastProgress = 0;
  let checkpointed = resumeFrom;
  let checkpointing: Promise<void> | null = null;

  const fail = (err: AirlockError) => {
    if (failure) return;
    failure = err;
    for (const s of streams) s.wake?.();
  };
  const onAbort = () => fail(new AirlockError('CANCELLED', `${a.what} was cancelled.`));
  a.signal?.addEventListener('abort', onAbort, { once: true });
  const watchdog = setInterval(
    () => {
      const waiting = streams.some((s) => s.outstanding > 0);
      if (waiting && Date.now() - lastAck > a.timeoutMs) fail(new AirlockError('TIMEOUT', `${a.what} stalled: the host acknowledged nothing for ${a.timeoutMs} ms.`));
    },
    Math.max(50, Math.min(1000, a.timeoutMs / 4)),
  );
  // A lost connection needs no listener here: its outstanding and later writes fail with its error.

  const checkpoint = () => {
    if (!multi || checkpointing || lowWater - checkpointed < CHECKPOINT_STEP || failure) return;
    const at = lowWater;
    checkpointing = withTimeout(writeSidecar(a.control, remotePath, { sha256: want, size, committed: at }), a.timeoutMs)
      .then(() => {
        checkpointed = at;
      })
      .catch(() => {
        // The transfer itself reports a lost connection; a missed checkpoint only costs resent bytes.
      })
      .finally(() => (checkpointing = null));
  };

  const onAcked = (piece: Piece, len: number) => {
    piece.acked += len;
    sent += len;
    lastAck = Date.now();
    while (lowPiece < pieces.length && pieces[lowPiece]!.acked === pieces[lowPiece]!.end - pieces[lowPiece]!.start) {
      lowWater = pieces[lowPiece]!.end;
      lowPiece++;
    }
    hasher.advance(lowWater);
    checkpoint();
    if (lastAck - lastProgress >= PROGRESS_MS) {
      lastProgress = lastAck;
      a.progress(sent, resumeFrom + sent);
    }
  };

  const readPiece = async (p: Piece, into: Buffer): Promise<Buffer> => {
    const len = p.end - p.start;
    let got = 0;
    while (got < len) {
      const { bytesRead } = await a.local.read(into, got, len - got, p.start + got);
      if (bytesRead === 0) throw new AirlockError('CONFLICT', `The local file changed during the upload (it is shorter than ${size} bytes now).`);
      got += bytesRead;
    }
    return into.subarray(0, len);
  };

  const runStream = async (s: Stream) => {
    // Two buffers per stream, reused: one being sent while the next piece is read into the other.
    // ssh2 copies what it is given to write before returning, so a buffer is free again as soon as
    // its piece's writes are issued. (Fresh 8 MiB buffers per piece cost a lot of garbage collection.)
    const free: Buffer[] = [Buffer.allocUnsafe(Math.min(PIECE, size)), Buffer.allocUnsafe(Math.min(PIECE, size))];
    const take = (): [Piece, Buffer, Promise<Buffer>] | null => {
      if (failure || nextPiece >= pieces.length) return null;
      const p = pieces[nextPiece++]!;
      const buf = free.pop()!;
      const r = readPiece(p, buf);
      r.catch(() => {}); // read ahead: a failure is seen when awaited, or not at all once the transfer failed
      return [p, buf, r];
    };
    let cur = take();
    while (cur && !failure) {
      const [piece, buf, reading] = cur;
      let data: Buffer;
      try {
        data = await reading;
      } catch (err) {
        fail(err instanceof AirlockError ? err : new AirlockError('INTERNAL', `Reading the local file failed: ${(err as Error).message}`));
        break;
      }
      cur = take();
      for (let off = 0; off < data.length && !failure; ) {
        const len = Math.min(chunk, data.length - off);
        // Up to perStream requests; and, with direct writes, only what the channel's window takes now
        // (the rest would wait in ssh2 as copies): the next acknowledgement or window adjust makes room.
        // With nothing outstanding, a request that still does not fit goes through ssh2's queue.
        while (!failure && (s.outstanding >= a.perStream || (s.direct && s.outstanding > 0 && !s.direct.fits(s.handle, len)))) {
          await new Promise<void>((r) => {
            s.wake = r;
            if (s.outstanding < a.perStream) s.direct?.whenWindow(r);
          });
        }
        if (failure) break;
        s.outstanding++;
        s.sftp.write(s.handle, data, off, len, piece.start + off, (err) => {
          s.outstanding--;
          if (err) fail(err);
          else onAcked(piece, len);
          const w = s.wake;
          s.wake = null;
          w?.();
        });
        off += len;
      }
      free.push(buf);
    }
    while (s.outstanding > 0 && !failure) await new Promise<void>((r) => (s.wake = r));
  };

  try {
    a.progress(0, resumeFrom);
    const handles = await Promise.all(a.sessions.map((s) => s.open(partPath, SFTP_OPEN.WRITE | SFTP_OPEN.CREAT, 0o600)));
    a.sessions.forEach((sftp, index) => streams.push({ index, sftp, handle: handles[index]!, outstanding: 0, wake: null }));
    const pools = new Map<unknown, PacketPool | null>();
    for (const s of streams) s.direct = directWrites(s.sftp.raw, pools);
    // A request the server takes whole (ssh2 splits a longer one, through its own copying path).
    chunk = Math.min(chunk, ...a.sessions.map((s) => maxWriteLen(s.raw)));
    const main = streams[0]!;
    // The final mode from the start: the part file is not under the final name anyway.
    await main.sftp.fchmod(main.handle, a.mode);
    hasher.advance(resumeFrom, true);
    await Promise.all(streams.map(runStream));
    if (failure) throw failure;
    // No acknowledgement comes any more, so no new checkpoint; one still under way would bring the
    // sidecar back after its removal below.
    await checkpointing;

    // The hasher catches up while the file is flushed and closed.
    const hashing = hasher.finish(size, a.timeoutMs);
    await main.sftp.fsync(main.handle);
    await Promise.all(streams.map((s) => s.sftp.close(s.handle)));
    if (failure) throw failure;
    a.progress(sent, resumeFrom + sent);

    const [streamed, onHost] = await Promise.all([hashing, a.control.stat(partPath)]);
    if (!onHost || onHost.size !== size) {
      await removeQuietly(host, remotePath);
      throw new AirlockError(
        'HASH_MISMATCH',
        `${remotePath} on ${label} came out ${onHost ? `${onHost.size} bytes` : 'missing'} instead of ${size} bytes (expected SHA-256 ${want}). The partial file was removed; the next upload starts over.`,
      );
    }
    // Only a match is taken from the streaming hash; anything else is settled by hashing the finished file.
    const got = streamed === want ? streamed : await host.sha256(partPath, size);
    if (got !== want) {
      await removeQuietly(host, remotePath);
      throw new AirlockError(
        'HASH_MISMATCH',
        `${remotePath} on ${label} does not have the expected content: SHA-256 on the host ${got ?? '(could not be computed)'}, expected ${want}. The partial file was removed; the next upload starts over.`,
      );
    }
    await a.control.rename(partPath, remotePath);
    await a.control.unlink(remotePath + SIDECAR_SUFFIX);
    return { bytesSent: sent, resumedFrom: resumeFrom, sha256: want, remotePath, skipped: false };
  } catch (err) {
    const e = err instanceof AirlockError ? err : new AirlockError('INTERNAL', `${a.what} failed: ${(err as Error).message}`);
    // Cancelled while the connection lives: record how far the bytes are good, for the next resume.
    await checkpointing;
    if (e.code !== 'HASH_MISMATCH' && multi && !a.control.closed && lowWater > checkpointed) {
      await withTimeout(writeSidecar(a.control, remotePath, { sha256: want, size, committed: lowWater }), 5000).catch(() => {});
    }
    throw e;
  } finally {
    clearInterval(watchdog);
    a.signal?.removeEventListener('abort', onAbort);
  }
}

async function removeQuietly(host: Host, remotePath: string): Promise<void> {
  await host
    .run(`rm -f -- ${shellQuote(remotePath + PART_SUFFIX)} ${shellQuote(remotePath + SIDECAR_SUFFIX)}`, `Removing ${remotePath}${PART_SUFFIX}`, { uncancellable: true })
    .catch(() => {});
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(timer));
}

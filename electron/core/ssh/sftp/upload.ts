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
import { promises as fsp } from 'node:fs';
import { AirlockError } from '../../../../shared/domain/errors';
import type { SftpSession, SshConnection } from '../connection/types';
import { StreamingHash } from './remote-hash';
import { MAX_CHUNK, MIN_CHUNK, transfer } from './transfer';
import { checkRemotePath, dirOf, Host, mkdirs, PART_SUFFIX, removeQuietly, writeSidecar } from './upload-state';

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

const DEFAULT_CHUNK = 255 * 1024;
const DEFAULT_REQUESTS = 16;
const DEFAULT_CHANNELS = 2;
const DEFAULT_TIMEOUT_MS = 60_000;

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

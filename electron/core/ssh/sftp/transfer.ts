/**
 * The transfer itself: the file cut into pieces, each stream keeping many write requests
 * outstanding, the known-good prefix fed to the host's hasher and checkpointed in the sidecar,
 * then flush, close, verify on the host and rename into place.
 */
import type { promises as fsp } from 'node:fs';
import { AirlockError } from '../../../../shared/domain/errors';
import type { SFTPWrapper } from 'ssh2';
import { SFTP_OPEN, type SftpSession } from '../connection/types';
import { sftpMaxWriteLen } from '../ssh2-internals';
import { directWrites, type DirectWrites, type PacketPool } from './fast-path';
import type { StreamingHash } from './remote-hash';
import type { UploadResult } from './upload';
import { Host, removeQuietly, SIDECAR_SUFFIX, writeSidecar } from './upload-state';

export const MIN_CHUNK = 4 * 1024;
/** OpenSSH's sftp-server accepts writes up to 256 KiB per request; keep room for the header. */
export const MAX_CHUNK = 255 * 1024;
/** Bytes read from the local file at once, and handed to one stream as a unit. */
const PIECE = 8 * 1024 * 1024;
/** With several streams, record the known-good prefix in the sidecar (over SFTP: no process on the host) every this many bytes. */
const CHECKPOINT_STEP = 32 * 1024 * 1024;
const PROGRESS_MS = 100;

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

export interface TransferArgs {
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

/** The longest write ssh2 sends as one request to this server (from `limits@openssh.com`, else its default). */
function maxWriteLen(raw: SFTPWrapper): number {
  const n = sftpMaxWriteLen(raw);
  return typeof n === 'number' && n >= MIN_CHUNK ? n : MAX_CHUNK;
}

export async function transfer(a: TransferArgs): Promise<UploadResult> {
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

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(timer));
}

import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';

/**
 * Reading removable media that may be hostile (issue 9, point 7).
 *
 * A stick handed over at the air gap is attacker-controlled input: its names, its file types,
 * its sizes. What this module guarantees to the offline store:
 *
 * - **Only regular files and directories.** A symbolic link anywhere below the media directory is
 *   refused, naming it (a link could point at `/dev/zero`, at `/etc/shadow`, at another stick);
 *   so are FIFOs, sockets and device nodes. Nothing is followed.
 * - **Checked on the opened file, not the name.** Every file is opened with `O_NOFOLLOW |
 *   O_NONBLOCK` (a FIFO opens without waiting for a writer), then `fstat` on the descriptor must
 *   show a regular file with the device and inode seen when the directory was listed, and on
 *   Linux `/proc/self/fd` must show it was opened at exactly the listed path: a file or a parent
 *   directory swapped for a link between listing and opening is refused.
 * - **Bounded.** `SHA256SUMS` is read only up to {@link MAX_SUMS_BYTES}; every other file exactly
 *   to the size `fstat` gave, and a file that changes size or modification time while it is read
 *   is refused. The walk is bounded in depth and entries.
 * - **Never blocking the event loop.** Only asynchronous `fs` calls; every loop checks the
 *   caller's AbortSignal.
 */

export const SUMS_FILE = 'SHA256SUMS';
/**
 * Files that may sit beside SHA256SUMS without being listed in it: the list itself and a detached
 * signature of it (`gpg --detach-sign` writes `.sig` or `.gpg`, `--armor` writes `.asc`).
 * Only at the top of the media directory. Every other file must be listed, or nothing is imported.
 */
export const UNLISTED_ALLOWED: readonly string[] = [SUMS_FILE, `${SUMS_FILE}.sig`, `${SUMS_FILE}.asc`, `${SUMS_FILE}.gpg`];
/** A list of checksums for 10,000 files is about 1 MiB. */
export const MAX_SUMS_BYTES = 1024 * 1024;
const MAX_DEPTH = 32;
const MAX_ENTRIES = 100_000;

const C = fs.constants;
const OPEN_FLAGS = C.O_RDONLY | (C.O_NOFOLLOW ?? 0) | (C.O_NONBLOCK ?? 0) | (C.O_NOCTTY ?? 0);

/** A regular file found below the media directory, as `lstat` saw it when listed. */
export interface MediaFile {
  /** Relative to the media directory, `/`-separated. */
  rel: string;
  dev: bigint;
  ino: bigint;
}

/** A name from the media, safe to put in a message (controls, non-ASCII and quotes escaped). */
export function shown(name: string): string {
  if (/^[\x21-\x7e]{1,200}$/.test(name) && !name.includes('"')) return name;
  const s = name.length > 200 ? `${name.slice(0, 200)}…` : name;
  return `"${s.replace(/[^\x20-\x7e]|["\\]/gu, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\u{${c.codePointAt(0)!.toString(16)}}`))}"`;
}

export function cancelled(what: string): AirlockError {
  return new AirlockError('CANCELLED', `${what} was cancelled; nothing was imported.`);
}

function checkAbort(signal: AbortSignal | undefined, what: string) {
  if (signal?.aborted) throw cancelled(what);
}

const refuse = (msg: string) => new AirlockError('INVALID_INPUT', `${msg} Nothing was imported.`);

/**
 * Every regular file below `root` (a real path, already checked to be under a media root).
 * Refuses, naming the entry, a symlink, a FIFO, a socket, a device, or a directory it cannot read.
 */
export async function listMedia(root: string, signal?: AbortSignal): Promise<MediaFile[]> {
  const files: MediaFile[] = [];
  const dirs: Array<{ rel: string; depth: number }> = [{ rel: '', depth: 0 }];
  let seen = 0;
  while (dirs.length) {
    const d = dirs.shift()!;
    checkAbort(signal, 'The import');
    let names: string[];
    try {
      names = (await fs.promises.readdir(path.join(root, d.rel))).sort();
    } catch (e) {
      throw refuse(`Cannot read the directory ${shown(d.rel || '.')} on the media (${(e as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
    for (const name of names) {
      if (++seen > MAX_ENTRIES) throw refuse(`The media directory holds more than ${MAX_ENTRIES} entries.`);
      const rel = d.rel ? `${d.rel}/${name}` : name;
      let st: fs.BigIntStats;
      try {
        st = await fs.promises.lstat(path.join(root, rel), { bigint: true });
      } catch (e) {
        throw refuse(`Cannot read ${shown(rel)} on the media (${(e as NodeJS.ErrnoException).code ?? 'error'}).`);
      }
      if (st.isSymbolicLink()) {
        throw refuse(`${shown(rel)} is a symbolic link: media must hold only regular files and directories (a link could point anywhere, even off the media).`);
      }
      if (st.isDirectory()) {
        if (d.depth + 1 > MAX_DEPTH) throw refuse(`${shown(rel)} is nested more than ${MAX_DEPTH} directories deep.`);
        dirs.push({ rel, depth: d.depth + 1 });
      } else if (st.isFile()) {
        files.push({ rel, dev: st.dev, ino: st.ino });
      } else {
        throw refuse(`${shown(rel)} is not a regular file (a FIFO, socket or device): media must hold only regular files and directories.`);
      }
    }
  }
  return files;
}

/** An open media file, proven to be the regular file that was listed. */
export interface OpenedMediaFile {
  fh: fs.promises.FileHandle;
  size: number;
  /** Throws unless the file still has the size and modification time it had when opened. */
  assertUnchanged(): Promise<void>;
}

/** Open a listed file without following links, and prove on the descriptor that it is the one listed. */
export async function openMediaFile(root: string, f: MediaFile): Promise<OpenedMediaFile> {
  const abs = path.join(root, f.rel);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(abs, OPEN_FLAGS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw refuse(`${shown(f.rel)} became a symbolic link while being imported.`);
    throw refuse(`Cannot open ${shown(f.rel)} on the media (${code ?? 'error'}).`);
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) throw refuse(`${shown(f.rel)} is not a regular file.`);
    if (st.dev !== f.dev || st.ino !== f.ino) throw refuse(`${shown(f.rel)} was replaced while being imported.`);
    if (process.platform === 'linux') {
      // The descriptor's own path: catches a parent directory swapped for a link after listing.
      let where: string;
      try {
        where = await fs.promises.readlink(`/proc/self/fd/${fh.fd}`);
      } catch {
        throw refuse(`Cannot confirm where ${shown(f.rel)} was opened (/proc is not mounted).`);
      }
      if (where !== abs) throw refuse(`${shown(f.rel)} was opened outside the media directory (a directory was swapped for a link).`);
    }
    return {
      fh,
      size: Number(st.size),
      async assertUnchanged() {
        const now = await fh.stat({ bigint: true });
        if (now.size !== st.size || now.mtimeNs !== st.mtimeNs) throw refuse(`${shown(f.rel)} changed while being imported.`);
      },
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Read a whole small file, refusing one larger than `max` (by fstat, and by what was actually read). */
export async function readBounded(root: string, f: MediaFile, max: number): Promise<Buffer> {
  const o = await openMediaFile(root, f);
  try {
    if (o.size > max) throw refuse(`${shown(f.rel)} is ${o.size} bytes; at most ${max} are accepted.`);
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await o.fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > max) throw refuse(`${shown(f.rel)} is larger than ${max} bytes.`);
    }
    return buf.subarray(0, n);
  } finally {
    await o.fh.close();
  }
}

/**
 * Stream exactly `o.size` bytes of an opened file to `onChunk` (hashing, copying), 4 MiB at a
 * time, the next read overlapping the consumer. Stops with CANCELLED as soon as `signal` aborts.
 */
export async function streamMediaFile(
  o: OpenedMediaFile,
  label: string,
  onChunk: (chunk: Buffer) => Promise<void> | void,
  signal?: AbortSignal,
): Promise<void> {
  const CHUNK = 4 << 20;
  let bufs = [Buffer.allocUnsafe(Math.min(CHUNK, Math.max(o.size, 1))), Buffer.allocUnsafe(Math.min(CHUNK, Math.max(o.size, 1)))];
  let pos = 0;
  const readAt = (b: Buffer, at: number) => o.fh.read(b, 0, Math.min(b.length, o.size - at), at);
  let pending = pos < o.size ? readAt(bufs[0]!, 0) : null;
  while (pending) {
    const { bytesRead } = await pending;
    checkAbort(signal, `Importing ${label}`);
    if (bytesRead === 0) throw refuse(`${shown(label)} became shorter while being imported.`);
    const cur = bufs[0]!;
    pos += bytesRead;
    pending = pos < o.size ? readAt(bufs[1]!, pos) : null;
    try {
      await onChunk(cur.subarray(0, bytesRead));
    } catch (e) {
      if (pending) await pending.catch(() => {});
      throw e;
    }
    bufs = [bufs[1]!, cur];
  }
  checkAbort(signal, `Importing ${label}`);
  await o.assertUnchanged();
}

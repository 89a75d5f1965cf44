import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, Writable } from 'node:stream';
import zlib from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { z } from 'zod';
import { AirlockError } from '../../../shared/domain/errors';
import { listMedia, openMediaFile, readBounded, shown, streamMediaFile, type MediaFile } from '../store/media';
import { DIGEST_RE, ImageManifest, OCI_MANIFEST } from './registry/oci';

/**
 * The three forms a model version arrives in on removable media (issue 13), each read as the
 * hostile input it may be, into a plain tree of files under a temporary directory that the catalog
 * then hashes like any import (catalog.ts `hashTree`):
 *
 * - **A directory of weight files**: read in place (no copy).
 * - **An OCI image layout** (`oci-layout`, `index.json`, `blobs/sha256/<hex>`): every blob's
 *   SHA-256 and size checked against its name and descriptor, nothing else accepted in the
 *   layout, exactly one image manifest; each layer becomes a file named by its
 *   `org.opencontainers.image.title` annotation (a safe relative path).
 * - **A ModelKit tarball** (KitOps): a tar of the ModelKit's OCI layout, its config the Kitfile
 *   (`application/vnd.kitops.modelkit.config.v1+json`) and each layer a tar (or tar+gzip) of the
 *   model, datasets, code, docs or prompts. Both levels are parsed with `tar`'s streaming Parser,
 *   never `tar.x`: only regular files and directories (links, devices, FIFOs refused), names
 *   checked (no absolute paths, no `..`, no control characters), at most {@link MAX_ENTRIES}
 *   entries, each written only inside the temporary directory with `O_EXCL`; a truncated archive
 *   is refused.
 *
 * Every refusal is INVALID_INPUT (or HASH_MISMATCH for a blob that is not what its name says)
 * with the entry named, and nothing is imported.
 */

export const MODEL_FORMATS = ['directory', 'oci-layout', 'modelkit'] as const;
export type ModelFormat = (typeof MODEL_FORMATS)[number];

export const KITOPS_CONFIG = 'application/vnd.kitops.modelkit.config.v1+json';
/** Layer media types of a ModelKit (KitOps): the kind of content and how it is packed. */
export const KITOPS_LAYER = /^application\/vnd\.kitops\.modelkit\.(model|modelpart|dataset|code|docs|prompts)\.v1\.tar(\+gzip|\+zstd)?$/;

/** Entries in one archive, and files in one layout: a stick with a million names is refused, not walked. */
export const MAX_ENTRIES = 100_000;
const MAX_JSON = 4 * 1024 * 1024;
/** How far a gzip ModelKit layer may inflate: 64 times its size, plus 1 GiB (see `atMost`). */
export const MAX_INFLATE_RATIO = 64;
export const INFLATE_FLOOR = 1024 * 1024 * 1024;
const MAX_PATH = 1024;

const refuse = (msg: string) => new AirlockError('INVALID_INPUT', `${msg} Nothing was imported.`);

/** A relative path from an archive or an annotation, as a file of a version: `/`-separated, inside, printable. */
export function safeRelPath(p: string, what: string): string {
  const s = p.replace(/^\.\/+/, '').replace(/\/+$/, '');
  if (!s || s.length > MAX_PATH || /[\x00-\x1f\x7f\\]/.test(s) || s.startsWith('/') || s.split('/').some((c) => c === '' || c === '.' || c === '..')) {
    throw refuse(`${what} ${shown(p)} is not a safe relative path (absolute, '..', empty parts, a backslash or control characters).`);
  }
  return s;
}

/** Resolves a path the renderer or the CLI named: it must exist and lie under a configured media root (symlinks resolved, as the offline store does). */
export async function resolveMediaPath(p: string, roots: readonly string[], kind: 'directory' | 'file'): Promise<string> {
  let real: string;
  try {
    real = await fs.promises.realpath(path.resolve(p));
  } catch {
    throw new AirlockError('NOT_FOUND', `No ${kind} ${shown(p)}.`);
  }
  let inside = false;
  for (const r of roots) {
    const rootReal = await fs.promises.realpath(r).catch(() => null);
    if (!rootReal) continue;
    const rel = path.relative(rootReal, real);
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) inside = true;
  }
  if (!inside) throw new AirlockError('FORBIDDEN', `${shown(p)} is not under a media root (${roots.join(', ') || 'none configured'}). Mount the removable media there, or set AIRLOCK_MEDIA_ROOTS.`);
  // The name itself must not be a link (realpath followed it: the media must hold the file itself).
  const st = await fs.promises.lstat(path.resolve(p));
  if (st.isSymbolicLink()) throw refuse(`${shown(p)} is a symbolic link: name the ${kind} itself.`);
  const want = kind === 'directory' ? st.isDirectory() : st.isFile();
  if (!want) throw new AirlockError('INVALID_INPUT', `${shown(p)} is not a ${kind === 'directory' ? 'directory' : 'regular file'}.`);
  return real;
}

const OciLayoutFile = z.object({ imageLayoutVersion: z.string() });
const OciIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(z.object({ mediaType: z.string(), digest: z.string().regex(DIGEST_RE), size: z.number().int().nonnegative(), annotations: z.record(z.string(), z.string()).optional() })).max(1000),
});

export interface LayoutRead {
  manifest: ImageManifest;
  manifestDigest: string;
  /** The config blob's bytes (at most 4 MiB). */
  config: Buffer;
  /** Where each blob is, by digest (already verified). */
  blob(digest: string): MediaFile;
  root: string;
}

function parseJson<T>(schema: z.ZodType<T>, b: Buffer, what: string): T {
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch {
    throw refuse(`${what} is not JSON.`);
  }
  const r = schema.safeParse(v);
  if (!r.success) throw refuse(`${what} is not a valid document (${r.error.issues[0]?.path.join('.') || 'top'}: ${r.error.issues[0]?.message ?? '?'}).`);
  return r.data;
}

/**
 * Opens an OCI image layout at `root` (a real path, already resolved under a media root): the
 * layout holds only `oci-layout`, `index.json` and `blobs/sha256/<64 hex>`, every blob hashes to
 * its name, the index names exactly one image manifest, and every descriptor's size is the
 * blob's. Returns the manifest and where its blobs are.
 */
export async function openOciLayout(root: string, signal?: AbortSignal): Promise<LayoutRead> {
  const files = await listMedia(root, signal);
  if (files.length > MAX_ENTRIES) throw refuse(`The layout holds more than ${MAX_ENTRIES} files.`);
  const blobs = new Map<string, { file: MediaFile; size: number }>();
  let layoutFile: MediaFile | undefined;
  let indexFile: MediaFile | undefined;
  for (const f of files) {
    if (f.rel === 'oci-layout') layoutFile = f;
    else if (f.rel === 'index.json') indexFile = f;
    else {
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(f.rel);
      if (!m) throw refuse(`${shown(f.rel)} does not belong in an OCI image layout (only oci-layout, index.json and blobs/sha256/<digest>).`);
      // Every blob, used or not, is hashed: a layout with one wrong blob is not what it claims.
      const o = await openMediaFile(root, f);
      const h = crypto.createHash('sha256');
      try {
        await streamMediaFile(o, f.rel, (c) => void h.update(c), signal);
      } finally {
        await o.fh.close();
      }
      if (h.digest('hex') !== m[1]) throw new AirlockError('HASH_MISMATCH', `The blob ${shown(f.rel)} does not hash to its name: the layout is damaged or altered. Nothing was imported.`);
      blobs.set(`sha256:${m[1]}`, { file: f, size: o.size });
    }
  }
  if (!layoutFile) throw refuse('No oci-layout file: this is not an OCI image layout.');
  if (!indexFile) throw refuse('No index.json: this is not an OCI image layout.');
  const layout = parseJson(OciLayoutFile, await readBounded(root, layoutFile, 4096), 'oci-layout');
  if (layout.imageLayoutVersion !== '1.0.0') throw refuse(`The layout version is ${shown(layout.imageLayoutVersion)}; Airlock reads 1.0.0.`);
  const index = parseJson(OciIndex, await readBounded(root, indexFile, MAX_JSON), 'index.json');
  const manifests = index.manifests.filter((m) => m.mediaType === OCI_MANIFEST);
  if (manifests.length !== 1 || index.manifests.length !== 1) throw refuse(`index.json names ${index.manifests.length} manifests (${manifests.length} image manifests); a model version's layout holds exactly one image manifest.`);
  const desc = manifests[0]!;
  const get = (digest: string, size: number, what: string) => {
    const b = blobs.get(digest);
    if (!b) throw refuse(`${what} ${digest} is not in blobs/.`);
    if (b.size !== size) throw new AirlockError('HASH_MISMATCH', `${what} ${digest} is ${b.size} bytes, its descriptor says ${size}. Nothing was imported.`);
    return b.file;
  };
  const manifestBytes = await readBounded(root, get(desc.digest, desc.size, 'The manifest'), MAX_JSON);
  const manifest = parseJson(ImageManifest, manifestBytes, 'The manifest');
  if (manifest.mediaType !== undefined && manifest.mediaType !== OCI_MANIFEST) throw refuse(`The manifest's media type is ${shown(String(manifest.mediaType))}, not an OCI image manifest.`);
  if (manifest.layers.length > MAX_ENTRIES) throw refuse(`The manifest has more than ${MAX_ENTRIES} layers.`);
  const config = await readBounded(root, get(manifest.config.digest, manifest.config.size, 'The config'), MAX_JSON);
  for (const l of manifest.layers) get(l.digest, l.size, 'The layer');
  return { manifest, manifestDigest: desc.digest, config, blob: (d) => blobs.get(d)!.file, root };
}

/** Copies an opened media file to `dest` (created exclusively), hashing on the way; returns the digest. */
async function copyMedia(root: string, f: MediaFile, dest: string, signal?: AbortSignal): Promise<string> {
  await fs.promises.mkdir(path.dirname(dest), { recursive: true });
  const o = await openMediaFile(root, f);
  const out = await fs.promises.open(dest, 'wx', 0o600);
  const h = crypto.createHash('sha256');
  try {
    await streamMediaFile(o, f.rel, async (c) => {
      h.update(c);
      await out.write(c);
    }, signal);
  } finally {
    await out.close();
    await o.fh.close();
  }
  return `sha256:${h.digest('hex')}`;
}

/**
 * An OCI image layout as a tree of files in `out` (an empty temporary directory): each layer,
 * named by its title annotation, copied and hashed again on the way (it must still be its digest).
 */
export async function readOciLayout(root: string, out: string, signal?: AbortSignal): Promise<{ annotations: Record<string, string>; files: number }> {
  const l = await openOciLayout(root, signal);
  const seen = new Set<string>();
  for (const layer of l.manifest.layers) {
    const title = layer.annotations?.['org.opencontainers.image.title'];
    if (!title) throw refuse(`The layer ${layer.digest} has no org.opencontainers.image.title annotation: Airlock takes layers as files by their title.`);
    const rel = safeRelPath(title, 'The layer title');
    if (seen.has(rel) || [...seen].some((s) => s.startsWith(`${rel}/`) || rel.startsWith(`${s}/`))) throw refuse(`Two layers are titled ${shown(rel)} (or one is inside the other).`);
    seen.add(rel);
    const got = await copyMedia(root, l.blob(layer.digest), path.join(out, ...rel.split('/')), signal);
    if (got !== layer.digest) throw new AirlockError('HASH_MISMATCH', `The layer ${shown(rel)} changed while it was read. Nothing was imported.`);
  }
  return { annotations: l.manifest.annotations ?? {}, files: seen.size };
}

/**
 * Parses a tar stream, writing each regular file under `out` (created exclusively: a second entry
 * with the same name is refused, not overwritten), refusing every other entry type, unsafe
 * names, more than {@link MAX_ENTRIES} entries, and an archive that ends before its last entry.
 * `onFile` sees each file's safe path after it is written.
 */
export async function untarSafely(source: NodeJS.ReadableStream | Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>, out: string, what: string, onFile?: (rel: string) => void): Promise<number> {
  let count = 0;
  let failure: AirlockError | null = null;
  const writes: Promise<void>[] = [];
  const open = new Set<fs.WriteStream>();
  const parser = new Parser({ strict: true });
  const fail = (e: AirlockError) => {
    failure ??= e;
  };
  parser.on('entry', (entry: ReadEntry) => {
    if (failure) return entry.resume();
    if (++count > MAX_ENTRIES) {
      fail(refuse(`${what} holds more than ${MAX_ENTRIES} entries.`));
      return entry.resume();
    }
    const type = entry.type;
    if (type === 'Directory') return entry.resume();
    if (type !== 'File' && type !== 'OldFile' && type !== 'ContiguousFile') {
      fail(refuse(`${what}: ${shown(entry.path)} is ${type === 'SymbolicLink' || type === 'Link' ? 'a link' : `a ${type} entry`}; a model archive may hold only regular files and directories.`));
      return entry.resume();
    }
    let rel: string;
    try {
      rel = safeRelPath(entry.path, `${what}: the entry`);
    } catch (e) {
      fail(e as AirlockError);
      return entry.resume();
    }
    const dest = path.join(out, ...rel.split('/'));
    let fd: number;
    try {
      // Directories are made here, inside `out`; a parent that is a file (an earlier entry) fails.
      fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
      fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    } catch {
      fail(refuse(`${what}: ${shown(rel)} appears twice (or inside a file of the same name).`));
      return entry.resume();
    }
    const ws = fs.createWriteStream('', { fd });
    open.add(ws);
    writes.push(
      new Promise<void>((resolve) => {
        ws.on('close', () => {
          open.delete(ws);
          if (!failure) onFile?.(rel);
          resolve();
        });
        ws.on('error', (e) => {
          fail(refuse(`${what}: writing ${shown(rel)} failed (${e.message}).`));
          resolve();
        });
      }),
    );
    entry.pipe(ws);
  });
  parser.on('warn', (code: string, message: string) => fail(refuse(`${what} is not a valid tar archive (${code}: ${message}).`)));
  // The archive must end with its end-of-archive marker (two zero blocks) on a block boundary:
  // the parser itself ignores a header cut short, so a stick pulled mid-copy would pass as a shorter archive.
  let total = 0;
  let tail = Buffer.alloc(0);
  const watch = new Transform({
    transform(chunk: Buffer, _e, cb) {
      total += chunk.length;
      tail = Buffer.concat([tail, chunk]).subarray(-1024);
      cb(null, chunk);
    },
  });
  try {
    const sources = Array.isArray(source) ? source : [source];
    await (pipeline as unknown as (streams: readonly unknown[]) => Promise<void>)([...sources, watch, parser as unknown as Writable]);
    if (total % 512 !== 0 || tail.length < 1024 || tail.some((b) => b !== 0)) fail(refuse(`${what} is truncated (it does not end with the end-of-archive marker).`));
  } catch (e) {
    fail(e instanceof AirlockError ? e : refuse(`${what} is not a valid tar archive (${(e as Error).message}).`));
    // An entry cut off mid-body never ends: its file is closed here (the whole tree is discarded).
    for (const ws of open) ws.destroy();
  }
  await Promise.all(writes);
  if (failure) throw failure;
  return count;
}

/** Counts bytes through a stream, failing if fewer than `expected` arrive (a tar body cut short). */
function exactly(expected: number, what: string): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      cb(n === expected ? null : refuse(`${what} is ${n} bytes, not ${expected}.`));
    },
  });
}

export interface KitfileFacts {
  name: string | null;
  description: string | null;
  license: string | null;
  authors: string[];
}

const Kitfile = z.object({
  manifestVersion: z.string().optional(),
  package: z.object({ name: z.string().optional(), description: z.string().optional(), license: z.string().optional(), authors: z.array(z.string()).optional() }).passthrough().optional(),
}).passthrough();

/**
 * A ModelKit tarball (`file`, a real path under a media root) as a tree of files in `out`: the
 * outer tar unpacked safely into `work/layout` (an OCI layout), the layout verified blob by blob,
 * its config the Kitfile, and each ModelKit layer unpacked safely into `out`.
 */
export async function readModelKit(
  file: string,
  work: string,
  out: string,
  signal?: AbortSignal,
  o: { maxInflateRatio?: number; inflateFloorBytes?: number } = {},
): Promise<{ kitfile: KitfileFacts; files: number }> {
  const layoutDir = path.join(work, 'layout');
  await fs.promises.mkdir(layoutDir, { mode: 0o700 });
  const st = await fs.promises.lstat(file, { bigint: true });
  const src = await openMediaFile(path.dirname(file), { rel: path.basename(file), dev: st.dev, ino: st.ino });
  try {
    const stream = src.fh.createReadStream({ start: 0, end: Math.max(0, src.size - 1), autoClose: false, highWaterMark: 1 << 20 });
    if (src.size === 0) throw refuse(`${shown(path.basename(file))} is empty.`);
    await untarSafely(stream, layoutDir, `The ModelKit ${shown(path.basename(file))}`);
    await src.assertUnchanged();
  } finally {
    await src.fh.close();
  }
  const l = await openOciLayout(layoutDir, signal);
  if (l.manifest.config.mediaType !== KITOPS_CONFIG) throw refuse(`The manifest's config is ${shown(l.manifest.config.mediaType)}, not a Kitfile (${KITOPS_CONFIG}): this is not a ModelKit.`);
  const kit = parseJson(Kitfile, l.config, 'The Kitfile');
  let files = 0;
  for (const layer of l.manifest.layers) {
    const m = KITOPS_LAYER.exec(layer.mediaType);
    if (!m) throw refuse(`The layer ${layer.digest} has the media type ${shown(layer.mediaType)}, which is not a ModelKit layer.`);
    if (m[2] === '+zstd') throw refuse(`The layer ${layer.digest} is zstd-compressed; Airlock reads uncompressed and gzip ModelKit layers (kit pack --compression=none or gzip).`);
    const blob = l.blob(layer.digest);
    const abs = path.join(layoutDir, ...blob.rel.split('/'));
    const what = `The ModelKit ${m[1]} layer`;
    const raw = fs.createReadStream(abs);
    const chain = m[2] === '+gzip' ? [raw, zlib.createGunzip(), atMost(Math.max(o.maxInflateRatio ?? MAX_INFLATE_RATIO, 1) * layer.size + (o.inflateFloorBytes ?? INFLATE_FLOOR), what)] : [raw, exactly(layer.size, what)];
    files += await untarSafely(chain, out, what);
  }
  return {
    kitfile: { name: kit.package?.name ?? null, description: kit.package?.description ?? null, license: kit.package?.license ?? null, authors: kit.package?.authors ?? [] },
    files,
  };
}

/**
 * A gzip layer may not inflate past `max` bytes: a decompression bomb (a few kilobytes that
 * inflate to terabytes) would otherwise fill the data directory. Weights barely compress, so the
 * bound ({@link MAX_INFLATE_RATIO} times the layer plus {@link INFLATE_FLOOR}) leaves real ModelKits
 * alone. gzip's own trailer check finds a truncated layer.
 */
function atMost(max: number, what: string): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      cb(n > max ? refuse(`${what} inflates to more than ${max} bytes (a decompression bomb?).`) : null, chunk);
    },
  });
}

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';

export interface StoreDeb {
  package: string;
  version: string;
  arch: string;
  sha256: string;
  size: number;
  file: string;
  importedAt: string;
}
export interface StoreModelFile {
  path: string;
  sha256: string;
  size: number;
}
export interface StoreModel {
  name: string;
  version: string;
  importedAt: string;
  files: StoreModelFile[];
  size: number;
}

const SUMS_FILE = 'SHA256SUMS';
export const DEFAULT_MEDIA_ROOTS = ['/media', '/mnt', '/run/media'];

/** Shells decide the media roots: the defaults plus AIRLOCK_MEDIA_ROOTS (colon-separated). */
export function mediaRootsFromEnv(env: NodeJS.ProcessEnv): string[] {
  return [...DEFAULT_MEDIA_ROOTS, ...(env.AIRLOCK_MEDIA_ROOTS ?? '').split(':').filter(Boolean)];
}
const MAX_SUMS_BYTES = 4 * 1024 * 1024;
/** Debian's canonical file name: package_version_arch.deb (an epoch's ':' is written '%3a'). */
const DEB_NAME = /^([a-z0-9][a-z0-9+.-]+)_([A-Za-z0-9.+~%-]+)_([a-z0-9-]+)\.deb$/;

/**
 * The offline store: what an organisation carried in on removable media, content-addressed
 * (`<dataDir>/store/objects/<sha256>`), every file checked against the SHA256SUMS that came with
 * it. Nothing is ever fetched from a network. Imports read only directories under the configured
 * media roots, so an untrusted renderer cannot point the core at arbitrary files.
 */
export class OfflineStore {
  readonly objectsDir: string;

  constructor(
    private readonly deps: { db: Db; dataDir: string; mediaRoots: string[]; now: () => string },
  ) {
    this.objectsDir = path.join(deps.dataDir, 'store', 'objects');
  }

  get mediaRoots(): string[] {
    return [...this.deps.mediaRoots];
  }

  objectPath(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new AirlockError('INVALID_INPUT', 'Not a SHA-256 digest.');
    const p = path.join(this.objectsDir, sha256);
    if (!fs.existsSync(p)) throw new AirlockError('NOT_FOUND', `The offline store has no object ${sha256.slice(0, 12)}… (import it again).`);
    return p;
  }

  listDebs(): StoreDeb[] {
    return (
      this.deps.db
        .prepare(
          `SELECT d.package, d.version, d.arch, d.sha256, o.size, d.file, o.imported_at AS importedAt
           FROM store_debs d JOIN store_objects o USING (sha256) ORDER BY d.package, d.version`,
        )
        .all() as StoreDeb[]
    );
  }

  listModels(): StoreModel[] {
    const rows = this.deps.db
      .prepare('SELECT name, version, path, sha256, size, imported_at AS importedAt FROM store_models ORDER BY name, version, path')
      .all() as Array<StoreModelFile & { name: string; version: string; importedAt: string }>;
    const out = new Map<string, StoreModel>();
    for (const r of rows) {
      const k = `${r.name}\0${r.version}`;
      let m = out.get(k);
      if (!m) out.set(k, (m = { name: r.name, version: r.version, importedAt: r.importedAt, files: [], size: 0 }));
      m.files.push({ path: r.path, sha256: r.sha256, size: r.size });
      m.size += r.size;
    }
    return [...out.values()];
  }

  /** The newest imported version of a package for an architecture (or the exact version asked for). */
  deb(pkg: string, arch: string, version?: string): StoreDeb {
    const all = this.listDebs().filter((d) => d.package === pkg && (d.arch === arch || d.arch === 'all') && (!version || d.version === version));
    if (all.length === 0) {
      throw new AirlockError('NOT_FOUND', `The offline store has no ${pkg}${version ? ` ${version}` : ''} for ${arch}: import it from removable media first.`);
    }
    // Newest last by Debian version order is dpkg's job; the store keeps import order as a tie-break.
    return all.sort((a, b) => compareDebVersions(a.version, b.version))[all.length - 1]!;
  }

  model(name: string, version: string): StoreModel {
    const m = this.listModels().find((x) => x.name === name && x.version === version);
    if (!m) throw new AirlockError('NOT_FOUND', `The offline store has no model ${name} version ${version}: import it first.`);
    return m;
  }

  /** Import every .deb of a media directory; each must be listed in its SHA256SUMS and match. */
  async importDebs(dir: string, actor: string): Promise<{ imported: StoreDeb[]; already: number }> {
    const root = this.mediaDir(dir);
    const sums = readSums(root);
    const debs = fs.readdirSync(root).filter((f) => f.endsWith('.deb')).sort();
    if (debs.length === 0) throw new AirlockError('NOT_FOUND', `No .deb files in ${root}.`);
    const unlisted = debs.filter((f) => !sums.has(f));
    if (unlisted.length) throw new AirlockError('INVALID_INPUT', `Not listed in ${SUMS_FILE}: ${unlisted.slice(0, 5).join(', ')}. Nothing was imported.`);
    const parsed = debs.map((f) => {
      const m = DEB_NAME.exec(f);
      if (!m) throw new AirlockError('INVALID_INPUT', `${f} is not named package_version_arch.deb. Nothing was imported.`);
      return { file: f, package: m[1]!, version: decodeURIComponent(m[2]!), arch: m[3]! };
    });
    // Hash and copy everything first; record only when every file checked out.
    const staged: Array<(typeof parsed)[number] & { sha256: string; size: number }> = [];
    for (const d of parsed) {
      const src = path.join(root, d.file);
      assertDebArchive(src, d.file);
      const { sha256, size } = await this.ingest(src, sums.get(d.file)!, d.file);
      staged.push({ ...d, sha256, size });
    }
    const imported: StoreDeb[] = [];
    let already = 0;
    const now = this.deps.now();
    this.deps.db.transaction(() => {
      for (const d of staged) {
        this.recordObject(d.sha256, d.size, actor, now);
        const prev = this.deps.db.prepare('SELECT sha256 FROM store_debs WHERE package = ? AND version = ? AND arch = ?').get(d.package, d.version, d.arch) as
          | { sha256: string }
          | undefined;
        if (prev) {
          if (prev.sha256 !== d.sha256) {
            throw new AirlockError('CONFLICT', `${d.package} ${d.version} (${d.arch}) is already in the store with different contents (${prev.sha256.slice(0, 12)}…): refusing to replace it.`);
          }
          already++;
          continue;
        }
        this.deps.db.prepare('INSERT INTO store_debs (sha256, package, version, arch, file) VALUES (?, ?, ?, ?, ?)').run(d.sha256, d.package, d.version, d.arch, d.file);
        imported.push({ package: d.package, version: d.version, arch: d.arch, sha256: d.sha256, size: d.size, file: d.file, importedAt: now });
      }
    })();
    return { imported, already };
  }

  /** Import a model version: every file listed in SHA256SUMS (relative paths, subdirectories allowed). */
  async importModel(dir: string, name: string, version: string, actor: string): Promise<StoreModel> {
    const root = this.mediaDir(dir);
    const sums = readSums(root);
    if (sums.size === 0) throw new AirlockError('INVALID_INPUT', `${SUMS_FILE} in ${root} lists no files.`);
    const exists = this.deps.db.prepare('SELECT 1 FROM store_models WHERE name = ? AND version = ? LIMIT 1').get(name, version);
    if (exists) throw new AirlockError('CONFLICT', `Model ${name} version ${version} is already in the store; versions are immutable.`);
    const files: StoreModelFile[] = [];
    for (const [rel, expected] of [...sums.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const src = path.join(root, rel);
      const real = fs.realpathSync(src);
      if (!isInside(real, root)) throw new AirlockError('INVALID_INPUT', `${rel} points outside the media directory.`);
      const { sha256, size } = await this.ingest(real, expected, rel);
      files.push({ path: rel, sha256, size });
    }
    const now = this.deps.now();
    this.deps.db.transaction(() => {
      for (const f of files) {
        this.recordObject(f.sha256, f.size, actor, now);
        this.deps.db.prepare('INSERT INTO store_models (name, version, path, sha256, size, imported_at) VALUES (?, ?, ?, ?, ?, ?)').run(name, version, f.path, f.sha256, f.size, now);
      }
    })();
    return this.model(name, version);
  }

  private recordObject(sha256: string, size: number, actor: string, now: string) {
    this.deps.db.prepare('INSERT OR IGNORE INTO store_objects (sha256, size, imported_at, imported_by) VALUES (?, ?, ?, ?)').run(sha256, size, now, actor);
  }

  /** Copy a file into the store while hashing it; refuse (and keep nothing) when the digest differs. */
  private async ingest(src: string, expected: string, label: string): Promise<{ sha256: string; size: number }> {
    fs.mkdirSync(this.objectsDir, { recursive: true, mode: 0o700 });
    const st = fs.statSync(src);
    if (!st.isFile()) throw new AirlockError('INVALID_INPUT', `${label} is not a regular file.`);
    const final = path.join(this.objectsDir, expected);
    if (fs.existsSync(final) && fs.statSync(final).size === st.size) {
      // Already stored under this digest: check the media copy anyway, it is what the operator vouches for.
      const sha256 = await sha256File(src);
      if (sha256 !== expected) throw mismatch(label, expected, sha256);
      return { sha256, size: st.size };
    }
    const tmp = path.join(this.objectsDir, `.import-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
    const hash = crypto.createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        fs.createReadStream(src, { highWaterMark: 1 << 20 }),
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        fs.createWriteStream(tmp, { mode: 0o600 }),
      );
      const sha256 = hash.digest('hex');
      if (sha256 !== expected) throw mismatch(label, expected, sha256);
      const fd = fs.openSync(tmp, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, final);
      return { sha256, size };
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      if (e instanceof AirlockError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOSPC') throw new AirlockError('INTERNAL', `The console's disk is full while importing ${label}; nothing was imported.`);
      throw new AirlockError('INTERNAL', `Importing ${label} failed: ${err.message}`);
    }
  }

  /** Resolve a media directory: it must exist and lie under a configured media root (symlinks resolved). */
  private mediaDir(dir: string): string {
    let real: string;
    try {
      real = fs.realpathSync(path.resolve(dir));
    } catch {
      throw new AirlockError('NOT_FOUND', `No directory ${dir}.`);
    }
    if (!fs.statSync(real).isDirectory()) throw new AirlockError('INVALID_INPUT', `${dir} is not a directory.`);
    const ok = this.deps.mediaRoots.some((r) => {
      try {
        return isInside(real, fs.realpathSync(r));
      } catch {
        return false;
      }
    });
    if (!ok) {
      throw new AirlockError(
        'FORBIDDEN',
        `${dir} is not under a media root (${this.deps.mediaRoots.join(', ') || 'none configured'}). Mount the removable media there, or set AIRLOCK_MEDIA_ROOTS.`,
      );
    }
    return real;
  }
}

function isInside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function mismatch(label: string, expected: string, got: string) {
  return new AirlockError('INVALID_INPUT', `${label}: SHA-256 is ${got}, but ${SUMS_FILE} says ${expected}. Nothing was imported.`);
}

/** `sha256sum` output format: `<64 hex><space><space or *><name>`; relative names without `..`. */
export function parseSums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new AirlockError('PARSE_ERROR', `${SUMS_FILE} line ${i + 1} is not "<sha256>  <file>".`);
    const name = m[2]!.replace(/^\.\//, '');
    if (name.startsWith('/') || name.split('/').includes('..') || /[\0\\]/.test(name) || name.length > 1024) {
      throw new AirlockError('PARSE_ERROR', `${SUMS_FILE} line ${i + 1} names a path outside the directory.`);
    }
    if (out.has(name)) throw new AirlockError('PARSE_ERROR', `${SUMS_FILE} lists ${name} twice.`);
    out.set(name, m[1]!.toLowerCase());
  });
  return out;
}

function readSums(root: string): Map<string, string> {
  const f = path.join(root, SUMS_FILE);
  if (!fs.existsSync(f)) throw new AirlockError('NOT_FOUND', `No ${SUMS_FILE} in ${root}: the media must carry the checksums of what it holds.`);
  if (fs.statSync(f).size > MAX_SUMS_BYTES) throw new AirlockError('INVALID_INPUT', `${SUMS_FILE} is larger than ${MAX_SUMS_BYTES} bytes.`);
  return parseSums(fs.readFileSync(f, 'utf8'));
}

/** A .deb is an ar archive whose first member is debian-binary. */
function assertDebArchive(file: string, label: string) {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(8 + 60 + 4);
    fs.readSync(fd, b, 0, b.length, 0);
    const ok = b.subarray(0, 8).toString('latin1') === '!<arch>\n' && b.subarray(8, 24).toString('latin1').trim().replace(/\/$/, '') === 'debian-binary';
    if (!ok) throw new AirlockError('INVALID_INPUT', `${label} is not a Debian package (no ar header with debian-binary). Nothing was imported.`);
  } finally {
    fs.closeSync(fd);
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}

/** Debian version ordering (epoch, upstream, revision; `~` sorts first), as dpkg --compare-versions. */
export function compareDebVersions(a: string, b: string): number {
  const split = (v: string) => {
    const e = v.indexOf(':');
    const epoch = e >= 0 ? Number(v.slice(0, e)) || 0 : 0;
    const rest = e >= 0 ? v.slice(e + 1) : v;
    const d = rest.lastIndexOf('-');
    return { epoch, up: d >= 0 ? rest.slice(0, d) : rest, rev: d >= 0 ? rest.slice(d + 1) : '0' };
  };
  const order = (c: string) => (c === '~' ? -1 : c === '' ? 0 : /[A-Za-z]/.test(c) ? c.charCodeAt(0) : c.charCodeAt(0) + 256);
  const part = (x: string, y: string): number => {
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      let nx = '';
      let ny = '';
      while (i < x.length && !/[0-9]/.test(x[i]!)) nx += x[i++];
      while (j < y.length && !/[0-9]/.test(y[j]!)) ny += y[j++];
      for (let k = 0; k < Math.max(nx.length, ny.length); k++) {
        const d = order(nx[k] ?? '') - order(ny[k] ?? '');
        if (d) return d;
      }
      let dx = '';
      let dy = '';
      while (i < x.length && /[0-9]/.test(x[i]!)) dx += x[i++];
      while (j < y.length && /[0-9]/.test(y[j]!)) dy += y[j++];
      const d = (Number(dx) || 0) - (Number(dy) || 0);
      if (d) return d;
    }
    return 0;
  };
  const x = split(a);
  const y = split(b);
  return x.epoch - y.epoch || part(x.up, y.up) || part(x.rev, y.rev);
}

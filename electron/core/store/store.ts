import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { cancelled, listMedia, MAX_SUMS_BYTES, openMediaFile, readBounded, shown, streamMediaFile, SUMS_FILE, UNLISTED_ALLOWED, type MediaFile } from './media';

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

export const DEFAULT_MEDIA_ROOTS = ['/media', '/mnt', '/run/media'];

/** Shells decide the media roots: the defaults plus AIRLOCK_MEDIA_ROOTS (colon-separated). */
export function mediaRootsFromEnv(env: NodeJS.ProcessEnv): string[] {
  return [...DEFAULT_MEDIA_ROOTS, ...(env.AIRLOCK_MEDIA_ROOTS ?? '').split(':').filter(Boolean)];
}
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

  /**
   * Import every .deb of a media directory. The directory must hold only .deb files (and
   * SHA256SUMS with its signature), each listed in SHA256SUMS and matching it; anything else is
   * refused before a byte is copied. Cancelled through `signal` (ops:cancel, the client leaving).
   */
  async importDebs(dir: string, actor: string, signal?: AbortSignal): Promise<{ imported: StoreDeb[]; already: number }> {
    const { root, files, sums } = await this.openMedia(dir, signal);
    const debs = [...sums.keys()].sort();
    if (debs.length === 0) throw new AirlockError('NOT_FOUND', `No .deb files in ${shown(root)}.`);
    const parsed = debs.map((f) => {
      const m = DEB_NAME.exec(f);
      if (!m) {
        throw new AirlockError('INVALID_INPUT', `${shown(f)} is not named package_version_arch.deb (a package directory holds only .deb files, listed in ${SUMS_FILE}). Nothing was imported.`);
      }
      return { file: f, package: m[1]!, version: decodeURIComponent(m[2]!), arch: m[3]!, expected: sums.get(f)! };
    });
    // Refused before any copying: a package already stored with other contents.
    for (const d of parsed) {
      const prev = this.debRow(d.package, d.version, d.arch);
      if (prev && prev.sha256 !== d.expected) throw debConflict(d, prev.sha256);
    }
    // Hash and copy everything first; publish and record only when every file checked out.
    const staged = await this.stageAll(
      root,
      parsed.map((d) => ({ file: files.get(d.file)!, expected: d.expected, label: d.file, deb: true })),
      signal,
    );
    const imported: StoreDeb[] = [];
    let already = 0;
    const now = this.deps.now();
    try {
      await staged.publish();
      this.deps.db.transaction(() => {
        parsed.forEach((d, i) => {
          const { sha256, size } = staged.results[i]!;
          this.recordObject(sha256, size, actor, now);
          const prev = this.debRow(d.package, d.version, d.arch);
          if (prev) {
            if (prev.sha256 !== sha256) throw debConflict(d, prev.sha256);
            already++;
            return;
          }
          this.deps.db.prepare('INSERT INTO store_debs (sha256, package, version, arch, file) VALUES (?, ?, ?, ?, ?)').run(sha256, d.package, d.version, d.arch, d.file);
          imported.push({ package: d.package, version: d.version, arch: d.arch, sha256, size, file: d.file, importedAt: now });
        });
      })();
    } finally {
      await staged.discard();
    }
    return { imported, already };
  }

  /**
   * Import a model version: every file below the directory (subdirectories allowed), each listed
   * in SHA256SUMS and matching it. Cancelled through `signal`.
   */
  async importModel(dir: string, name: string, version: string, actor: string, signal?: AbortSignal): Promise<StoreModel> {
    const { root, files, sums } = await this.openMedia(dir, signal);
    if (sums.size === 0) throw new AirlockError('INVALID_INPUT', `${SUMS_FILE} in ${shown(root)} lists no files.`);
    const exists = () => this.deps.db.prepare('SELECT 1 FROM store_models WHERE name = ? AND version = ? LIMIT 1').get(name, version);
    if (exists()) throw new AirlockError('CONFLICT', `Model ${name} version ${version} is already in the store; versions are immutable.`);
    const rels = [...sums.keys()].sort((a, b) => (a < b ? -1 : 1));
    const staged = await this.stageAll(
      root,
      rels.map((rel) => ({ file: files.get(rel)!, expected: sums.get(rel)!, label: rel, deb: false })),
      signal,
    );
    const now = this.deps.now();
    try {
      await staged.publish();
      this.deps.db.transaction(() => {
        if (exists()) throw new AirlockError('CONFLICT', `Model ${name} version ${version} is already in the store; versions are immutable.`);
        rels.forEach((rel, i) => {
          const f = staged.results[i]!;
          this.recordObject(f.sha256, f.size, actor, now);
          this.deps.db.prepare('INSERT INTO store_models (name, version, path, sha256, size, imported_at) VALUES (?, ?, ?, ?, ?, ?)').run(name, version, rel, f.sha256, f.size, now);
        });
      })();
    } finally {
      await staged.discard();
    }
    return this.model(name, version);
  }

  private debRow(pkg: string, version: string, arch: string) {
    return this.deps.db.prepare('SELECT sha256 FROM store_debs WHERE package = ? AND version = ? AND arch = ?').get(pkg, version, arch) as { sha256: string } | undefined;
  }

  private recordObject(sha256: string, size: number, actor: string, now: string) {
    this.deps.db.prepare('INSERT OR IGNORE INTO store_objects (sha256, size, imported_at, imported_by) VALUES (?, ?, ?, ?)').run(sha256, size, now, actor);
  }

  /**
   * The media directory, every regular file below it, and its SHA256SUMS, which must list exactly
   * those files (apart from SHA256SUMS and its detached signature): an unlisted file is refused,
   * named (a forgotten shard would otherwise never be deployed), and so is a listed file that is
   * missing.
   */
  private async openMedia(dir: string, signal?: AbortSignal) {
    const root = await this.mediaDir(dir);
    const listing = await listMedia(root, signal);
    const files = new Map(listing.map((f) => [f.rel, f]));
    const sumsFile = files.get(SUMS_FILE);
    if (!sumsFile) throw new AirlockError('NOT_FOUND', `No ${SUMS_FILE} in ${shown(root)}: the media must carry the checksums of what it holds.`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(await readBounded(root, sumsFile, MAX_SUMS_BYTES));
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      throw new AirlockError('PARSE_ERROR', `${SUMS_FILE} is not UTF-8 text.`);
    }
    const sums = parseSums(text);
    const unlisted = listing.map((f) => f.rel).filter((rel) => !sums.has(rel) && !UNLISTED_ALLOWED.includes(rel));
    if (unlisted.length) {
      throw new AirlockError(
        'INVALID_INPUT',
        `Not listed in ${SUMS_FILE}: ${unlisted.slice(0, 5).map(shown).join(', ')}${unlisted.length > 5 ? ` and ${unlisted.length - 5} more` : ''}. Every file on the media must be listed (or removed). Nothing was imported.`,
      );
    }
    const missing = [...sums.keys()].filter((rel) => !files.has(rel));
    if (missing.length) {
      throw new AirlockError('NOT_FOUND', `Listed in ${SUMS_FILE} but not on the media: ${missing.slice(0, 5).map(shown).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}. Nothing was imported.`);
    }
    return { root, files, sums };
  }

  /**
   * Copy files into temporary objects while hashing them; nothing is visible in the store until
   * `publish` renames them into place, which the caller does only when every file matched.
   * `discard` removes whatever was not published (a mismatch, a cancel, a failed commit).
   */
  private async stageAll(root: string, items: Array<{ file: MediaFile; expected: string; label: string; deb: boolean }>, signal?: AbortSignal) {
    await fs.promises.mkdir(this.objectsDir, { recursive: true, mode: 0o700 });
    await this.removeStaleTemps();
    const temps: Array<{ tmp: string; final: string }> = [];
    const results: Array<{ sha256: string; size: number }> = [];
    const discard = async () => {
      await Promise.all(temps.map((t) => fs.promises.rm(t.tmp, { force: true })));
      temps.length = 0;
    };
    try {
      for (const it of items) {
        if (signal?.aborted) throw cancelled('The import');
        const r = await this.ingest(root, it.file, it.expected, it.label, it.deb, signal);
        if (r.tmp) temps.push({ tmp: r.tmp, final: path.join(this.objectsDir, r.sha256) });
        results.push({ sha256: r.sha256, size: r.size });
      }
    } catch (e) {
      await discard();
      throw e;
    }
    return {
      results,
      publish: async () => {
        if (signal?.aborted) throw cancelled('The import');
        while (temps.length) {
          const t = temps[0]!;
          await fs.promises.rename(t.tmp, t.final);
          temps.shift();
        }
      },
      discard,
    };
  }

  /** Temporary objects left by an import whose process died (a CLI killed mid-copy). */
  private async removeStaleTemps() {
    for (const name of await fs.promises.readdir(this.objectsDir)) {
      const m = /^\.import-(\d+)-[0-9a-f]+$/.exec(name);
      if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
      await fs.promises.rm(path.join(this.objectsDir, name), { force: true });
    }
  }

  /**
   * Hash one media file (opened safely, exactly its fstat size) into a temporary object, or only
   * hash it when the store already holds that digest. Refuses a digest other than `expected`.
   */
  private async ingest(root: string, file: MediaFile, expected: string, label: string, deb: boolean, signal?: AbortSignal): Promise<{ sha256: string; size: number; tmp: string | null }> {
    const src = await openMediaFile(root, file);
    let tmp: string | null = null;
    let out: fs.promises.FileHandle | null = null;
    try {
      if (deb) await assertDebArchive(src.fh, label);
      const final = path.join(this.objectsDir, expected);
      const stored = await fs.promises.stat(final).then(
        (st) => st.isFile() && st.size === src.size,
        () => false,
      );
      const hash = crypto.createHash('sha256');
      if (!stored) {
        tmp = path.join(this.objectsDir, `.import-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
        out = await fs.promises.open(tmp, 'wx', 0o600);
      }
      // Already stored under this digest: the media copy is hashed anyway, it is what the operator vouches for.
      await streamMediaFile(
        src,
        label,
        async (chunk) => {
          hash.update(chunk);
          if (out) await out.write(chunk);
        },
        signal,
      );
      const sha256 = hash.digest('hex');
      if (sha256 !== expected) throw mismatch(label, expected, sha256);
      if (out) {
        await out.sync();
        await out.close();
        out = null;
      }
      return { sha256, size: src.size, tmp };
    } catch (e) {
      if (out) await out.close().catch(() => {});
      if (tmp) await fs.promises.rm(tmp, { force: true });
      if (e instanceof AirlockError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOSPC') throw new AirlockError('INTERNAL', `The console's disk is full while importing ${shown(label)}; nothing was imported.`);
      throw new AirlockError('INTERNAL', `Importing ${shown(label)} failed: ${err.message}`);
    } finally {
      await src.fh.close();
    }
  }

  /** Resolve a media directory: it must exist and lie under a configured media root (symlinks resolved). */
  private async mediaDir(dir: string): Promise<string> {
    let real: string;
    try {
      real = await fs.promises.realpath(path.resolve(dir));
    } catch {
      throw new AirlockError('NOT_FOUND', `No directory ${shown(dir)}.`);
    }
    if (!(await fs.promises.stat(real)).isDirectory()) throw new AirlockError('INVALID_INPUT', `${shown(dir)} is not a directory.`);
    let ok = false;
    for (const r of this.deps.mediaRoots) {
      const rootReal = await fs.promises.realpath(r).catch(() => null);
      if (rootReal && isInside(real, rootReal)) ok = true;
    }
    if (!ok) {
      throw new AirlockError(
        'FORBIDDEN',
        `${shown(dir)} is not under a media root (${this.deps.mediaRoots.join(', ') || 'none configured'}). Mount the removable media there, or set AIRLOCK_MEDIA_ROOTS.`,
      );
    }
    return real;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function debConflict(d: { package: string; version: string; arch: string }, prev: string) {
  return new AirlockError('CONFLICT', `${d.package} ${d.version} (${d.arch}) is already in the store with different contents (${prev.slice(0, 12)}…): refusing to replace it.`);
}

function isInside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function mismatch(label: string, expected: string, got: string) {
  return new AirlockError('INVALID_INPUT', `${shown(label)}: SHA-256 is ${got}, but ${SUMS_FILE} says ${expected}. Nothing was imported.`);
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

/** A .deb is an ar archive whose first member is debian-binary. */
async function assertDebArchive(fh: fs.promises.FileHandle, label: string) {
  const b = Buffer.alloc(8 + 60 + 4);
  await fh.read(b, 0, b.length, 0);
  const ok = b.subarray(0, 8).toString('latin1') === '!<arch>\n' && b.subarray(8, 24).toString('latin1').trim().replace(/\/$/, '') === 'debian-binary';
  if (!ok) throw new AirlockError('INVALID_INPUT', `${shown(label)} is not a Debian package (no ar header with debian-binary). Nothing was imported.`);
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

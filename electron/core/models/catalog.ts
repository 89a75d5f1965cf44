import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { buildArtifact, type Artifact } from './artifact';

/**
 * The models catalog (issue 13): datasets, models and their versions with classification,
 * provenance and lineage, each version's files with their SHA-256, and the status a version moves
 * through (staged → approved → deprecated, any → revoked). The rules a hospital's administrator
 * relies on, enforced here and, where a database can, by migration 0012's triggers too:
 *
 * - **Classification never goes down the lineage.** A version is at least as classified as every
 *   dataset it was trained, fine-tuned or evaluated on and as its base model: a fine-tune on PHI
 *   is PHI. An import that says otherwise is refused, naming the dataset or base.
 * - **An approved version is immutable**; its manifest digest (the OCI artifact built from the
 *   record, artifact.ts) is its identity.
 * - **Approving a `phi` version needs the two-person rule**: the caller (the channel) passes
 *   `secondPerson` only when an approval was granted; without it the approval is refused.
 * - **Imports hash every file** as read, from a directory that contains only regular files (no
 *   symlinks, devices or sockets: removable media is untrusted), with bounded counts and names.
 */
export const CLASSIFICATIONS = ['public', 'internal', 'confidential', 'phi'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];
export const VERSION_STATUSES = ['staged', 'approved', 'deprecated', 'revoked'] as const;
export type VersionStatus = (typeof VERSION_STATUSES)[number];
export type LineageRole = 'training' | 'fine-tuning' | 'evaluation';

/** Model names are registry repository path components (lowercase), so a model is `models/<name>` in the registry as it is here. */
export const CATALOG_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
export const CATALOG_VERSION = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DATASET_ID = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
const MAX_FILES = 100_000;
const MAX_PATH = 1024;

const rank = (c: Classification) => CLASSIFICATIONS.indexOf(c);

export interface Dataset {
  id: string;
  name: string;
  description: string;
  classification: Classification;
  retentionUntil: string | null;
  location: string;
  owner: string;
  createdAt: string;
  createdBy: string;
}

export interface ModelVersionView {
  model: string;
  version: string;
  classification: Classification;
  license: string;
  status: VersionStatus;
  base: { model: string; version: string } | null;
  format: 'directory' | 'oci-layout' | 'modelkit';
  source: string;
  importedAt: string;
  importedBy: string;
  files: number;
  totalBytes: number;
  manifestDigest: string | null;
  statusAt: string;
  statusBy: string;
  statusReason: string | null;
  lineage: { dataset: string; role: LineageRole; classification: Classification; retentionUntil: string | null }[];
}

interface VersionRow {
  model: string;
  version: string;
  classification: Classification;
  license: string;
  status: VersionStatus;
  base_model: string | null;
  base_version: string | null;
  format: ModelVersionView['format'];
  source: string;
  imported_at: string;
  imported_by: string;
  files: number;
  total_bytes: number;
  manifest_digest: string | null;
  status_at: string;
  status_by: string;
  status_reason: string | null;
}

const invalid = (m: string) => new AirlockError('INVALID_INPUT', m);
function checkText(what: string, s: string, max: number): string {
  if (s.length > max || /[\x00-\x08\x0b-\x1f\x7f]/.test(s)) throw invalid(`The ${what} has control characters or is longer than ${max} characters.`);
  return s;
}

export class Catalog {
  constructor(private readonly d: { db: Db; now: () => Date }) {}

  private stamp(): string {
    return this.d.now().toISOString();
  }

  // ---- datasets ----

  addDataset(i: { id: string; name: string; description?: string; classification: Classification; retentionUntil?: string | null; location: string; owner: string }, by: string): Dataset {
    if (!DATASET_ID.test(i.id)) throw invalid(`Dataset id ${JSON.stringify(i.id)}: lowercase letters, digits, '.', '_', '-', at most 128.`);
    if (!CLASSIFICATIONS.includes(i.classification)) throw invalid(`Classification is one of ${CLASSIFICATIONS.join(', ')}.`);
    if (i.retentionUntil != null && Number.isNaN(Date.parse(i.retentionUntil))) throw invalid('The retention date is not a date (YYYY-MM-DD).');
    const at = this.stamp();
    try {
      this.d.db
        .prepare('INSERT INTO datasets (id, name, description, classification, retention_until, location, owner, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(i.id, checkText('name', i.name, 200), checkText('description', i.description ?? '', 4000), i.classification, i.retentionUntil ?? null, checkText('location', i.location, 1000), checkText('owner', i.owner, 200), at, by);
    } catch (e) {
      if (/UNIQUE|PRIMARY KEY/.test(String(e))) throw new AirlockError('CONFLICT', `A dataset with id ${i.id} is already in the catalog.`);
      throw e;
    }
    return this.dataset(i.id)!;
  }

  dataset(id: string): Dataset | null {
    const r = this.d.db.prepare('SELECT * FROM datasets WHERE id = ?').get(id) as Record<string, string | null> | undefined;
    return r ? datasetOf(r) : null;
  }

  datasets(): Dataset[] {
    return (this.d.db.prepare('SELECT * FROM datasets ORDER BY id').all() as Record<string, string | null>[]).map(datasetOf);
  }

  // ---- models and versions ----

  addModel(i: { name: string; description?: string; owner: string }, by: string): void {
    if (!CATALOG_NAME.test(i.name) || i.name.length > 128) throw invalid(`Model name ${JSON.stringify(i.name)}: lowercase letters and digits, joined by '.', '_', '__' or '-' (it is also the registry repository name).`);
    try {
      this.d.db.prepare('INSERT INTO models (name, description, owner, created_at, created_by) VALUES (?, ?, ?, ?, ?)').run(i.name, checkText('description', i.description ?? '', 4000), checkText('owner', i.owner, 200), this.stamp(), by);
    } catch (e) {
      if (/UNIQUE|PRIMARY KEY/.test(String(e))) throw new AirlockError('CONFLICT', `A model named ${i.name} is already in the catalog.`);
      throw e;
    }
  }

  models(): { name: string; description: string; owner: string; versions: ModelVersionView[] }[] {
    const models = this.d.db.prepare('SELECT name, description, owner FROM models ORDER BY name').all() as { name: string; description: string; owner: string }[];
    const rows = this.d.db.prepare('SELECT * FROM model_versions ORDER BY model, imported_at, version').all() as VersionRow[];
    return models.map((m) => ({ ...m, versions: rows.filter((r) => r.model === m.name).map((r) => this.view(r)) }));
  }

  version(model: string, version: string): ModelVersionView | null {
    const r = this.row(model, version);
    return r ? this.view(r) : null;
  }

  files(model: string, version: string): { path: string; size: number; sha256: string }[] {
    return this.d.db.prepare('SELECT path, size, sha256 FROM model_files WHERE model = ? AND version = ? ORDER BY path').all(model, version) as { path: string; size: number; sha256: string }[];
  }

  /**
   * Imports a directory of weight files as a new staged version: every file hashed as it is read
   * (SHA-256), lineage and base checked against the classification, all recorded in one
   * transaction (a failed import leaves nothing).
   */
  async importDirectory(
    i: { model: string; version: string; dir: string; classification: Classification; license: string; source: string; base?: { model: string; version: string } | null; lineage?: { dataset: string; role: LineageRole }[]; format?: ModelVersionView['format']; onRecord?: () => void },
    by: string,
  ): Promise<ModelVersionView> {
    if (!CATALOG_VERSION.test(i.version)) throw invalid(`Version ${JSON.stringify(i.version)}: letters, digits, '_', '.', '-', at most 128 (it is also the registry tag).`);
    if (!CLASSIFICATIONS.includes(i.classification)) throw invalid(`Classification is one of ${CLASSIFICATIONS.join(', ')}.`);
    if (!this.d.db.prepare('SELECT 1 FROM models WHERE name = ?').get(i.model)) throw new AirlockError('NOT_FOUND', `There is no model ${i.model} in the catalog: add it first.`);
    if (this.row(i.model, i.version)) throw new AirlockError('CONFLICT', `${i.model} ${i.version} is already in the catalog.`);
    checkText('license', i.license, 200);
    checkText('source', i.source, 1000);
    this.checkLineage(i.classification, i.base ?? null, i.lineage ?? []);
    const files = await hashTree(i.dir);
    if (files.length === 0) throw invalid(`${i.dir} holds no files to import.`);
    const at = this.stamp();
    const total = files.reduce((n, f) => n + f.size, 0);
    this.d.db.transaction(() => {
      if (this.row(i.model, i.version)) throw new AirlockError('CONFLICT', `${i.model} ${i.version} is already in the catalog.`);
      this.checkLineage(i.classification, i.base ?? null, i.lineage ?? []);
      this.d.db
        .prepare(
          `INSERT INTO model_versions (model, version, classification, license, status, base_model, base_version, format, source, imported_at, imported_by, files, total_bytes, status_at, status_by)
           VALUES (?, ?, ?, ?, 'staged', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(i.model, i.version, i.classification, i.license, i.base?.model ?? null, i.base?.version ?? null, i.format ?? 'directory', i.source, at, by, files.length, total, at, by);
      const put = this.d.db.prepare('INSERT INTO model_files (model, version, path, size, sha256) VALUES (?, ?, ?, ?, ?)');
      for (const f of files) put.run(i.model, i.version, f.path, f.size, f.sha256);
      const line = this.d.db.prepare('INSERT INTO model_lineage (model, version, dataset_id, role) VALUES (?, ?, ?, ?)');
      for (const l of i.lineage ?? []) line.run(i.model, i.version, l.dataset, l.role);
      // The caller's own rows of this import (where it came from), in the same transaction.
      i.onRecord?.();
    })();
    return this.version(i.model, i.version)!;
  }

  /** The OCI artifact of a version (deterministic): its manifest digest is the version's identity. */
  artifact(model: string, version: string): Artifact {
    const v = this.version(model, version);
    if (!v) throw new AirlockError('NOT_FOUND', `There is no ${model} ${version} in the catalog.`);
    const base = v.base ? { ...v.base, digest: this.row(v.base.model, v.base.version)?.manifest_digest ?? null } : null;
    return buildArtifact({ model, version, classification: v.classification, license: v.license, base, lineage: v.lineage, files: this.files(model, version) });
  }

  /**
   * Moves a version's status. Approving fixes its manifest digest; approving a `phi` version
   * needs `secondPerson` (the approver of a two-person request), someone other than `by`.
   */
  setStatus(model: string, version: string, to: Exclude<VersionStatus, 'staged'>, by: string, o: { reason?: string; secondPerson?: string } = {}): ModelVersionView {
    const r = this.row(model, version);
    if (!r) throw new AirlockError('NOT_FOUND', `There is no ${model} ${version} in the catalog.`);
    const allowed: Record<VersionStatus, VersionStatus[]> = { staged: ['approved', 'revoked'], approved: ['deprecated', 'revoked'], deprecated: ['revoked'], revoked: [] };
    if (!allowed[r.status].includes(to)) throw new AirlockError('CONFLICT', `${model} ${version} is ${r.status}: it cannot become ${to}${r.status === 'revoked' ? ' (revocation is final)' : ''}.`);
    if (to === 'approved' && r.classification === 'phi') {
      if (!o.secondPerson) throw new AirlockError('APPROVAL_REQUIRED', `${model} ${version} is classified phi: approving it needs a second person (two-person rule).`);
      if (o.secondPerson.toLowerCase() === by.toLowerCase()) throw new AirlockError('FORBIDDEN', 'The second person of a two-person approval must be someone else.');
    }
    if (to === 'approved' && r.base_model && this.row(r.base_model, r.base_version!)?.status !== 'approved') {
      throw new AirlockError('CONFLICT', `${model} ${version} is built on ${r.base_model} ${r.base_version}, which is not approved: approve the base first.`);
    }
    if ((to === 'deprecated' || to === 'revoked') && !o.reason) throw invalid(`Say why ${model} ${version} is ${to} (--reason).`);
    // A staged version revoked gets the digest of what it was, so the record names exactly what was refused.
    const digest = to === 'approved' || !r.manifest_digest ? this.artifact(model, version).digest : r.manifest_digest;
    const by2 = o.secondPerson ? `${by} with ${o.secondPerson}` : by;
    try {
      this.d.db.prepare('UPDATE model_versions SET status = ?, manifest_digest = ?, status_at = ?, status_by = ?, status_reason = ? WHERE model = ? AND version = ?').run(to, digest, this.stamp(), by2, o.reason ?? null, model, version);
    } catch (e) {
      if (/model_versions_digest|UNIQUE/.test(String(e))) throw new AirlockError('CONFLICT', `Another approved version has the same manifest digest ${digest}: it is the same model twice.`);
      throw e;
    }
    return this.version(model, version)!;
  }

  /**
   * Re-hashes the files of a version in `dir` against the catalog: missing, extra and changed
   * files by name. The same walk as an import (regular files only).
   */
  async verify(model: string, version: string, dir: string): Promise<{ ok: boolean; missing: string[]; extra: string[]; changed: string[] }> {
    const want = new Map(this.files(model, version).map((f) => [f.path, f]));
    if (want.size === 0) throw new AirlockError('NOT_FOUND', `There is no ${model} ${version} in the catalog.`);
    const got = await hashTree(dir);
    const seen = new Set<string>();
    const extra: string[] = [];
    const changed: string[] = [];
    for (const f of got) {
      const w = want.get(f.path);
      if (!w) extra.push(f.path);
      else {
        seen.add(f.path);
        if (w.sha256 !== f.sha256 || w.size !== f.size) changed.push(f.path);
      }
    }
    const missing = [...want.keys()].filter((p) => !seen.has(p));
    return { ok: missing.length === 0 && extra.length === 0 && changed.length === 0, missing, extra, changed };
  }

  // ---- internals ----

  private checkLineage(c: Classification, base: { model: string; version: string } | null, lineage: { dataset: string; role: LineageRole }[]): void {
    for (const l of lineage) {
      if (!['training', 'fine-tuning', 'evaluation'].includes(l.role)) throw invalid(`Lineage role is training, fine-tuning or evaluation, not ${JSON.stringify(l.role)}.`);
      const ds = this.dataset(l.dataset);
      if (!ds) throw new AirlockError('NOT_FOUND', `Dataset ${l.dataset} is not in the catalog: add it first, so the lineage links to something real.`);
      if (rank(ds.classification) > rank(c)) throw new AirlockError('CONFLICT', `Dataset ${ds.id} is ${ds.classification}: a model ${l.role === 'evaluation' ? 'evaluated' : 'trained'} on it cannot be ${c}. Classify the version ${ds.classification} or higher.`);
    }
    if (base) {
      const b = this.row(base.model, base.version);
      if (!b) throw new AirlockError('NOT_FOUND', `The base model ${base.model} ${base.version} is not in the catalog.`);
      if (b.status === 'revoked') throw new AirlockError('CONFLICT', `The base model ${base.model} ${base.version} is revoked: nothing new may be built on it.`);
      if (rank(b.classification) > rank(c)) throw new AirlockError('CONFLICT', `The base model ${base.model} ${base.version} is ${b.classification}: a version built on it cannot be ${c}.`);
    }
  }

  private row(model: string, version: string): VersionRow | undefined {
    return this.d.db.prepare('SELECT * FROM model_versions WHERE model = ? AND version = ?').get(model, version) as VersionRow | undefined;
  }

  private view(r: VersionRow): ModelVersionView {
    const lineage = this.d.db
      .prepare('SELECT l.dataset_id AS dataset, l.role, d.classification, d.retention_until AS retentionUntil FROM model_lineage l JOIN datasets d ON d.id = l.dataset_id WHERE l.model = ? AND l.version = ? ORDER BY l.dataset_id, l.role')
      .all(r.model, r.version) as ModelVersionView['lineage'];
    return {
      model: r.model,
      version: r.version,
      classification: r.classification,
      license: r.license,
      status: r.status,
      base: r.base_model ? { model: r.base_model, version: r.base_version! } : null,
      format: r.format,
      source: r.source,
      importedAt: r.imported_at,
      importedBy: r.imported_by,
      files: r.files,
      totalBytes: r.total_bytes,
      manifestDigest: r.manifest_digest,
      statusAt: r.status_at,
      statusBy: r.status_by,
      statusReason: r.status_reason,
      lineage,
    };
  }
}

function datasetOf(r: Record<string, string | null>): Dataset {
  return {
    id: r.id!,
    name: r.name!,
    description: r.description ?? '',
    classification: r.classification as Classification,
    retentionUntil: r.retention_until ?? null,
    location: r.location!,
    owner: r.owner!,
    createdAt: r.created_at!,
    createdBy: r.created_by!,
  };
}

/**
 * Every regular file under `dir`, with its size and SHA-256, paths relative and '/'-separated.
 * Symlinks, devices, sockets and FIFOs are refused (not skipped: an import that silently left a
 * file out would not be what the person saw on the media); so are names with control characters.
 */
export async function hashTree(dir: string): Promise<{ path: string; size: number; sha256: string }[]> {
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(dir);
  } catch {
    throw new AirlockError('NOT_FOUND', `${dir} does not exist.`);
  }
  if (!st.isDirectory()) throw invalid(`${dir} is not a directory.`);
  const out: { path: string; size: number; sha256: string }[] = [];
  const walk = async (rel: string) => {
    const entries = await fs.promises.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (p.length > MAX_PATH || /[\x00-\x1f\x7f\\]/.test(p)) throw invalid(`A file name under ${dir} has control characters, a backslash or is too long: refused.`);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        if (out.length >= MAX_FILES) throw invalid(`${dir} has more than ${MAX_FILES} files: refused.`);
        out.push({ path: p, ...(await hashFile(path.join(dir, p))) });
      } else throw invalid(`${p} under ${dir} is ${e.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: a model import takes regular files only.`);
    }
  };
  await walk('');
  return out;
}

async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const h = crypto.createHash('sha256');
  let size = 0;
  // O_NOFOLLOW: a file swapped for a symlink between the listing and the read is refused too.
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for await (const part of fh.createReadStream({ highWaterMark: 1024 * 1024 })) {
      size += (part as Buffer).length;
      h.update(part as Buffer);
    }
  } finally {
    await fh.close().catch(() => {});
  }
  return { size, sha256: h.digest('hex') };
}

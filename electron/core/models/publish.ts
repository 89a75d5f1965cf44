import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';
import type { Catalog } from './catalog';
import { hashTree } from './catalog';
import type { PushBlobOptions, RegistryClient } from './registry/client';

/** A model's repository in the registry: `models/<name>` (catalog names are valid path components). */
export const repositoryOf = (model: string) => `models/${model}`;

export interface PublishProgress {
  file: string;
  done: number;
  total: number;
  /** Bytes of the whole version pushed so far (files already in the registry count as pushed). */
  versionDone: number;
  versionTotal: number;
}

/**
 * Publishes an approved catalog version to the registry as its OCI artifact: first the files in
 * `dir` are re-hashed against the catalog (the media may have changed since the import: nothing
 * is pushed if one file differs), then each file is pushed as a layer (chunked, resumable, skipped
 * when the registry already has it), the config, and the manifest under the version's tag. The
 * registry's manifest is then read back and must have the catalog's digest — the version's identity.
 */
export async function publishVersion(
  d: { catalog: Catalog; client: RegistryClient },
  model: string,
  version: string,
  dir: string,
  o: { chunkBytes?: number; onProgress?: (p: PublishProgress) => void; signal?: AbortSignal } = {},
): Promise<{ repository: string; tag: string; digest: string; pushedBytes: number }> {
  const v = d.catalog.version(model, version);
  if (!v) throw new AirlockError('NOT_FOUND', `There is no ${model} ${version} in the catalog.`);
  if (v.status !== 'approved') throw new AirlockError('CONFLICT', `${model} ${version} is ${v.status}: only approved versions are published to the registry.`);
  if (v.classification === 'confidential' || v.classification === 'phi') {
    // Those go into the registry encrypted (ocicrypt layers under a models data key): not built yet.
    throw new AirlockError('CONFLICT', `${model} ${version} is ${v.classification}: it is published only with encrypted layers, which this console cannot make yet. Nothing was pushed.`);
  }
  const check = await d.catalog.verify(model, version, dir);
  if (!check.ok) {
    throw new AirlockError('HASH_MISMATCH', `The files in ${dir} are not ${model} ${version} as approved (missing: ${check.missing.length}, extra: ${check.extra.length}, changed: ${check.changed.join(', ') || 'none'}). Nothing was pushed.`);
  }
  const art = d.catalog.artifact(model, version);
  if (art.digest !== v.manifestDigest) throw new AirlockError('INTERNAL', `The artifact of ${model} ${version} is ${art.digest}, not its approved digest ${v.manifestDigest}.`);
  const repo = repositoryOf(model);
  const files = d.catalog.files(model, version);
  const versionTotal = files.reduce((n, f) => n + f.size, 0);
  let before = 0;
  let pushed = 0;
  for (const f of files) {
    const abs = path.join(dir, ...f.path.split('/'));
    const opts: PushBlobOptions = {
      ...(o.chunkBytes ? { chunkBytes: o.chunkBytes } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      onProgress: (p) => o.onProgress?.({ file: f.path, done: p.done, total: p.total, versionDone: before + p.done, versionTotal }),
    };
    const r = await d.client.pushBlob(repo, abs, opts);
    if (r.digest !== `sha256:${f.sha256}`) throw new AirlockError('HASH_MISMATCH', `${f.path} changed while it was being pushed (${r.digest}): the push stopped; publish again.`);
    pushed += r.uploaded;
    before += f.size;
    o.onProgress?.({ file: f.path, done: f.size, total: f.size, versionDone: before, versionTotal });
  }
  await d.client.pushSmallBlob(repo, art.config);
  await d.client.putManifest(repo, version, art.manifest);
  const back = await d.client.getManifest(repo, version);
  if (!back || back.digest !== art.digest) throw new AirlockError('HASH_MISMATCH', `The registry holds ${back?.digest ?? 'nothing'} under ${repo}:${version}, not ${art.digest}.`);
  return { repository: repo, tag: version, digest: art.digest, pushedBytes: pushed };
}

/**
 * Pulls a published version into `dest` (a new, empty directory): the manifest by the catalog's
 * digest (never by tag: a tag can be moved), then every layer, each verified against its digest
 * on the way in, then the whole tree re-hashed against the catalog.
 */
export async function pullVersion(d: { catalog: Catalog; client: RegistryClient }, model: string, version: string, dest: string): Promise<{ files: number; bytes: number }> {
  const v = d.catalog.version(model, version);
  if (!v?.manifestDigest) throw new AirlockError('NOT_FOUND', `${model} ${version} has no approved digest to pull by.`);
  if (v.status === 'revoked') throw new AirlockError('CONFLICT', `${model} ${version} is revoked: it is not pulled.`);
  const m = await d.client.getManifest(repositoryOf(model), v.manifestDigest);
  if (!m) throw new AirlockError('NOT_FOUND', `The registry does not hold ${model} ${version} (${v.manifestDigest}).`);
  await fs.promises.mkdir(dest, { recursive: true });
  if ((await fs.promises.readdir(dest)).length > 0) throw new AirlockError('CONFLICT', `${dest} is not empty: pull into a new directory.`);
  const want = new Map(d.catalog.files(model, version).map((f) => [`sha256:${f.sha256}|${f.path}`, f]));
  let bytes = 0;
  for (const layer of m.manifest.layers) {
    const title = layer.annotations?.['org.opencontainers.image.title'] ?? '';
    const f = want.get(`${layer.digest}|${title}`);
    if (!f) throw new AirlockError('HASH_MISMATCH', `The manifest names a layer (${title || layer.digest}) that is not a file of ${model} ${version}.`);
    const target = path.join(dest, ...f.path.split('/'));
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    await d.client.pullBlob(repositoryOf(model), layer.digest, target, { size: f.size });
    bytes += f.size;
  }
  const got = await hashTree(dest);
  if (got.length !== want.size) throw new AirlockError('HASH_MISMATCH', `${dest} holds ${got.length} files; ${model} ${version} has ${want.size}.`);
  return { files: got.length, bytes };
}

import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';
import type { Catalog } from './catalog';
import { MODEL_FILE } from './artifact';
import { decryptLayer, ENC_SUFFIX, encryptLayer, layerKeyId } from './ocicrypt';
import type { PushBlobOptions, RegistryClient } from './registry/client';
import type { ImageManifest } from './registry/oci';

/** The `models` data key that encrypts a classified version's layers (keys/service.ts holds it). */
export const layerKeyIdOf = (model: string, version: string) => `model-layers/${model}/${version}`;
/** On an encrypted artifact: the digest of the plain artifact, the catalog's identity of the version. */
export const PLAIN_MANIFEST = 'io.airlock.plain-manifest';

export interface LayerKey {
  id: string;
  key: Buffer;
}

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
  d: { catalog: Catalog; client: RegistryClient; random?: (n: number) => Buffer },
  model: string,
  version: string,
  dir: string,
  o: { chunkBytes?: number; onProgress?: (p: PublishProgress) => void; signal?: AbortSignal; layerKey?: LayerKey; workDir?: string } = {},
): Promise<{ repository: string; tag: string; digest: string; catalogDigest: string; encrypted: boolean; pushedBytes: number }> {
  const v = d.catalog.version(model, version);
  if (!v) throw new AirlockError('NOT_FOUND', `There is no ${model} ${version} in the catalog.`);
  if (v.status !== 'approved') throw new AirlockError('CONFLICT', `${model} ${version} is ${v.status}: only approved versions are published to the registry.`);
  const encrypted = v.classification === 'confidential' || v.classification === 'phi';
  if (encrypted && (!o.layerKey || !o.workDir || !d.random)) {
    throw new AirlockError('KEY_UNAVAILABLE', `${model} ${version} is ${v.classification}: its layers go into the registry encrypted under a models data key, which needs the key hierarchy unsealed. Nothing was pushed.`);
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
  const layers: ImageManifest['layers'] = [];
  for (const f of files) {
    let abs = path.join(dir, ...f.path.split('/'));
    let layer = { mediaType: MODEL_FILE, digest: `sha256:${f.sha256}`, size: f.size, annotations: { 'org.opencontainers.image.title': f.path } as Record<string, string> };
    let tmp: string | null = null;
    if (encrypted) {
      tmp = path.join(o.workDir!, `.airlock-enc-${d.random!(8).toString('hex')}`);
      const enc = await encryptLayer(abs, tmp, { dataKey: o.layerKey!.key, keyId: o.layerKey!.id, plainDigest: layer.digest, random: d.random! });
      layer = { mediaType: MODEL_FILE + ENC_SUFFIX, digest: enc.digest, size: enc.size, annotations: { ...layer.annotations, ...enc.annotations } };
      abs = tmp;
    }
    try {
      const opts: PushBlobOptions = {
        ...(o.chunkBytes ? { chunkBytes: o.chunkBytes } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
        onProgress: (p) => o.onProgress?.({ file: f.path, done: p.done, total: p.total, versionDone: before + p.done, versionTotal }),
      };
      const r = await d.client.pushBlob(repo, abs, opts);
      if (r.digest !== layer.digest) throw new AirlockError('HASH_MISMATCH', `${f.path} changed while it was being pushed (${r.digest}): the push stopped; publish again.`);
      pushed += r.uploaded;
    } finally {
      if (tmp) await fs.promises.rm(tmp, { force: true });
    }
    layers.push(layer);
    before += f.size;
    o.onProgress?.({ file: f.path, done: f.size, total: f.size, versionDone: before, versionTotal });
  }
  const manifest: ImageManifest = encrypted ? { ...art.manifest, layers, annotations: { ...art.manifest.annotations, [PLAIN_MANIFEST]: art.digest } } : art.manifest;
  await d.client.pushSmallBlob(repo, art.config);
  const put = await d.client.putManifest(repo, version, manifest);
  const back = await d.client.getManifest(repo, version);
  if (!back || back.digest !== put.digest || (!encrypted && put.digest !== art.digest)) throw new AirlockError('HASH_MISMATCH', `The registry holds ${back?.digest ?? 'nothing'} under ${repo}:${version}, not what was pushed (${put.digest}).`);
  return { repository: repo, tag: version, digest: put.digest, catalogDigest: art.digest, encrypted, pushedBytes: pushed };
}

/**
 * Pulls a published version into `dest` (a new, empty directory), every file verified against
 * the catalog. A plain version is fetched **by its digest, never by tag** (a tag can be moved).
 * An encrypted version's registry manifest differs from the catalog's plain artifact, so it is
 * fetched by tag and then bound to the catalog: its plain-manifest annotation and config must be
 * the catalog's, each layer's key opens only for the file digest the catalog names (the digest is
 * in the sealed key's AAD), and each decrypted file is hashed against the catalog.
 */
export async function pullVersion(
  d: { catalog: Catalog; client: RegistryClient },
  model: string,
  version: string,
  dest: string,
  o: { layerKey?: (id: string) => Buffer } = {},
): Promise<{ files: number; bytes: number }> {
  const v = d.catalog.version(model, version);
  if (!v?.manifestDigest) throw new AirlockError('NOT_FOUND', `${model} ${version} has no approved digest to pull by.`);
  if (v.status === 'revoked') throw new AirlockError('CONFLICT', `${model} ${version} is revoked: it is not pulled.`);
  const encrypted = v.classification === 'confidential' || v.classification === 'phi';
  if (encrypted && !o.layerKey) throw new AirlockError('KEY_UNAVAILABLE', `${model} ${version} is ${v.classification}: its layers open only with its models data key, which needs the key hierarchy unsealed.`);
  const repo = repositoryOf(model);
  const m = await d.client.getManifest(repo, encrypted ? version : v.manifestDigest);
  if (!m) throw new AirlockError('NOT_FOUND', `The registry does not hold ${model} ${version}.`);
  const art = d.catalog.artifact(model, version);
  if (encrypted && (m.manifest.annotations?.[PLAIN_MANIFEST] !== v.manifestDigest || m.manifest.config.digest !== art.configDigest)) {
    throw new AirlockError('HASH_MISMATCH', `The registry's ${repo}:${version} is not the approved ${model} ${version} (${v.manifestDigest}).`);
  }
  await fs.promises.mkdir(dest, { recursive: true });
  if ((await fs.promises.readdir(dest)).length > 0) throw new AirlockError('CONFLICT', `${dest} is not empty: pull into a new directory.`);
  const byPath = new Map(d.catalog.files(model, version).map((f) => [f.path, f]));
  if (m.manifest.layers.length !== byPath.size) throw new AirlockError('HASH_MISMATCH', `The registry's ${repo}:${version} has ${m.manifest.layers.length} layers; ${model} ${version} has ${byPath.size} files.`);
  const done = new Set<string>();
  let bytes = 0;
  for (const layer of m.manifest.layers) {
    const title = layer.annotations?.['org.opencontainers.image.title'] ?? '';
    const f = byPath.get(title);
    if (!f || done.has(title)) throw new AirlockError('HASH_MISMATCH', `The manifest names a layer (${title || layer.digest}) that is not a file of ${model} ${version}.`);
    done.add(title);
    const target = path.join(dest, ...f.path.split('/'));
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    if (!encrypted) {
      if (layer.digest !== `sha256:${f.sha256}`) throw new AirlockError('HASH_MISMATCH', `Layer ${title} is ${layer.digest}, not the catalog's file.`);
      await d.client.pullBlob(repo, layer.digest, target, { size: f.size });
    } else {
      if (!layer.mediaType.endsWith(ENC_SUFFIX)) throw new AirlockError('HASH_MISMATCH', `Layer ${title} of a ${v.classification} version is not encrypted: refused.`);
      const key = o.layerKey!(layerKeyId(layer.annotations));
      const tmp = `${target}.enc.part`;
      try {
        await d.client.pullBlob(repo, layer.digest, tmp, { size: layer.size });
        await decryptLayer(tmp, target, { annotations: layer.annotations, dataKey: key, expectedDigest: `sha256:${f.sha256}` });
      } finally {
        key.fill(0);
        await fs.promises.rm(tmp, { force: true });
      }
    }
    bytes += f.size;
  }
  const check = await d.catalog.verify(model, version, dest);
  if (!check.ok) throw new AirlockError('HASH_MISMATCH', `${dest} is not ${model} ${version} after the pull.`);
  return { files: byPath.size, bytes };
}

import crypto from 'node:crypto';
import canonicalize from 'canonicalize';
import type { ImageManifest } from './registry/oci';
import { OCI_MANIFEST } from './registry/oci';

/**
 * A model version as an OCI artifact (issue 13): an image manifest whose `config` is Airlock's
 * own document (media type {@link MODEL_CONFIG}: what the version is — name, classification,
 * license, lineage, base), one layer per file (the file's bytes, as imported), and annotations
 * that standard tooling shows (`org.opencontainers.image.title` per layer, classification and
 * lineage on the manifest). Built deterministically from the catalog record — canonical JSON
 * (RFC 8785), files in path order — so the manifest digest is a function of the version alone:
 * that digest is the approved version's identity, in the catalog and in the registry alike.
 */
export const MODEL_ARTIFACT = 'application/vnd.airlock.model.v1';
export const MODEL_CONFIG = 'application/vnd.airlock.model.config.v1+json';
export const MODEL_FILE = 'application/vnd.airlock.model.file.v1';

export interface ArtifactInput {
  model: string;
  version: string;
  classification: string;
  license: string;
  base: { model: string; version: string; digest: string | null } | null;
  lineage: { dataset: string; role: string; classification: string }[];
  files: { path: string; size: number; sha256: string }[];
}

export interface Artifact {
  config: Buffer;
  configDigest: string;
  manifest: ImageManifest;
  /** The manifest's exact bytes (canonical JSON): what its digest covers and what is pushed. */
  manifestBytes: Buffer;
  digest: string;
}

const sha = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

export function buildArtifact(v: ArtifactInput): Artifact {
  const files = [...v.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const lineage = [...v.lineage].sort((a, b) => `${a.dataset}|${a.role}`.localeCompare(`${b.dataset}|${b.role}`));
  const config = Buffer.from(canonicalize({ format: 'airlock.model/v1', model: v.model, version: v.version, classification: v.classification, license: v.license, base: v.base, lineage })!, 'utf8');
  const configDigest = sha(config);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: MODEL_ARTIFACT,
    config: { mediaType: MODEL_CONFIG, digest: configDigest, size: config.length },
    layers: files.map((f) => ({ mediaType: MODEL_FILE, digest: `sha256:${f.sha256}`, size: f.size, annotations: { 'org.opencontainers.image.title': f.path } })),
    annotations: {
      'org.opencontainers.image.title': v.model,
      'org.opencontainers.image.version': v.version,
      'org.opencontainers.image.licenses': v.license,
      'io.airlock.classification': v.classification,
      'io.airlock.lineage': canonicalize(lineage.map((l) => ({ dataset: l.dataset, role: l.role, classification: l.classification })))!,
      ...(v.base ? { 'io.airlock.base': `${v.base.model}:${v.base.version}${v.base.digest ? `@${v.base.digest}` : ''}` } : {}),
    },
  };
  const manifestBytes = Buffer.from(canonicalize(manifest)!, 'utf8');
  return { config, configDigest, manifest, manifestBytes, digest: sha(manifestBytes) };
}

import { z } from 'zod';
import { AirlockError } from '../../../../shared/domain/errors';

/**
 * The names and documents of the OCI distribution and image specs that Airlock's registry client
 * speaks, validated before use: whatever a registry sends is untrusted input.
 */

/** Repository names as distribution 2.8.2 accepts them (its reference grammar), at most 255 characters. */
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const REPOSITORY_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
export const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function checkRepository(name: string): string {
  if (name.length > 255 || !REPOSITORY_RE.test(name)) {
    throw new AirlockError('INVALID_INPUT', `${JSON.stringify(name)} is not a repository name: lowercase letters and digits in path components separated by '/', joined inside by '.', '_', '__' or '-'.`);
  }
  return name;
}

export function checkDigest(d: string): string {
  if (!DIGEST_RE.test(d)) throw new AirlockError('INVALID_INPUT', `${JSON.stringify(d)} is not a sha256 digest ("sha256:" and 64 lowercase hex digits).`);
  return d;
}

/** A tag or a digest: what a manifest is fetched by. */
export function checkReference(ref: string): string {
  if (DIGEST_RE.test(ref) || TAG_RE.test(ref)) return ref;
  throw new AirlockError('INVALID_INPUT', `${JSON.stringify(ref)} is neither a tag (letters, digits, '_', '.', '-', at most 128) nor a sha256 digest.`);
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json' as const;
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json' as const;
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
/** The OCI spec's empty JSON descriptor: `{}`. */
export const EMPTY_JSON = Buffer.from('{}');

const Annotations = z.record(z.string().max(1024), z.string().max(64 * 1024));

export const Descriptor = z.object({
  mediaType: z.string().min(1).max(255),
  digest: z.string().regex(DIGEST_RE),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  annotations: Annotations.optional(),
  artifactType: z.string().max(255).optional(),
  urls: z.array(z.string()).max(16).optional(),
});
export type Descriptor = z.infer<typeof Descriptor>;

export const ImageManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(OCI_MANIFEST).optional(),
  artifactType: z.string().max(255).optional(),
  config: Descriptor,
  layers: z.array(Descriptor).max(100_000),
  subject: Descriptor.optional(),
  annotations: Annotations.optional(),
});
export type ImageManifest = z.infer<typeof ImageManifest>;

export const ImageIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(OCI_INDEX),
  manifests: z.array(Descriptor).max(10_000),
  annotations: Annotations.optional(),
});
export type ImageIndex = z.infer<typeof ImageIndex>;

/** The referrers tag-schema fallback of the distribution spec (2.8.2 has no referrers API): `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return checkDigest(digest).replace(':', '-');
}

import { z } from 'zod';
import { channel } from './channel';
import { NoInput, RequestId, visibleText } from './common';
import { MediaPath, Sha256Hex } from './provision';

/**
 * The models catalog (issue 13, docs/models.md): datasets, models and their versions with
 * classification, provenance and lineage, imported from removable media (a directory of weight
 * files, an OCI image layout, a ModelKit tarball), approved (a `phi` version under the two-person
 * rule: models:approvePhi), deprecated or revoked with a reason, verified against media and
 * published to the registry as OCI artifacts.
 */

export const Classifications = ['public', 'internal', 'confidential', 'phi'] as const;
export const Classification = z.enum(Classifications);
export type Classification = z.infer<typeof Classification>;
export const VersionStatuses = ['staged', 'approved', 'deprecated', 'revoked'] as const;
export const VersionStatus = z.enum(VersionStatuses);
export const LineageRole = z.enum(['training', 'fine-tuning', 'evaluation']);
export const ModelFormats = ['directory', 'oci-layout', 'modelkit'] as const;
export const ModelFormat = z.enum(ModelFormats);
export type ModelFormat = z.infer<typeof ModelFormat>;

/** A model name is also its registry repository (`models/<name>`): lowercase path-component grammar. */
export const CatalogName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/, "lowercase letters and digits, joined by '.', '_', '__' or '-'");
/** A version is also its registry tag. */
export const CatalogVersion = z.string().min(1).max(128).regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, "letters, digits, '_', '.', '-'");
export const DatasetId = z.string().min(1).max(128).regex(/^[a-z0-9][a-z0-9_.-]*$/, "lowercase letters, digits, '.', '_', '-'");
const Digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'a sha256 digest (sha256: and 64 hex digits)');
export const Text = (max: number) => visibleText(z.string().max(max));
const Reason = visibleText(z.string().trim().min(3, 'give a reason (at least 3 characters)').max(500));
export const IsoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date (YYYY-MM-DD)');

export const Publication = z.object({
  registry: z.string(),
  repository: z.string(),
  tag: z.string(),
  /** The registry's manifest digest (differs from the catalog's for an encrypted version). */
  digest: Digest,
  catalogDigest: Digest,
  encrypted: z.boolean(),
  publishedAt: z.string(),
  publishedBy: z.string(),
  /** The signature attached in the registry (referrers tag `sha256-<hex>`; docs/models.md), null when published before the CA existed. */
  signature: Digest.nullable(),
});
export type Publication = z.infer<typeof Publication>;

export const ModelVersion = z.object({
  model: CatalogName,
  version: z.string(),
  classification: Classification,
  license: z.string(),
  status: VersionStatus,
  base: z.object({ model: z.string(), version: z.string() }).nullable(),
  format: ModelFormat,
  source: z.string(),
  importedAt: z.string(),
  importedBy: z.string(),
  files: z.number().int(),
  totalBytes: z.number().int(),
  /** Fixed at approval: the version's identity (its OCI manifest digest). */
  manifestDigest: Digest.nullable(),
  statusAt: z.string(),
  statusBy: z.string(),
  statusReason: z.string().nullable(),
  lineage: z.array(z.object({ dataset: z.string(), role: LineageRole, classification: Classification, retentionUntil: z.string().nullable() })),
  /** Where the version was imported from (media path and format), when known. */
  media: z.object({ format: ModelFormat, path: z.string() }).nullable(),
  publications: z.array(Publication),
});
export type ModelVersion = z.infer<typeof ModelVersion>;

export const ModelEntry = z.object({ name: CatalogName, description: z.string(), owner: z.string(), versions: z.array(ModelVersion) });
export type ModelEntry = z.infer<typeof ModelEntry>;

export const ModelFile = z.object({ path: z.string(), size: z.number().int(), sha256: Sha256Hex });

const VersionRef = { name: CatalogName, version: CatalogVersion };
export const ANY = ['admin', 'officer', 'auditor'] as const;
const versionTarget = (i: { name: string; version: string }) => `${i.name}:${i.version}`;

export const VerifyResult = z.object({ ok: z.boolean(), missing: z.array(z.string()), extra: z.array(z.string()), changed: z.array(z.string()) });

export const models = {
  'models:list': channel({
    in: NoInput,
    out: z.object({ models: z.array(ModelEntry), mediaRoots: z.array(z.string()), registry: z.string().nullable() }),
    roles: ANY,
    summary: 'The models catalog: every model and version with classification, status, lineage and where it is published',
  }),
  'models:show': channel({
    in: z.object(VersionRef).strict(),
    out: z.object({
      version: ModelVersion,
      description: z.string(),
      owner: z.string(),
      files: z.array(ModelFile),
      /** The base chain, nearest first: base, its base, … (a fine-tune's ancestry). */
      ancestry: z.array(z.object({ model: z.string(), version: z.string(), classification: Classification, status: VersionStatus })),
      /** The catalog digest the version would have if approved now (its artifact), for review before approval. */
      artifactDigest: Digest,
    }),
    roles: ANY,
    target: versionTarget,
    summary: 'One model version: provenance (every file with size and SHA-256), lineage, ancestry, status and publications',
  }),
  'models:import': channel({
    in: z
      .object({
        format: ModelFormat,
        /** A directory (directory, oci-layout) or a file (modelkit) under a media root. */
        path: MediaPath,
        name: CatalogName,
        version: CatalogVersion,
        description: Text(4000).optional(),
        owner: visibleText(z.string().min(1).max(200)),
        classification: Classification,
        license: visibleText(z.string().min(1).max(200)),
        /** Provenance: where it came from (vendor, run, ticket). */
        source: visibleText(z.string().min(1).max(1000)),
        lineage: z.array(z.object({ dataset: DatasetId, role: LineageRole }).strict()).max(100).default([]),
        base: z.object(VersionRef).strict().nullable().optional(),
        requestId: RequestId.optional(),
      })
      .strict(),
    out: ModelVersion,
    roles: ['admin'],
    target: versionTarget,
    summary: 'Import a model version from removable media (a directory, an OCI image layout or a ModelKit tarball), every file hashed; it is staged',
  }),
  'models:approve': channel({
    in: z
      .object({
        ...VersionRef,
        /** The artifact digest the approver reviewed (models:show): refused if the version is no longer that. */
        digest: Digest.optional(),
      })
      .strict(),
    out: ModelVersion,
    // Officers take part in a phi approval as the second person (approvals:approve), not here.
    roles: ['admin'],
    stepUp: true,
    twoPerson: 'models:approvePhi',
    target: versionTarget,
    summary: 'Approve a staged version: its manifest digest becomes its identity and it is immutable (phi: two-person rule)',
  }),
  'models:deprecate': channel({
    in: z.object({ ...VersionRef, reason: Reason }).strict(),
    out: ModelVersion,
    roles: ['admin'],
    target: versionTarget,
    summary: 'Deprecate an approved version, saying why (it stays pullable by digest)',
  }),
  'models:revoke': channel({
    in: z.object({ ...VersionRef, reason: Reason }).strict(),
    out: ModelVersion,
    roles: ['admin'],
    stepUp: true,
    target: versionTarget,
    summary: 'Revoke a version, saying why: final, nothing may be built on it or pull it',
  }),
  'models:verify': channel({
    in: z.object({ ...VersionRef, format: ModelFormat.optional(), path: MediaPath.optional(), requestId: RequestId.optional() }).strict(),
    out: VerifyResult,
    roles: ANY,
    target: versionTarget,
    summary: 'Re-hash media against a version: missing, extra and changed files (default: the media it was imported from)',
  }),
  'models:publish': channel({
    in: z.object({ ...VersionRef, format: ModelFormat.optional(), path: MediaPath.optional(), requestId: RequestId.optional() }).strict(),
    out: Publication,
    roles: ['admin'],
    target: versionTarget,
    summary: 'Push an approved version to the registry as its OCI artifact (confidential and phi encrypted), then read back its digest',
  }),
  'models:registry': channel({
    in: NoInput,
    out: z.object({ url: z.string().nullable(), updatedAt: z.string().nullable(), updatedBy: z.string().nullable() }),
    roles: ANY,
    summary: 'The registry model versions are published to',
  }),
  'models:setRegistry': channel({
    in: z.object({ url: z.string().url().max(500).refine((u) => /^https?:\/\//.test(u), 'an http or https URL') }).strict(),
    out: z.object({ url: z.string().nullable(), updatedAt: z.string().nullable(), updatedBy: z.string().nullable() }),
    roles: ['admin'],
    stepUp: true,
    summary: 'Set the registry model versions are published to',
  }),
} as const;

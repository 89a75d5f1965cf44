import canonicalize from 'canonicalize';
import { z } from 'zod';
import { AirlockError } from '../../../shared/domain/errors';
import { verifyDetachedCms, type CmsVerification } from '../keys/cms';
import { sha256, type RegistryClient } from './registry/client';
import { DIGEST_RE, EMPTY_JSON, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, referrersTag, type Descriptor, type ImageIndex, type ImageManifest } from './registry/oci';

/**
 * Signatures of published versions, attached in the registry (issue 13: "2.8.2 has no referrers
 * API: signatures and attestations of a version attach with the OCI spec's tag-schema fallback").
 *
 * A signature is an OCI artifact of its own in the version's repository: artifactType
 * {@link SIGNATURE_ARTIFACT}, the empty config, two layers — the **statement** (RFC 8785 JSON:
 * which manifest digest, which model and version, classification, who approved it and when) and a
 * detached **CMS** over the statement's bytes by Airlock's bundle-signing certificate (keys/cms.ts)
 * — and `subject` naming the version's manifest. Because the registry cannot list referrers, the
 * signature's descriptor is added to the OCI image index kept at the tag `sha256-<hex>` of the
 * version's digest (the distribution spec's fallback), which standard tools (oras, cosign's OCI
 * 1.1 mode) read the same way. Anyone with the root CA certificate verifies it offline.
 */

export const SIGNATURE_ARTIFACT = 'application/vnd.airlock.model.signature.v1';
export const STATEMENT_MEDIA = 'application/vnd.airlock.model.statement.v1+json';
export const CMS_MEDIA = 'application/pkcs7-signature';
export const STATEMENT_FORMAT = 'airlock.model-version-statement/v1';
/** Signatures read per version (a hostile index listing thousands is refused, not walked). */
const MAX_SIGNATURES = 16;

export const VersionStatement = z.strictObject({
  format: z.literal(STATEMENT_FORMAT),
  repository: z.string().max(255),
  /** The manifest digest in the registry (an encrypted version's differs from the catalog's). */
  digest: z.string().regex(DIGEST_RE),
  /** The catalog's identity of the version (its plain artifact's digest). */
  catalogDigest: z.string().regex(DIGEST_RE),
  model: z.string().max(128),
  version: z.string().max(128),
  classification: z.enum(['public', 'internal', 'confidential', 'phi']),
  approvedBy: z.string().max(400),
  approvedAt: z.iso.datetime(),
  signedAt: z.iso.datetime(),
});
export type VersionStatement = z.infer<typeof VersionStatement>;

export function statementBytes(s: VersionStatement): Buffer {
  return Buffer.from(canonicalize(VersionStatement.parse(s))!, 'utf8');
}

/**
 * Signs `statement` (with `sign`: the console CA's detached CMS) and attaches the signature to the
 * version's manifest: blobs, the signature manifest by digest, then the referrers index at
 * `sha256-<hex>` with the new descriptor added (others kept). Returns the signature manifest's digest.
 */
export async function attachSignature(client: RegistryClient, statement: VersionStatement, sign: (bytes: Buffer) => Promise<Buffer>): Promise<{ digest: string; tag: string }> {
  const repo = statement.repository;
  const subject = await client.getManifest(repo, statement.digest);
  if (!subject) throw new AirlockError('NOT_FOUND', `${repo} has no manifest ${statement.digest} to sign: publish the version first.`);
  const bytes = statementBytes(statement);
  const cms = await sign(bytes);
  const config = await client.pushSmallBlob(repo, EMPTY_JSON);
  const st = await client.pushSmallBlob(repo, bytes);
  const sig = await client.pushSmallBlob(repo, cms);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SIGNATURE_ARTIFACT,
    config: { mediaType: OCI_EMPTY, digest: config.digest, size: config.size },
    layers: [
      { mediaType: STATEMENT_MEDIA, digest: st.digest, size: st.size },
      { mediaType: CMS_MEDIA, digest: sig.digest, size: sig.size },
    ],
    subject: { mediaType: OCI_MANIFEST, digest: statement.digest, size: subject.bytes.length },
    annotations: { 'org.opencontainers.image.created': statement.signedAt },
  };
  const manifestBytes = Buffer.from(canonicalize(manifest)!, 'utf8');
  const { digest } = await client.putManifest(repo, sha256(manifestBytes), manifest);
  const tag = referrersTag(statement.digest);
  const existing = await client.getIndex(repo, tag);
  const others = (existing?.index.manifests ?? []).filter((m) => m.digest !== digest);
  const entry: Descriptor = { mediaType: OCI_MANIFEST, digest, size: manifestBytes.length, artifactType: SIGNATURE_ARTIFACT };
  const index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...others, entry] };
  await client.putIndex(repo, tag, index);
  return { digest, tag };
}

export interface SignatureCheck extends CmsVerification {
  /** The signature manifest's digest. */
  manifest: string;
  statement: VersionStatement | null;
}

/**
 * Every Airlock signature attached to `digest` in `repository`, each verified against `rootPem`
 * alone: the signature manifest names this subject, its statement parses and names this digest
 * and repository, and the CMS over the statement's exact bytes chains to the root with the
 * bundle-signing profile at the time it was signed. `ok` when at least one signature verifies
 * (and `expect`, when given, matches its statement). Hostile registry content gives problems.
 */
export async function verifySignatures(
  client: RegistryClient,
  repository: string,
  digest: string,
  rootPem: string,
  o: { crlPems?: readonly string[]; expect?: Partial<Pick<VersionStatement, 'model' | 'version' | 'catalogDigest' | 'classification'>> } = {},
): Promise<{ ok: boolean; signatures: SignatureCheck[]; problems: string[] }> {
  const index = await client.getIndex(repository, referrersTag(digest));
  if (!index) return { ok: false, signatures: [], problems: [`No signature is attached to ${digest} in ${repository} (no ${referrersTag(digest)} index).`] };
  const candidates = index.index.manifests.filter((m) => m.artifactType === SIGNATURE_ARTIFACT);
  if (candidates.length > MAX_SIGNATURES) return { ok: false, signatures: [], problems: [`${repository} lists ${candidates.length} signatures for ${digest}: more than ${MAX_SIGNATURES}, refused.`] };
  const signatures: SignatureCheck[] = [];
  for (const c of candidates) {
    const bad = (problems: string[], statement: VersionStatement | null = null): SignatureCheck => ({ ok: false, problems, signer: null, manifest: c.digest, statement });
    try {
      const m = await client.getManifest(repository, c.digest);
      if (!m) {
        signatures.push(bad([`The signature manifest ${c.digest} is listed but missing.`]));
        continue;
      }
      if (m.manifest.subject?.digest !== digest || m.manifest.artifactType !== SIGNATURE_ARTIFACT) {
        signatures.push(bad([`The manifest ${c.digest} is not a signature of ${digest}.`]));
        continue;
      }
      const st = m.manifest.layers.find((l) => l.mediaType === STATEMENT_MEDIA);
      const cms = m.manifest.layers.find((l) => l.mediaType === CMS_MEDIA);
      if (!st || !cms || m.manifest.layers.length !== 2) {
        signatures.push(bad(['The signature does not hold exactly one statement and one CMS.']));
        continue;
      }
      const bytes = await client.getSmallBlob(repository, st.digest, 64 * 1024);
      let statement: VersionStatement;
      try {
        statement = VersionStatement.parse(JSON.parse(bytes.toString('utf8')));
      } catch {
        signatures.push(bad(['The statement is not a version statement.']));
        continue;
      }
      const problems: string[] = [];
      if (!statementBytes(statement).equals(bytes)) problems.push('The statement is not in canonical form.');
      if (statement.digest !== digest || statement.repository !== repository) problems.push(`The statement is about ${statement.repository}@${statement.digest}, not ${repository}@${digest}.`);
      for (const [k, want] of Object.entries(o.expect ?? {})) {
        if (want !== undefined && statement[k as keyof VersionStatement] !== want) problems.push(`The statement says ${k} ${String(statement[k as keyof VersionStatement])}, not ${String(want)}.`);
      }
      const v = await verifyDetachedCms(bytes, await client.getSmallBlob(repository, cms.digest, 64 * 1024), rootPem, {
        at: new Date(statement.signedAt),
        kind: 'bundle-signing',
        what: 'the version statement',
        ...(o.crlPems ? { crlPems: o.crlPems } : {}),
      });
      problems.push(...v.problems);
      signatures.push({ ok: problems.length === 0, problems, signer: v.signer, manifest: c.digest, statement });
    } catch (e) {
      signatures.push(bad([e instanceof Error ? e.message : String(e)]));
    }
  }
  const ok = signatures.some((s) => s.ok);
  return { ok, signatures, problems: ok ? [] : signatures.length ? signatures.flatMap((s) => s.problems) : ['No Airlock signature is listed for it.'] };
}

import crypto from 'node:crypto';
import type { Grant, VersionSelector } from '../../../../shared/contract/access';
import { AirlockError } from '../../../../shared/domain/errors';
import { canonical } from '../../audit/canonical';
import type { Db } from '../../db/db';
import { keyFingerprint } from '../../keys/ed25519';
import type { KeyRegistry } from '../../keys/registry';
import type { GrantRow, PrincipalRow } from './store';

/**
 * The gate policy (docs/gate.md "Policy format"): grants and the catalog compiled into one
 * document, RFC 8785 canonical bytes, signed with Airlock's `policy.signing` key (Ed25519), with a
 * version that only grows. Compiling is a pure function of the records and the time, so the same
 * records give the same bytes; a new version is issued only when the content (everything but
 * version and date) changed.
 *
 * What a policy leaves out, and why (each shows in grants:list as the grant's status):
 * - revoked grants, expired ones (the gate checks `expiresAt` too, between policies), grants of
 *   disabled principals, disabled team members;
 * - selectors that resolve to no approved version: a staged, deprecated or revoked version is
 *   never served, whatever a grant says;
 * - a grant that resolves to a `phi` version without having passed the two-person rule (a
 *   "latest approved" grant made before a phi version was approved does not silently widen to it).
 */

export const POLICY_FORMAT = 'airlock.gate-policy/v1';

export interface VersionInfo {
  model: string;
  version: string;
  classification: string;
  status: string;
  manifest_digest: string | null;
  status_at: string;
}

export interface PolicyGrant {
  id: string;
  principal: string;
  model: string;
  version: string;
  digest: string;
  classification: string;
  actions: string[];
  expiresAt: string | null;
  rateLimit: { requestsPerMinute: number } | null;
}

export interface PolicyContent {
  format: typeof POLICY_FORMAT;
  issuer: string;
  hosts: Record<string, { enclave: string; phi: boolean }>;
  principals: Array<{ id: string; kind: 'application' | 'user'; credentialSha256: string }>;
  grants: PolicyGrant[];
}

export interface PolicyDocument extends PolicyContent {
  version: number;
  issuedAt: string;
}

export interface CompileInput {
  issuer: string;
  hosts: Array<{ host: string; enclave: string; phi: boolean }>;
  principals: PrincipalRow[];
  members: Array<{ team: string; member: string }>;
  grants: GrantRow[];
  versions: VersionInfo[];
  now: Date;
}

export type GrantStatus = Grant['status'];
export interface Evaluation {
  status: GrantStatus;
  why: string | null;
  resolved: { version: string; digest: string; classification: string } | null;
}

export const selectorOf = (g: Pick<GrantRow, 'version'>): VersionSelector => (g.version === null ? 'latest-approved' : { exact: g.version });

/**
 * The version a selector names now: an exact one only while it is approved; "latest approved" the
 * most recently approved version still approved (deprecated and revoked ones are not).
 */
export function resolve(versions: VersionInfo[], model: string, selector: VersionSelector): VersionInfo | null {
  const approved = versions.filter((v) => v.model === model && v.status === 'approved' && v.manifest_digest);
  if (selector !== 'latest-approved') return approved.find((v) => v.version === selector.exact) ?? null;
  return [...approved].sort((a, b) => (a.status_at < b.status_at ? 1 : a.status_at > b.status_at ? -1 : a.version < b.version ? 1 : -1))[0] ?? null;
}

/** Whether a grant of `selector` needs the two-person rule now: it names a phi version, or "latest approved" of a model that has one (not revoked). */
export function needsPhiApproval(versions: VersionInfo[], model: string, selector: VersionSelector): boolean {
  const of = versions.filter((v) => v.model === model && v.status !== 'revoked');
  if (selector === 'latest-approved') return of.some((v) => v.classification === 'phi');
  return of.some((v) => v.version === selector.exact && v.classification === 'phi');
}

/** What one grant contributes to the policy at `now`, or why nothing. */
export function evaluate(g: GrantRow, principals: Map<string, PrincipalRow>, versions: VersionInfo[], now: Date): Evaluation {
  const v = resolve(versions, g.model, selectorOf(g));
  const resolved = v ? { version: v.version, digest: v.manifest_digest!, classification: v.classification } : null;
  if (g.revoked_at) return { status: 'revoked', why: `revoked ${g.revoked_at} by ${g.revoked_by}: ${g.revoked_reason}`, resolved };
  if (g.expires_at !== null && Date.parse(g.expires_at) <= now.getTime()) return { status: 'expired', why: `expired ${g.expires_at}`, resolved };
  const p = principals.get(g.principal);
  if (!p || p.disabled_at) return { status: 'principal-disabled', why: `${g.principal} is disabled`, resolved };
  if (!v) {
    return { status: 'unresolved', why: g.version === null ? `${g.model} has no approved version` : `${g.model} ${g.version} is not approved (only approved versions are served)`, resolved };
  }
  if (v.classification === 'phi' && g.phi_allowed !== 1) {
    return { status: 'needs-approval', why: `${g.model} ${v.version} is phi and this grant did not pass the two-person rule: add it again (a second person approves)`, resolved };
  }
  return { status: 'active', why: null, resolved };
}

/** Grants + catalog + hosts → the policy content (sorted, teams expanded, credential hashes only). */
export function compile(i: CompileInput): PolicyContent {
  const byId = new Map(i.principals.map((p) => [p.id, p]));
  const used = new Map<string, { id: string; kind: 'application' | 'user'; credentialSha256: string }>();
  const out: PolicyGrant[] = [];
  for (const g of i.grants) {
    const e = evaluate(g, byId, i.versions, i.now);
    if (e.status !== 'active' || !e.resolved) continue;
    const p = byId.get(g.principal)!;
    const targets =
      p.kind === 'team'
        ? i.members
            .filter((m) => m.team === p.id)
            .map((m) => byId.get(m.member))
            .filter((m): m is PrincipalRow => !!m && !m.disabled_at && m.credential_sha256 !== null)
        : p.credential_sha256 !== null
          ? [p]
          : [];
    for (const t of targets) {
      used.set(t.id, { id: t.id, kind: t.kind === 'application' ? 'application' : 'user', credentialSha256: t.credential_sha256! });
      out.push({
        id: p.kind === 'team' ? `${g.id}:${t.id}` : g.id,
        principal: t.id,
        model: g.model,
        version: e.resolved.version,
        digest: e.resolved.digest,
        classification: e.resolved.classification,
        actions: g.actions.split(',').sort(),
        expiresAt: g.expires_at,
        rateLimit: g.requests_per_minute === null ? null : { requestsPerMinute: g.requests_per_minute },
      });
    }
  }
  // Every enabled principal with a credential is known to the gates, granted or not: an unknown
  // credential is 401, a known one without a grant for what it asks is 403 (issue 13's decisions).
  for (const p of i.principals) {
    if (p.kind === 'team' || p.disabled_at || p.credential_sha256 === null || used.has(p.id)) continue;
    used.set(p.id, { id: p.id, kind: p.kind === 'application' ? 'application' : 'user', credentialSha256: p.credential_sha256 });
  }
  const hosts: PolicyContent['hosts'] = {};
  for (const h of [...i.hosts].sort((a, b) => (a.host < b.host ? -1 : 1))) hosts[h.host] = { enclave: h.enclave, phi: h.phi };
  return {
    format: POLICY_FORMAT,
    issuer: i.issuer,
    hosts,
    principals: [...used.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    grants: out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  };
}

/** The exact bytes of policy.json: RFC 8785 canonical JSON, UTF-8. */
export function policyBytes(doc: PolicyDocument): Buffer {
  return Buffer.from(canonical(doc), 'utf8');
}

export const contentSha256 = (c: PolicyContent): string => crypto.createHash('sha256').update(canonical(c), 'utf8').digest('hex');

export interface StoredPolicy {
  version: number;
  sha256: string;
  contentSha256: string;
  body: string;
  /** Base64 (standard) of the Ed25519 signature over `body`'s bytes. */
  signature: string;
  issuer: string;
  issuedAt: string;
  issuedBy: string;
}

interface PolicyRow {
  version: number;
  sha256: string;
  content_sha256: string;
  body: string;
  signature: string;
  issuer: string;
  issued_at: string;
  issued_by: string;
}

const stored = (r: PolicyRow): StoredPolicy => ({
  version: r.version,
  sha256: r.sha256,
  contentSha256: r.content_sha256,
  body: r.body,
  signature: r.signature,
  issuer: r.issuer,
  issuedAt: r.issued_at,
  issuedBy: r.issued_by,
});

/**
 * Issues policy versions: compiles from the database, and when the content differs from the
 * latest version's, signs a new version (one more than the last) and records it, in one
 * transaction. The signing key is Airlock's own `policy.signing` (keys/registry.ts), minted at the
 * first policy; its private part is unsealed only for the signature.
 */
export class PolicyIssuer {
  constructor(private readonly d: { db: Db; registry: KeyRegistry; now: () => Date; input: (issuer: string, now: Date) => CompileInput }) {}

  latest(): StoredPolicy | null {
    const r = this.d.db.prepare('SELECT * FROM access_policies ORDER BY version DESC LIMIT 1').get() as PolicyRow | undefined;
    return r ? stored(r) : null;
  }

  get(version: number): StoredPolicy | null {
    const r = this.d.db.prepare('SELECT * FROM access_policies WHERE version = ?').get(version) as PolicyRow | undefined;
    return r ? stored(r) : null;
  }

  /** The pinned public key (SPKI PEM) hosts verify with; null before the first policy. */
  publicKey(): string | null {
    return this.d.registry.publicKey('policy.signing');
  }

  /** The current signing key, minted on first use (the caller's vault key seals it). */
  private signingKey(vaultKey: Buffer): crypto.KeyObject {
    let der = this.d.registry.unseal(vaultKey, 'policy.signing');
    if (!der) {
      this.d.registry.mint(vaultKey, 'policy.signing');
      der = this.d.registry.unseal(vaultKey, 'policy.signing');
    }
    if (!der) throw new AirlockError('KEY_UNAVAILABLE', 'The policy signing key could not be opened: sign in again.');
    try {
      return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
  }

  /** Compiles; issues a new version if the content changed. Returns the current version either way. */
  ensure(vaultKey: Buffer, by: string): { policy: StoredPolicy; changed: boolean } {
    const key = this.signingKey(vaultKey);
    const issuer = keyFingerprint(crypto.createPublicKey(key));
    return this.d.db.transaction(() => {
      const now = this.d.now();
      const content = compile(this.d.input(issuer, now));
      const csha = contentSha256(content);
      const last = this.latest();
      if (last && last.contentSha256 === csha) return { policy: last, changed: false };
      const version = (last?.version ?? 0) + 1;
      const doc: PolicyDocument = { ...content, version, issuedAt: now.toISOString() };
      const bytes = policyBytes(doc);
      const signature = crypto.sign(null, bytes, key).toString('base64');
      const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
      this.d.db
        .prepare('INSERT INTO access_policies (version, sha256, content_sha256, body, signature, issuer, issued_at, issued_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(version, sha256, csha, bytes.toString('utf8'), signature, issuer, doc.issuedAt, by);
      return { policy: this.get(version)!, changed: true };
    })();
  }
}

/** Reads the database into a compile input (the catalog's versions, the access records, the enrolled hosts). */
export function compileInputFrom(db: Db, records: { principals(): PrincipalRow[]; members(): Array<{ team: string; member: string }>; grants(): GrantRow[]; hosts(): Array<{ host: string; enclave: string; phi: boolean }> }) {
  return (issuer: string, now: Date): CompileInput => ({
    issuer,
    now,
    hosts: records.hosts(),
    principals: records.principals(),
    members: records.members(),
    grants: records.grants(),
    versions: catalogVersions(db),
  });
}

export function catalogVersions(db: Db): VersionInfo[] {
  return db.prepare('SELECT model, version, classification, status, manifest_digest, status_at FROM model_versions ORDER BY model, version').all() as VersionInfo[];
}

/**
 * Test-only gate policies, signed exactly as docs/gate.md ("Policy format") says: RFC 8785
 * canonical JSON bytes (electron/core/audit/canonical.ts), an Ed25519 signature over those bytes,
 * base64 on one line. The console's own compiler (grants → policy) is the access area's; this is
 * just enough to put policies in front of the gate in tests and benchmarks.
 */
import crypto from 'node:crypto';
import { canonical } from '../../electron/core/audit/canonical';
import { keyFingerprint } from '../../electron/core/keys/ed25519';

export interface TestGrant {
  id: string;
  principal: string;
  model: string;
  version: string;
  digest?: string;
  classification?: 'public' | 'internal' | 'confidential' | 'phi';
  actions: ('invoke' | 'pull')[];
  expiresAt?: string | null;
  rateLimit?: { requestsPerMinute: number } | null;
}

export interface TestPolicy {
  version: number;
  hosts?: Record<string, { enclave: string; phi: boolean }>;
  /** principal id → credential (hashed into the policy; the credential itself never is). */
  principals: Record<string, string>;
  grants: TestGrant[];
  issuedAt?: string;
}

export const sha256hex = (s: string | Buffer) => crypto.createHash('sha256').update(s).digest('hex');

/** A credential as Airlock mints them: `alk_` + base64url(32 random bytes). */
export const newCredential = () => `alk_${crypto.randomBytes(32).toString('base64url')}`;

export class TestPolicySigner {
  readonly key = crypto.generateKeyPairSync('ed25519');
  get publicPem(): string {
    return this.key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }

  document(p: TestPolicy): Record<string, unknown> {
    return {
      format: 'airlock.gate-policy/v1',
      version: p.version,
      issuedAt: p.issuedAt ?? new Date().toISOString(),
      issuer: keyFingerprint(this.key.publicKey),
      hosts: p.hosts ?? {},
      principals: Object.entries(p.principals)
        .map(([id, cred]) => ({ id, kind: 'application', credentialSha256: sha256hex(cred) }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      grants: p.grants
        .map((g) => ({ digest: `sha256:${sha256hex(`${g.model}:${g.version}`)}`, classification: 'internal', expiresAt: null, rateLimit: null, ...g }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    };
  }

  /** policy.json bytes and policy.json.sig text for a policy document (any value: tests sign broken ones too). */
  sign(doc: unknown): { bytes: Buffer; sig: string } {
    const bytes = Buffer.from(canonical(doc), 'utf8');
    return { bytes, sig: `${crypto.sign(null, bytes, this.key.privateKey).toString('base64')}\n` };
  }

  policy(p: TestPolicy): { bytes: Buffer; sig: string } {
    return this.sign(this.document(p));
  }
}

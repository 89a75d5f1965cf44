import crypto from 'node:crypto';
import { AirlockError } from '../../../../shared/domain/errors';
import { certInfo } from '../../keys/ca';
import { checkRepository } from './oci';

/**
 * Registry tokens as CNCF distribution 2.8.2 verifies them (registry/auth/token), issued by
 * Airlock with its `registry-token` certificate from the internal CA:
 *
 * - A compact JWS, `ES256` (P-256, signature as raw r‖s), the signer named by the header's `x5c`
 *   (standard base64 DER, leaf first, then the issuing CA; the chain must end in a certificate of
 *   the registry's `rootcertbundle`, the Airlock root CA).
 * - Claims: `iss` (the registry's configured issuer), `sub` (who the token is for), `aud` — a
 *   **string**, the registry's `service` (2.8.2 rejects an array) —, `exp` (required; at most five
 *   minutes out here), `nbf`, `iat`, `jti`, and `access: [{ type: "repository", name, actions }]`.
 *
 * What a token grants is decided by the caller (grants are policy); this module only refuses a
 * scope that is not well formed and a lifetime longer than the cap.
 */
export interface RegistryAccess {
  type: 'repository';
  name: string;
  actions: ('pull' | 'push' | 'delete')[];
}

export interface TokenSigner {
  certPem: string;
  /** The issuing CA (and any further intermediates), leaf's issuer first; not the root. */
  chainPems: string[];
  privateKeyPkcs8: Buffer;
}

export const MAX_TOKEN_SECONDS = 300;

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const der = (pem: string) => Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64');

export function signRegistryToken(o: { signer: TokenSigner; issuer: string; service: string; subject: string; access: RegistryAccess[]; ttlSeconds?: number; now: Date; random: (n: number) => Buffer }): { token: string; expiresAt: string; jti: string } {
  const ttl = o.ttlSeconds ?? MAX_TOKEN_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_SECONDS) throw new AirlockError('INVALID_INPUT', `A registry token lives 1 to ${MAX_TOKEN_SECONDS} seconds, not ${ttl}.`);
  if (certInfo(o.signer.certPem).kind !== 'registry-token') throw new AirlockError('INVALID_INPUT', 'Registry tokens are signed only with a registry-token certificate of the internal CA.');
  for (const a of o.access) {
    checkRepository(a.name);
    if (a.type !== 'repository' || a.actions.length === 0 || a.actions.some((x) => !['pull', 'push', 'delete'].includes(x))) throw new AirlockError('INVALID_INPUT', `Access to ${a.name} must name pull, push or delete.`);
  }
  const now = Math.floor(o.now.getTime() / 1000);
  const jti = o.random(16).toString('hex');
  const header = { typ: 'JWT', alg: 'ES256', x5c: [o.signer.certPem, ...o.signer.chainPems].map((p) => der(p).toString('base64')) };
  const claims = { iss: o.issuer, sub: o.subject, aud: o.service, exp: now + ttl, nbf: now - 1, iat: now, jti, access: o.access.map((a) => ({ type: a.type, name: a.name, actions: [...new Set(a.actions)] })) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const key = crypto.createPrivateKey({ key: o.signer.privateKeyPkcs8, format: 'der', type: 'pkcs8' });
  const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return { token: `${input}.${b64url(sig)}`, expiresAt: new Date((now + ttl) * 1000).toISOString(), jti };
}

/** The access a registry challenge's `scope` asks for (`repository:<name>:<actions>`, space-separated), refusing anything else. */
export function parseScope(scope: string): RegistryAccess[] {
  return scope
    .split(' ')
    .filter(Boolean)
    .map((s) => {
      const m = /^repository:([^:]+):([a-z,*]+)$/.exec(s);
      if (!m) throw new AirlockError('INVALID_INPUT', `${JSON.stringify(s.slice(0, 200))} is not a repository scope (repository:<name>:<actions>).`);
      const actions = m[2]!.split(',');
      if (actions.some((x) => !['pull', 'push', 'delete'].includes(x))) throw new AirlockError('INVALID_INPUT', `Scope ${JSON.stringify(s.slice(0, 200))} asks for an action other than pull, push or delete.`);
      return { type: 'repository' as const, name: checkRepository(m[1]!), actions: actions as RegistryAccess['actions'] };
    });
}

import crypto from 'node:crypto';
import type { Db } from '../db/db';
import { meta } from '../db/meta';
import { keyFingerprint } from '../keys/ed25519';
import { KeyRegistry, OWN_KEYS } from '../keys/registry';
import type { Vault } from '../vault/vault';

export { keyFingerprint };

/** Vault secret names (sealed under the vault key) and the clear public key in `meta` (declared in keys/registry.ts). */
export const AUDIT_SIGNING_SECRET = OWN_KEYS['audit.signing'].secret;
export const AUDIT_HMAC_SECRET = OWN_KEYS['audit.hmac'].secret;
export const AUDIT_PUBLIC_META = OWN_KEYS['audit.signing'].public;

export type AuditKeysState = 'loaded' | 'created' | 'absent';

/** The audit public keys on record, by fingerprint (PEM). Readable without any session. */
export function auditPublicKeys(db: Db): Record<string, string> {
  try {
    const pem = meta(db).getIfValid(AUDIT_PUBLIC_META);
    return pem ? { [keyFingerprint(pem)]: pem } : {};
  } catch {
    return {};
  }
}

/**
 * The in-memory holder of the audit keys, owned by the composition root (no module state).
 *
 * At first-run setup `seal()` generates an Ed25519 signing key and a 32-byte HMAC key and seals
 * both in the vault, with the public key in `meta` in the clear. The vault key exists only in a
 * signed-in session, so each sign-in calls `unlock()`, which unseals them into this holder for
 * the life of the process (an admin's sign-in also creates them for a database that predates
 * them). `wipe()` (core.close) zeroes them. Until then checkpoints wait and secret parameters
 * are recorded as "[redacted]" instead of an HMAC.
 */
export class AuditKeys {
  private signingDer: Buffer | null = null;
  private hmacKey: Buffer | null = null;
  private fingerprint: string | null = null;
  /** Why the keys could not be unsealed last time (kept for diagnostics; never fatal). */
  lastError: string | null = null;

  private readonly registry: KeyRegistry;

  /** `registry`: the core's (createAuditService passes it); else one on `db` and `vault` (tests). */
  constructor(private readonly deps: { db: Db; vault: Vault; random?: (n: number) => Buffer; registry?: KeyRegistry }) {
    this.registry = deps.registry ?? new KeyRegistry({ db: deps.db, vault: deps.vault, random: deps.random ?? crypto.randomBytes });
  }

  get unlocked(): boolean {
    return this.signingDer !== null && this.hmacKey !== null;
  }

  get keyFingerprint(): string | null {
    return this.fingerprint;
  }

  /**
   * Generates and seals a fresh key pair and HMAC key. Call inside the transaction that
   * creates the vault (first-run setup), or through `unlock(…, { create: true })`.
   */
  seal(vaultKey: Buffer): void {
    this.deps.db.transaction(() => {
      this.registry.mint(vaultKey, 'audit.signing');
      this.registry.mint(vaultKey, 'audit.hmac');
    })();
  }

  /**
   * Unseals the keys with a session's vault key. With `create` (an admin signing in) a database
   * without audit keys gets them, under the write lock so two processes cannot create two pairs.
   * Never throws: a sign-in must not fail because of the audit keys.
   */
  unlock(vaultKey: Buffer, opts: { create: boolean }): AuditKeysState {
    if (this.unlocked) return 'loaded';
    try {
      const read = (): AuditKeysState => {
        const der = this.registry.unseal(vaultKey, 'audit.signing');
        const hmac = this.registry.unseal(vaultKey, 'audit.hmac');
        if (!der || !hmac || hmac.length !== 32) return 'absent';
        const priv = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
        this.fingerprint = keyFingerprint(crypto.createPublicKey(priv));
        this.signingDer = der;
        this.hmacKey = hmac;
        return 'loaded';
      };
      const state = read();
      if (state !== 'absent' || !opts.create) return state;
      return this.deps.db
        .transaction((): AuditKeysState => {
          if (read() === 'loaded') return 'loaded'; // another process created them meanwhile
          this.seal(vaultKey);
          return read() === 'loaded' ? 'created' : 'absent';
        })
        .immediate();
    } catch (e) {
      this.lastError = (e as Error).message;
      return 'absent';
    }
  }

  /** `hmac-sha256:<hex>` of a value, or null while the keys are sealed. */
  hmac(value: string): string | null {
    if (!this.hmacKey) return null;
    return `hmac-sha256:${crypto.createHmac('sha256', this.hmacKey).update(value, 'utf8').digest('hex')}`;
  }

  /** Ed25519 signature (base64) and the key's fingerprint, or null while the keys are sealed. */
  sign(payload: Buffer): { signature: string; keyFingerprint: string } | null {
    if (!this.signingDer || !this.fingerprint) return null;
    // The KeyObject lives only for this call; the DER buffer is what wipe() zeroes.
    const key = crypto.createPrivateKey({ key: this.signingDer, format: 'der', type: 'pkcs8' });
    return { signature: crypto.sign(null, payload, key).toString('base64'), keyFingerprint: this.fingerprint };
  }

  wipe(): void {
    this.signingDer?.fill(0);
    this.hmacKey?.fill(0);
    this.signingDer = null;
    this.hmacKey = null;
    this.fingerprint = null;
  }
}

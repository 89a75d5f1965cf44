import crypto from 'node:crypto';
import type { Db } from '../db/db';
import { meta } from '../db/meta';
import { keyFingerprint } from '../keys/ed25519';
import { KeyRegistry, OWN_KEYS } from '../keys/registry';
import type { Vault } from '../vault/vault';
import { readHandovers, trustChain, type TrustedAuditKeys } from './key-chain';

export { keyFingerprint };

/** Vault secret names (sealed under the vault key) and the clear public key in `meta` (declared in keys/registry.ts). */
export const AUDIT_SIGNING_SECRET = OWN_KEYS['audit.signing'].secret;
export const AUDIT_HMAC_SECRET = OWN_KEYS['audit.hmac'].secret;
export const AUDIT_PUBLIC_META = OWN_KEYS['audit.signing'].public;

export type AuditKeysState = 'loaded' | 'created' | 'absent';

/**
 * Every audit signing key version on record, by fingerprint (PEM): retired versions keep their
 * public part, so checkpoints they signed stay verifiable. Readable without any session. What is
 * on record is not what is trusted: see `trustedAuditKeys`.
 */
export function auditPublicKeys(db: Db): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    const rows = db.prepare("SELECT public FROM console_keys WHERE purpose = 'audit.signing' AND public IS NOT NULL ORDER BY version").pluck().all() as string[];
    for (const pem of rows) out[keyFingerprint(pem)] = pem;
  } catch {
    /* a database before the entries (migration 0013): the mirrored key below */
  }
  try {
    const pem = meta(db).getIfValid(AUDIT_PUBLIC_META);
    if (pem) out[keyFingerprint(pem)] ??= pem;
  } catch {
    /* none */
  }
  return out;
}

/**
 * The audit signing keys a verifier may trust, with the window of the chain each may sign
 * (audit/key-chain.ts): the anchor — the key pinned by fingerprint, else the oldest version on
 * record — and the keys each trusted key handed over to. A pinned key must be on that chain
 * (a later version pinned trusts its predecessors too: its own checkpoints cover everything they
 * signed). Versions on record that no handover introduces are not trusted.
 */
export function trustedAuditKeys(db: Db, opts: { pinned?: string | null; upTo?: number } = {}): TrustedAuditKeys {
  let rows: Array<{ version: number; public: string }> = [];
  try {
    rows = db.prepare("SELECT version, public FROM console_keys WHERE purpose = 'audit.signing' AND public IS NOT NULL ORDER BY version").all() as typeof rows;
  } catch {
    rows = [];
  }
  let anchor: { fingerprint: string; pem: string; version: number | null } | null = null;
  try {
    if (rows[0]) anchor = { fingerprint: keyFingerprint(rows[0].public), pem: rows[0].public, version: rows[0].version };
    else {
      const pem = meta(db).getIfValid(AUDIT_PUBLIC_META);
      if (pem) anchor = { fingerprint: keyFingerprint(pem), pem, version: null };
    }
  } catch {
    anchor = null;
  }
  if (!anchor) return { keys: {}, chain: [], refused: opts.pinned ? [{ seq: 0, reason: `the pinned audit key ${opts.pinned} is not on record: no audit signing key is` }] : [] };
  return pinTo(trustChain(anchor, readHandovers(db, opts.upTo)), opts.pinned ?? null);
}

/**
 * Trust starts at the pinned key: it must be on the chain, and the keys before it are dropped
 * (a predecessor vouches for its successor by signing the handover, never the other way round: an
 * attacker could make up a predecessor of a pinned key and sign a forged past with it). Pin the
 * original key to verify the whole trail; a later one verifies from its handover on.
 */
export function pinTo(t: TrustedAuditKeys, pinned: string | null): TrustedAuditKeys {
  if (!pinned) return t;
  const at = t.chain.indexOf(pinned);
  if (at < 0) {
    return {
      keys: {},
      chain: [],
      refused: [{ seq: 0, reason: `the pinned audit key ${pinned} is not on the chain of audit key handovers (${t.chain.join(' → ') || 'none'}): nothing it signed is here, or the keys were replaced` }, ...t.refused],
    };
  }
  const chain = t.chain.slice(at);
  return { keys: Object.fromEntries(chain.map((fp) => [fp, t.keys[fp]!])), chain, refused: t.refused, before: t.chain.slice(0, at) };
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
  /** The registry versions held (a rotation in another process makes them stale: see `fresh`). */
  private signingVersion = 0;
  private hmacVersion = 0;
  private readonly currentVersion;
  /** Why the keys could not be unsealed last time (kept for diagnostics; never fatal). */
  lastError: string | null = null;

  private readonly registry: KeyRegistry;

  /** `registry`: the core's (createAuditService passes it); else one on `db` and `vault` (tests). */
  constructor(private readonly deps: { db: Db; vault: Vault; random?: (n: number) => Buffer; registry?: KeyRegistry }) {
    this.registry = deps.registry ?? new KeyRegistry({ db: deps.db, vault: deps.vault, random: deps.random ?? crypto.randomBytes });
    this.currentVersion = deps.db.prepare('SELECT version FROM console_keys WHERE purpose = ? AND retired_at IS NULL AND staged_for IS NULL').pluck();
  }

  get unlocked(): boolean {
    return this.signingDer !== null && this.hmacKey !== null;
  }

  get keyFingerprint(): string | null {
    return this.fingerprint;
  }

  /** The versions held, for the rotation's record (0 while sealed). */
  get versions(): { signing: number; hmac: number } {
    return { signing: this.signingVersion, hmac: this.hmacVersion };
  }

  /**
   * Whether the key held for `purpose` is still the current version: a rotation by another
   * process (a CLI beside `airlock serve`) retired it, and a retired signing key signs nothing
   * after its handover (verifiers refuse it there), nor does a retired HMAC key tag new events.
   * Until this process's next sign-in re-reads them, it behaves as sealed.
   */
  private fresh(purpose: 'audit.signing' | 'audit.hmac'): boolean {
    const held = purpose === 'audit.signing' ? this.signingVersion : this.hmacVersion;
    try {
      return (this.currentVersion.get(purpose) as number | undefined) === held;
    } catch {
      return false;
    }
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
   * Keys held but made stale by another process's rotation are read again. Never throws: a
   * sign-in must not fail because of the audit keys.
   */
  unlock(vaultKey: Buffer, opts: { create: boolean }): AuditKeysState {
    if (this.unlocked) {
      if (this.fresh('audit.signing') && this.fresh('audit.hmac')) return 'loaded';
      this.wipe();
    }
    try {
      const read = (): AuditKeysState => {
        const der = this.registry.unseal(vaultKey, 'audit.signing');
        const hmac = this.registry.unseal(vaultKey, 'audit.hmac');
        if (!der || !hmac || hmac.length !== 32) return 'absent';
        const priv = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
        this.fingerprint = keyFingerprint(crypto.createPublicKey(priv));
        this.signingDer = der;
        this.hmacKey = hmac;
        this.signingVersion = (this.currentVersion.get('audit.signing') as number | undefined) ?? 0;
        this.hmacVersion = (this.currentVersion.get('audit.hmac') as number | undefined) ?? 0;
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

  /** `hmac-sha256:<hex>` of a value, or null while the keys are sealed (or made stale by a rotation elsewhere). */
  hmac(value: string): string | null {
    if (!this.hmacKey || !this.fresh('audit.hmac')) return null;
    return `hmac-sha256:${crypto.createHmac('sha256', this.hmacKey).update(value, 'utf8').digest('hex')}`;
  }

  /** Ed25519 signature (base64) and the key's fingerprint, or null while the keys are sealed (or stale). */
  sign(payload: Buffer): { signature: string; keyFingerprint: string } | null {
    if (!this.fresh('audit.signing')) return null;
    return this.signHeld(payload);
  }

  /**
   * Signs with the key held, current or not: only the handover uses it, inside its transaction,
   * where the old key (already retired by the registry in the same transaction) signs the
   * checkpoint that covers the handover event.
   */
  signHeld(payload: Buffer): { signature: string; keyFingerprint: string } | null {
    if (!this.signingDer || !this.fingerprint) return null;
    // The KeyObject lives only for this call; the DER buffer is what wipe() zeroes.
    const key = crypto.createPrivateKey({ key: this.signingDer, format: 'der', type: 'pkcs8' });
    return { signature: crypto.sign(null, payload, key).toString('base64'), keyFingerprint: this.fingerprint };
  }

  /** After a committed handover: the new signing key replaces the old one in memory (the old bytes zeroed). */
  adoptSigning(der: Buffer, version: number): void {
    const priv = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    this.signingDer?.fill(0);
    this.signingDer = der;
    this.fingerprint = keyFingerprint(crypto.createPublicKey(priv));
    this.signingVersion = version;
  }

  /** After a committed HMAC key rotation: the new key replaces the old one in memory (the old bytes zeroed). */
  adoptHmac(key: Buffer, version: number): void {
    this.hmacKey?.fill(0);
    this.hmacKey = key;
    this.hmacVersion = version;
  }

  wipe(): void {
    this.signingDer?.fill(0);
    this.hmacKey?.fill(0);
    this.signingDer = null;
    this.hmacKey = null;
    this.fingerprint = null;
    this.signingVersion = 0;
    this.hmacVersion = 0;
  }
}

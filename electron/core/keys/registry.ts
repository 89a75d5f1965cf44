import crypto from 'node:crypto';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { meta, type MetaKey } from '../db/meta';
import { generateIdentity } from '../identity/ssh-key';
import { ed25519FromSeed, keyFingerprint } from './ed25519';
import type { Vault } from '../vault/vault';

/**
 * Airlock's own keys, declared once: what each one is for, its algorithm, the vault secret its
 * private part is sealed under, and the `meta` key its public part is on record under. The names
 * are those every database already holds, so keys minted before this registry still load.
 *
 * - `openssh`: the console's SSH client identity; sealed as OpenSSH private key text, public part an
 *   authorized_keys line, fingerprint OpenSSH's (SHA-256 of the key blob).
 * - `pkcs8`: an Ed25519 signing key; sealed as PKCS#8 DER, public part an SPKI PEM, fingerprint
 *   `keyFingerprint` (SHA-256 of the raw 32-byte key).
 * - `secret`: 32 random bytes (an HMAC key); nothing public, no fingerprint.
 */
export const OWN_KEYS = {
  'ssh.identity': { alg: 'ed25519', format: 'openssh', secret: 'ssh.identity.private', public: 'ssh.identity.public' },
  'audit.signing': { alg: 'ed25519', format: 'pkcs8', secret: 'audit.signing.private', public: 'audit.signing.public' },
  'audit.hmac': { alg: 'hmac-sha256', format: 'secret', secret: 'audit.hmac.key', public: null },
  'attest.signing': { alg: 'ed25519', format: 'pkcs8', secret: 'attest.signing.private', public: 'attest.signing.public' },
} as const satisfies Record<string, { alg: 'ed25519' | 'hmac-sha256'; format: 'openssh' | 'pkcs8' | 'secret'; secret: string; public: MetaKey | null }>;

export type KeyPurpose = keyof typeof OWN_KEYS;

/**
 * The vault name of the SSH identity a rotation rolls out (keys/ssh-rotation.ts), versioned by the
 * rotation's id: while it is staged, the vault holds two SSH identities, the current one under its
 * old name and this one, and every host accepts at least one of them.
 */
export const nextSshSecret = (rotationId: string): string => `${OWN_KEYS['ssh.identity'].secret}.next.${rotationId}`;

export interface MintedKey {
  purpose: KeyPurpose;
  alg: (typeof OWN_KEYS)[KeyPurpose]['alg'];
  /** The public part as recorded in `meta` (null for a secret key). */
  publicKey: string | null;
  /** How the key is named where it is used (checkpoints, attestations, `identity:show`); null for a secret key. */
  fingerprint: string | null;
}

/**
 * The one path by which Airlock mints, seals and looks up its own keys. Stateless (the composition
 * root owns one; holders of unsealed keys, such as the audit key holder, keep them themselves).
 */
export class KeyRegistry {
  constructor(private readonly deps: { db: Db; vault: Vault; random: (n: number) => Buffer }) {}

  /**
   * Generates a key of `purpose` from the injected random source, seals its private part in the
   * vault and records its public part in `meta`, both in one transaction (a savepoint inside the
   * caller's, e.g. first-run setup). Replaces a key of the same purpose.
   */
  mint(vaultKey: Buffer, purpose: KeyPurpose, opts: { comment?: string } = {}): MintedKey {
    const decl = OWN_KEYS[purpose];
    const m = meta(this.deps.db);
    return this.deps.db.transaction((): MintedKey => {
      if (decl.format === 'secret') {
        const key = this.deps.random(32);
        this.deps.vault.putSecret(vaultKey, decl.secret, key);
        key.fill(0);
        return { purpose, alg: decl.alg, publicKey: null, fingerprint: null };
      }
      const seed = this.deps.random(32);
      const privateKey = ed25519FromSeed(seed);
      seed.fill(0);
      if (decl.format === 'openssh') {
        const id = generateIdentity(opts.comment ?? 'airlock', privateKey);
        this.deps.vault.putSecret(vaultKey, decl.secret, Buffer.from(id.privateKey, 'utf8'));
        m.set(decl.public, id.publicKey);
        return { purpose, alg: decl.alg, publicKey: id.publicKey, fingerprint: id.fingerprint };
      }
      const der = privateKey.export({ format: 'der', type: 'pkcs8' });
      const publicKey = crypto.createPublicKey(privateKey);
      const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
      this.deps.vault.putSecret(vaultKey, decl.secret, der);
      m.set(decl.public, pem);
      der.fill(0);
      return { purpose, alg: decl.alg, publicKey: pem, fingerprint: keyFingerprint(publicKey) };
    })();
  }

  /** The sealed private part (as minted: OpenSSH text, PKCS#8 DER, raw bytes), or null if none was minted. */
  unseal(vaultKey: Buffer, purpose: KeyPurpose): Buffer | null {
    return this.deps.vault.getSecret(vaultKey, OWN_KEYS[purpose].secret);
  }

  /**
   * Stages the next SSH identity of rotation `rotationId`: a new key from the injected random
   * source, sealed under {@link nextSshSecret}. The current key is untouched (it is still what every
   * host accepts); the caller records the public part with its rotation, in its transaction.
   */
  mintNextSsh(vaultKey: Buffer, rotationId: string, opts: { comment?: string } = {}): { publicKey: string; fingerprint: string } {
    const seed = this.deps.random(32);
    const privateKey = ed25519FromSeed(seed);
    seed.fill(0);
    const id = generateIdentity(opts.comment ?? 'airlock', privateKey);
    const text = Buffer.from(id.privateKey, 'utf8');
    this.deps.vault.putSecret(vaultKey, nextSshSecret(rotationId), text);
    text.fill(0);
    return { publicKey: id.publicKey, fingerprint: id.fingerprint };
  }

  /** The staged next SSH identity of a rotation (OpenSSH private key text), or null when none is staged. */
  unsealNextSsh(vaultKey: Buffer, rotationId: string): Buffer | null {
    return this.deps.vault.getSecret(vaultKey, nextSshSecret(rotationId));
  }

  /**
   * The staged key becomes the current SSH identity: sealed under the current name, its public
   * line on record, the staged copy deleted — and with that the old key is gone from the vault.
   * One transaction (a savepoint inside the caller's, so the rotation records the promotion in the
   * same commit): a crash leaves either the old key current and the next one staged, or the new one
   * current, never neither. The caller promotes only once no host needs the old key.
   */
  promoteNextSsh(vaultKey: Buffer, rotationId: string, publicKey: string): void {
    const decl = OWN_KEYS['ssh.identity'];
    this.deps.db.transaction(() => {
      const next = this.unsealNextSsh(vaultKey, rotationId);
      if (!next) throw new AirlockError('NOT_FOUND', `Rotation ${rotationId} has no staged SSH identity to promote.`);
      try {
        this.deps.vault.putSecret(vaultKey, decl.secret, next);
      } finally {
        next.fill(0);
      }
      meta(this.deps.db).set(decl.public, publicKey);
      this.deps.db.prepare('DELETE FROM secrets WHERE name = ?').run(nextSshSecret(rotationId));
    })();
  }

  /** Whether a rotation's next SSH identity is still staged (readable without a session). */
  hasNextSsh(rotationId: string): boolean {
    return this.deps.db.prepare('SELECT 1 FROM secrets WHERE name = ?').get(nextSshSecret(rotationId)) !== undefined;
  }

  /** The public part on record, readable without a session; null before it is minted. */
  publicKey(purpose: Exclude<KeyPurpose, 'audit.hmac'>): string | null {
    return meta(this.deps.db).get(OWN_KEYS[purpose].public);
  }
}

import crypto from 'node:crypto';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { meta, type MetaKey } from '../db/meta';
import { fingerprintOfPrivateKey, generateIdentity, publicKeyOf } from '../identity/ssh-key';
import type { Vault } from '../vault/vault';
import { ConsoleKeyStore, openConsoleKek, openEntry, sealEntry, wrapConsoleKek, type ConsoleKekRow, type ConsoleKeyRow } from './console-keys';
import { ed25519FromSeed, keyFingerprint } from './ed25519';
import { keyCheckValue, KEY_BYTES } from './hierarchy';

/**
 * Airlock's own keys, declared once: what each one is for, its algorithm, the vault secret its
 * private part was sealed under before it became an entry of the `console` domain (migration
 * 0013: read once, to migrate a database, then deleted), and the `meta` key its current public
 * part is mirrored under (readers that predate the entries keep working).
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
  // Signs the gate policy (models/access/policy.ts); minted at the first policy. Never a vault secret: `secret` is the name it would have had.
  'policy.signing': { alg: 'ed25519', format: 'pkcs8', secret: 'policy.signing.private', public: 'policy.signing.public' },
} as const satisfies Record<string, { alg: 'ed25519' | 'hmac-sha256'; format: 'openssh' | 'pkcs8' | 'secret'; secret: string; public: MetaKey | null }>;

export type KeyPurpose = keyof typeof OWN_KEYS;

/**
 * The legacy vault name of the SSH identity a rotation staged (keys/ssh-rotation.ts) before own
 * keys became entries: a database holding one is migrated to a staged entry at the next sign-in.
 */
export const nextSshSecret = (rotationId: string): string => `${OWN_KEYS['ssh.identity'].secret}.next.${rotationId}`;

export interface MintedKey {
  purpose: KeyPurpose;
  alg: (typeof OWN_KEYS)[KeyPurpose]['alg'];
  /** The public part as recorded (null for a secret key). */
  publicKey: string | null;
  /** How the key is named where it is used (checkpoints, attestations, `identity:show`); null for a secret key. */
  fingerprint: string | null;
  /** The entry's version (1 for the first key of a purpose). */
  version: number;
}

/** A private part and how it is named: what minting or migrating an own key stores. */
interface Material {
  plain: Buffer;
  publicKey: string | null;
  fingerprint: string | null;
}

/** Public part and fingerprint of a sealed private part, as `mint` would have recorded them. */
function describe(purpose: KeyPurpose, plain: Buffer): { publicKey: string | null; fingerprint: string | null } {
  const decl = OWN_KEYS[purpose];
  if (decl.format === 'secret') return { publicKey: null, fingerprint: null };
  if (decl.format === 'openssh') {
    const text = plain.toString('utf8');
    return { publicKey: publicKeyOf(text), fingerprint: fingerprintOfPrivateKey(text) };
  }
  const pub = crypto.createPublicKey(crypto.createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' }));
  return { publicKey: pub.export({ format: 'pem', type: 'spki' }).toString(), fingerprint: keyFingerprint(pub) };
}

const LEGACY_NEXT_PREFIX = `${OWN_KEYS['ssh.identity'].secret}.next.`;

/**
 * The one path by which Airlock mints, seals, rotates and looks up its own keys (issue 12, docs/keys.md
 * "Airlock's own keys"). Each key is a versioned entry of the `console` domain: its private part
 * sealed under a version of the console KEK, which is itself wrapped under the vault key (so an
 * ordinary sign-in opens it, and a restart needs no officers) and, after genesis, under the
 * hierarchy root too (recovery without any user's vault slot). Minting a new version retires the
 * old one: its public part stays on record for old signatures, its private part is destroyed.
 *
 * Stateless over the database (the composition root owns one; holders of unsealed keys, such as
 * the audit key holder, keep them themselves). The first call with a vault key migrates keys
 * sealed the old way (vault secrets named in OWN_KEYS) into entries.
 */
export class KeyRegistry {
  private readonly store: ConsoleKeyStore;

  constructor(private readonly deps: { db: Db; vault: Vault; random: (n: number) => Buffer; now?: () => Date }) {
    this.store = new ConsoleKeyStore(deps.db);
  }

  private stamp(): string {
    return (this.deps.now ?? (() => new Date()))().toISOString();
  }

  /**
   * The console KEK version new entries are sealed under, opened with the vault key; version 1 is
   * made here when there is none yet (first-run setup, or a database that predates it). A
   * hierarchy made by a genesis that was given no vault key has a console KEK only the root
   * opens: refused, with the way out.
   */
  private currentKek(vaultKey: Buffer): { version: number; key: Buffer } {
    const latest = this.store.latestKek();
    if (latest) return { version: latest.version, key: openConsoleKek(vaultKey, latest) };
    if (this.deps.db.prepare("SELECT 1 FROM kek_domains WHERE domain = 'console'").get() !== undefined) {
      throw new AirlockError(
        'KEY_UNAVAILABLE',
        "The console KEK was made by a genesis that was given no vault key, so a sign-in cannot open it: unseal the hierarchy and rotate the console KEK while signed in (`airlock keys rotate --domain console`), then try again.",
      );
    }
    const key = this.deps.random(KEY_BYTES);
    const row: ConsoleKekRow = { version: 1, vaultWrapped: wrapConsoleKek(vaultKey, key, 1, this.deps.random), kcv: keyCheckValue(key), createdAt: this.stamp() };
    this.store.addKek(row);
    return { version: 1, key };
  }

  /** Opens the console KEK version an entry is sealed under, then the entry. */
  private open(vaultKey: Buffer, row: ConsoleKeyRow): Buffer {
    const kekRow = this.store.kek(row.kekVersion);
    if (!kekRow) throw new AirlockError('INTERNAL', `Console KEK version ${row.kekVersion} of Airlock's ${row.purpose} key is missing from the database.`);
    const kek = openConsoleKek(vaultKey, kekRow);
    try {
      return openEntry(kek, row);
    } finally {
      kek.fill(0);
    }
  }

  /** Seals `m` as a new version of `purpose` (staged for a rotation, or current: then the old current one is retired). */
  private put(vaultKey: Buffer, purpose: KeyPurpose, m: Material, stagedFor: string | null): number {
    const kek = this.currentKek(vaultKey);
    try {
      const version = this.store.nextVersion(purpose);
      const at = this.stamp();
      const sealed = sealEntry(kek.key, { purpose, version, kekVersion: kek.version }, m.plain, this.deps.random);
      if (stagedFor === null) {
        const old = this.store.current(purpose);
        if (old) this.store.retire(purpose, old.version, at);
        const decl = OWN_KEYS[purpose];
        if (decl.public && m.publicKey) meta(this.deps.db).set(decl.public, m.publicKey);
      }
      this.store.insert({ purpose, version, kekVersion: kek.version, sealed, public: m.publicKey, fingerprint: m.fingerprint, stagedFor, createdAt: at });
      return version;
    } finally {
      kek.key.fill(0);
    }
  }

  /**
   * Keys sealed the old way (vault secrets named in OWN_KEYS, staged SSH identities under
   * `nextSshSecret`) become entries, byte for byte, and the old secrets are deleted: one
   * transaction, so a crash leaves either the old secrets or the entries. A purpose that already
   * has an entry keeps it (the stale secret is only deleted).
   */
  private migrateLegacy(vaultKey: Buffer): void {
    const names = [...Object.values(OWN_KEYS).map((d) => d.secret as string)];
    const legacy = this.deps.db.prepare(`SELECT name FROM secrets WHERE name IN (${names.map(() => '?').join(', ')}) OR substr(name, 1, ?) = ?`).pluck().all(...names, LEGACY_NEXT_PREFIX.length, LEGACY_NEXT_PREFIX) as string[];
    if (legacy.length === 0) return;
    this.deps.db.transaction(() => {
      const del = this.deps.db.prepare('DELETE FROM secrets WHERE name = ?');
      for (const [purpose, decl] of Object.entries(OWN_KEYS) as Array<[KeyPurpose, (typeof OWN_KEYS)[KeyPurpose]]>) {
        const plain = this.deps.vault.getSecret(vaultKey, decl.secret);
        if (!plain) continue;
        try {
          if (!this.store.current(purpose)) this.put(vaultKey, purpose, { plain, ...describe(purpose, plain) }, null);
        } finally {
          plain.fill(0);
        }
        del.run(decl.secret);
      }
      for (const name of legacy.filter((n) => n.startsWith(LEGACY_NEXT_PREFIX))) {
        const rotationId = name.slice(LEGACY_NEXT_PREFIX.length);
        const plain = this.deps.vault.getSecret(vaultKey, name);
        if (plain) {
          try {
            if (!this.store.staged(rotationId)) this.put(vaultKey, 'ssh.identity', { plain, ...describe('ssh.identity', plain) }, rotationId);
          } finally {
            plain.fill(0);
          }
        }
        del.run(name);
      }
    })();
  }

  /** Runs `fn` in one transaction (a savepoint inside the caller's) after migrating legacy keys. */
  private withVault<T>(vaultKey: Buffer, fn: () => T): T {
    return this.deps.db.transaction(() => {
      this.migrateLegacy(vaultKey);
      return fn();
    })();
  }

  /**
   * Generates a key of `purpose` from the injected random source and seals it as the purpose's
   * next version, current at once (the previous version is retired), its public part on record,
   * all in one transaction (a savepoint inside the caller's, e.g. first-run setup).
   */
  mint(vaultKey: Buffer, purpose: KeyPurpose, opts: { comment?: string } = {}): MintedKey {
    const decl = OWN_KEYS[purpose];
    return this.withVault(vaultKey, (): MintedKey => {
      const m = this.generate(purpose, opts);
      try {
        const version = this.put(vaultKey, purpose, m, null);
        return { purpose, alg: decl.alg, publicKey: m.publicKey, fingerprint: m.fingerprint, version };
      } finally {
        m.plain.fill(0);
      }
    });
  }

  /** A fresh private part of `purpose` from the injected random source (the caller zeroes `plain`). */
  private generate(purpose: KeyPurpose, opts: { comment?: string }): Material {
    const decl = OWN_KEYS[purpose];
    if (decl.format === 'secret') return { plain: this.deps.random(32), publicKey: null, fingerprint: null };
    const seed = this.deps.random(32);
    const privateKey = ed25519FromSeed(seed);
    seed.fill(0);
    if (decl.format === 'openssh') {
      const id = generateIdentity(opts.comment ?? 'airlock', privateKey);
      return { plain: Buffer.from(id.privateKey, 'utf8'), publicKey: id.publicKey, fingerprint: id.fingerprint };
    }
    const publicKey = crypto.createPublicKey(privateKey);
    return { plain: privateKey.export({ format: 'der', type: 'pkcs8' }), publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString(), fingerprint: keyFingerprint(publicKey) };
  }

  /** The current version's private part (as minted: OpenSSH text, PKCS#8 DER, raw bytes), or null if none was minted. */
  unseal(vaultKey: Buffer, purpose: KeyPurpose): Buffer | null {
    return this.withVault(vaultKey, () => {
      const row = this.store.current(purpose);
      return row ? this.open(vaultKey, row) : null;
    });
  }

  /**
   * Stages the next SSH identity of rotation `rotationId`: a new key from the injected random
   * source, sealed as the next version of `ssh.identity` but not current (it replaces a key the
   * same rotation staged before). The current key is untouched (it is still what every host
   * accepts); the caller records the public part with its rotation, in its transaction.
   */
  mintNextSsh(vaultKey: Buffer, rotationId: string, opts: { comment?: string } = {}): { publicKey: string; fingerprint: string } {
    return this.withVault(vaultKey, () => {
      this.store.deleteStaged(rotationId);
      const m = this.generate('ssh.identity', opts);
      try {
        this.put(vaultKey, 'ssh.identity', m, rotationId);
        return { publicKey: m.publicKey!, fingerprint: m.fingerprint! };
      } finally {
        m.plain.fill(0);
      }
    });
  }

  /** The staged next SSH identity of a rotation (OpenSSH private key text), or null when none is staged. */
  unsealNextSsh(vaultKey: Buffer, rotationId: string): Buffer | null {
    return this.withVault(vaultKey, () => {
      const row = this.store.staged(rotationId);
      return row ? this.open(vaultKey, row) : null;
    });
  }

  /**
   * The staged key becomes the current SSH identity: the old version retired (its private part
   * destroyed, its public line kept on record), the staged one current, its public line mirrored
   * in `meta`. One transaction (a savepoint inside the caller's, so the rotation records the
   * promotion in the same commit): a crash leaves either the old key current and the next one
   * staged, or the new one current, never neither. The caller promotes only once no host needs
   * the old key.
   */
  promoteNextSsh(vaultKey: Buffer, rotationId: string, publicKey: string): void {
    this.withVault(vaultKey, () => {
      const next = this.store.staged(rotationId);
      if (!next) throw new AirlockError('NOT_FOUND', `Rotation ${rotationId} has no staged SSH identity to promote.`);
      if (next.public !== publicKey) throw new AirlockError('CONFLICT', `Rotation ${rotationId} staged another SSH identity than the one it is promoting: nothing was changed.`);
      // It must still open: promoting a key nobody can unseal would lock Airlock out of every host.
      this.open(vaultKey, next).fill(0);
      const old = this.store.current('ssh.identity');
      if (old) this.store.retire('ssh.identity', old.version, this.stamp());
      this.store.unstage(rotationId);
      meta(this.deps.db).set(OWN_KEYS['ssh.identity'].public, publicKey);
    });
  }

  /** Whether a rotation's next SSH identity is still staged (readable without a session, before or after migration). */
  hasNextSsh(rotationId: string): boolean {
    return this.store.staged(rotationId) !== null || this.deps.db.prepare('SELECT 1 FROM secrets WHERE name = ?').get(nextSshSecret(rotationId)) !== undefined;
  }

  /** The current version of a purpose (public part, fingerprint, version; never the private part), or null before it is minted. */
  current(purpose: KeyPurpose): { version: number; publicKey: string | null; fingerprint: string | null; createdAt: string } | null {
    const row = this.store.current(purpose);
    return row ? { version: row.version, publicKey: row.public, fingerprint: row.fingerprint, createdAt: row.createdAt } : null;
  }

  /** Every version of a purpose on record, oldest first (retired ones keep their public part; staged ones included). */
  versions(purpose: KeyPurpose): Array<{ version: number; publicKey: string | null; fingerprint: string | null; createdAt: string; retiredAt: string | null; stagedFor: string | null }> {
    return this.store.entries(purpose).map((r) => ({ version: r.version, publicKey: r.public, fingerprint: r.fingerprint, createdAt: r.createdAt, retiredAt: r.retiredAt, stagedFor: r.stagedFor }));
  }

  /** The current public part on record, readable without a session; null before it is minted. */
  publicKey(purpose: Exclude<KeyPurpose, 'audit.hmac'>): string | null {
    return this.store.current(purpose)?.public ?? meta(this.deps.db).get(OWN_KEYS[purpose].public);
  }
}

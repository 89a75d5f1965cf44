import crypto from 'node:crypto';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { deriveSlotKey, open, seal, type KdfParams } from './crypto';

export interface VaultDeps {
  db: Db;
  kdf: KdfParams;
  random: (n: number) => Buffer;
  now: () => string;
}

/**
 * The vault key (32 random bytes) never touches disk in the clear: each user
 * holds a slot with it wrapped under a key derived from their password (LUKS-style).
 * Secrets (the SSH private key first) are sealed under the vault key.
 */
export interface PreparedSlot {
  salt: Buffer;
  slotKey: Buffer;
  vaultKey: Buffer;
}

export class Vault {
  constructor(private readonly deps: VaultDeps) {}

  newVaultKey(): Buffer {
    return this.deps.random(32);
  }

  /**
   * The slow, asynchronous half of writing a slot (the KDF). The result is stored with
   * `storeSlot` inside a synchronous transaction, so nothing else can interleave with it.
   */
  async prepareSlot(password: string, vaultKey: Buffer): Promise<PreparedSlot> {
    const salt = this.deps.random(16);
    const slotKey = await deriveSlotKey(password, salt, this.deps.kdf);
    return { salt, slotKey, vaultKey };
  }

  storeSlot(userId: number, slot: PreparedSlot): void {
    const wrapped = seal(slot.slotKey, slot.vaultKey, slotAad(userId), this.deps.random);
    slot.slotKey.fill(0);
    this.deps.db
      .prepare(
        `INSERT INTO vault_slots (user_id, kdf, salt, wrapped_key, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(user_id) DO UPDATE SET kdf = excluded.kdf, salt = excluded.salt,
           wrapped_key = excluded.wrapped_key, created_at = excluded.created_at`,
      )
      .run(userId, JSON.stringify(this.deps.kdf), slot.salt, wrapped, this.deps.now());
  }

  /** Unwraps the vault key from a user's slot; a wrong password fails the GCM tag. */
  async unlock(userId: number, password: string): Promise<Buffer> {
    const row = this.deps.db
      .prepare('SELECT kdf, salt, wrapped_key FROM vault_slots WHERE user_id = ?')
      .get(userId) as { kdf: string; salt: Buffer; wrapped_key: Buffer } | undefined;
    if (!row) throw new AirlockError('BAD_CREDENTIALS', 'This user has no vault key slot.');
    const kdf = JSON.parse(row.kdf) as KdfParams;
    const slotKey = await deriveSlotKey(password, row.salt, kdf);
    const key = open(slotKey, row.wrapped_key, slotAad(userId));
    slotKey.fill(0);
    if (!key || key.length !== 32) throw new AirlockError('BAD_CREDENTIALS', 'Wrong user name or password.');
    return key;
  }

  /** A removed or disabled user's slot is destroyed: their password no longer opens the vault. */
  destroySlot(userId: number): void {
    this.deps.db.prepare('DELETE FROM vault_slots WHERE user_id = ?').run(userId);
  }

  hasSlot(userId: number): boolean {
    return Boolean(this.deps.db.prepare('SELECT 1 FROM vault_slots WHERE user_id = ?').get(userId));
  }

  /** Seal a value that lives in another table (a TOTP seed, an approval's input); `context` is bound as AAD. */
  sealValue(vaultKey: Buffer, context: string, value: Buffer): Buffer {
    return seal(vaultKey, value, `airlock:${context}`, this.deps.random);
  }

  /** Null when the key is wrong or the sealed value was altered or moved to another context. */
  openValue(vaultKey: Buffer, context: string, sealed: Buffer): Buffer | null {
    return open(vaultKey, sealed, `airlock:${context}`);
  }

  /**
   * A key for HMACs that must correlate values without revealing them (an approval's input digest):
   * HKDF-SHA256 of the vault key, separated by purpose.
   */
  hmacKey(vaultKey: Buffer, purpose: string): Buffer {
    return Buffer.from(crypto.hkdfSync('sha256', vaultKey, Buffer.alloc(0), `airlock:hmac:${purpose}`, 32));
  }

  putSecret(vaultKey: Buffer, name: string, value: Buffer): void {
    const sealed = seal(vaultKey, value, secretAad(name), this.deps.random);
    this.deps.db
      .prepare(
        `INSERT INTO secrets (name, sealed, updated_at) VALUES (?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
      )
      .run(name, sealed, this.deps.now());
  }

  getSecret(vaultKey: Buffer, name: string): Buffer | null {
    const row = this.deps.db.prepare('SELECT sealed FROM secrets WHERE name = ?').get(name) as
      | { sealed: Buffer }
      | undefined;
    if (!row) return null;
    const value = open(vaultKey, row.sealed, secretAad(name));
    if (!value) throw new AirlockError('INTERNAL', `Secret "${name}" could not be opened: the vault data was altered.`);
    return value;
  }
}

const slotAad = (userId: number) => `airlock:vault-slot:${userId}`;
const secretAad = (name: string) => `airlock:secret:${name}`;

import { hash as argonHash, hashRaw, verify as argonVerify } from '@node-rs/argon2';
import crypto from 'node:crypto';

/** `Algorithm.Argon2id` in @node-rs/argon2 (a const enum, which isolated modules cannot import). */
const ARGON2ID = 2;
const SEALED_V1 = 1;

export interface KdfParams {
  alg: 'argon2id';
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/** OWASP's Argon2id minimum (19 MiB, 2 passes). Tests may lower it through the config. */
export const DEFAULT_KDF: KdfParams = { alg: 'argon2id', memoryKiB: 19456, iterations: 2, parallelism: 1 };

export async function hashPassword(password: string, kdf: KdfParams): Promise<string> {
  return argonHash(password, {
    algorithm: ARGON2ID,
    memoryCost: kdf.memoryKiB,
    timeCost: kdf.iterations,
    parallelism: kdf.parallelism,
  });
}

export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  try {
    return await argonVerify(phc, password);
  } catch {
    return false;
  }
}

/** The key that wraps the vault key in one user's slot. Separate salt from the password hash. */
export async function deriveSlotKey(password: string, salt: Buffer, kdf: KdfParams): Promise<Buffer> {
  return hashRaw(password, {
    algorithm: ARGON2ID,
    memoryCost: kdf.memoryKiB,
    timeCost: kdf.iterations,
    parallelism: kdf.parallelism,
    outputLen: 32,
    salt,
  });
}

/**
 * AES-256-GCM with the context bound as additional data, so a sealed value
 * copied to another row (another secret name, another user's slot) fails to open.
 * Layout: version(1) || iv(12) || ciphertext || tag(16).
 */
export function seal(key: Buffer, plaintext: Buffer, aad: string, random: (n: number) => Buffer): Buffer {
  const iv = random(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([SEALED_V1]), iv, ct, cipher.getAuthTag()]);
}

/** Returns null when the key is wrong or the data was altered (GCM tag mismatch). */
export function open(key: Buffer, sealed: Buffer, aad: string): Buffer | null {
  if (sealed.length < 1 + 12 + 16 || sealed[0] !== SEALED_V1) return null;
  const iv = sealed.subarray(1, 13);
  const tag = sealed.subarray(sealed.length - 16);
  const ct = sealed.subarray(13, sealed.length - 16);
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    return null;
  }
}

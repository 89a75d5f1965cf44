import { hash as argonHash, hashRaw, verify as argonVerify } from '@node-rs/argon2';

/** `Algorithm.Argon2id` in @node-rs/argon2 (a const enum, which isolated modules cannot import). */
const ARGON2ID = 2;

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
 * AEAD lives in aead.ts (no argon2 there, so worker threads can load it cheaply); re-exported
 * here so existing imports keep working.
 */
export { open, seal } from './aead';

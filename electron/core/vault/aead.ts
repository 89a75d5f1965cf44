import crypto from 'node:crypto';

// AEAD has a file of its own, apart from the password KDF in crypto.ts, so worker threads
// (keys.rewrap) can seal and open without loading the argon2 native module.
const SEALED_V1 = 1;

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

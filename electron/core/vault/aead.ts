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

/**
 * Opens `sealed` and seals its plaintext again under `toKey` and `toAad` with `iv`, writing the
 * result (the same length as `sealed`) into `out` at `at`: a rewrap without allocating a plaintext
 * the caller could keep, for the keys.rewrap worker's hot loop. The plaintext is zeroed before
 * return. False when `sealed` does not open (nothing written then).
 */
export function resealInto(fromKey: Buffer, sealed: Buffer, fromAad: string, toKey: Buffer, toAad: string, iv: Buffer, out: Buffer, at: number): boolean {
  const n = sealed.length;
  if (n < 1 + 12 + 16 || sealed[0] !== SEALED_V1 || iv.length !== 12) return false;
  let plain: Buffer | null = null;
  try {
    const d = crypto.createDecipheriv('aes-256-gcm', fromKey, sealed.subarray(1, 13));
    d.setAAD(Buffer.from(fromAad, 'utf8'));
    d.setAuthTag(sealed.subarray(n - 16));
    plain = d.update(sealed.subarray(13, n - 16));
    d.final();
    const c = crypto.createCipheriv('aes-256-gcm', toKey, iv);
    c.setAAD(Buffer.from(toAad, 'utf8'));
    const ct = c.update(plain);
    c.final();
    out[at] = SEALED_V1;
    iv.copy(out, at + 1);
    ct.copy(out, at + 13);
    c.getAuthTag().copy(out, at + 13 + ct.length);
    return true;
  } catch {
    return false;
  } finally {
    plain?.fill(0);
  }
}

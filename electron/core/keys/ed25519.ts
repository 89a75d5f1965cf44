import crypto from 'node:crypto';

/** PKCS#8 v1 for an Ed25519 private key, before its 32-byte seed (RFC 8410 §7): what Node itself exports. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 private key from 32 bytes of the injected random source (so a seeded source gives the same key). */
export function ed25519FromSeed(seed: Buffer): crypto.KeyObject {
  if (seed.length !== 32) throw new Error('An Ed25519 seed is 32 bytes.');
  return crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/**
 * `SHA256:<base64, no padding>` of the raw 32-byte Ed25519 public key (OpenSSH's fingerprint
 * style). Checkpoints name their key by it; `airlock audit verify` prints it.
 */
export function keyFingerprint(publicKey: crypto.KeyObject | string): string {
  const key = typeof publicKey === 'string' ? crypto.createPublicKey(publicKey) : publicKey;
  const der = key.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  return `SHA256:${crypto.createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
}

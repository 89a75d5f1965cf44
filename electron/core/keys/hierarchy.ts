import crypto from 'node:crypto';
import { AirlockError } from '../../../shared/domain/errors';
import { open, seal } from '../vault/aead';

/**
 * The customer-managed key hierarchy as pure functions (issue 12): a root key (held only while the
 * hierarchy is unsealed), one versioned KEK per domain wrapped by the root, and data keys wrapped
 * by a KEK version. Every wrap is AES-256-GCM with its place in the hierarchy bound as additional
 * data, so a wrapped value copied to another row (another domain, version, id or installation)
 * does not open. No I/O and no state here: the store persists, the service holds keys.
 */

/** The domains a KEK exists for. `console` protects Airlock's own keys. */
export const KEY_DOMAINS = ['models', 'datasets', 'host-secrets', 'console'] as const;
export type KeyDomain = (typeof KEY_DOMAINS)[number];
export const isKeyDomain = (d: unknown): d is KeyDomain => typeof d === 'string' && (KEY_DOMAINS as readonly string[]).includes(d);

/** Bytes of the root and of every KEK. */
export const KEY_BYTES = 32;

const KCV_LABEL = 'airlock.kcv/v1';
const CANARY_PLAINTEXT = Buffer.from('airlock.root-canary/v1: the shares combined to this hierarchy root', 'utf8');

/**
 * A key check value: HMAC-SHA256 of a fixed label under the key, 8 bytes in hex. It names a key
 * (status, transcripts, "before/after" fingerprints) without revealing it: an HMAC output says
 * nothing usable about its key, and 64 bits are enough to tell versions apart, not to brute-force.
 */
export function keyCheckValue(key: Buffer): string {
  return crypto.createHmac('sha256', key).update(KCV_LABEL, 'utf8').digest().subarray(0, 8).toString('hex');
}

const canaryAad = (hierarchyId: string) => `airlock.root-canary/v1|${hierarchyId}`;

/**
 * A fixed plaintext sealed under the root. Shamir's combine returns garbage, not an error, for too
 * few or wrong shares; opening this canary is how a combined root is known to be the right one
 * before anything is unwrapped with it.
 */
export function rootCanary(root: Buffer, hierarchyId: string, random: (n: number) => Buffer): Buffer {
  return seal(root, CANARY_PLAINTEXT, canaryAad(hierarchyId), random);
}

/** True when `root` opens this hierarchy's canary (constant-time comparison of the plaintext). */
export function rootMatches(root: Buffer, hierarchyId: string, canary: Buffer): boolean {
  if (root.length !== KEY_BYTES) return false;
  const plain = open(root, canary, canaryAad(hierarchyId));
  return plain !== null && plain.length === CANARY_PLAINTEXT.length && crypto.timingSafeEqual(plain, CANARY_PLAINTEXT);
}

export interface KekRef {
  hierarchyId: string;
  domain: KeyDomain;
  version: number;
}
export interface DataKeyRef extends KekRef {
  id: string;
}

export const kekAad = (r: KekRef) => `airlock.kek/v1|${r.hierarchyId}|${r.domain}|${r.version}`;
export const dataKeyAad = (r: DataKeyRef) => `airlock.data-key/v1|${r.hierarchyId}|${r.domain}|${r.version}|${r.id}`;

/** Wraps a KEK version under the root. */
export function wrapKek(root: Buffer, kek: Buffer, ref: KekRef, random: (n: number) => Buffer): Buffer {
  return seal(root, kek, kekAad(ref), random);
}

/**
 * Unwraps a KEK version. A failure means the row was altered or copied from elsewhere (the root
 * itself was already checked against the canary): refused, never guessed around.
 */
export function unwrapKek(root: Buffer, wrapped: Buffer, ref: KekRef): Buffer {
  const kek = open(root, wrapped, kekAad(ref));
  if (!kek) throw new AirlockError('KEY_UNAVAILABLE', `The ${ref.domain} KEK version ${ref.version} does not open with this hierarchy's root: its database row was altered or copied from another installation. Restore the key database from a backup.`);
  return kek;
}

/** Wraps a data key under a KEK version. */
export function wrapDataKey(kek: Buffer, key: Buffer, ref: DataKeyRef, random: (n: number) => Buffer): Buffer {
  return seal(kek, key, dataKeyAad(ref), random);
}

/**
 * Unwraps a data key. A version below the domain's `min_decryption_version` is refused even
 * though its KEK is at hand: raising the minimum is how an officer retires a version they no
 * longer trust (Vault's transit semantics), so it must bind here and not only in the UI.
 */
export function unwrapDataKey(kek: Buffer, wrapped: Buffer, ref: DataKeyRef, minDecryptionVersion: number): Buffer {
  if (ref.version < minDecryptionVersion) {
    throw new AirlockError(
      'KEY_UNAVAILABLE',
      `Data key '${ref.id}' is wrapped by ${ref.domain} KEK version ${ref.version}, below the minimum decryption version ${minDecryptionVersion}: versions below it are retired. Lower the minimum (keys setMinDecryptionVersion) only if that version is still trusted.`,
    );
  }
  const key = open(kek, wrapped, dataKeyAad(ref));
  if (!key) throw new AirlockError('KEY_UNAVAILABLE', `Data key '${ref.id}' (${ref.domain}, KEK version ${ref.version}) does not open: its database row was altered or copied from elsewhere.`);
  return key;
}

export interface WrappedDataKey {
  id: string;
  version: number;
  wrapped: Buffer;
}

/**
 * Rewraps data keys to `toKek`: each is unwrapped with its own version's KEK and wrapped again,
 * its plaintext zeroed at once; only the new wraps are returned. Keys already at the target
 * version are left out (nothing to do). A key whose version has no KEK in `fromKeks`, or that
 * does not open, fails the whole batch: a rewrap never silently drops a key.
 */
export function rewrapDataKeys(
  batch: readonly WrappedDataKey[],
  fromKeks: ReadonlyMap<number, Buffer>,
  toKek: { version: number; key: Buffer },
  ctx: { hierarchyId: string; domain: KeyDomain },
  random: (n: number) => Buffer,
): WrappedDataKey[] {
  const out: WrappedDataKey[] = [];
  for (const k of batch) {
    if (k.version === toKek.version) continue;
    const from = fromKeks.get(k.version);
    if (!from) throw new AirlockError('KEY_UNAVAILABLE', `Data key '${k.id}' is wrapped by ${ctx.domain} KEK version ${k.version}, which this rewrap was not given.`);
    const key = open(from, k.wrapped, dataKeyAad({ ...ctx, version: k.version, id: k.id }));
    if (!key) throw new AirlockError('KEY_UNAVAILABLE', `Data key '${k.id}' (${ctx.domain}, KEK version ${k.version}) does not open: its database row was altered or copied from elsewhere. Nothing was rewrapped.`);
    try {
      out.push({ id: k.id, version: toKek.version, wrapped: wrapDataKey(toKek.key, key, { ...ctx, version: toKek.version, id: k.id }, random) });
    } finally {
      key.fill(0);
    }
  }
  return out;
}

/**
 * The highest `min_decryption_version` that leaves every data key, and every version a pending
 * host still needs (a host unreachable during a rotation), decryptable: the lowest version in use,
 * never above the current one.
 */
export function safeMinDecryptionVersion(currentVersion: number, versionsInUse: Iterable<number>, pendingVersions: Iterable<number> = []): number {
  let min = currentVersion;
  for (const v of versionsInUse) min = Math.min(min, v);
  for (const v of pendingVersions) min = Math.min(min, v);
  return Math.max(1, min);
}

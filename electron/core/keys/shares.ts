import crypto from 'node:crypto';
import { combine, split } from 'shamir-secret-sharing';
import { z } from 'zod';
import { AirlockError } from '../../../shared/domain/errors';
import { open, seal } from '../vault/aead';
import { deriveSlotKey, type KdfParams } from '../vault/crypto';
import { KEY_BYTES, keyCheckValue, rootCanary, rootMatches } from './hierarchy';

/**
 * The root key split m-of-n among security officers (shamir-secret-sharing), and everything that
 * makes a share safe to hand around: the share record kept in the database (per-share
 * commitments bound to the hierarchy, the ceremony nonce, the index and m/n; the root canary),
 * the armored text an officer carries on removable media or paper, and sealing of a share to its
 * officer's passphrase (Argon2id) with a fingerprint the officer confirms.
 *
 * Threats answered: a share of another installation (foreign), of an earlier ceremony (stale:
 * vault#844 — every ceremony has a fresh nonce and every share is bound to it, so a share from
 * before a reshare, or one an attacker produced in a ceremony of their own, is refused by name),
 * an altered share (its commitment does not match), too few or wrong shares (Shamir returns
 * garbage: the canary refuses it).
 */

/** Officers per hierarchy at most: one share each. */
export const MAX_SHARES = 16;
/** An armored share file at most (a share is ~200 bytes of JSON; anything bigger is not one). */
export const MAX_ARMOR_BYTES = 16 * 1024;

const ID = /^[0-9a-f]{32}$/;
/** Officer names: printable, no control characters (they appear in armor headers and transcripts). */
export const officerName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u, 'an officer name has no control characters')
  .refine((s) => s.trim() === s, 'an officer name has no leading or trailing spaces');

export interface ShareRecord {
  format: 'airlock.share-record/v1';
  hierarchyId: string;
  nonce: string;
  threshold: number;
  count: number;
  /** Officer of each share, by index − 1. */
  officers: string[];
  /** SHA-256 commitment of each share, by index − 1 (hex). */
  commitments: string[];
  /** The root canary (base64): see hierarchy.ts. */
  canary: string;
  rootKcv: string;
}

/** One share, unsealed: bytes in memory only. */
export interface RootShare {
  hierarchyId: string;
  nonce: string;
  index: number;
  threshold: number;
  count: number;
  officer: string;
  share: Buffer;
}

/** Binds a share's commitment to everything that identifies it: moving it to another slot, ceremony or m/n changes it. */
export function shareCommitment(s: { hierarchyId: string; nonce: string; index: number; threshold: number; count: number; share: Buffer }): string {
  return crypto.createHash('sha256').update(`airlock.share-commitment/v1|${s.hierarchyId}|${s.nonce}|${s.index}|${s.threshold}|${s.count}|`, 'utf8').update(s.share).digest('hex');
}

/** Checks m and n (2 ≤ m ≤ n ≤ MAX_SHARES) and the officers (one each, distinct names). */
export function checkShape(threshold: number, officers: readonly string[]): void {
  const count = officers.length;
  if (!Number.isInteger(threshold) || threshold < 2) throw new AirlockError('INVALID_INPUT', 'The threshold must be at least 2: one officer alone must never be able to unseal the key hierarchy.');
  if (count > MAX_SHARES) throw new AirlockError('INVALID_INPUT', `At most ${MAX_SHARES} officers can hold shares (${count} were named).`);
  if (threshold > count) throw new AirlockError('INVALID_INPUT', `The threshold (${threshold}) cannot exceed the number of officers (${count}): the hierarchy could never be unsealed.`);
  const seen = new Set<string>();
  for (const o of officers) {
    const parsed = officerName.safeParse(o);
    if (!parsed.success) throw new AirlockError('INVALID_INPUT', `Officer name '${o}' is not allowed: ${parsed.error.issues[0]?.message ?? 'invalid'}.`);
    if (seen.has(o)) throw new AirlockError('INVALID_INPUT', `Officer '${o}' is named twice: each officer holds exactly one share.`);
    seen.add(o);
  }
}

/**
 * Splits the root into one share per officer (index i + 1 goes to officers[i]; `count`, if given,
 * must be the number of officers) and builds the
 * record the database keeps: commitments, canary and root KCV, never a share.
 */
export async function splitRoot(
  root: Buffer,
  opts: { hierarchyId: string; nonce: string; threshold: number; officers: readonly string[]; random: (n: number) => Buffer; count?: number },
): Promise<{ record: ShareRecord; shares: RootShare[] }> {
  if (root.length !== KEY_BYTES) throw new AirlockError('INTERNAL', 'The root key must be 32 bytes.');
  checkShape(opts.threshold, opts.officers);
  const count = opts.officers.length;
  if (opts.count !== undefined && opts.count !== count) throw new AirlockError('INVALID_INPUT', `${opts.count} shares were asked for but ${count} officers named: each officer holds exactly one share.`);
  const raw = await split(new Uint8Array(root), count, opts.threshold);
  const shares = raw.map(
    (bytes, i): RootShare => ({ hierarchyId: opts.hierarchyId, nonce: opts.nonce, index: i + 1, threshold: opts.threshold, count, officer: opts.officers[i]!, share: Buffer.from(bytes) }),
  );
  for (const r of raw) r.fill(0);
  return {
    record: {
      format: 'airlock.share-record/v1',
      hierarchyId: opts.hierarchyId,
      nonce: opts.nonce,
      threshold: opts.threshold,
      count,
      officers: [...opts.officers],
      commitments: shares.map(shareCommitment),
      canary: rootCanary(root, opts.hierarchyId, opts.random).toString('base64'),
      rootKcv: keyCheckValue(root),
    },
    shares,
  };
}

export type ShareProblem = 'foreign' | 'stale' | 'wrong';

/** Why a share is refused, or null when it belongs to this record. Pure: `checkShare` throws the message. */
export function shareProblem(record: ShareRecord, s: RootShare): ShareProblem | null {
  if (s.hierarchyId !== record.hierarchyId) return 'foreign';
  if (s.nonce !== record.nonce) return 'stale';
  if (s.threshold !== record.threshold || s.count !== record.count || s.index < 1 || s.index > record.count) return 'wrong';
  const expected = Buffer.from(record.commitments[s.index - 1] ?? '', 'hex');
  const actual = Buffer.from(shareCommitment(s), 'hex');
  if (expected.length !== actual.length || !crypto.timingSafeEqual(expected, actual)) return 'wrong';
  return null;
}

/** The officer-facing sentence for a refused share. */
export function problemMessage(problem: ShareProblem, s: Pick<RootShare, 'index' | 'officer' | 'count'>): string {
  const which = `Share ${s.index} of ${s.count} (officer '${s.officer}')`;
  switch (problem) {
    case 'foreign':
      return `${which} belongs to another key hierarchy (another installation). Use the share issued for this one.`;
    case 'stale':
      return `${which} was issued by an earlier ceremony: the shares were reissued since (reshare or root rotation), and old shares no longer count. Use the share from the latest ceremony.`;
    case 'wrong':
      return `${which} does not match what this hierarchy recorded for it: the share was altered, damaged or mistyped. Check it against the printed copy, or use another officer's share.`;
  }
}

/** Throws INVALID_INPUT with the officer-facing reason when the share does not belong to the record. */
export function checkShare(record: ShareRecord, s: RootShare): void {
  const p = shareProblem(record, s);
  if (p) throw new AirlockError('INVALID_INPUT', problemMessage(p, s));
}

/**
 * Collects checked shares until the threshold, then combines them and verifies the result by the
 * canary. A refused share changes nothing already collected. Shares live only in this object:
 * `clear()` zeroes them (after combine, on cancel, on seal).
 */
export class ShareCollector {
  private readonly shares = new Map<number, { share: RootShare; by: string }>();

  constructor(readonly record: ShareRecord) {}

  add(share: RootShare, by: string = share.officer): { collected: number; threshold: number; contributors: string[] } {
    checkShare(this.record, share);
    if (this.shares.has(share.index)) {
      throw new AirlockError('CONFLICT', `Share ${share.index} of ${share.count} (officer '${share.officer}') was already given in this unseal: each share counts once. ${this.remaining()} more share(s) from other officers are needed.`);
    }
    this.shares.set(share.index, { share: { ...share, share: Buffer.from(share.share) }, by });
    return this.progress();
  }

  progress() {
    return { collected: this.shares.size, threshold: this.record.threshold, contributors: this.contributors() };
  }

  contributors(): string[] {
    return [...this.shares.values()].map((s) => s.by);
  }

  remaining(): number {
    return Math.max(0, this.record.threshold - this.shares.size);
  }

  /** The root, verified by the canary; the caller owns (and zeroes) it. */
  async combine(): Promise<Buffer> {
    if (this.shares.size < this.record.threshold) {
      throw new AirlockError('KEY_UNAVAILABLE', `${this.remaining()} more officer share(s) are needed to unseal (${this.shares.size} of ${this.record.threshold} given).`);
    }
    const parts = [...this.shares.values()].map((s) => new Uint8Array(s.share.share));
    let root: Buffer;
    try {
      const combined = await combine(parts);
      root = Buffer.from(combined);
      combined.fill(0);
    } catch {
      throw new AirlockError('KEY_UNAVAILABLE', 'The shares given do not combine: they are not shares of the same split. Start the unseal again with shares from the latest ceremony.');
    } finally {
      for (const p of parts) p.fill(0);
    }
    if (!rootMatches(root, this.record.hierarchyId, Buffer.from(this.record.canary, 'base64'))) {
      root.fill(0);
      throw new AirlockError('KEY_UNAVAILABLE', "The shares given combine to a key that is not this hierarchy's root (the root canary does not open). Nothing was unsealed; start again with shares from the latest ceremony.");
    }
    return root;
  }

  clear(): void {
    for (const s of this.shares.values()) s.share.share.fill(0);
    this.shares.clear();
  }
}

// ---- officer sealing ----

const kdfSchema = z.strictObject({
  alg: z.literal('argon2id'),
  // Bounded so a hostile file cannot make the console allocate gigabytes or spin for minutes.
  memoryKiB: z.number().int().min(8).max(1024 * 1024),
  iterations: z.number().int().min(1).max(16),
  parallelism: z.number().int().min(1).max(8),
});

const sealAad = (s: Pick<RootShare, 'hierarchyId' | 'nonce' | 'index' | 'officer'>) => `airlock.share-seal/v1|${s.hierarchyId}|${s.nonce}|${s.index}|${s.officer}`;

/**
 * The fingerprint of an officer's sealing key: HMAC-SHA256 under the Argon2id-derived key over the
 * officer and salt, 8 bytes as 4 groups of 4 hex digits. Shown to the officer before shares are
 * issued (they write it down) and carried in the armored file; on unseal it is recomputed from
 * the passphrase, so a file sealed to someone else's key is noticed. It reveals no more than the
 * sealed share itself does to a passphrase guesser (each guess costs one Argon2id either way).
 */
export function sealingFingerprint(officer: string, salt: Buffer, derivedKey: Buffer): string {
  const mac = crypto.createHmac('sha256', derivedKey).update(`airlock.sealing-fingerprint/v1|${officer}|`, 'utf8').update(salt).digest('hex');
  return [0, 4, 8, 12].map((i) => mac.slice(i, i + 4)).join('-');
}

/** Minimum passphrase length for sealing a share. */
export const MIN_PASSPHRASE = 12;

export interface SealedShare {
  kdf: KdfParams;
  salt: Buffer;
  sealed: Buffer;
  fingerprint: string;
}

/** Derives an officer's sealing key: the same Argon2id as the vault's slot keys (deriveSlotKey). */
export async function deriveSealingKey(officer: string, passphrase: string, kdf: KdfParams, salt: Buffer): Promise<{ key: Buffer; fingerprint: string }> {
  const key = await deriveSlotKey(passphrase, salt, kdf);
  return { key, fingerprint: sealingFingerprint(officer, salt, key) };
}

/**
 * Seals a share to its officer's passphrase (AES-256-GCM under the Argon2id key, bound to the
 * share's identity). With `confirmed` (the salt and fingerprint the officer was shown and
 * confirmed before the ceremony issued shares, `prepareSealing`), the key is derived from that salt
 * and must give that fingerprint, else nothing is sealed: the share goes to exactly the key the
 * officer confirmed, not to one substituted between confirmation and issue.
 */
export async function sealShareForOfficer(
  share: RootShare,
  passphrase: string,
  kdf: KdfParams,
  random: (n: number) => Buffer,
  confirmed?: { salt: Buffer; fingerprint: string },
): Promise<SealedShare> {
  if (passphrase.length < MIN_PASSPHRASE) throw new AirlockError('INVALID_INPUT', `Officer '${share.officer}': a share passphrase needs at least ${MIN_PASSPHRASE} characters.`);
  if (confirmed && confirmed.salt.length !== 16) throw new AirlockError('INVALID_INPUT', `Officer '${share.officer}': the confirmed sealing salt must be 16 bytes.`);
  const salt = confirmed ? Buffer.from(confirmed.salt) : random(16);
  const { key, fingerprint } = await deriveSealingKey(share.officer, passphrase, kdf, salt);
  try {
    if (confirmed && fingerprint !== confirmed.fingerprint) {
      throw new AirlockError(
        'INVALID_INPUT',
        `Officer '${share.officer}': this passphrase gives sealing fingerprint ${fingerprint}, not ${confirmed.fingerprint}, which the officer confirmed. No share was issued; confirm the fingerprint again.`,
      );
    }
    // The KDF parameters in a fixed order: the armor is checked against a re-serialisation of its payload.
    return { kdf: { alg: kdf.alg, memoryKiB: kdf.memoryKiB, iterations: kdf.iterations, parallelism: kdf.parallelism }, salt, sealed: seal(key, share.share, sealAad(share), random), fingerprint };
  } finally {
    key.fill(0);
  }
}

/**
 * The first step of officer sealing: a fresh salt and the fingerprint of the key this passphrase
 * derives with it, to show the officer before shares are issued. Nothing secret is returned; the
 * ceremony passes salt and fingerprint back with the passphrase when it issues the shares.
 */
export async function prepareSealing(officer: string, passphrase: string, kdf: KdfParams, random: (n: number) => Buffer): Promise<{ salt: Buffer; fingerprint: string }> {
  if (passphrase.length < MIN_PASSPHRASE) throw new AirlockError('INVALID_INPUT', `Officer '${officer}': a share passphrase needs at least ${MIN_PASSPHRASE} characters.`);
  const salt = random(16);
  const { key, fingerprint } = await deriveSealingKey(officer, passphrase, kdf, salt);
  key.fill(0);
  return { salt, fingerprint };
}

// ---- armor ----

const BEGIN = '-----BEGIN AIRLOCK ROOT KEY SHARE-----';
const END = '-----END AIRLOCK ROOT KEY SHARE-----';
const b64 = z.string().max(4096).regex(/^[A-Za-z0-9+/]*={0,2}$/);

const payloadSchema = z
  .strictObject({
    format: z.literal('airlock.share/v1'),
    hierarchyId: z.string().regex(ID),
    nonce: z.string().regex(ID),
    index: z.number().int().min(1).max(MAX_SHARES),
    threshold: z.number().int().min(2).max(MAX_SHARES),
    count: z.number().int().min(2).max(MAX_SHARES),
    officer: officerName,
    sealing: z.enum(['none', 'passphrase']),
    kdf: kdfSchema.optional(),
    salt: z.string().regex(/^[A-Za-z0-9+/]{22}==$/, 'a 16-byte salt').optional(),
    fingerprint: z.string().regex(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/).optional(),
    share: b64,
  })
  .refine((p) => p.threshold <= p.count && p.index <= p.count, 'index ≤ count and threshold ≤ count')
  .refine((p) => (p.sealing === 'passphrase') === (p.kdf !== undefined && p.salt !== undefined && p.fingerprint !== undefined), 'kdf, salt and fingerprint go with passphrase sealing');

/** What an armored file holds: a share, plain or sealed to its officer. */
export type SharePayload = z.infer<typeof payloadSchema>;

const checksum = (body: Buffer) => crypto.createHash('sha256').update(body).digest('hex').slice(0, 16);

/** The payload of a share, plain (`sealing: 'none'`) or sealed. */
export function sharePayload(share: RootShare, sealed?: SealedShare): SharePayload {
  const base = { format: 'airlock.share/v1' as const, hierarchyId: share.hierarchyId, nonce: share.nonce, index: share.index, threshold: share.threshold, count: share.count, officer: share.officer };
  if (!sealed) return { ...base, sealing: 'none', share: share.share.toString('base64') };
  return { ...base, sealing: 'passphrase', kdf: sealed.kdf, salt: sealed.salt.toString('base64'), fingerprint: sealed.fingerprint, share: sealed.sealed.toString('base64') };
}

/**
 * The armored text: readable headers for a person holding the paper (each one repeats a payload
 * field and is checked against it), the payload as base64 in 64-column lines, and a checksum line
 * that catches a mistyped character from a paper backup. Deterministic, so `dearmorShare` can
 * refuse any text that is not exactly what this function would have written.
 */
export function armorShare(p: SharePayload): string {
  const body = Buffer.from(JSON.stringify(p), 'utf8');
  const text = body.toString('base64');
  const lines = [
    BEGIN,
    `Officer: ${p.officer}`,
    `Share: ${p.index} of ${p.count}, ${p.threshold} needed to unseal`,
    `Hierarchy: ${p.hierarchyId}`,
    `Ceremony: ${p.nonce}`,
    `Sealing: ${p.sealing === 'passphrase' ? `passphrase, fingerprint ${p.fingerprint}` : 'none (keep this file offline and locked away)'}`,
    '',
  ];
  for (let i = 0; i < text.length; i += 64) lines.push(text.slice(i, i + 64));
  lines.push(`=${checksum(body)}`, END, '');
  return lines.join('\n');
}

const parseError = (why: string) => new AirlockError('PARSE_ERROR', `This is not a valid Airlock root key share file: ${why}.`);

/**
 * Parses armored text from an untrusted file. Bounded (MAX_ARMOR_BYTES), strict (the exact text
 * `armorShare` writes, LF or CRLF line ends), and it never throws anything but PARSE_ERROR.
 */
export function dearmorShare(text: unknown): SharePayload {
  if (typeof text !== 'string') throw parseError('it is not text');
  if (text.length > MAX_ARMOR_BYTES) throw parseError(`it is larger than ${MAX_ARMOR_BYTES / 1024} KiB`);
  const lf = text.includes('\r\n') ? text.split('\r\n').join('\n') : text;
  if (lf.includes('\r')) throw parseError('it has stray carriage returns');
  if (!lf.startsWith(`${BEGIN}\n`)) throw parseError(`it does not start with the line ${BEGIN}`);
  const lines = lf.split('\n');
  const blank = lines.indexOf('');
  const endAt = lines.indexOf(END);
  if (blank < 0 || endAt < blank + 2) throw parseError(`the line ${END} is missing or misplaced`);
  const body64 = lines.slice(blank + 1, endAt - 1).join('');
  const sum = lines[endAt - 1] ?? '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body64) || body64.length % 4 !== 0) throw parseError('its body is not base64');
  const body = Buffer.from(body64, 'base64');
  if (sum !== `=${checksum(body)}`) throw parseError('its checksum line does not match (a character was changed or mistyped)');
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw parseError('its body is not JSON');
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) throw parseError(`its content is not a share (${parsed.error.issues[0]?.path.join('.') || 'payload'}: ${parsed.error.issues[0]?.message ?? 'invalid'})`);
  // Only the exact text armorShare writes: an edited header, re-wrapped body or text around the block is refused.
  const expected = armorShare(parsed.data);
  if (lf !== expected && `${lf}\n` !== expected) throw parseError('its text was edited (headers or layout differ from its content)');
  return parsed.data;
}

/**
 * The share in a payload, unsealing it with the officer's passphrase if it is sealed. A wrong
 * passphrase is BAD_CREDENTIALS (the fingerprint recomputed from it differs from the file's: the
 * file was sealed with another passphrase, or to another person's key).
 */
export async function unsealShare(p: SharePayload, passphrase?: string): Promise<RootShare> {
  const base = { hierarchyId: p.hierarchyId, nonce: p.nonce, index: p.index, threshold: p.threshold, count: p.count, officer: p.officer };
  if (p.sealing === 'none') return { ...base, share: Buffer.from(p.share, 'base64') };
  if (passphrase === undefined || passphrase === '') throw new AirlockError('BAD_CREDENTIALS', `Share ${p.index} of ${p.count} is sealed to officer '${p.officer}': their passphrase is needed to use it.`);
  const derived = await deriveSealingKey(p.officer, passphrase, p.kdf!, Buffer.from(p.salt!, 'base64')).catch(() => {
    throw new AirlockError('PARSE_ERROR', `Share ${p.index} of ${p.count} (officer '${p.officer}') names key-derivation parameters that cannot be used: the file was altered.`);
  });
  const { key, fingerprint } = derived;
  try {
    if (fingerprint !== p.fingerprint) {
      throw new AirlockError('BAD_CREDENTIALS', `The passphrase for officer '${p.officer}' (share ${p.index} of ${p.count}) is wrong: it gives sealing fingerprint ${fingerprint}, the file says ${p.fingerprint}. Nothing was collected; try again.`);
    }
    const share = open(key, Buffer.from(p.share, 'base64'), sealAad(base));
    if (!share) throw new AirlockError('INVALID_INPUT', `Share ${p.index} of ${p.count} (officer '${p.officer}') does not open although the passphrase is right: the file was altered.`);
    return { ...base, share };
  } finally {
    key.fill(0);
  }
}

import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import { keyFingerprint } from '../keys/ed25519';
import { CHECKPOINT_CHANNEL, SYSTEM_ACTOR, checkpointPayload, sha256Hex } from './chain';

/**
 * The chain of audit signing key handovers (issue 12, docs/security.md "Rotating the audit signing
 * key: the handover chain").
 *
 * A rotation of the audit signing key appends, in one transaction, an `audit:keyHandover` event
 * naming the old and the new key (the new public key PEM inside it) and, right after it, a
 * checkpoint over that event signed by the OLD key. A verifier trusts one key to begin with (the
 * fingerprint it pins, or the oldest version on record) and from there only the keys each
 * trusted predecessor handed over to, each within its window of the chain: the old key signs
 * heads up to the handover event, the new one heads after it. A key row an attacker adds to the
 * database (with checkpoints signed by it) is introduced by no handover its predecessor signed:
 * it verifies nothing.
 *
 * Pure over rows, so the console (over its database), the worker threads and the offline bundle
 * verifier (over the bundle's rows in an in-memory database) decide the same way.
 */

export const HANDOVER_CHANNEL = 'audit:keyHandover';

/** Where in the chain a trusted key may sign a checkpoint head: `fromHead` ≤ headSeq ≤ `toHead` (null: no end). */
export interface KeyWindow {
  pem: string;
  fromHead: number;
  toHead: number | null;
  /** The key's version as its handover names it (null for the anchor when unknown). */
  version: number | null;
}

/** A handover event and the row right after it (its covering checkpoint), as stored. */
export interface HandoverRows {
  seq: number;
  ts: string;
  hash: string;
  prevHash: string;
  body: string;
  next: { seq: number; channel: string; body: string } | null;
}

export interface TrustedAuditKeys {
  /** By fingerprint: every key reached from the anchor, with its window. */
  keys: Record<string, KeyWindow>;
  /** The chain, oldest first (the anchor first). */
  chain: string[];
  /** Handovers that were refused, and why (the first is what a verifier reports). */
  refused: Array<{ seq: number; reason: string }>;
  /** Keys of the chain before a pinned one (dropped: trust begins at the pin). */
  before?: string[];
}

/** The params of an audit signing key handover. */
export interface SigningHandover {
  purpose: 'audit.signing';
  oldFingerprint: string;
  oldVersion: number;
  newFingerprint: string;
  newVersion: number;
  newPublicKey: string;
}

/** Every handover event of the trail (any purpose) with its next row, in chain order. */
export function readHandovers(db: Database.Database, upTo?: number): HandoverRows[] {
  const rows = db
    .prepare('SELECT seq, ts, hash, prev_hash AS prevHash, body FROM audit_events WHERE channel = ? AND seq <= ? ORDER BY seq')
    .all(HANDOVER_CHANNEL, upTo ?? Number.MAX_SAFE_INTEGER) as Array<Omit<HandoverRows, 'next'>>;
  const next = db.prepare('SELECT seq, channel, body FROM audit_events WHERE seq = ?');
  return rows.map((r) => ({ ...r, next: (next.get(r.seq + 1) as HandoverRows['next'] | undefined) ?? null }));
}

function parseParams(body: string): { channel?: unknown; actor?: unknown; params?: Record<string, unknown> } | null {
  try {
    const v = JSON.parse(body) as unknown;
    return v && typeof v === 'object' ? (v as { channel?: unknown; actor?: unknown; params?: Record<string, unknown> }) : null;
  } catch {
    return null;
  }
}

/** The signing handover a row records, or null when it is another purpose's (HMAC, attestation) or not a handover at all. */
export function signingHandoverOf(body: string): SigningHandover | null {
  const e = parseParams(body);
  const p = e?.params;
  if (!e || e.channel !== HANDOVER_CHANNEL || !p || p.purpose !== 'audit.signing') return null;
  const s = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : null);
  const n = (k: string) => (Number.isSafeInteger(p[k]) ? (p[k] as number) : null);
  const [oldFingerprint, newFingerprint, newPublicKey, oldVersion, newVersion] = [s('oldFingerprint'), s('newFingerprint'), s('newPublicKey'), n('oldVersion'), n('newVersion')];
  if (!oldFingerprint || !newFingerprint || !newPublicKey || oldVersion === null || newVersion === null) return null;
  return { purpose: 'audit.signing', oldFingerprint, oldVersion, newFingerprint, newVersion, newPublicKey };
}

/**
 * Walks the handovers from `anchor` (the key trusted to begin with, valid from the chain's start):
 * each signing handover is accepted only if its row matches its own hash, it is signed away by the
 * key currently at the end of the chain, the row right after it is a checkpoint over exactly it
 * signed by that key, and the new public key has the fingerprint it names. A refused handover
 * ends the walk: no key after it is trusted.
 */
export function trustChain(anchor: { fingerprint: string; pem: string; version?: number | null }, handovers: readonly HandoverRows[]): TrustedAuditKeys {
  const keys: Record<string, KeyWindow> = { [anchor.fingerprint]: { pem: anchor.pem, fromHead: 0, toHead: null, version: anchor.version ?? null } };
  const chain = [anchor.fingerprint];
  const refused: TrustedAuditKeys['refused'] = [];
  for (const h of handovers) {
    const ho = signingHandoverOf(h.body);
    if (!ho) {
      const e = parseParams(h.body);
      // A malformed signing handover is refused; another purpose's handover does not concern the signing key.
      if (e?.channel === HANDOVER_CHANNEL && e.params?.purpose === 'audit.signing') {
        refused.push({ seq: h.seq, reason: `the audit key handover at event ${h.seq} is malformed: the key it names is not trusted` });
        break;
      }
      continue;
    }
    const tail = chain[chain.length - 1]!;
    const why = refusal(h, ho, tail, keys[tail]!);
    if (why) {
      refused.push({ seq: h.seq, reason: why });
      break;
    }
    keys[tail]!.toHead = h.seq;
    keys[ho.newFingerprint] = { pem: ho.newPublicKey, fromHead: h.seq + 1, toHead: null, version: ho.newVersion };
    if (keys[tail]!.version === null) keys[tail]!.version = ho.oldVersion;
    chain.push(ho.newFingerprint);
  }
  return { keys, chain, refused };
}

function refusal(h: HandoverRows, ho: SigningHandover, tail: string, tailKey: KeyWindow): string | null {
  const at = `the audit key handover at event ${h.seq} (to ${ho.newFingerprint})`;
  if (sha256Hex(h.prevHash + h.body) !== h.hash) return `${at} does not match its hash: edited`;
  if (parseParams(h.body)?.actor !== SYSTEM_ACTOR) return `${at} is not written by Airlock itself: not trusted`;
  if (ho.oldFingerprint !== tail) return `${at} is signed away by ${ho.oldFingerprint}, but the trusted key at that point is ${tail}: the new key is not trusted`;
  let fp: string | null = null;
  try {
    fp = keyFingerprint(ho.newPublicKey);
  } catch {
    fp = null;
  }
  if (fp !== ho.newFingerprint) return `${at} carries a public key whose fingerprint is ${fp ?? 'unreadable'}, not the one it names: the new key is not trusted`;
  if (ho.newFingerprint === tail) return `${at} hands the key over to itself: not trusted`;
  const cp = h.next;
  const p = cp ? parseParams(cp.body) : null;
  const params = p?.params;
  if (!cp || cp.channel !== CHECKPOINT_CHANNEL || p?.channel !== CHECKPOINT_CHANNEL || !params) {
    return `${at} is not followed by a checkpoint signed by the key it hands over from (${tail}): the new key is not trusted`;
  }
  if (params.headSeq !== h.seq || params.headHash !== h.hash || params.headTs !== h.ts || params.keyFingerprint !== tail) {
    return `${at}: the checkpoint after it does not cover it with the key it hands over from (${tail}): the new key is not trusted`;
  }
  let valid = false;
  try {
    valid = crypto.verify(null, checkpointPayload({ seq: h.seq, hash: h.hash, ts: h.ts }), crypto.createPublicKey(tailKey.pem), Buffer.from(String(params.signature), 'base64'));
  } catch {
    valid = false;
  }
  if (!valid) return `${at}: the checkpoint after it is not signed by ${tail}: the new key is not trusted`;
  if (tailKey.fromHead > h.seq) return `${at} lies before the key it hands over from was introduced: not trusted`;
  return null;
}

/** `pem`s by fingerprint of the trusted keys (what `headSignatureValid` and the scanner's key map take). */
export function pemsOf(t: TrustedAuditKeys): Record<string, string> {
  return Object.fromEntries(Object.entries(t.keys).map(([fp, k]) => [fp, k.pem]));
}

/** Windows by fingerprint (what the scanner checks a checkpoint's head against). */
export function windowsOf(t: TrustedAuditKeys): Record<string, { from: number; to: number | null }> {
  return Object.fromEntries(Object.entries(t.keys).map(([fp, k]) => [fp, { from: k.fromHead, to: k.toHead }]));
}

/** Why a key on record is not trusted (what the chain scanner names), for every one of `onRecord` the chain does not reach. */
export function untrustedOf(t: TrustedAuditKeys, onRecord: readonly string[], pinned: string | null, before: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const fp of onRecord) {
    if (t.keys[fp]) continue;
    out[fp] = before.includes(fp)
      ? `a key before the pinned one (trust begins at ${pinned}): pin the original audit key to verify this part: not trusted`
      : 'a key on record that no handover signed by its predecessor introduces: not trusted';
  }
  return out;
}

/** Whether `fp` may sign a head at `headSeq` (a key outside its window signs nothing there). */
export function withinWindow(t: TrustedAuditKeys, fp: string, headSeq: number): boolean {
  const k = t.keys[fp];
  return !!k && headSeq >= k.fromHead && (k.toHead === null || headSeq <= k.toHead);
}

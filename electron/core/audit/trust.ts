import crypto from 'node:crypto';
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { CHECKPOINT_CHANNEL, GENESIS_HASH, checkpointPayload, historyPayload, sha256Hex } from './chain';
import { parseHighWater, type BadEvent, type HighWater } from './verify-core';

/**
 * The trusted head: a point of the chain (sequence number, hash, time) whose hash is known from
 * outside the database — the signed `audit.head` beside it, or what this process itself wrote.
 * A checkpoint is signed only over a chain that extends it (issue 9, point 2: "a checkpoint signs
 * whatever the database holds"): an attacker holding the file can rewrite and re-hash the rows,
 * but cannot make the row at the trusted sequence number keep the trusted hash.
 */
export interface ChainPoint {
  seq: number;
  hash: string;
  ts: string;
}

export const GENESIS_POINT: ChainPoint = { seq: 0, hash: GENESIS_HASH, ts: '' };

export type HeadFileState = { state: 'missing' } | { state: 'malformed' } | { state: 'ok'; head: HighWater };

export function readHeadFile(file: string): HeadFileState {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    return { state: 'malformed' };
  }
  const head = parseHighWater(text);
  return head ? { state: 'ok', head } : { state: 'malformed' };
}

/** Whether `audit.head` is signed by one of the keys (PEM by fingerprint, or the signer's own key). */
export function headSignatureValid(hw: HighWater, keys: Record<string, string | crypto.KeyObject>): boolean {
  const k = keys[hw.keyFingerprint];
  if (!k) return false;
  try {
    const key = typeof k === 'string' ? crypto.createPublicKey(k) : k;
    if (!crypto.verify(null, checkpointPayload(hw), key, Buffer.from(hw.signature, 'base64'))) return false;
    return hw.history === undefined || crypto.verify(null, historyPayload(hw, hw.history), key, Buffer.from(hw.historySignature ?? '', 'base64'));
  } catch {
    return false;
  }
}

const ROWS = 'SELECT seq, ts, hash, prev_hash AS prevHash, body FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 2000';

/**
 * Incremental check that the chain from `from` (a trusted point) up to event `toSeq` extends it:
 * the row at `from.seq` still has `from.hash`, and every later row sits at the next sequence
 * number, links to the one before and matches its own hash. Cost: the rows after `from` only.
 * Returns the point reached, or the first bad event (classified with `locateDivergence`).
 */
export function checkExtension(
  db: Database.Database,
  from: ChainPoint,
  toSeq: number,
  publicKeys: Record<string, string>,
  history: ReadonlyArray<readonly [number, string]> = [],
): { ok: true; head: ChainPoint } | { ok: false; bad: BadEvent } {
  if (from.seq > 0) {
    const at = db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck().get(from.seq) as string | undefined;
    if (at !== from.hash) return { ok: false, bad: locateDivergence(db, from, publicKeys, history) };
  }
  const stmt = db.prepare(ROWS);
  let prev = from.hash;
  let next = from.seq + 1;
  let last: ChainPoint = from;
  for (;;) {
    const rows = stmt.all(next - 1, toSeq) as Array<{ seq: number; ts: string; hash: string; prevHash: string; body: string }>;
    if (rows.length === 0) break;
    for (const r of rows) {
      if (r.seq !== next) return { ok: false, bad: { seq: next, kind: 'deleted', reason: `event ${next} is missing after the trusted head ${from.seq} (next present is ${r.seq}): deleted` } };
      if (r.prevHash !== prev) {
        return {
          ok: false,
          bad: { seq: Math.max(1, r.seq - 1), kind: 'edited', reason: `event ${r.seq} does not link to event ${r.seq - 1} after the trusted head ${from.seq}: edited` },
        };
      }
      if (sha256Hex(r.prevHash + r.body) !== r.hash) return { ok: false, bad: { seq: r.seq, kind: 'edited', reason: `event ${r.seq} does not match its hash: edited` } };
      prev = r.hash;
      last = { seq: r.seq, hash: r.hash, ts: r.ts };
      next = r.seq + 1;
    }
  }
  if (last.seq < toSeq) return { ok: false, bad: { seq: last.seq + 1, kind: 'deleted', reason: `event ${last.seq + 1} is missing: deleted` } };
  return { ok: true, head: last };
}

/**
 * The row at the trusted point's sequence number is gone or has another hash: name the first
 * bad event as precisely as the evidence outside the attacker's reach allows — the trusted point
 * and the earlier checkpoint heads audit.head lists (`history`, signed), and the checkpoints in
 * the database whose signature verifies over a head still in the chain.
 * - The first listed head whose row is gone or different: the harm lies after the listed head
 *   before it (`lo`), up to it.
 * - Events in that stretch written after the trusted point's time: the tail was cut and new
 *   events reused the numbers (also after normal use continued): truncated at the first one.
 * - Fewer rows than that head, nothing reused: truncated after the last row.
 * - Otherwise the chain was rewritten and re-hashed from after the last genuine head known.
 */
export function locateDivergence(
  db: Database.Database,
  point: ChainPoint,
  publicKeys: Record<string, string>,
  history: ReadonlyArray<readonly [number, string]> = [],
): BadEvent {
  const hashAt = db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck();
  const maxSeq = (db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number | null) ?? 0;
  const heads = [...history.filter(([s]) => s < point.seq), [point.seq, point.hash] as const].sort((a, b) => a[0] - b[0]);
  let lo = 0;
  let first: readonly [number, string] = [point.seq, point.hash];
  for (const h of heads) {
    if ((hashAt.get(h[0]) as string | undefined) !== h[1]) {
      first = h;
      break;
    }
    lo = h[0];
  }
  const reused = point.ts
    ? (db.prepare('SELECT min(seq) FROM audit_events WHERE seq > ? AND seq <= ? AND ts > ?').pluck().get(lo, first[0], point.ts) as number | null)
    : null;
  if (reused !== null) {
    return {
      seq: reused,
      kind: 'truncated',
      reason:
        `checkpoint ${point.seq} (${point.ts}) is on record outside the database, but events from ${reused} on were written after that checkpoint: ` +
        `events ${reused}–${point.seq} or more were cut off and the numbers reused: truncated`,
    };
  }
  if (maxSeq < first[0]) {
    return { seq: maxSeq + 1, kind: 'truncated', reason: `event ${first[0]} is on record outside the database, but the trail ends at event ${maxSeq}: truncated` };
  }
  const since = Math.max(lo, lastGenuineHead(db, first[0], publicKeys)) + 1;
  return {
    seq: since,
    kind: 'edited',
    reason:
      `event ${first[0]} is on record outside the database with hash ${first[1].slice(0, 16)}…, but the trail has another there: ` +
      `events from ${since} up to ${first[0]} were rewritten and re-chained: edited`,
  };
}

/** The head sequence number of the last checkpoint before `beforeSeq` that is signed and still matches the chain (0: none). */
function lastGenuineHead(db: Database.Database, beforeSeq: number, publicKeys: Record<string, string>): number {
  const rows = db
    .prepare('SELECT seq, body FROM audit_events WHERE channel = ? AND seq <= ? ORDER BY seq DESC LIMIT 200')
    .all(CHECKPOINT_CHANNEL, beforeSeq) as Array<{ seq: number; body: string }>;
  const hashAt = db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck();
  for (const r of rows) {
    try {
      const p = (JSON.parse(r.body) as { params?: Record<string, unknown> }).params ?? {};
      const hw = { seq: p.headSeq as number, hash: p.headHash as string, ts: p.headTs as string, signature: p.signature as string, keyFingerprint: p.keyFingerprint as string, v: 1 as const };
      if (!Number.isSafeInteger(hw.seq) || hw.seq >= r.seq) continue;
      if (!headSignatureValid(hw, publicKeys)) continue;
      if ((hw.seq === 0 ? GENESIS_HASH : hashAt.get(hw.seq)) !== hw.hash) continue;
      return hw.seq;
    } catch {
      /* not a checkpoint we can use */
    }
  }
  return 0;
}

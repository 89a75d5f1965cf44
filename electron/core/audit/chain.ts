import crypto from 'node:crypto';
import { canonical } from './canonical';

/** The prev_hash of event 1. */
export const GENESIS_HASH = '0'.repeat(64);
/** Signed checkpoints are events on this channel, written by this actor. */
export const CHECKPOINT_CHANNEL = 'audit:checkpoint';
export const SYSTEM_ACTOR = 'airlock';

// crypto.hash (one shot, Node ≥ 20.12 and Electron's Node) is twice as fast as createHash for
// the ~400-byte events of the trail; the result is the same SHA-256.
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

/** hash = SHA-256(prev_hash_hex_ascii || canonical_body_utf8), as 64 lower-case hex digits. */
export function chainHash(prevHash: string, canonicalBody: string): string {
  if (oneShot) return oneShot('sha256', prevHash + canonicalBody, 'hex');
  return crypto.createHash('sha256').update(prevHash, 'utf8').update(canonicalBody, 'utf8').digest('hex');
}

/** SHA-256 of one string that already is `prev_hash || body`. */
export function sha256Hex(data: string): string {
  if (oneShot) return oneShot('sha256', data, 'hex');
  return crypto.createHash('sha256').update(data, 'utf8').digest('hex');
}

/**
 * The bytes audit.head's history signature covers: the earlier checkpoint heads it lists
 * (`[seq, hash]`, oldest first), bound to the head they precede.
 */
export function historyPayload(head: { seq: number; hash: string }, history: ReadonlyArray<readonly [number, string]>): Buffer {
  return Buffer.from(canonical({ head: [head.seq, head.hash], history }), 'utf8');
}

/** The bytes a checkpoint signs: RFC 8785 JSON of the chain head `{hash, seq, ts}`. */
export function checkpointPayload(head: { seq: number; hash: string; ts: string }): Buffer {
  return Buffer.from(canonical({ seq: head.seq, hash: head.hash, ts: head.ts }), 'utf8');
}

import fs from 'node:fs';
import type { VerifyReport } from '../../../shared/contract/audit';
import type { Db } from '../db/db';
import { readAlarms } from './alarm';
import { CHECKPOINT_CHANNEL, GENESIS_HASH } from './chain';
import { auditPublicKeys, trustedAuditKeys } from './keys';
import { pemsOf, untrustedOf, windowsOf, withinWindow } from './key-chain';
import { headSignatureValid, locateDivergence } from './trust';
import { ChainScanner, checkHighWater, parseHighWater, type BadEvent, type ScanSummary } from './verify-core';
import { sharedPool, type WorkerPool } from '../workers/pool';

export interface VerifyOptions {
  /** The core's connection: the head, anchors, the high-water check, the in-process fallback. */
  db: Db;
  /** The database file the workers open read-only; null (an in-memory database) verifies in-process. */
  dbFile: string | null;
  fromSeq?: number;
  toSeq?: number;
  /** `audit.head` next to the database; null when there is none (tests on :memory:). */
  headFile: string | null;
  onProgress?: (checked: number, total: number) => void;
  /** Below this many events the chain is verified in-process, cooperatively (default 20,000). */
  workerThreshold?: number;
  /** At most this many ranges, each a job in the worker pool (default: the pool's size, the CPUs available, at most 4). */
  maxWorkers?: number;
  progressMs?: number;
  /** The worker pool to verify in (default: the process's; the benchmark gives one running the shipped dist/node/worker.mjs). */
  pool?: WorkerPool;
  /** The audit key fingerprint the caller trusts (`audit verify --trust FP`); default: the oldest version on record. */
  trust?: string | null;
}

/** Events per worker before another worker is worth starting. */
const PER_WORKER = 250_000;

/**
 * Verifies the chain (or a range of it) and every checkpoint signature, off the main event loop:
 * the range is split over worker threads that each open the file read-only; their results are
 * stitched (each range must link to the one before). Small chains, in-memory databases, or a
 * worker that cannot start are verified in-process in chunks that yield to the event loop.
 */
export async function verifyAudit(o: VerifyOptions): Promise<VerifyReport & { engine: 'worker' | 'main' }> {
  const db = o.db;
  // Trusted: the anchor and the keys its handovers reach, each within its window; other versions on record verify nothing.
  const trusted = trustedAuditKeys(db, { pinned: o.trust ?? null });
  const publicKeys = pemsOf(trusted);
  const windows = windowsOf(trusted);
  const untrusted = untrustedOf(trusted, Object.keys(auditPublicKeys(db)), o.trust ?? null, trusted.before);
  const hashAt = (seq: number) => (seq === 0 ? GENESIS_HASH : ((db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck().get(seq) as string | undefined) ?? null));
  const maxSeq = () => (db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number | null) ?? 0;

  const max = maxSeq();
  const from = Math.max(1, o.fromSeq ?? 1);
  const to = Math.min(o.toSeq ?? max, max);
  const toEnd = o.toSeq === undefined || o.toSeq >= max;
  const anchor = hashAt(from - 1);
  const total = Math.max(0, to - from + 1);

  // Progress, summed over the workers and throttled.
  const progressMs = o.progressMs ?? 100;
  const perRange = new Map<number, number>();
  let lastEmit = 0;
  const progress = (key: number, checked: number) => {
    perRange.set(key, checked);
    const now = Date.now();
    if (o.onProgress && now - lastEmit >= progressMs) {
      lastEmit = now;
      let sum = 0;
      for (const v of perRange.values()) sum += v;
      o.onProgress(Math.min(sum, total), total);
    }
  };

  let engine: 'worker' | 'main' = 'main';
  const pool = o.pool ?? sharedPool();
  let workersUsable = o.dbFile !== null;
  const inProcess = async (f: number, t: number, prev: string | null, key: number): Promise<ScanSummary> => {
    const scanner = new ChainScanner(db, { from: f, to: t }, prev, publicKeys, 2000, false, windows, untrusted);
    while (!scanner.step()) {
      progress(key, scanner.checked);
      await new Promise<void>((r) => setImmediate(r));
    }
    return scanner.summary;
  };
  const scan = async (ranges: Array<{ from: number; to: number; prev: string | null }>): Promise<ScanSummary[]> => {
    if (workersUsable) {
      const stop = new AbortController();
      try {
        const out = await Promise.all(
          ranges.map((r, i) =>
            pool.run('audit.verifyRange', { dbFile: o.dbFile!, from: r.from, to: r.to, prev: r.prev, publicKeys, windows, untrusted, progressMs }, { signal: stop.signal, onProgress: (c) => progress(i, c) }),
          ),
        );
        engine = 'worker';
        return out;
      } catch {
        stop.abort(); // the other ranges are dropped from the queue or their workers stopped
        workersUsable = false; // fall back for good: the rest of this verification runs here
      }
    }
    const out: ScanSummary[] = [];
    for (const [i, r] of ranges.entries()) out.push(await inProcess(r.from, r.to, r.prev, i));
    return out;
  };

  if (total < (o.workerThreshold ?? 20_000)) workersUsable = false;
  const k = Math.max(1, Math.min(Math.ceil(total / PER_WORKER), o.maxWorkers ?? pool.size));
  const ranges: Array<{ from: number; to: number; prev: string | null }> = [];
  const size = Math.ceil(total / k) || 1;
  for (let i = 0; i < k; i++) {
    const f = from + i * size;
    const t = Math.min(to, f + size - 1);
    if (f <= t || i === 0) ranges.push({ from: f, to: t, prev: i === 0 ? anchor : null });
  }
  const summaries = await scan(ranges);

  // Stitch: each range must start right after the previous one and link to its last hash.
  let bad: BadEvent | null = null;
  let checkpoints = 0;
  let lastSeq = from - 1;
  let lastHash: string | null = anchor;
  let lastCheckpoint: { seq: number; headSeq: number } | null = null;
  const boundary = async (at: number): Promise<BadEvent | null> => {
    // A scan from the boundary with the right anchor fails at once and classifies the failure.
    const [s] = await scan([{ from: at, to: Math.max(at, maxSeq()), prev: lastHash }]);
    return s!.bad;
  };
  for (const s of summaries) {
    const contiguous = s.from === lastSeq + 1;
    if ((!contiguous && (s.firstSeq !== null || s.bad)) || (s.firstSeq !== null && lastHash !== null && s.firstPrev !== lastHash)) {
      bad = await boundary(lastSeq + 1);
      break;
    }
    if (s.bad) {
      bad = s.bad;
      if (bad.sinceCheckpoint && bad.seq === s.from && lastCheckpoint && s.from > 1) {
        const since = lastCheckpoint.headSeq + 1;
        bad = { ...bad, seq: since, reason: bad.reason.replace(`events after ${s.from - 1} `, `events after ${since - 1} `) };
      }
      checkpoints += s.checkpoints;
      break;
    }
    checkpoints += s.checkpoints;
    if (s.lastSeq !== null) {
      lastSeq = s.lastSeq;
      lastHash = s.lastHash;
    }
    if (s.lastCheckpoint) lastCheckpoint = s.lastCheckpoint;
  }
  if (!bad && lastSeq < to) bad = await boundary(lastSeq + 1);
  // A refused handover (or a pinned key not on the chain) is named itself, not only the checkpoints its new key signed after it.
  const refused = trusted.refused[0];
  if (refused && (refused.seq === 0 || (refused.seq >= from && refused.seq <= to)) && (!bad || bad.seq > refused.seq)) {
    bad = { seq: Math.max(1, refused.seq), kind: 'bad-signature', reason: `${refused.reason}: bad signature` };
  }

  // Facts from outside the rows: the signed high-water file written after each checkpoint.
  const warnings: string[] = [];
  if (!bad && toEnd && o.headFile) {
    let text: string | null = null;
    try {
      text = fs.readFileSync(o.headFile, 'utf8');
    } catch {
      text = null;
    }
    if (text !== null) {
      const hw = parseHighWater(text);
      bad = checkHighWater(db, hw ?? 'malformed', publicKeys, maxSeq());
      if (!bad && hw && !withinWindow(trusted, hw.keyFingerprint, hw.seq)) {
        bad = { seq: Math.min(hw.seq, maxSeq() + 1), kind: 'bad-signature', reason: `the high-water file audit.head (event ${hw.seq}) is signed by ${hw.keyFingerprint}, not by the audit key trusted at that point: bad signature` };
      }
      if (!bad && hw && !headSignatureValid(hw, publicKeys)) {
        bad = { seq: Math.min(hw.seq, maxSeq() + 1), kind: 'bad-signature', reason: `the history in audit.head (event ${hw.seq}) is not signed by the audit key on record: bad signature` };
      }
      // Cut or rewritten up to the trusted head: the first bad event, also after use continued on top.
      if (bad && hw && bad.kind !== 'bad-signature') bad = locateDivergence(db, hw, publicKeys, hw.history);
    } else {
      const cp = db.prepare('SELECT max(seq) FROM audit_events WHERE channel = ?').pluck().get(CHECKPOINT_CHANNEL) as number | null;
      if (cp !== null) {
        // Deleting audit.head is how a cut across the last checkpoint would hide: never a mere warning.
        bad = {
          seq: cp + 1,
          kind: 'head-missing',
          reason: `the high-water file audit.head is missing although checkpoints exist (the last is event ${cp}): events after it may have been cut off: head-missing`,
        };
      }
    }
  }
  // Alarms on record: an open one is a failure even where the rows no longer show it (found by the running console); acknowledged ones are evidence.
  const alarms = readAlarms(db).sort((a, b) => b.id - a.id);
  const open = alarms.find((a) => !a.acknowledged);
  if (!bad && toEnd && open) bad = { seq: open.firstBadSeq, kind: open.kind, reason: `audit alarm #${open.id} is open: ${open.reason}` };
  for (const a of alarms) {
    warnings.push(
      `Audit alarm #${a.id} (${a.raisedAt}): ${a.kind} at event ${a.firstBadSeq}: ${a.reason}` +
        (a.acknowledged ? ` — acknowledged by ${a.acknowledged.by} at ${a.acknowledged.at} (${a.acknowledged.reason}); re-anchored at event ${a.acknowledged.anchorSeq}` : ' — open'),
    );
  }
  if (trusted.chain.length > 1) {
    const at = trusted.chain.slice(1).map((fp) => trusted.keys[fp]!.fromHead - 1);
    warnings.push(`The audit signing key was rotated: ${trusted.chain.join(' → ')} (handovers at event${at.length > 1 ? 's' : ''} ${at.join(', ')}); each key verified only within its part of the chain.`);
  }
  if (!bad && toEnd && Object.keys(publicKeys).length === 0 && to > 0) {
    warnings.push('No audit signing key is on record yet (it is created at the next administrator sign-in): the chain is not signed.');
  }

  const headSeq = bad ? Math.max(0, bad.seq - 1) : Math.max(lastSeq, 0);
  const report = {
    ok: bad === null,
    checked: bad ? Math.max(0, bad.seq - from) : Math.max(0, lastSeq - from + 1),
    headSeq,
    headHash: bad ? (hashAt(headSeq) ?? '') : (lastHash ?? hashAt(headSeq) ?? ''),
    firstBad: bad ? { seq: bad.seq, kind: bad.kind, reason: bad.reason } : null,
    checkpoints,
    fromSeq: from,
    toSeq: to,
    // The anchor: what was noted at setup stays the fingerprint to compare, across rotations.
    keyFingerprint: trusted.chain[0] ?? null,
    keyFingerprints: trusted.chain,
    lastCheckpointSeq: lastCheckpoint?.seq ?? null,
    warnings,
    alarms,
    engine,
  };
  o.onProgress?.(report.checked, total);
  return report;
}

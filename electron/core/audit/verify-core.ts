import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import { CHECKPOINT_CHANNEL, GENESIS_HASH, SYSTEM_ACTOR, checkpointPayload, sha256Hex } from './chain';

/**
 * Verification of the audit chain over a range of sequence numbers, shared by the worker
 * pool's job (electron/core/audit/jobs.ts), the in-process fallback and AuditTrail.verify().
 *
 * Each event must: sit at the next sequence number; match its hash
 * (SHA-256(prev_hash || body)); carry its own sequence number in its body; link to the
 * previous event's hash; have filter columns (actor, channel, ts) equal to its body; and, for a
 * checkpoint, carry a valid Ed25519 signature by a key on record over a head that is really in
 * the chain. The first event that fails is classified (edited, deleted, reordered, inserted,
 * bad-signature) with a few extra queries; truncation is decided by the caller from facts
 * outside the rows (the high-water file).
 *
 * Speed: rows are read 2,000 at a time as one string built by SQLite (group_concat), which
 * costs a fraction of fetching each row as a JS object; if that batch cannot be split exactly
 * (a separator inside a tampered value) or any check fails, the chunk is re-read row by row and
 * re-checked with JSON.parse, and only that result counts. A batch is sized to stay near
 * 100,000 characters (about 200 typical events): a string that large or larger lands in V8's
 * large-object space, fresh memory each time, which costs more than the smaller batches' extra
 * queries. Substrings are compared with `slice(...) ===` (a memory compare) rather than
 * `startsWith(x, at)`, which V8 runs one character at a time.
 */

export type VerifyKind = 'edited' | 'deleted' | 'reordered' | 'inserted' | 'truncated' | 'bad-signature' | 'head-missing';

export interface BadEvent {
  seq: number;
  kind: VerifyKind;
  reason: string;
  /** Set when `seq` is "the first event after the last verified checkpoint of this scan". */
  sinceCheckpoint?: boolean;
}

export interface ScanSummary {
  from: number;
  to: number;
  firstSeq: number | null;
  firstPrev: string | null;
  lastSeq: number | null;
  lastHash: string | null;
  checked: number;
  checkpoints: number;
  lastCheckpoint: { seq: number; headSeq: number } | null;
  bad: BadEvent | null;
}

interface Row {
  seq: number;
  actor: string;
  channel: string;
  ts: string;
  hash: string;
  prevHash: string;
  body: string;
}

type Why = 'gap' | 'hash' | 'bodyseq' | 'link' | 'columns' | 'checkpoint';
interface Suspect {
  why: Why;
  row: Row;
  bodySeq?: number;
  bad?: BadEvent;
}

const US = '\x1f';
/** Characters JSON writes as themselves (no escape): then a time compares as is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const RS = '\x1e';
const BATCH_SQL = `SELECT count(*) AS n, group_concat(seq || char(31) || actor || char(31) || channel || char(31) || ts || char(31) || hash || prev_hash || body, char(30)) AS g
  FROM audit_events WHERE seq BETWEEN ? AND ?`;
/** Characters per batch string the batch size aims at (see above). */
const BATCH_CHARS = 100_000;
const SEQ_KEY = ',"seq":';
const TS_KEY = ',"ts":"';
const ROWS_SQL = 'SELECT seq, actor, channel, ts, hash, prev_hash AS prevHash, body FROM audit_events WHERE seq BETWEEN ? AND ? ORDER BY seq';

export class ChainScanner {
  private readonly batch: Database.Statement;
  private readonly rows: Database.Statement;
  private readonly hashAt: Database.Statement;
  private readonly keys = new Map<string, crypto.KeyObject>();
  private readonly prefixes = new Map<string, Map<string, string>>();
  private next: number;
  private prev: string | null;
  private firstSeq: number | null = null;
  private firstPrev: string | null = null;
  private lastSeq: number | null = null;
  private lastHash: string | null = null;
  private lastCheckpoint: { seq: number; headSeq: number } | null = null;
  private bad: BadEvent | null = null;
  private done = false;
  /** Events in the next batch (adapted to their size, at most `chunk`). */
  private size: number;
  checked = 0;
  checkpoints = 0;

  /**
   * @param prevAnchor the hash the first event must link to (the hash of event from-1, or the
   *   genesis hash for event 1); null to take the first event's own prev_hash (a worker that
   *   starts mid-chain; the caller stitches ranges together).
   */
  constructor(
    private readonly db: Database.Database,
    private readonly range: { from: number; to: number },
    prevAnchor: string | null,
    publicKeys: Record<string, string>,
    /** At most this many events per step. */
    private readonly chunk = 2000,
    /** Row by row with exact checks only (tests compare it with the fast path). */
    private readonly exact = false,
    /**
     * Where each key may sign (audit/key-chain.ts: the handover chain): a checkpoint whose head
     * lies outside its key's window is refused. Absent: every key in `publicKeys` signs anywhere.
     */
    private readonly windows: Record<string, { from: number; to: number | null }> | null = null,
    /** Keys on record that the handover chain does not reach, by fingerprint: why (named in the refusal). */
    private readonly untrusted: Readonly<Record<string, string>> = {},
  ) {
    this.batch = db.prepare(BATCH_SQL);
    this.rows = db.prepare(ROWS_SQL);
    this.hashAt = db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck();
    for (const [fp, pem] of Object.entries(publicKeys)) {
      try {
        this.keys.set(fp, crypto.createPublicKey(pem));
      } catch {
        // A malformed key on record verifies nothing; checkpoints naming it fail as bad-signature.
      }
    }
    this.size = Math.min(chunk, 200);
    this.next = range.from;
    this.prev = prevAnchor;
    if (range.from > range.to) this.done = true;
  }

  get summary(): ScanSummary {
    return {
      from: this.range.from,
      to: this.range.to,
      firstSeq: this.firstSeq,
      firstPrev: this.firstPrev,
      lastSeq: this.lastSeq,
      lastHash: this.lastHash,
      checked: this.checked,
      checkpoints: this.checkpoints,
      lastCheckpoint: this.lastCheckpoint,
      bad: this.bad,
    };
  }

  /** Runs to the end of the range (or the first bad event). */
  runAll(): ScanSummary {
    while (!this.step()) {
      /* next chunk */
    }
    return this.summary;
  }

  /** Verifies the next chunk. Returns true when the range is finished or a bad event was found. */
  step(): boolean {
    if (this.done) return true;
    const a = this.next;
    const b = Math.min(this.range.to, a + this.size - 1);
    const saved = this.save();
    const fast = this.exact ? null : this.readBatch(a, b);
    if (fast !== null && this.fastChunk(fast)) {
      if (fast.length === 0) return this.afterEmpty(b);
    } else {
      // Not conclusive: the row-by-row reading with exact checks decides.
      this.restore(saved);
      const rows = (this.rows.all(a, b) as Array<Record<string, unknown>>).map(toRow);
      const suspect = this.checkRows(rows);
      if (suspect !== null) return this.fail(suspect);
      if (rows.length === 0) return this.afterEmpty(b);
    }
    if (this.next > this.range.to) this.done = true;
    return this.done;
  }

  /** No row from `next` to `b`: either the range is over, or events are missing before the next row. */
  private afterEmpty(b: number): boolean {
    const following = this.db.prepare('SELECT min(seq) FROM audit_events WHERE seq > ? AND seq <= ?').pluck().get(b, this.range.to) as number | null;
    if (following === null) {
      this.done = true;
      return true;
    }
    const row = toRow(this.rows.get(following, following) as Record<string, unknown>);
    return this.fail({ why: 'gap', row });
  }

  private fail(s: Suspect): boolean {
    this.bad = this.classify(s);
    this.done = true;
    return true;
  }

  private save() {
    return [this.next, this.prev, this.firstSeq, this.firstPrev, this.lastSeq, this.lastHash, this.lastCheckpoint, this.checked, this.checkpoints] as const;
  }

  private restore(s: ReturnType<ChainScanner['save']>) {
    [this.next, this.prev, this.firstSeq, this.firstPrev, this.lastSeq, this.lastHash, this.lastCheckpoint, this.checked, this.checkpoints] = s;
  }

  /** One chunk as one string per row, from SQLite's concatenation; null if it cannot be split exactly. */
  private readBatch(a: number, b: number): string[] | null {
    let r: { n: number; g: string | null };
    try {
      r = this.batch.get(a, b) as { n: number; g: string | null };
    } catch {
      return null; // e.g. a huge tampered value (SQLITE_TOOBIG): read row by row instead
    }
    if (r.n === 0) return [];
    if (typeof r.g !== 'string') return null;
    // The next batch: as many events as fit in BATCH_CHARS at this batch's average size.
    this.size = Math.min(this.chunk, Math.max(16, Math.floor((BATCH_CHARS * r.n) / (r.g.length + 1))));
    const parts = r.g.split(RS);
    return parts.length === r.n ? parts : null;
  }

  /**
   * The common case, without building row objects: each part is
   * `seq US actor US channel US ts US hash prev_hash body`. Every check here is at least as
   * strict as its exact counterpart in checkRows, so "true" (all good) is final; "false" only
   * means "look again row by row" (the state is restored by the caller).
   */
  private fastChunk(parts: string[]): boolean {
    for (const p of parts) {
      const i1 = p.indexOf(US);
      const i2 = p.indexOf(US, i1 + 1);
      const i3 = p.indexOf(US, i2 + 1);
      const i4 = p.indexOf(US, i3 + 1);
      if (i1 < 1 || i1 > 15 || i2 < 0 || i3 < 0 || i4 < 0) return false;
      const bodyAt = i4 + 129;
      if (p.length < bodyAt + 2) return false;
      let seq = 0;
      for (let j = 0; j < i1; j++) {
        const c = p.charCodeAt(j);
        if (c < 48 || c > 57) return false;
        seq = seq * 10 + (c - 48);
      }
      if (seq !== this.next) return false;
      const hash = sha256Hex(p.slice(i4 + 65));
      if (p.slice(i4 + 1, i4 + 65) !== hash) return false;
      if (this.prev !== null && p.slice(i4 + 65, bodyAt) !== this.prev) return false;
      // The body's own top-level "seq" (the keys after it hold strings only): the one and only
      // `,"seq":` of the body (an event naming another in its parameters goes the exact way).
      const k = p.indexOf(SEQ_KEY, bodyAt);
      if (k < 0 || p.indexOf(SEQ_KEY, k + 7) >= 0) return false;
      let bodySeq = 0;
      let j = k + 7;
      for (; j < p.length && j < k + 23; j++) {
        const c = p.charCodeAt(j);
        if (c < 48 || c > 57) break;
        bodySeq = bodySeq * 10 + (c - 48);
      }
      if (j === k + 7 || p.charCodeAt(j) !== 44 || bodySeq !== seq) return false;
      // Filter columns equal to the body: it starts with actor and channel, ends with ts.
      const channel = p.slice(i2 + 1, i3);
      const prefix = this.prefix(p.slice(i1 + 1, i2), channel);
      if (p.slice(bodyAt, bodyAt + prefix.length) !== prefix) return false;
      const ts = p.slice(i3 + 1, i4);
      const tsAt = p.length - 2 - ts.length;
      if (!PLAIN.test(ts) || p.slice(tsAt - 7, tsAt) !== TS_KEY || p.slice(tsAt, tsAt + ts.length) !== ts || p.charCodeAt(p.length - 2) !== 34 || p.charCodeAt(p.length - 1) !== 125) {
        return false;
      }
      if (channel === CHECKPOINT_CHANNEL) {
        // Columns equal the body, so this is exactly the set of checkpoints.
        const row = toRow({ seq, actor: p.slice(i1 + 1, i2), channel, ts, hash, prevHash: p.slice(i4 + 65, bodyAt), body: p.slice(bodyAt) });
        if (this.checkCheckpoint(row)) return false;
      }
      if (this.firstSeq === null) {
        this.firstSeq = seq;
        this.firstPrev = p.slice(i4 + 65, bodyAt);
      }
      this.prev = hash;
      this.lastSeq = seq;
      this.lastHash = hash;
      this.next = seq + 1;
      this.checked++;
    }
    return true;
  }

  /** `{"actor":<actor>,"channel":<channel>,` as canonical JSON writes it, cached (few distinct pairs). */
  private prefix(actor: string, channel: string): string {
    let byChannel = this.prefixes.get(actor);
    if (!byChannel) {
      if (this.prefixes.size > 10_000) this.prefixes.clear();
      this.prefixes.set(actor, (byChannel = new Map()));
    }
    let v = byChannel.get(channel);
    if (v === undefined) byChannel.set(channel, (v = `{"actor":${JSON.stringify(actor)},"channel":${JSON.stringify(channel)},`));
    return v;
  }

  /** Null when every row is good, else the first suspect (exact checks, JSON.parse). */
  private checkRows(rows: Row[]): Suspect | null {
    for (const row of rows) {
      if (row.seq !== this.next) return { why: 'gap', row };
      if (sha256Hex(row.prevHash + row.body) !== row.hash) return { why: 'hash', row };
      const bodySeq = bodySeqExact(row.body);
      if (bodySeq !== row.seq) return { why: 'bodyseq', row, bodySeq };
      if (this.prev !== null && row.prevHash !== this.prev) return { why: 'link', row };
      if (!columnsExact(row)) return { why: 'columns', row };
      if (row.channel === CHECKPOINT_CHANNEL) {
        const bad = this.checkCheckpoint(row);
        if (bad) return { why: 'checkpoint', row, bad };
      }
      if (this.firstSeq === null) {
        this.firstSeq = row.seq;
        this.firstPrev = row.prevHash;
      }
      this.prev = row.hash;
      this.lastSeq = row.seq;
      this.lastHash = row.hash;
      this.next = row.seq + 1;
      this.checked++;
    }
    return null;
  }

  private checkCheckpoint(row: Row): BadEvent | null {
    const malformed = (why: string): BadEvent => ({ seq: row.seq, kind: 'bad-signature', reason: `checkpoint ${row.seq} ${why}: bad signature` });
    let ev: { actor?: unknown; channel?: unknown; params?: Record<string, unknown> };
    try {
      ev = JSON.parse(row.body) as typeof ev;
    } catch {
      return malformed('is not valid JSON');
    }
    if (ev.channel !== CHECKPOINT_CHANNEL) return null; // an event that only mentions the channel
    const p = ev.params;
    if (
      ev.actor !== SYSTEM_ACTOR ||
      !p ||
      typeof p !== 'object' ||
      !Number.isSafeInteger(p.headSeq) ||
      (p.headSeq as number) < 0 ||
      (p.headSeq as number) >= row.seq ||
      typeof p.headHash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(p.headHash) ||
      typeof p.headTs !== 'string' ||
      typeof p.signature !== 'string' ||
      typeof p.keyFingerprint !== 'string'
    ) {
      return malformed('is malformed');
    }
    const headSeq = p.headSeq as number;
    const headHash = p.headHash;
    const key = this.keys.get(p.keyFingerprint);
    if (!key && Object.hasOwn(this.untrusted, p.keyFingerprint)) return malformed(`is signed by ${p.keyFingerprint.slice(0, 60)}, ${this.untrusted[p.keyFingerprint]}`);
    if (!key) return malformed(`is signed by a key that is not on record (${p.keyFingerprint.slice(0, 60)})`);
    const w = this.windows?.[p.keyFingerprint];
    if (this.windows && (!w || headSeq < w.from || (w.to !== null && headSeq > w.to))) {
      return malformed(
        w && w.to !== null && headSeq > w.to
          ? `is signed by ${p.keyFingerprint.slice(0, 60)}, which handed over to its successor at event ${w.to}: a retired key signs nothing after its handover`
          : `is signed by ${p.keyFingerprint.slice(0, 60)} over event ${headSeq}, before a handover introduced that key`,
      );
    }
    let valid = false;
    try {
      valid = crypto.verify(null, checkpointPayload({ seq: headSeq, hash: headHash, ts: p.headTs }), key, Buffer.from(p.signature, 'base64'));
    } catch {
      valid = false;
    }
    if (!valid) return { seq: row.seq, kind: 'bad-signature', reason: `checkpoint ${row.seq}: the signature over head ${headSeq} does not verify with ${p.keyFingerprint}: bad signature` };
    const actual =
      headSeq === row.seq - 1 ? row.prevHash : headSeq === 0 ? GENESIS_HASH : ((this.hashAt.get(headSeq) as string | undefined) ?? null);
    if (actual !== headHash) {
      const since = this.lastCheckpoint ? this.lastCheckpoint.headSeq + 1 : this.range.from;
      return {
        seq: since,
        kind: 'edited',
        sinceCheckpoint: true,
        reason:
          `checkpoint ${row.seq} signed event ${headSeq} with hash ${headHash.slice(0, 16)}…, but the trail has ` +
          `${actual ? actual.slice(0, 16) + '…' : 'no such event'}: events after ${since - 1} up to ${headSeq} were rewritten and re-chained: edited`,
      };
    }
    this.checkpoints++;
    this.lastCheckpoint = { seq: row.seq, headSeq };
    return null;
  }

  /** Names the first bad event and what happened to it. */
  private classify(s: Suspect): BadEvent {
    const p = this.next;
    const row = s.row;
    switch (s.why) {
      case 'gap': {
        const moved = this.findEvent(p);
        return moved !== null
          ? { seq: p, kind: 'reordered', reason: `event ${p} is not at its place: it sits at position ${moved}: reordered` }
          : { seq: p, kind: 'deleted', reason: `event ${p} is missing (next present is ${row.seq}): deleted` };
      }
      case 'hash':
        return { seq: p, kind: 'edited', reason: `event ${p} does not match its hash: edited` };
      case 'bodyseq': {
        const b = s.bodySeq ?? NaN;
        if (!Number.isSafeInteger(b)) return { seq: p, kind: 'edited', reason: `event ${p} is not a valid event body: edited` };
        if (b > p) {
          const moved = this.findEvent(p);
          return moved !== null
            ? { seq: p, kind: 'reordered', reason: `position ${p} holds event ${b}, and event ${p} sits at position ${moved}: reordered` }
            : { seq: p, kind: 'deleted', reason: `position ${p} holds event ${b}: events ${p}–${b - 1} were deleted and later events renumbered: deleted` };
        }
        const before = b <= 1 ? GENESIS_HASH : ((this.hashAt.get(b - 1) as string | undefined) ?? null);
        return row.prevHash === before
          ? { seq: b, kind: 'inserted', reason: `event ${b} now sits at position ${p}: ${p - b} event(s) were inserted from position ${b}: inserted` }
          : { seq: p, kind: 'reordered', reason: `position ${p} holds event ${b}: reordered` };
      }
      case 'link':
        return p > 1
          ? {
              seq: p - 1,
              kind: 'edited',
              reason: `event ${p} does not link to event ${p - 1}: event ${p - 1} was rewritten and re-hashed (or the link stored in event ${p} was altered): edited`,
            }
          : { seq: p, kind: 'edited', reason: `event ${p} does not link to the genesis hash: edited` };
      case 'columns':
        return { seq: p, kind: 'edited', reason: `the actor/channel/time columns of event ${p} differ from its hashed body (hidden from filters): edited` };
      case 'checkpoint':
        return s.bad!;
    }
  }

  /** The position of the row whose body says it is event `seq`, looking after `seq`. */
  private findEvent(seq: number): number | null {
    const r = this.db
      .prepare(`SELECT seq FROM audit_events WHERE seq > ? AND instr(body, ?) > 0 AND json_valid(body) AND (body ->> '$.seq') = ? ORDER BY seq LIMIT 1`)
      .pluck()
      .get(seq, `,"seq":${seq},`, seq) as number | undefined;
    return r ?? null;
  }
}

function bodySeqExact(body: string): number {
  try {
    const v = JSON.parse(body) as { seq?: unknown } | null;
    return v && typeof v === 'object' && typeof v.seq === 'number' ? v.seq : NaN;
  } catch {
    return NaN;
  }
}

function columnsExact(r: Row): boolean {
  try {
    const v = JSON.parse(r.body) as { actor?: unknown; channel?: unknown; ts?: unknown };
    return v.actor === r.actor && v.channel === r.channel && v.ts === r.ts;
  } catch {
    return false;
  }
}

function toRow(r: Record<string, unknown>): Row {
  const s = (v: unknown) => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
  return { seq: Number(r.seq), actor: s(r.actor), channel: s(r.channel), ts: s(r.ts), hash: s(r.hash), prevHash: s(r.prevHash), body: s(r.body) };
}

/** The high-water file `audit.head`: the last checkpoint the console wrote, signed. */
export interface HighWater {
  v: 1;
  seq: number;
  hash: string;
  ts: string;
  signature: string;
  keyFingerprint: string;
  /**
   * Earlier checkpoint heads, `[seq, hash]`, oldest first (at most HISTORY_MAX), signed by
   * historySignature: the genuine hashes verify needs to name where a re-hashed rewrite begins.
   */
  history?: Array<[number, string]>;
  historySignature?: string;
}

export const HISTORY_MAX = 64;

export function parseHighWater(text: string): HighWater | null {
  try {
    const v = JSON.parse(text) as Partial<HighWater>;
    if (
      v.v === 1 &&
      Number.isSafeInteger(v.seq) &&
      (v.seq as number) > 0 &&
      typeof v.hash === 'string' &&
      typeof v.ts === 'string' &&
      typeof v.signature === 'string' &&
      typeof v.keyFingerprint === 'string' &&
      (v.history === undefined ||
        (Array.isArray(v.history) &&
          typeof v.historySignature === 'string' &&
          v.history.length <= HISTORY_MAX &&
          v.history.every((e) => Array.isArray(e) && e.length === 2 && Number.isSafeInteger(e[0]) && e[0] > 0 && e[0] < (v.seq as number) && typeof e[1] === 'string')))
    ) {
      return v as HighWater;
    }
  } catch {
    /* below */
  }
  return null;
}

/**
 * What the high-water file says about the end of the chain: a later event than the last row
 * means the tail was cut (truncated); a different hash at its sequence number means the chain
 * was rewritten up to it.
 */
export function checkHighWater(
  db: Database.Database,
  hw: HighWater | 'malformed',
  publicKeys: Record<string, string>,
  lastSeq: number,
): BadEvent | null {
  if (hw === 'malformed') return { seq: lastSeq + 1, kind: 'bad-signature', reason: 'the high-water file audit.head is not readable: bad signature' };
  const pem = publicKeys[hw.keyFingerprint];
  let valid = false;
  try {
    valid = !!pem && crypto.verify(null, checkpointPayload(hw), crypto.createPublicKey(pem), Buffer.from(hw.signature, 'base64'));
  } catch {
    valid = false;
  }
  if (!valid) return { seq: Math.min(hw.seq, lastSeq + 1), kind: 'bad-signature', reason: `the high-water file audit.head (event ${hw.seq}) is not signed by the audit key on record: bad signature` };
  if (hw.seq > lastSeq) {
    // Events appended after the cut reuse the lost sequence numbers; they were written after the
    // checkpoint, which genuine events before it were not: the first such event marks the cut.
    const reused = db.prepare('SELECT min(seq) FROM audit_events WHERE seq <= ? AND ts > ?').pluck().get(hw.seq, hw.ts) as number | null;
    const cut = reused ?? lastSeq + 1;
    return {
      seq: cut,
      kind: 'truncated',
      reason:
        `checkpoint ${hw.seq} (${hw.ts}) was written, but the trail ends at event ${lastSeq}` +
        (reused !== null ? ` and events from ${cut} on were written after that checkpoint` : '') +
        `: events ${cut}–${hw.seq} or more were cut off: truncated`,
    };
  }
  const actual = db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck().get(hw.seq) as string | undefined;
  if (actual !== hw.hash) {
    return { seq: hw.seq, kind: 'edited', reason: `checkpoint ${hw.seq} was written with hash ${hw.hash.slice(0, 16)}…, but the trail now has ${actual?.slice(0, 16) ?? 'nothing'}… there: rewritten: edited` };
  }
  return null;
}

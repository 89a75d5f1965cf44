import fs from 'node:fs';
import path from 'node:path';
import type { AuditEvent, VerifyReport } from '../../../shared/contract/audit';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { canonicalEvent } from './canonical';
import { CHECKPOINT_CHANNEL, GENESIS_HASH, SYSTEM_ACTOR, chainHash, checkpointPayload, historyPayload } from './chain';
import { auditPublicKeys } from './keys';
import { listEvents, type ListOptions } from './query';
import { checkExtension, GENESIS_POINT, type ChainPoint } from './trust';
import { HISTORY_MAX, parseHighWater, type BadEvent, type HighWater } from './verify-core';
import { verifyAudit } from './verify';

export { canonical } from './canonical';
export { CHECKPOINT_CHANNEL, GENESIS_HASH, SYSTEM_ACTOR, chainHash } from './chain';
export type { ListOptions } from './query';

/** What a caller supplies; sequence, time and hashes are the trail's own. */
export type AuditInput = Omit<AuditEvent, 'seq' | 'ts' | 'prevHash' | 'hash'>;

/** Signs checkpoints; returns null while the audit keys are sealed (nobody signed in yet). */
export interface CheckpointSigner {
  sign(payload: Buffer): { signature: string; keyFingerprint: string } | null;
}

export interface AuditTrailOptions {
  /** A checkpoint after this many events (default 1000)… */
  checkpointEvery?: number;
  /** …or when the oldest event not yet covered is this old (default 300 s). */
  checkpointSeconds?: number;
  signer?: CheckpointSigner | null;
  /** The high-water file (`audit.head` beside the database), rewritten after each checkpoint. */
  headFile?: string | null;
  /** Called after each group commit of appendAsync with the rows it wrote (tests, the benchmark). */
  onBatch?: (rows: number) => void;
}

/** An appendAsync caller waiting for the transaction that holds its event. */
interface Queued {
  input: AuditInput;
  resolve: (ev: AuditEvent) => void;
  reject: (e: Error) => void;
}

/** What one group-commit transaction wrote: every row in order, and each caller's event or error. */
interface BatchResult {
  written: AuditEvent[];
  results: Array<AuditEvent | Error>;
  checkpoint: AuditEvent | null;
  head: ChainPoint;
  extendsTrusted: boolean;
}

/** What this connection knows of the chain's end; re-read whenever another connection committed. */
interface HeadState {
  version: number;
  seq: number;
  hash: string;
  ts: string;
  checkpointSeq: number;
  /** Time (ms) of the oldest event after the last checkpoint; null when there is none. */
  pendingSince: number | null;
  /** The chain up to this head is known to extend the trusted head (so it may be signed). */
  extendsTrusted: boolean;
}

/** A chain that does not extend the trusted head, found before a checkpoint would have signed it. */
export interface Divergence {
  bad: BadEvent;
  trusted: ChainPoint;
  observed: { seq: number; hash: string };
}

/**
 * The append-only, hash-chained audit trail. Appends are serialised by SQLite's write lock
 * (IMMEDIATE transaction) so two shells writing at once cannot fork the chain; the chain head is
 * cached under that lock and re-read only when `PRAGMA data_version` says another connection
 * committed. A failed append throws AUDIT_UNAVAILABLE: callers treat that as "the action must
 * not happen". After each append a signed checkpoint is written when one is due.
 *
 * Group commit: `appendAsync` queues the event and resolves only once the transaction holding it
 * has committed. Everything queued until the next `setImmediate` is written in one IMMEDIATE
 * transaction, in queue order, with checkpoints inserted where they fall due; if that transaction
 * fails, it is rolled back whole and every caller in it gets AUDIT_UNAVAILABLE. An input that
 * has no canonical form fails its own caller only. The synchronous `append` first commits what
 * is queued, so an event appended after another is never before it in the chain.
 */
export class AuditTrail {
  private readonly insert;
  private readonly headStmt;
  private readonly lastCheckpointStmt;
  private readonly firstAfterStmt;
  private readonly dataVersion;
  private readonly appendTx;
  private readonly checkpointTx;
  private readonly batchTx;
  private readonly checkpointSavepoint;
  private queue: Queued[] = [];
  private flushScheduled = false;
  private state: HeadState | null = null;
  private lastWriteMs = 0;
  /** The last event time and its ISO form (events of one batch often share a millisecond). */
  private isoMs = NaN;
  private iso = '';
  private readonly listeners = new Set<(e: AuditEvent) => void>();
  private readonly every: number;
  private readonly seconds: number;
  /** The last head known from outside the database (audit.head, or this process's own checkpoint). */
  private trusted: ChainPoint = GENESIS_POINT;
  /** The furthest committed point known to extend `trusted` (checked incrementally from here). */
  private verified: ChainPoint | null = null;
  /** While set (an alarm), no checkpoint is signed and the trusted head never moves. */
  private blocked = false;
  /** Earlier trusted heads `[seq, hash]` (oldest first), written into audit.head, signed: where a rewrite begins. */
  private history: Array<[number, string]> = [];
  /** Found inside a transaction; reported to the listeners once it is over. */
  private divergence: Divergence | null = null;
  private readonly divergeListeners = new Set<(d: Divergence) => void>();
  /** Last checkpoint or high-water failure (a checkpoint is retried at the next opportunity). */
  checkpointError: string | null = null;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
    private readonly opts: AuditTrailOptions = {},
  ) {
    this.every = Math.max(1, opts.checkpointEvery ?? 1000);
    this.seconds = Math.max(0, opts.checkpointSeconds ?? 300);
    this.insert = db.prepare('INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.headStmt = db.prepare('SELECT seq, hash, ts FROM audit_events ORDER BY seq DESC LIMIT 1');
    this.lastCheckpointStmt = db.prepare('SELECT seq FROM audit_events WHERE channel = ? ORDER BY seq DESC LIMIT 1').pluck();
    this.firstAfterStmt = db.prepare('SELECT ts FROM audit_events WHERE seq > ? ORDER BY seq LIMIT 1').pluck();
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.appendTx = db.transaction((input: AuditInput) => this.write(this.refresh(), input));
    this.checkpointTx = db.transaction((): AuditEvent | null => {
      const s = this.refresh();
      if (!this.due(s)) return null; // another process wrote it meanwhile
      if (!this.mayBeSigned(s)) return null;
      const signed = this.opts.signer?.sign(checkpointPayload({ seq: s.seq, hash: s.hash, ts: s.ts }));
      if (!signed) return null;
      return this.write(s, checkpointInput(s, signed));
    });
    this.batchTx = db.transaction((batch: Queued[]) => this.writeBatch(batch));
    // Inside a group commit: a checkpoint that cannot be written is rolled back alone.
    this.checkpointSavepoint = db.transaction((s: HeadState, signed: { signature: string; keyFingerprint: string }) => this.write(s, checkpointInput(s, signed)));
  }

  /**
   * Appends one event, committed before it returns. What appendAsync queued is committed first
   * (unless this runs inside a caller's transaction, which must not take the queue with it).
   */
  append(input: AuditInput): AuditEvent {
    const nested = this.db.inTransaction;
    if (!nested && this.queue.length > 0) this.flush();
    let ev: AuditEvent;
    try {
      ev = this.appendTx.immediate(input);
    } catch (e) {
      this.state = null;
      throw unavailable(e);
    }
    if (nested) {
      // Inside a caller's transaction: it may still roll back, so forget what we cached.
      this.state = null;
      return ev;
    }
    this.committed(ev);
    // The cached head was read under the write lock just now: no need to ask SQLite again.
    if (this.opts.signer && this.state && this.due(this.state, this.lastWriteMs)) this.checkpointIfDue();
    return ev;
  }

  /**
   * Appends one event by group commit: resolves once the transaction holding it has committed
   * (with the other events queued meanwhile), rejects with AUDIT_UNAVAILABLE if it did not.
   */
  appendAsync(input: AuditInput): Promise<AuditEvent> {
    return new Promise<AuditEvent>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Commits what appendAsync queued, now, in one transaction (also run at close). */
  flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    let out: BatchResult;
    try {
      // Inside a caller's transaction the batch could still be rolled back after its callers were told it committed.
      if (this.db.inTransaction) throw new Error('a transaction is open on the audit connection');
      out = this.batchTx.immediate(batch);
    } catch (e) {
      this.state = null;
      const err = unavailable(e);
      for (const q of batch) q.reject(err);
      return;
    }
    for (const ev of out.written) this.committed(ev);
    if (out.extendsTrusted && this.state && this.state.seq === out.head.seq && this.state.hash === out.head.hash) {
      this.state.extendsTrusted = true;
      this.verified = out.head;
    }
    this.reportDivergence();
    if (out.checkpoint) {
      this.checkpointError = null;
      this.writeHighWater(out.checkpoint);
    }
    out.results.forEach((r, i) => (r instanceof Error ? batch[i]!.reject(unavailable(r)) : batch[i]!.resolve(r)));
    try {
      this.opts.onBatch?.(out.written.length);
    } catch {
      // An observer never affects the trail.
    }
  }

  /** Called after each committed event of this connection (the syslog forwarder listens). */
  onCommit(listener: (e: AuditEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last event (0 and the genesis hash for an empty trail). */
  head(): { seq: number; hash: string } {
    const s = this.refresh();
    return { seq: s.seq, hash: s.hash };
  }

  /** The last event with its time. */
  headPoint(): ChainPoint {
    const s = this.refresh();
    return { seq: s.seq, hash: s.hash, ts: s.ts };
  }

  /**
   * Sets the trusted head (read from audit.head at startup, or re-anchored by an officer's
   * acknowledgement) and, when known, the furthest point already checked to extend it.
   */
  setTrusted(trusted: ChainPoint, verified: ChainPoint | null = null, history: Array<[number, string]> = []): void {
    this.trusted = trusted;
    this.verified = verified;
    this.history = history.filter(([s]) => s < trusted.seq).slice(-HISTORY_MAX);
    this.state = null;
  }

  get trustedHead(): ChainPoint {
    return this.trusted;
  }

  /** An alarm is raised (or lifted): no checkpoint is signed while it is. */
  block(on: boolean): void {
    this.blocked = on;
  }

  get isBlocked(): boolean {
    return this.blocked;
  }

  /** Called (outside any transaction) when a checkpoint was refused because the chain does not extend the trusted head. */
  onDiverge(listener: (d: Divergence) => void): () => void {
    this.divergeListeners.add(listener);
    return () => this.divergeListeners.delete(listener);
  }

  /**
   * Writes a checkpoint over the current head now, due or not, and rewrites audit.head even over
   * a later one (an officer's acknowledgement re-anchors the trusted head there). Throws if the
   * key is sealed or the checkpoint cannot be written.
   */
  checkpointNow(): AuditEvent {
    const ev = this.db
      .transaction((): AuditEvent => {
        const s = this.refresh();
        if (!this.mayBeSigned(s)) throw new AirlockError('AUDIT_ALARM', 'The chain does not extend the trusted head: it is not signed.');
        const signed = this.opts.signer?.sign(checkpointPayload({ seq: s.seq, hash: s.hash, ts: s.ts }));
        if (!signed) throw new AirlockError('AUDIT_UNAVAILABLE', 'The audit signing key is sealed: sign in again, then retry.');
        return this.write(s, checkpointInput(s, signed));
      })
      .immediate();
    this.committed(ev);
    this.writeHighWater(ev, { force: true });
    if (this.checkpointError?.startsWith('high-water')) throw new AirlockError('AUDIT_UNAVAILABLE', `audit.head could not be written (${this.checkpointError}).`);
    return ev;
  }

  /**
   * A key handover (docs/security.md, "Rotating the audit signing key"), in ONE IMMEDIATE
   * transaction: a checkpoint over the current head signed by `signOld` (when events are not yet
   * covered), then the handover event `prepare` returns (it mints the new key in the same
   * transaction, given the sequence number its event will have), then a checkpoint over exactly
   * that event, signed by `signOld` again. A failure anywhere rolls all of it back, the new key's
   * row included: the old key stays current. Once committed, `afterCommit` runs (the holder swaps
   * to the new key in memory) and audit.head is rewritten over the last checkpoint by the signer
   * now holding the key. Refused over a chain that does not extend the trusted head.
   */
  handOver(signOld: (payload: Buffer) => { signature: string; keyFingerprint: string }, prepare: (seq: number) => AuditInput, afterCommit: () => void): AuditEvent[] {
    if (this.db.inTransaction) throw new AirlockError('INTERNAL', 'A key handover cannot run inside another transaction.');
    this.flush();
    let events: AuditEvent[];
    try {
      events = this.db
        .transaction((): AuditEvent[] => {
          const s: HeadState = { ...this.refresh() };
          if (!this.mayBeSigned(s)) throw new AirlockError('AUDIT_ALARM', 'The audit chain does not extend its trusted head: no key is handed over until the alarm is acknowledged.');
          const out: AuditEvent[] = [];
          const checkpoint = () => {
            const cp = this.write(s, checkpointInput(s, signOld(checkpointPayload({ seq: s.seq, hash: s.hash, ts: s.ts }))));
            advance(s, cp);
            out.push(cp);
          };
          if (s.seq > s.checkpointSeq) checkpoint();
          const ev = this.write(s, prepare(s.seq + 1));
          advance(s, ev);
          out.push(ev);
          checkpoint();
          return out;
        })
        .immediate();
    } catch (e) {
      this.state = null;
      this.reportDivergence();
      if (e instanceof AirlockError) throw e;
      throw unavailable(e);
    }
    for (const ev of events) this.committed(ev);
    afterCommit();
    this.checkpointError = null;
    this.writeHighWater(events[events.length - 1]!);
    return events;
  }

  /**
   * Writes a signed checkpoint if one is due and the signing key is unsealed. Never throws: a
   * checkpoint that cannot be written now is written at the next opportunity.
   */
  checkpointIfDue(): AuditEvent | null {
    if (!this.opts.signer || this.db.inTransaction) return null;
    try {
      if (!this.due(this.refresh())) return null;
      const ev = this.checkpointTx.immediate();
      this.reportDivergence();
      if (!ev) return null;
      this.committed(ev);
      this.writeHighWater(ev);
      this.checkpointError = null;
      return ev;
    } catch (e) {
      this.state = null;
      this.checkpointError = (e as Error).message;
      this.reportDivergence();
      return null;
    }
  }

  /** Events newest first, filtered (in this thread; the audit:list handler may use a worker). */
  list(opts: ListOptions): { events: AuditEvent[]; total: number } {
    return listEvents(this.db, opts);
  }

  /**
   * Verifies the chain in this thread, yielding between chunks (the core's audit:verify handler
   * uses verifyAudit with worker threads for large trails).
   */
  async verify(range: { fromSeq?: number; toSeq?: number } = {}): Promise<VerifyReport> {
    const { engine: _engine, ...report } = await verifyAudit({
      db: this.db,
      dbFile: null,
      headFile: this.opts.headFile ?? null,
      ...range,
    });
    return report;
  }

  // ---- internals ----

  /**
   * Whether head `s` may be signed: no alarm, and the chain extends the trusted head — known
   * already (this process wrote every event since the last point checked), or checked now from
   * that point (the rows other connections wrote since: incremental, never the whole chain).
   */
  private mayBeSigned(s: HeadState): boolean {
    if (this.blocked) return false;
    if (s.extendsTrusted) return true;
    const from = this.verified ?? this.trusted;
    const known: Array<[number, string]> = from === this.trusted ? this.history : [...this.history, [this.trusted.seq, this.trusted.hash]];
    const r = checkExtension(this.db, from, s.seq, auditPublicKeys(this.db), known.filter(([q]) => q > 0 && q < from.seq));
    if (r.ok && r.head.seq === s.seq && r.head.hash === s.hash) {
      s.extendsTrusted = true;
      return true;
    }
    // Never signed, and the trusted head stays where it is; the alarm is raised after the transaction.
    this.blocked = true;
    const bad = r.ok ? { seq: r.head.seq + 1, kind: 'edited' as const, reason: `the chain changed while it was checked: edited` } : r.bad;
    this.divergence = { bad, trusted: this.trusted, observed: { seq: s.seq, hash: s.hash } };
    return false;
  }

  private reportDivergence(): void {
    const d = this.divergence;
    if (!d) return;
    this.divergence = null;
    for (const l of this.divergeListeners) {
      try {
        l(d);
      } catch {
        // A listener never affects the trail.
      }
    }
  }

  private write(s: HeadState, input: AuditInput): AuditEvent {
    const { ev, text } = this.compose(s, input);
    this.insert.run(ev.seq, ev.ts, ev.actor, ev.channel, text, ev.prevHash, ev.hash);
    return ev;
  }

  /** The next event after `s` and its canonical body; throws (touching nothing) for an input with no canonical form. */
  private compose(s: HeadState, input: AuditInput): { ev: AuditEvent; text: string } {
    const seq = s.seq + 1;
    const ms = this.now().getTime();
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      this.iso = new Date(ms).toISOString();
    }
    const text = canonicalEvent(input, seq, this.iso); // canonical({ ...input, seq, ts })
    this.lastWriteMs = ms;
    const hash = chainHash(s.hash, text);
    // Object.assign, not `{ ...input, seq, … }`: V8 adds properties after a spread slowly (~2 µs).
    const ev: AuditEvent = Object.assign({}, input, { seq, ts: this.iso, prevHash: s.hash, hash });
    return { ev, text };
  }

  /**
   * One group commit, inside its IMMEDIATE transaction: the events in queue order on a copy of
   * the head (the cached head moves only once this has committed), each followed by a
   * checkpoint when one falls due. A failed insert throws (the whole batch rolls back); an input
   * with no canonical form is that caller's error alone.
   */
  private writeBatch(batch: Queued[]): BatchResult {
    const s: HeadState = { ...this.refresh() };
    const written: AuditEvent[] = [];
    const results: Array<AuditEvent | Error> = [];
    let checkpoint: AuditEvent | null = null;
    for (const q of batch) {
      let next: { ev: AuditEvent; text: string };
      try {
        next = this.compose(s, q.input);
      } catch (e) {
        results.push(e as Error);
        continue;
      }
      const ev = next.ev;
      this.insert.run(ev.seq, ev.ts, ev.actor, ev.channel, next.text, ev.prevHash, ev.hash);
      advance(s, ev);
      written.push(ev);
      results.push(ev);
      if (this.opts.signer && this.due(s, this.lastWriteMs)) {
        const cp = this.checkpointInBatch(s);
        if (cp) {
          advance(s, cp);
          written.push(cp);
          checkpoint = cp;
        }
      }
    }
    return { written, results, checkpoint, head: { seq: s.seq, hash: s.hash, ts: s.ts }, extendsTrusted: s.extendsTrusted };
  }

  /** A due checkpoint inside a group commit; null (and retried later) if it cannot be signed or written. */
  private checkpointInBatch(s: HeadState): AuditEvent | null {
    try {
      if (!this.mayBeSigned(s)) return null;
      const signed = this.opts.signer?.sign(checkpointPayload({ seq: s.seq, hash: s.hash, ts: s.ts }));
      if (!signed) return null;
      return this.checkpointSavepoint(s, signed);
    } catch (e) {
      // Some errors (disk full, I/O) make SQLite roll back the whole transaction: then the batch fails.
      if (!this.db.inTransaction) throw e;
      this.checkpointError = (e as Error).message;
      return null;
    }
  }

  /** The cached head, re-read if another connection committed since (or the cache was dropped). */
  private refresh(): HeadState {
    const version = this.dataVersion.get() as number;
    if (this.state && this.state.version === version) return this.state;
    const head = this.headStmt.get() as { seq: number; hash: string; ts: string } | undefined;
    const checkpointSeq = (this.lastCheckpointStmt.get(CHECKPOINT_CHANNEL) as number | undefined) ?? 0;
    const seq = head?.seq ?? 0;
    const first = seq > checkpointSeq ? (this.firstAfterStmt.get(checkpointSeq) as string | undefined) : undefined;
    this.state = {
      version,
      seq,
      hash: head?.hash ?? GENESIS_HASH,
      ts: head?.ts ?? '',
      checkpointSeq,
      pendingSince: first ? Date.parse(first) : null,
      extendsTrusted: false,
    };
    const h = this.state;
    const known = (p: ChainPoint | null) => p !== null && p.seq === h.seq && p.hash === h.hash;
    h.extendsTrusted = known(this.verified) || known(this.trusted);
    return this.state;
  }

  private committed(ev: AuditEvent): void {
    if (this.state) {
      advance(this.state, ev);
      if (this.state.extendsTrusted) this.verified = ev; // an event is a chain point (seq, hash, ts): no copy on the hot path
    }
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch {
        // A listener (the forwarder) never affects the trail.
      }
    }
  }

  private due(s: HeadState, nowMs?: number): boolean {
    const pending = s.seq - s.checkpointSeq;
    if (pending <= 0) return false;
    if (pending >= this.every) return true;
    return s.pendingSince !== null && (nowMs ?? this.now().getTime()) - s.pendingSince >= this.seconds * 1000;
  }

  /**
   * `audit.head`: the last checkpoint (seq, hash, time), signed, written atomically beside the
   * database. A truncation that also removed the checkpoints is caught by it.
   */
  private writeHighWater(cp: AuditEvent, o: { force?: boolean } = {}): void {
    // Only a checkpoint over a chain that extends the trusted head gets here: it becomes the trusted head.
    if (!o.force && this.trusted.seq > cp.seq) return;
    // The head it replaces joins the history (an officer's re-anchoring starts a new one).
    if (o.force) this.history = [];
    else if (this.trusted.seq > 0 && this.trusted.seq < cp.seq) this.history = [...this.history, [this.trusted.seq, this.trusted.hash] as [number, string]].slice(-HISTORY_MAX);
    this.trusted = { seq: cp.seq, hash: cp.hash, ts: cp.ts };
    const file = this.opts.headFile;
    if (!file) return;
    try {
      const existing = readHighWater(file);
      if (!o.force && existing && existing.seq >= cp.seq) return; // another process wrote a later one
      const signed = this.opts.signer?.sign(checkpointPayload({ seq: cp.seq, hash: cp.hash, ts: cp.ts }));
      if (!signed) return;
      const history = this.history.filter(([s]) => s < cp.seq);
      const hs = this.opts.signer?.sign(historyPayload(cp, history));
      if (!hs) return;
      const hw: HighWater = {
        v: 1,
        seq: cp.seq,
        hash: cp.hash,
        ts: cp.ts,
        signature: signed.signature,
        keyFingerprint: signed.keyFingerprint,
        history,
        historySignature: hs.signature,
      };
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
      const fd = fs.openSync(tmp, 'w', 0o600);
      try {
        fs.writeSync(fd, JSON.stringify(hw) + '\n');
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } catch (e) {
      this.checkpointError = `high-water file: ${(e as Error).message}`;
    }
  }
}

/** The head after `ev`. */
function advance(s: HeadState, ev: AuditEvent): void {
  s.seq = ev.seq;
  s.hash = ev.hash;
  s.ts = ev.ts;
  if (ev.channel === CHECKPOINT_CHANNEL && ev.actor === SYSTEM_ACTOR) {
    s.checkpointSeq = ev.seq;
    s.pendingSince = null;
  } else if (s.pendingSince === null) {
    s.pendingSince = Date.parse(ev.ts);
  }
}

/** The checkpoint event over head `s`. */
function checkpointInput(s: HeadState, signed: { signature: string; keyFingerprint: string }): AuditInput {
  return {
    actor: SYSTEM_ACTOR,
    roles: [],
    session: null,
    shell: 'core',
    channel: CHECKPOINT_CHANNEL,
    phase: 'outcome',
    target: null,
    params: { headSeq: s.seq, headHash: s.hash, headTs: s.ts, signature: signed.signature, keyFingerprint: signed.keyFingerprint },
    outcome: 'ok',
    errorCode: null,
  };
}

function unavailable(e: unknown): AirlockError {
  return new AirlockError('AUDIT_UNAVAILABLE', `The audit trail could not be written (${(e as Error).message}); the action was not performed.`);
}

export function readHighWater(file: string): HighWater | null {
  try {
    return parseHighWater(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

import fs from 'node:fs';
import path from 'node:path';
import type { AuditEvent, VerifyReport } from '../../../shared/contract/audit';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { canonical } from './canonical';
import { CHECKPOINT_CHANNEL, GENESIS_HASH, SYSTEM_ACTOR, chainHash, checkpointPayload } from './chain';
import { listEvents, type ListOptions } from './query';
import { parseHighWater, type HighWater } from './verify-core';
import { verifyAudit } from './verify';

export { canonical } from './canonical';
export { CHECKPOINT_CHANNEL, GENESIS_HASH, SYSTEM_ACTOR, chainHash } from './chain';
export type { ListOptions } from './query';

/** What a caller supplies; sequence, time and hashes are the trail's own. */
export type AuditInput = Omit<AuditEvent, 'seq' | 'ts' | 'prevHash' | 'hash'>;
type Body = Omit<AuditEvent, 'prevHash' | 'hash'>;

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
}

/**
 * The append-only, hash-chained audit trail. Appends are serialised by SQLite's write lock
 * (IMMEDIATE transaction) so two shells writing at once cannot fork the chain; the chain head is
 * cached under that lock and re-read only when `PRAGMA data_version` says another connection
 * committed. A failed append throws AUDIT_UNAVAILABLE: callers treat that as "the action must
 * not happen". After each append a signed checkpoint is written when one is due.
 */
export class AuditTrail {
  private readonly insert;
  private readonly headStmt;
  private readonly lastCheckpointStmt;
  private readonly firstAfterStmt;
  private readonly dataVersion;
  private readonly appendTx;
  private readonly checkpointTx;
  private state: HeadState | null = null;
  private lastWriteMs = 0;
  private readonly listeners = new Set<(e: AuditEvent) => void>();
  private readonly every: number;
  private readonly seconds: number;
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
      const signed = this.opts.signer?.sign(checkpointPayload({ seq: s.seq, hash: s.hash, ts: s.ts }));
      if (!signed) return null;
      return this.write(s, {
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
      });
    });
  }

  /** Appends one event, committed before it returns. */
  append(input: AuditInput): AuditEvent {
    const nested = this.db.inTransaction;
    let ev: AuditEvent;
    try {
      ev = this.appendTx.immediate(input);
    } catch (e) {
      this.state = null;
      throw new AirlockError(
        'AUDIT_UNAVAILABLE',
        `The audit trail could not be written (${(e as Error).message}); the action was not performed.`,
      );
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

  /**
   * Writes a signed checkpoint if one is due and the signing key is unsealed. Never throws: a
   * checkpoint that cannot be written now is written at the next opportunity.
   */
  checkpointIfDue(): AuditEvent | null {
    if (!this.opts.signer || this.db.inTransaction) return null;
    try {
      if (!this.due(this.refresh())) return null;
      const ev = this.checkpointTx.immediate();
      if (!ev) return null;
      this.committed(ev);
      this.writeHighWater(ev);
      this.checkpointError = null;
      return ev;
    } catch (e) {
      this.state = null;
      this.checkpointError = (e as Error).message;
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

  private write(s: HeadState, input: AuditInput): AuditEvent {
    const seq = s.seq + 1;
    const now = this.now();
    this.lastWriteMs = now.getTime();
    const body: Body = { ...input, seq, ts: now.toISOString() };
    const text = canonical(body);
    const hash = chainHash(s.hash, text);
    this.insert.run(seq, body.ts, body.actor, body.channel, text, s.hash, hash);
    return { ...body, prevHash: s.hash, hash };
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
    };
    return this.state;
  }

  private committed(ev: AuditEvent): void {
    const s = this.state;
    if (s) {
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
  private writeHighWater(cp: AuditEvent): void {
    const file = this.opts.headFile;
    if (!file) return;
    try {
      const existing = readHighWater(file);
      if (existing && existing.seq >= cp.seq) return; // another process wrote a later one
      const signed = this.opts.signer?.sign(checkpointPayload({ seq: cp.seq, hash: cp.hash, ts: cp.ts }));
      if (!signed) return;
      const hw: HighWater = { v: 1, seq: cp.seq, hash: cp.hash, ts: cp.ts, signature: signed.signature, keyFingerprint: signed.keyFingerprint };
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

export function readHighWater(file: string): HighWater | null {
  try {
    return parseHighWater(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

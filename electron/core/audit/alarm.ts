import { AVAILABLE_DURING_ALARM, type AlarmStatus, type AuditAlarm, type VerifyKind } from '../../../shared/contract/audit';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { meta } from '../db/meta';
import type { AuditTrail, Divergence } from './audit';
import { CHECKPOINT_CHANNEL, SYSTEM_ACTOR } from './chain';
import { pemsOf } from './key-chain';
import { trustedAuditKeys, type AuditKeys } from './keys';
import { checkExtension, GENESIS_POINT, headSignatureValid, readHeadFile, type ChainPoint } from './trust';

/** Alarms on record (a JSON array in meta): few, kept for good as evidence. */
export const ALARMS_META = 'audit.alarms';
/** The channel of the audit event that records an alarm (written by the console itself). */
export const ALARM_CHANNEL = 'audit:alarm';

const available = new Set(AVAILABLE_DURING_ALARM);

/** The alarms on record; a record that is not a list reads as none (the ones this process knows are written back). */
export function readAlarms(db: Db): AuditAlarm[] {
  try {
    return meta(db).getIfValid(ALARMS_META) ?? [];
  } catch {
    return [];
  }
}

interface Found {
  kind: VerifyKind;
  firstBadSeq: number;
  reason: string;
  trusted: ChainPoint | null;
  observed: { seq: number; hash: string };
}

/**
 * The audit alarm (issue 9, point 2). Raised when the chain in the database does not extend the
 * trusted head: at startup (audit.head against the rows), at the first unseal (the key on record
 * against the vault's key), and before any checkpoint (AuditTrail refuses to sign and reports it).
 * Raising it: no checkpoint is signed and the trusted head never moves (AuditTrail.block); an
 * audit:alarm event is appended (it links to the rows as they are, and nothing signs them); the
 * record is kept in meta; syslog gets an alert at once (not in sequence order, which a cut tail
 * would have made the forwarder skip); and every channel but sign-in and reading is refused with
 * AUDIT_ALARM until an officer acknowledges. Acknowledging records who and why and re-anchors the
 * trusted head on the current chain with a signed checkpoint; the record stays as evidence.
 */
export class AuditAlarms {
  private active: AuditAlarm | null = null;
  /** Every alarm this process knows (kept in memory too: a record deleted from meta comes back). */
  private known = new Map<number, AuditAlarm>();
  private readonly dataVersion;
  private seenVersion = -1;

  constructor(
    private readonly deps: {
      db: Db;
      trail: AuditTrail;
      keys: AuditKeys;
      headFile: string;
      clock: () => Date;
      alert: (alarm: AuditAlarm) => void;
    },
  ) {
    this.dataVersion = deps.db.prepare('PRAGMA data_version').pluck();
    deps.trail.onDiverge((d) => this.raiseDivergence(d));
  }

  /** At startup: audit.head against the database, and the rows after it (incremental). */
  inspect(): void {
    const { db, trail } = this.deps;
    this.sync(true);
    const head = trail.headPoint();
    const pks = pemsOf(trustedAuditKeys(db));
    const f = readHeadFile(this.deps.headFile);
    const observed = { seq: head.seq, hash: head.hash };
    if (f.state === 'missing') {
      const cp = db.prepare('SELECT max(seq) FROM audit_events WHERE channel = ?').pluck().get(CHECKPOINT_CHANNEL) as number | null;
      if (cp !== null) {
        this.raise({
          kind: 'head-missing',
          firstBadSeq: cp + 1,
          reason: `audit.head is missing beside a database with checkpoints (the last is event ${cp}): nothing outside the database anchors the chain, and events after it may have been cut off or rewritten`,
          trusted: null,
          observed,
        });
      } else {
        trail.setTrusted(GENESIS_POINT);
      }
      return;
    }
    if (f.state === 'malformed') {
      this.raise({ kind: 'bad-signature', firstBadSeq: head.seq + 1, reason: 'audit.head is not readable: bad signature', trusted: null, observed });
      return;
    }
    const hw = f.head;
    const point = { seq: hw.seq, hash: hw.hash, ts: hw.ts };
    if (!headSignatureValid(hw, pks)) {
      this.raise({
        kind: 'bad-signature',
        firstBadSeq: Math.min(hw.seq, head.seq + 1),
        reason: `audit.head (event ${hw.seq}) is not signed by the audit key on record: bad signature`,
        trusted: null,
        observed,
      });
      return;
    }
    const r = checkExtension(db, point, head.seq, pks, hw.history);
    if (r.ok) trail.setTrusted(point, r.head, hw.history);
    else {
      trail.setTrusted(point, null, hw.history);
      this.raise({ kind: r.bad.kind, firstBadSeq: r.bad.seq, reason: r.bad.reason, trusted: point, observed });
    }
  }

  /** The keys were unsealed: the public key on record must be the vault's own (else checkpoints and audit.head could be re-signed by a substitute). */
  unlocked(): void {
    const { keys, db, trail } = this.deps;
    const fp = keys.keyFingerprint;
    if (!keys.unlocked || !fp) return;
    // The key held must be the newest on the chain of handovers from the oldest version on record.
    const chain = trustedAuditKeys(db).chain;
    const tail = chain[chain.length - 1];
    if (tail && tail !== fp) {
      const head = trail.headPoint();
      this.raise({
        kind: 'bad-signature',
        firstBadSeq: 1,
        reason: `the audit key trusted on record (${tail}) is not the vault's signing key (${fp}): it was replaced, or added without a handover signed by its predecessor: bad signature`,
        trusted: null,
        observed: { seq: head.seq, hash: head.hash },
      });
    }
  }

  /** AUDIT_ALARM for every channel but sign-in and reading while an alarm is open. */
  gate(channel: string): AirlockError | null {
    this.sync();
    const a = this.active;
    if (!a || available.has(channel)) return null;
    return new AirlockError(
      'AUDIT_ALARM',
      `Audit alarm #${a.id}: ${a.kind} at event ${a.firstBadSeq} — the audit trail does not extend its trusted head, so changes are refused until it is cleared. ` +
        `Reading the trail still works; a security officer must acknowledge the alarm (in the console's audit banner, or: airlock audit acknowledge ${a.id} --reason R).`,
    );
  }

  status(): AlarmStatus {
    this.sync();
    return { active: this.active, alarms: [...this.known.values()].sort((x, y) => y.id - x.id) };
  }

  /**
   * The alarms' state for the core's DataWatch (db/watch.ts), which pushes `audit:alarmChanged` so
   * the banner is never polled: the open alarm, how many there are and how many are acknowledged.
   * status() reads meta only when SQLite's data_version moved, so a look is one pragma when nothing changed.
   */
  watched(): { state: string } {
    const s = this.status();
    return { state: `${s.active?.id ?? 0}/${s.alarms.length}/${s.alarms.filter((a) => a.acknowledged).length}` };
  }

  /**
   * An officer acknowledges alarm `id`: the record keeps the evidence and gains who, when, why;
   * the trusted head is re-anchored on the current chain (a checkpoint signed over it, audit.head
   * rewritten); writes work again.
   */
  acknowledge(by: string, id: number, reason: string, requestSeq: number | null): AlarmStatus {
    this.sync(true);
    const a = this.active;
    if (!a) throw new AirlockError('NOT_FOUND', 'No audit alarm is open.');
    if (a.id !== id) throw new AirlockError('CONFLICT', `The open audit alarm is #${a.id}, not #${id}.`);
    const { trail, keys } = this.deps;
    if (!keys.unlocked) throw new AirlockError('AUDIT_UNAVAILABLE', 'The audit signing key is sealed in this process: sign in again, then retry.');
    const before = trail.trustedHead;
    const head = trail.headPoint();
    trail.setTrusted(head, head);
    trail.block(false);
    let cp;
    try {
      cp = trail.checkpointNow();
    } catch (e) {
      trail.setTrusted(before);
      trail.block(true);
      throw e;
    }
    const done: AuditAlarm = { ...a, acknowledged: { by, at: this.deps.clock().toISOString(), reason, requestSeq, anchorSeq: cp.seq, anchorHash: cp.hash } };
    this.known.set(done.id, done);
    this.active = null;
    this.save();
    return this.status();
  }

  // ---- internals ----

  private raiseDivergence(d: Divergence): void {
    this.raise({ kind: d.bad.kind, firstBadSeq: d.bad.seq, reason: d.bad.reason, trusted: d.trusted.seq > 0 ? d.trusted : null, observed: d.observed });
  }

  private raise(f: Found): void {
    const { trail } = this.deps;
    trail.block(true);
    this.sync();
    if (this.active) return; // one open alarm at a time: it already refuses writes
    const id = Math.max(0, ...this.known.keys()) + 1;
    const alarm: AuditAlarm = {
      id,
      raisedAt: this.deps.clock().toISOString(),
      kind: f.kind,
      firstBadSeq: f.firstBadSeq,
      reason: f.reason,
      trustedSeq: f.trusted?.seq ?? null,
      trustedHash: f.trusted?.hash ?? null,
      observedSeq: f.observed.seq,
      observedHash: f.observed.hash,
      eventSeq: null,
      acknowledged: null,
    };
    this.active = alarm;
    this.known.set(id, alarm);
    try {
      // Appended to the rows as they are: nothing signs them while the alarm is open.
      const ev = trail.append({
        actor: SYSTEM_ACTOR,
        roles: [],
        session: null,
        shell: 'core',
        channel: ALARM_CHANNEL,
        phase: 'outcome',
        target: null,
        params: { alarm: id, kind: f.kind, firstBadSeq: f.firstBadSeq, reason: f.reason, trustedSeq: alarm.trustedSeq, trustedHash: alarm.trustedHash, observedSeq: f.observed.seq, observedHash: f.observed.hash },
        outcome: 'error',
        errorCode: 'AUDIT_ALARM',
      });
      alarm.eventSeq = ev.seq;
    } catch {
      // The trail cannot be written: the alarm holds in memory and goes to syslog.
    }
    this.save();
    try {
      this.deps.alert(alarm);
    } catch {
      /* the forwarder never affects the console */
    }
  }

  /** Picks up alarms raised or acknowledged by another process (read when another connection committed). */
  private sync(force = false): void {
    const v = this.dataVersion.get() as number;
    if (!force && v === this.seenVersion) return;
    this.seenVersion = v;
    let missing = false;
    const stored = readAlarms(this.deps.db);
    for (const a of stored) {
      const mine = this.known.get(a.id);
      if (!mine || (!mine.acknowledged && a.acknowledged)) this.known.set(a.id, a);
    }
    for (const id of this.known.keys()) if (!stored.some((a) => a.id === id)) missing = true;
    const open = [...this.known.values()].find((a) => !a.acknowledged) ?? null;
    if (open && (!this.active || this.active.id !== open.id)) {
      this.active = open;
      this.deps.trail.block(true);
    } else if (!open && this.active) {
      // Acknowledged by another process: adopt the head it re-anchored on, if audit.head proves it.
      if (!this.adoptHeadFile()) {
        this.known.set(this.active.id, this.active);
        missing = true;
      } else this.active = null;
    }
    if (missing) this.save(); // a record deleted from meta is written back
  }

  private adoptHeadFile(): boolean {
    const { db, trail } = this.deps;
    const f = readHeadFile(this.deps.headFile);
    const pks = pemsOf(trustedAuditKeys(db));
    if (f.state !== 'ok' || !headSignatureValid(f.head, pks)) return false;
    const point = { seq: f.head.seq, hash: f.head.hash, ts: f.head.ts };
    const r = checkExtension(db, point, trail.headPoint().seq, pks, f.head.history);
    if (!r.ok) return false;
    trail.setTrusted(point, r.head, f.head.history);
    trail.block(false);
    return true;
  }

  private save(): void {
    const db = this.deps.db;
    try {
      db.transaction(() => {
        const merged = new Map(readAlarms(db).map((a) => [a.id, a]));
        for (const a of this.known.values()) {
          const there = merged.get(a.id);
          if (!there || (a.acknowledged && !there.acknowledged)) merged.set(a.id, a);
        }
        const list = [...merged.values()].sort((x, y) => x.id - y.id);
        meta(db).set(ALARMS_META, list);
      }).immediate();
      this.seenVersion = this.dataVersion.get() as number;
    } catch {
      // Busy or full: kept in memory and written at the next sync.
    }
  }
}

import crypto from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import type { AuditAlarm, ForwardingStatus } from '../../../shared/contract/audit';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { meta } from '../db/meta';
import { CHECKPOINT_CHANNEL } from './chain';

export const FORWARD_META = 'audit.forward';
export const FORWARDED_SEQ_META = 'audit.forwarded_seq';

/** The structured-data ID: 32473 is the private enterprise number RFC 5612 reserves for documentation. */
export const SD_ID = 'airlock@32473';
/** Facility 13, "log audit" (RFC 5424 §6.2.1). */
const FACILITY = 13;

export interface ForwardConfig {
  host: string;
  port: number;
  tls: boolean;
  caPem: string | null;
}

export interface ForwarderTuning {
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Poll for events committed by other processes, and for configuration changes. */
  pollMs: number;
  /** An event written this long ago on a connection still open counts as delivered. */
  graceMs: number;
  /** Events read from the database per batch: the bounded in-memory queue. */
  batch: number;
  connectTimeoutMs: number;
  /** How long close() waits to deliver what is pending (the CLI exits right after). */
  flushMs: number;
}

const DEFAULTS: ForwarderTuning = { backoffMinMs: 250, backoffMaxMs: 30_000, pollMs: 2000, graceMs: 1000, batch: 500, connectTimeoutMs: 10_000, flushMs: 2000 };

interface Row {
  seq: number;
  body: string;
  prev_hash: string;
  hash: string;
}

const escapeSd = (v: string) => v.replace(/[\\"\]]/g, (c) => `\\${c}`);
const printable = (s: string, max: number) => (s.replace(/[^\x21-\x7e]/g, '').slice(0, max) || '-');

/**
 * One audit event as an RFC 5424 syslog message (without framing):
 * `<PRI>1 TIMESTAMP HOSTNAME airlock PROCID MSGID [airlock@32473 seq=… hash=… prevHash=… channel=… outcome=… actor=… phase=…] BOM body`
 * MSG is the event's canonical body, so a receiver can re-verify the chain from the records alone.
 */
export function syslogMessage(row: Row, host: string, pid: number): string {
  let e: Record<string, unknown> = {};
  try {
    e = JSON.parse(row.body) as Record<string, unknown>;
  } catch {
    /* forwarded as is; verification will name it */
  }
  const outcome = typeof e.outcome === 'string' ? e.outcome : '-';
  const channel = typeof e.channel === 'string' ? e.channel : '-';
  // An audit alarm is an alert (1); refusals a warning (4); errors a notice (5).
  const severity = channel === 'audit:alarm' ? 1 : outcome === 'refused' ? 4 : outcome === 'error' ? 5 : 6;
  const sd =
    `[${SD_ID} seq="${row.seq}" hash="${escapeSd(row.hash)}" prevHash="${escapeSd(row.prev_hash)}" channel="${escapeSd(channel)}"` +
    ` outcome="${escapeSd(outcome)}" actor="${escapeSd(String(e.actor ?? '-'))}" phase="${escapeSd(String(e.phase ?? '-'))}"]`;
  const ts = typeof e.ts === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$/.test(e.ts) ? e.ts : '-';
  const msgid = channel === CHECKPOINT_CHANNEL ? 'checkpoint' : channel === 'audit:alarm' ? 'alarm' : 'audit';
  return `<${FACILITY * 8 + severity}>1 ${ts} ${printable(host, 255)} airlock ${pid} ${msgid} ${sd} \uFEFF${row.body}`;
}

/**
 * An audit alarm as an RFC 5424 alert (severity 1, MSGID `alarm`), sent at once and out of
 * sequence order: after a cut tail the alarm's own event may reuse a sequence number the receiver
 * already has, which the in-order forwarding would skip. MSG is the alarm record as JSON.
 */
export function alarmMessage(alarm: AuditAlarm, host: string, pid: number): string {
  const sd =
    `[${SD_ID} alarm="${alarm.id}" kind="${escapeSd(alarm.kind)}" firstBadSeq="${alarm.firstBadSeq}" trustedSeq="${alarm.trustedSeq ?? '-'}"` +
    ` observedSeq="${alarm.observedSeq}" eventSeq="${alarm.eventSeq ?? '-'}"]`;
  return `<${FACILITY * 8 + 1}>1 ${alarm.raisedAt} ${printable(host, 255)} airlock ${pid} alarm ${sd} \uFEFF${JSON.stringify(alarm)}`;
}

/** RFC 6587 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`, the length in bytes. */
export function frame(message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${msg.length} `, 'ascii'), msg]);
}

/**
 * Forwards every committed audit event to one syslog receiver, in sequence order, from the
 * database (the local trail is the source of truth and the durable queue): asynchronous, at most
 * one batch in memory, reconnecting with exponential back-off, resuming after the last event
 * known delivered (`audit.forwarded_seq` in meta). It never blocks or fails an action.
 *
 * Delivery is at-least-once: plain syslog over TCP has no acknowledgements (RFC 6587), so an
 * event counts as delivered once it was written `graceMs` ago on a connection that is still
 * open (or closed cleanly by the receiver after our FIN); after a broken connection the rest is
 * sent again. Every record carries seq and hash, so a receiver drops duplicates by seq.
 */
export class AuditForwarder {
  private readonly t: ForwarderTuning;
  private cfg: ForwardConfig | null = null;
  /** The configuration text last applied; undefined forces the next reload to apply. */
  private cfgText: string | null | undefined = undefined;
  private socket: net.Socket | null = null;
  private connected = false;
  private sentSeq = 0;
  private ackedSeq = 0;
  private persistedSeq = 0;
  private inflight: Array<{ seq: number; at: number }> = [];
  private pumping = false;
  private again = false;
  private backoff = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastError: string | null = null;
  private readonly host = os.hostname();
  /** Alerts (audit alarms) sent before the next events, out of sequence order. */
  private alerts: string[] = [];

  constructor(
    private readonly deps: { db: Db; headSeq: () => number; tuning?: Partial<ForwarderTuning> },
  ) {
    this.t = { ...DEFAULTS, ...deps.tuning };
  }

  /** Reads the configuration and begins forwarding if it is on. */
  start(): void {
    this.stopped = false;
    this.reload();
    this.pollTimer = setInterval(() => this.poll(), this.t.pollMs);
    this.pollTimer.unref();
  }

  /** An audit alarm: sent as an alert at once, ahead of the events (when forwarding is on). */
  alert(alarm: AuditAlarm): void {
    if (!this.cfg && !meta(this.deps.db).getIfValid(FORWARD_META)) return;
    if (this.alerts.length < 100) this.alerts.push(alarmMessage(alarm, this.host, process.pid));
    if (!this.stopped) setImmediate(() => void this.pump());
  }

  /** A new event was committed here: send it soon. */
  kick(): void {
    if (this.cfg && !this.stopped) setImmediate(() => void this.pump());
  }

  /**
   * Turns forwarding on (to a receiver, from a sequence number) or off. Stored in meta, so the
   * other shells' forwarders pick it up on their next poll.
   */
  configure(cfg: ForwardConfig | null, fromSeq: number): void {
    if (cfg?.caPem) {
      try {
        new crypto.X509Certificate(cfg.caPem);
      } catch {
        throw new AirlockError('INVALID_INPUT', 'caPem is not a PEM certificate.');
      }
      if (!cfg.tls) throw new AirlockError('INVALID_INPUT', 'caPem is only used with tls: true.');
    }
    const m = meta(this.deps.db);
    this.deps.db.transaction(() => {
      if (cfg) {
        m.set(FORWARD_META, cfg);
        m.set(FORWARDED_SEQ_META, Math.max(0, fromSeq - 1));
      } else {
        m.delete(FORWARD_META, FORWARDED_SEQ_META);
      }
    }).immediate();
    this.cfgText = undefined; // force a restart with the new settings
    this.reload();
  }

  status(): ForwardingStatus {
    const cfg = this.cfg ?? meta(this.deps.db).getIfValid(FORWARD_META);
    let caFingerprint: string | null = null;
    if (cfg?.caPem) {
      try {
        caFingerprint = new crypto.X509Certificate(cfg.caPem).fingerprint256;
      } catch {
        caFingerprint = null;
      }
    }
    return {
      enabled: cfg !== null,
      host: cfg?.host ?? null,
      port: cfg?.port ?? null,
      tls: cfg?.tls ?? false,
      caFingerprint,
      forwardedSeq: Math.max(this.ackedSeq, meta(this.deps.db).getIfValid(FORWARDED_SEQ_META) ?? 0),
      headSeq: this.deps.headSeq(),
      connected: this.connected,
      lastError: this.lastError,
    };
  }

  /** Delivers what is pending (bounded by flushMs), records how far it got, and disconnects. */
  async stop(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const deadline = Date.now() + this.t.flushMs;
    // A connection still being set up (the CLI's calls are quick) gets the chance to deliver.
    while (this.socket && !this.connected && !this.stopped && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (this.socket && this.connected && !this.stopped) {
      while (Date.now() < deadline && this.connected && (this.pumping || this.alerts.length > 0 || this.sentSeq < this.deps.headSeq())) {
        await this.pump();
        await new Promise((r) => setTimeout(r, 10));
      }
      // A receiver that closes after our FIN has read everything we sent.
      const s = this.socket;
      const sent = this.sentSeq;
      this.stopped = true; // no reconnect, no more sending
      if (s && this.connected) {
        const clean = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), Math.max(100, deadline - Date.now()));
          s.once('close', (hadError: boolean) => (clearTimeout(timer), resolve(!hadError)));
          s.end();
        });
        if (clean) this.ackedSeq = Math.max(this.ackedSeq, sent);
      }
    }
    this.promote();
    this.stopped = true;
    this.persist();
    this.disconnect();
  }

  // ---- internals ----

  private reload(): void {
    // A malformed target is "off", as an absent one; compared in its one written form.
    const m = meta(this.deps.db);
    const cfg = m.getIfValid(FORWARD_META);
    const text = cfg ? JSON.stringify(cfg) : null;
    if (text === this.cfgText) return;
    this.cfgText = text;
    this.disconnect();
    this.cfg = cfg;
    const seq = m.getIfValid(FORWARDED_SEQ_META) ?? 0;
    this.sentSeq = this.ackedSeq = this.persistedSeq = seq;
    this.inflight = [];
    this.backoff = 0;
    this.lastError = null;
    if (this.cfg && !this.stopped) this.connect();
  }

  private poll(): void {
    try {
      this.reload();
      this.promote();
      this.persist();
      if (this.connected) void this.pump();
    } catch (e) {
      this.lastError = (e as Error).message;
    }
  }

  private connect(): void {
    const cfg = this.cfg;
    if (!cfg || this.socket || this.stopped) return;
    const opts = { host: cfg.host, port: cfg.port };
    const s = cfg.tls
      ? tls.connect({ ...opts, ca: cfg.caPem ? [cfg.caPem] : undefined, servername: net.isIP(cfg.host) ? undefined : cfg.host, minVersion: 'TLSv1.2' })
      : net.connect(opts);
    this.socket = s;
    s.setNoDelay(true);
    s.setKeepAlive(true, 10_000);
    const timer = setTimeout(() => s.destroy(new Error('connect timeout')), this.t.connectTimeoutMs);
    s.once(cfg.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      if (this.socket !== s) return;
      this.connected = true;
      this.backoff = 0;
      this.lastError = null;
      void this.pump();
    });
    s.on('data', () => {}); // a receiver has nothing to say; read and drop
    s.on('error', (e) => {
      this.lastError = e.message;
    });
    s.on('end', () => s.end());
    s.on('close', () => {
      clearTimeout(timer);
      if (this.socket !== s) return;
      // What was written graceMs before the close counts as delivered; the rest goes again.
      this.promote();
      this.socket = null;
      this.connected = false;
      this.sentSeq = this.ackedSeq;
      this.inflight = [];
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped || !this.cfg || this.reconnectTimer) return;
    this.backoff = this.backoff === 0 ? this.t.backoffMinMs : Math.min(this.t.backoffMaxMs, this.backoff * 2);
    const wait = Math.round(this.backoff * (0.8 + Math.random() * 0.4));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, wait);
    this.reconnectTimer.unref();
  }

  private disconnect(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const s = this.socket;
    this.socket = null;
    this.connected = false;
    s?.destroy();
  }

  /** Sends batches until caught up, respecting the socket's back-pressure. */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        while (this.connected && this.socket && !this.stopped) {
          if (this.alerts.length > 0) {
            const alerts = this.alerts;
            this.alerts = [];
            if (!this.socket.write(Buffer.concat(alerts.map((a) => frame(a))))) {
              const s = this.socket;
              await new Promise<void>((r) => (s.once('drain', r), s.once('close', r)));
            }
          }
          const rows = this.deps.db
            .prepare('SELECT seq, body, prev_hash, hash FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?')
            .all(this.sentSeq, this.t.batch) as Row[];
          if (rows.length === 0) break;
          const s = this.socket;
          const buf = Buffer.concat(rows.map((r) => frame(syslogMessage(r, this.host, process.pid))));
          const last = rows[rows.length - 1]!.seq;
          this.sentSeq = last;
          const flushed = s.write(buf);
          this.inflight.push({ seq: last, at: Date.now() });
          if (!flushed) await new Promise<void>((r) => (s.once('drain', r), s.once('close', r)));
        }
      } while (this.again && this.connected);
    } catch (e) {
      this.lastError = (e as Error).message;
    } finally {
      this.pumping = false;
    }
  }

  /** Events written graceMs ago on a connection still open count as delivered. */
  private promote(): void {
    const limit = Date.now() - this.t.graceMs;
    while (this.inflight.length && this.connected && this.inflight[0]!.at <= limit) {
      this.ackedSeq = Math.max(this.ackedSeq, this.inflight.shift()!.seq);
    }
  }

  private persist(): void {
    if (!this.cfg || this.ackedSeq <= this.persistedSeq) return;
    try {
      // Never backwards: another process may have forwarded further.
      meta(this.deps.db).raise(FORWARDED_SEQ_META, this.ackedSeq);
      this.persistedSeq = this.ackedSeq;
    } catch (e) {
      // Busy or full: the local trail matters, not this bookkeeping; retried at the next poll.
      this.lastError = `forwarded_seq not saved: ${(e as Error).message}`;
    }
  }
}

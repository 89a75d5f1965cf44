import { z } from 'zod';
import { channel, event } from './channel';

export const AuditEvent = z.object({
  seq: z.number().int().positive(),
  ts: z.string(),
  actor: z.string(),
  /**
   * The acting account's identity (users.uid, a UUID no later account can take): `actor` is its
   * name, which a later account may reuse. Null when nobody was signed in; absent in events written
   * before it was recorded, and in the core's own events (checkpoints).
   */
  principal: z.string().nullable().optional(),
  roles: z.array(z.string()),
  session: z.string().nullable(),
  shell: z.string(),
  channel: z.string(),
  /** 'request' is written before the operation runs (fail-closed); 'outcome' after. */
  phase: z.enum(['request', 'outcome']),
  target: z.string().nullable(),
  /**
   * The input, with secrets replaced by `hmac-sha256:<hex>` or "[redacted]" and long texts by
   * `{ sha256, chars }`. Outcome events: `{ request: <seq of the request event>, detail? }`.
   * Checkpoints (channel `audit:checkpoint`, actor `airlock`):
   * `{ headSeq, headHash, headTs, signature, keyFingerprint }`. See docs/formats.md.
   */
  params: z.unknown(),
  outcome: z.enum(['pending', 'ok', 'refused', 'error']),
  errorCode: z.string().nullable(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEvent = z.infer<typeof AuditEvent>;

/** What `audit:verify` found wrong first. */
export const VerifyKind = z.enum(['edited', 'deleted', 'reordered', 'inserted', 'truncated', 'bad-signature', 'head-missing']);
export type VerifyKind = z.infer<typeof VerifyKind>;

/**
 * An audit alarm: the chain in the database does not extend the trusted head (the signed
 * `audit.head` beside it, or what the running console wrote itself), so no checkpoint signs it and
 * writes are refused (AUDIT_ALARM) until an officer acknowledges. Kept after acknowledgement, as
 * evidence, with who acknowledged, why, and the head the trail was re-anchored on.
 */
export const AuditAlarm = z.object({
  id: z.number().int().positive(),
  raisedAt: z.string(),
  kind: VerifyKind,
  /** The first bad event, as precisely as the evidence allows. */
  firstBadSeq: z.number().int().nonnegative(),
  reason: z.string(),
  /** The trusted head the chain should have extended (null: audit.head is missing). */
  trustedSeq: z.number().int().nonnegative().nullable(),
  trustedHash: z.string().nullable(),
  /** The database's head when the divergence was found. */
  observedSeq: z.number().int().nonnegative(),
  observedHash: z.string(),
  /** The audit:alarm event that records it (null if it could not be written). */
  eventSeq: z.number().int().nullable(),
  acknowledged: z
    .object({
      by: z.string(),
      at: z.string(),
      reason: z.string(),
      /** The request event of the acknowledgement, and the head the trusted head was re-anchored on (a signed checkpoint). */
      requestSeq: z.number().int().nullable(),
      anchorSeq: z.number().int().nonnegative(),
      anchorHash: z.string(),
    })
    .nullable(),
});
export type AuditAlarm = z.infer<typeof AuditAlarm>;

export const AlarmStatus = z.object({
  /** The open alarm: writes are refused while it is set. */
  active: AuditAlarm.nullable(),
  /** Every alarm on record, newest first (acknowledged ones included). */
  alarms: z.array(AuditAlarm),
});
export type AlarmStatus = z.infer<typeof AlarmStatus>;

/**
 * What still works during an alarm: signing in and out, lifting one's own sign-in restriction (so
 * an officer who must first choose a password or enrol TOTP can still acknowledge), and reading
 * the audit trail (so auditors can investigate). Everything else is refused with AUDIT_ALARM
 * before it runs.
 */
export const AVAILABLE_DURING_ALARM: readonly string[] = [
  'session:status',
  'session:login',
  'session:logout',
  'session:stepUp',
  'session:changePassword',
  'totp:begin',
  'totp:confirm',
  'audit:list',
  'audit:verify',
  'audit:export',
  'audit:getForwarding',
  'audit:alarmStatus',
  'audit:acknowledgeAlarm',
  'ops:cancel',
];

export const VerifyReport = z.object({
  ok: z.boolean(),
  /** Events verified before the first bad one (all of the range when ok). */
  checked: z.number().int().nonnegative(),
  /** The last good event of the range, and its hash. */
  headSeq: z.number().int().nonnegative(),
  headHash: z.string(),
  firstBad: z
    .object({ seq: z.number().int(), kind: VerifyKind, reason: z.string() })
    .nullable(),
  /** Checkpoint signatures verified. */
  checkpoints: z.number().int().nonnegative(),
  /** The range verified (the whole chain unless fromSeq/toSeq were given). */
  fromSeq: z.number().int().optional(),
  toSeq: z.number().int().optional(),
  /** The audit signing key on record: compare it with the one noted at setup. */
  keyFingerprint: z.string().nullable().optional(),
  /** The audit signing keys trusted, oldest first: the anchor, then each key its predecessor handed over to (docs/security.md). */
  keyFingerprints: z.array(z.string()).optional(),
  lastCheckpointSeq: z.number().int().nullable().optional(),
  /** Not failures, but what a reviewer should know (e.g. no signing key yet). */
  warnings: z.array(z.string()).optional(),
  /** Alarms on record (acknowledged ones included): evidence of an earlier divergence the chain may no longer show. */
  alarms: z.array(AuditAlarm).optional(),
  /** 'worker': verified in worker threads; 'main': in-process (small trails, or no worker available). */
  engine: z.enum(['worker', 'main']).optional(),
});
export type VerifyReport = z.infer<typeof VerifyReport>;

const Seq = z.number().int().positive();
const Outcome = z.enum(['pending', 'ok', 'refused', 'error']);

/** `bundle`: JSONL after a header with the audit key versions and handovers, for offline verification (docs/formats.md). */
export const ExportFormat = z.enum(['jsonl', 'csv', 'bundle']);
export const ExportResult = z.object({
  /** Absolute path of the file the core wrote in the data directory's `exports/` folder. */
  file: z.string(),
  format: ExportFormat,
  events: z.number().int().nonnegative(),
  /** SHA-256 (hex) of the file's bytes. */
  sha256: z.string(),
  fromSeq: z.number().int().nullable(),
  toSeq: z.number().int().nullable(),
});
export type ExportResult = z.infer<typeof ExportResult>;

/** `audit:verifyBundle` (and `airlock audit verify-bundle FILE --trust FP`, offline): docs/formats.md "Audit bundles". */
export const BundleReport = z.object({
  ok: z.boolean(),
  events: z.number().int().nonnegative(),
  fromSeq: z.number().int().nullable(),
  toSeq: z.number().int().nullable(),
  checkpoints: z.number().int().nonnegative(),
  /** The audit keys trusted, from the pinned one along its handovers. */
  keyFingerprints: z.array(z.string()),
  firstBad: z.object({ seq: z.number().int(), kind: VerifyKind, reason: z.string() }).nullable(),
  warnings: z.array(z.string()),
});
export type BundleReport = z.infer<typeof BundleReport>;

export const ForwardingStatus = z.object({
  enabled: z.boolean(),
  host: z.string().nullable(),
  port: z.number().int().nullable(),
  tls: z.boolean(),
  /** SHA-256 fingerprint of the pinned CA certificate, when one is set. */
  caFingerprint: z.string().nullable(),
  /** Every event up to this sequence number has been sent (at least once). */
  forwardedSeq: z.number().int().nonnegative(),
  headSeq: z.number().int().nonnegative(),
  /** Whether this process holds a connection to the receiver right now. */
  connected: z.boolean(),
  lastError: z.string().nullable(),
});
export type ForwardingStatus = z.infer<typeof ForwardingStatus>;

/** A syslog receiver: a DNS name or IP literal, no spaces or shell metacharacters. */
const SyslogHost = z.string().min(1).max(253).regex(/^[A-Za-z0-9.:_[\]-]+$/, 'a host name or IP address');

export const audit = {
  'audit:list': channel({
    in: z
      .object({
        beforeSeq: Seq.optional(),
        limit: z.number().int().min(1).max(1000).default(200),
        channel: z.string().max(64).optional(),
        actor: z.string().max(64).optional(),
        outcome: Outcome.optional(),
        /** Substring of the target, case-insensitive. */
        target: z.string().max(256).optional(),
        /** ISO 8601 times, inclusive. */
        since: z.string().max(40).optional(),
        until: z.string().max(40).optional(),
      })
      .strict(),
    out: z.object({ events: z.array(AuditEvent), total: z.number().int() }),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Read audit events, newest first (reading is itself audited)',
  }),
  'audit:verify': channel({
    in: z
      .object({
        fromSeq: Seq.optional(),
        toSeq: Seq.optional(),
        /** Trust begins at this audit key (its fingerprint, noted at setup) instead of the oldest version on record. */
        trust: z.string().min(1).max(128).optional(),
      })
      .strict()
      .refine((v) => v.fromSeq === undefined || v.toSeq === undefined || v.fromSeq <= v.toSeq, 'fromSeq must not be after toSeq'),
    out: VerifyReport,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Verify the hash chain and checkpoint signatures; name the first bad sequence number and what is wrong',
  }),
  'audit:export': channel({
    in: z
      .object({ format: ExportFormat, fromSeq: Seq.optional(), toSeq: Seq.optional() })
      .strict()
      .refine((v) => v.fromSeq === undefined || v.toSeq === undefined || v.fromSeq <= v.toSeq, 'fromSeq must not be after toSeq'),
    out: ExportResult,
    roles: ['admin', 'auditor'],
    summary: "Export audit events as JSONL or CSV into the data directory's exports/ folder (audited)",
  }),
  'audit:verifyBundle': channel({
    in: z
      .object({
        /** The bundle's text (`audit export --format bundle`). */
        text: z.string().min(1).max(64 * 1024 * 1024),
        /** The audit key fingerprint the verifier trusts (noted at setup). */
        trust: z.string().min(1).max(128),
      })
      .strict(),
    out: BundleReport,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Verify an audit bundle against a pinned audit key fingerprint: every event and checkpoint, across rotations of the audit key',
  }),
  'audit:getForwarding': channel({
    in: z.object({}).strict(),
    out: ForwardingStatus,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'The syslog forwarding configuration and how far it has sent',
  }),
  'audit:setForwarding': channel({
    in: z.union([
      z
        .object({
          host: SyslogHost,
          port: z.number().int().min(1).max(65535),
          tls: z.boolean().default(false),
          /** PEM CA certificate(s) to trust for TLS (pinned: no other CA is trusted). */
          caPem: z.string().max(65536).optional(),
          /** Forward from this sequence number (default: from the event that turns forwarding on). */
          fromSeq: Seq.optional(),
        })
        .strict(),
      z.object({ off: z.literal(true) }).strict(),
    ]),
    out: ForwardingStatus,
    roles: ['admin'],
    target: (i) => ('host' in i ? i.host : null),
    summary: 'Forward every audit event to a syslog receiver (RFC 5424 over TCP, optionally TLS), or stop',
  }),
  'audit:alarmStatus': channel({
    in: z.object({}).strict(),
    out: AlarmStatus,
    roles: ['admin', 'officer', 'auditor'],
    passive: true,
    // Read by every console to draw its banner, on sign-in and on audit:alarmChanged: a status flag,
    // not the trail's contents (audit:list/verify/export stay audited). Refusals are still audited.
    audit: 'quiet-read',
    summary: 'Whether an audit alarm is open (the chain does not extend its trusted head), and every alarm on record',
  }),
  'audit:acknowledgeAlarm': channel({
    in: z.object({ id: z.number().int().positive(), reason: z.string().trim().min(1).max(1000) }).strict(),
    out: AlarmStatus,
    roles: ['officer'],
    // The alarm's numeric id is in the parameters.
    target: null,
    stepUp: true,
    summary:
      'Acknowledge the open audit alarm: records who and why, keeps the evidence, re-anchors the trusted head on the current chain with a signed checkpoint, and lifts the write refusal',
  }),
} as const;

export const auditEvents = {
  'audit:alarmChanged': event({
    payload: z.object({ version: z.number().int().positive() }).strict(),
    summary: 'An audit alarm was raised or acknowledged (here or in another process): re-read audit:alarmStatus',
    audience: 'audit:alarmStatus',
  }),
  'audit:verify-progress': event({
    payload: z.object({ checked: z.number().int().nonnegative(), total: z.number().int().nonnegative() }),
    summary: 'Progress of a running audit:verify (events checked of total)',
    flow: { latest: () => '' },
  }),
} as const;

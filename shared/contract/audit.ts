import { z } from 'zod';
import { channel } from './channel';

export const AuditEvent = z.object({
  seq: z.number().int().positive(),
  ts: z.string(),
  actor: z.string(),
  roles: z.array(z.string()),
  session: z.string().nullable(),
  shell: z.string(),
  channel: z.string(),
  /** 'request' is written before the operation runs (fail-closed); 'outcome' after. */
  phase: z.enum(['request', 'outcome']),
  target: z.string().nullable(),
  params: z.unknown(),
  outcome: z.enum(['pending', 'ok', 'refused', 'error']),
  errorCode: z.string().nullable(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEvent = z.infer<typeof AuditEvent>;

export const VerifyReport = z.object({
  ok: z.boolean(),
  checked: z.number().int().nonnegative(),
  headSeq: z.number().int().nonnegative(),
  headHash: z.string(),
  firstBad: z
    .object({ seq: z.number().int(), reason: z.string() })
    .nullable(),
});
export type VerifyReport = z.infer<typeof VerifyReport>;

export const audit = {
  'audit:list': channel({
    in: z
      .object({
        beforeSeq: z.number().int().positive().optional(),
        limit: z.number().int().min(1).max(1000).default(200),
        channel: z.string().max(64).optional(),
        actor: z.string().max(64).optional(),
      })
      .strict(),
    out: z.object({ events: z.array(AuditEvent), total: z.number().int() }),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Read audit events, newest first (reading is itself audited)',
  }),
  'audit:verify': channel({
    in: z.object({}).strict(),
    out: VerifyReport,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Verify the hash chain and name the first bad sequence number',
  }),
} as const;

import { z } from 'zod';
import { channel, event } from './channel';
import { NoInput, UserName, visibleText } from './common';

/**
 * The two-person rule. Operations are rows of the approval policy, not channels: one channel may
 * trigger an operation only for some inputs (users:create only with the admin role).
 * audit:delete has no channel yet; its row exists so the policy is declared before the feature (models:grantPhi is grants:add on a phi version).
 */
export const ApprovalOperations = [
  'users:grantAdmin',
  'approvals:setPolicy',
  'provision:disableEgressLockdown',
  'models:grantPhi',
  'models:approvePhi',
  'keys:rotateRoot',
  'keys:reshareRoot',
  'audit:delete',
] as const;
export const ApprovalOperation = z.enum(ApprovalOperations);
export type ApprovalOperation = z.infer<typeof ApprovalOperation>;

/** Auditors are read-only: they see the queue but never decide. */
export const ApproverRole = z.enum(['admin', 'officer']);

export const ApprovalPolicy = z.object({
  operation: ApprovalOperation,
  description: z.string(),
  /** A different user holding one of these roles must approve. */
  approverRoles: z.array(ApproverRole).min(1),
  /** A request must be approved and executed within this many minutes of being filed (default 24 h). */
  expiryMinutes: z.number().int().positive(),
  /** False = the operation runs without a second person (never for approvals:setPolicy). */
  required: z.boolean(),
  /** Whether a channel that triggers this operation exists yet. */
  implemented: z.boolean(),
  /** Channels that may trigger it. */
  channels: z.array(z.string()),
  updatedAt: z.string(),
  updatedBy: UserName.nullable(),
});
export type ApprovalPolicy = z.infer<typeof ApprovalPolicy>;

export const ApprovalStatus = z.enum(['pending', 'approved', 'rejected', 'cancelled', 'expired', 'executing', 'executed', 'failed']);
export type ApprovalStatus = z.infer<typeof ApprovalStatus>;

export const ApprovalId = z.number().int().positive();
const Reason = visibleText(z.string().trim().min(3, 'give a reason (at least 3 characters)').max(500));

export const ApprovalRequest = z.object({
  id: ApprovalId,
  operation: ApprovalOperation,
  /** The guarded channel that runs on execution, with exactly `input`. */
  channel: z.string(),
  /** One line for people: "Create user bob with roles admin, officer". */
  summary: z.string(),
  /** The parsed input; secret fields (passwords) appear as "[sealed]": the real value is sealed in the vault. */
  input: z.record(z.string(), z.unknown()),
  reason: z.string(),
  requestedBy: UserName,
  requestedAt: z.string(),
  approverRoles: z.array(ApproverRole),
  expiresAt: z.string(),
  status: ApprovalStatus,
  decidedBy: UserName.nullable(),
  decidedAt: z.string().nullable(),
  decisionReason: z.string().nullable(),
  executedAt: z.string().nullable(),
  /** The error code when execution failed. */
  resultCode: z.string().nullable(),
  /** For the caller: what they may do with it now, and why not when they may not approve. */
  canApprove: z.boolean(),
  cannotApproveReason: z.string().nullable(),
  canExecute: z.boolean(),
  canCancel: z.boolean(),
});
export type ApprovalRequest = z.infer<typeof ApprovalRequest>;

export const ApprovalCounts = z.object({
  /** All requests waiting for a decision. */
  pending: z.number().int().nonnegative(),
  /** Pending requests the caller may approve: the badge. */
  awaitingMe: z.number().int().nonnegative(),
  /** The caller's approved requests waiting for approvals:execute. */
  readyToExecute: z.number().int().nonnegative(),
});

const ANY = ['admin', 'officer', 'auditor'] as const;
const DECIDERS = ['admin', 'officer'] as const;

export const approvals = {
  'approvals:list': channel({
    in: z
      .object({
        /** 'open' = pending or approved (not yet executed). Default: all, newest first. */
        status: z.union([ApprovalStatus, z.literal('open')]).optional(),
        beforeId: ApprovalId.optional(),
        limit: z.number().int().min(1).max(500).default(100),
      })
      .strict(),
    out: z.object({ requests: z.array(ApprovalRequest), counts: ApprovalCounts }),
    roles: ANY,
    passive: true,
    summary: 'The approval queue, newest first, with counts for a badge',
  }),
  'approvals:get': channel({
    in: z.object({ id: ApprovalId }).strict(),
    out: ApprovalRequest,
    roles: ANY,
    // The approval's numeric id is in the parameters; the trail's target is a name.
    target: null,
    summary: 'One approval request',
  }),
  'approvals:request': channel({
    in: z
      .object({
        /** The guarded channel, e.g. 'users:create'. */
        channel: z.string().min(1).max(64),
        /** Exactly the input that was refused with APPROVAL_REQUIRED. */
        input: z.record(z.string(), z.unknown()),
        reason: Reason,
      })
      .strict(),
    out: ApprovalRequest,
    roles: ANY,
    carries: { channel: 'channel', input: 'input' },
    summary: "File a two-person request for a call refused with APPROVAL_REQUIRED (its secrets are sealed in the vault)",
  }),
  'approvals:approve': channel({
    in: z.object({ id: ApprovalId, reason: Reason }).strict(),
    out: ApprovalRequest,
    roles: DECIDERS,
    target: null,
    stepUp: true,
    summary: "Approve another user's request (never your own, nor from an account newer than the request)",
  }),
  'approvals:reject': channel({
    in: z.object({ id: ApprovalId, reason: Reason }).strict(),
    out: ApprovalRequest,
    roles: DECIDERS,
    target: null,
    stepUp: true,
    summary: "Reject another user's request",
  }),
  'approvals:cancel': channel({
    in: z.object({ id: ApprovalId }).strict(),
    out: ApprovalRequest,
    roles: ANY,
    target: null,
    summary: 'Withdraw your own pending or approved request',
  }),
  'approvals:execute': channel({
    in: z.object({ id: ApprovalId }).strict(),
    out: z.object({ request: ApprovalRequest, value: z.unknown() }),
    roles: ANY,
    target: null,
    stepUp: true,
    summary: 'Run your approved request once, with exactly the approved input, and get its result',
  }),
  'approvals:policy': channel({
    in: NoInput,
    out: z.array(ApprovalPolicy),
    roles: ANY,
    summary: 'The two-person policy: which operations need a second person, of which role, and for how long',
  }),
  'approvals:setPolicy': channel({
    in: z
      .object({
        operation: ApprovalOperation,
        approverRoles: z.array(ApproverRole).min(1).max(2),
        expiryMinutes: z.number().int().min(5).max(10080),
        required: z.boolean(),
      })
      .strict(),
    out: ApprovalPolicy,
    roles: DECIDERS,
    stepUp: true,
    twoPerson: 'approvals:setPolicy',
    summary: 'Change one row of the two-person policy (itself under the two-person rule)',
  }),
} as const;

/**
 * Pushed when the queue changes (a request filed, approved, rejected, cancelled, claimed, executed,
 * failed or expired — in this process or another on the same database), instead of the UI polling.
 * It carries no request data, only a counter: what a session may see of the queue is decided
 * per viewer by approvals:list, which the client calls once on receipt.
 */
export const approvalsEvents = {
  'approvals:changed': event({
    payload: z.object({ version: z.number().int().positive() }).strict(),
    summary: 'The approval queue changed: re-read it with approvals:list',
    audience: 'approvals:list',
  }),
} as const;

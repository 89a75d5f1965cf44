import canonicalize from 'canonicalize';
import crypto from 'node:crypto';
import type { z } from 'zod';
import type { ApprovalOperation, ApprovalPolicy, ApprovalRequest, ApprovalStatus } from '../../../shared/contract/approvals';
import { ApprovalOperations } from '../../../shared/contract/approvals';
import type { ChannelDef } from '../../../shared/contract/channel';
import { channels, isChannelName, type ChannelName } from '../../../shared/contract/index';
import { AirlockError } from '../../../shared/domain/errors';
import { forbiddenMessage, rolesInWords, type Role } from '../../../shared/domain/roles';
import { Catalog } from '../models/catalog';
import { accountChange, accountState, type AccountState, type Users } from '../users/users';
import type { Db } from '../db/db';
import type { Vault } from '../vault/vault';
import { grantTargetState, type GrantTargetState } from '../models/access/grant-target';
import { channelsByOperation, guardOf, operationFor, type TargetRef } from './guards';

/** Who is looking or acting: a signed-in user with the vault key their session holds. */
export interface Actor {
  id: number;
  /** The account identity (users.uid): an approval names accounts by it, not by id or name. */
  uid: string;
  name: string;
  roles: Role[];
  vaultKey: Buffer;
}

/** What the dispatcher is told when it runs an approved request, to check it runs exactly that. */
export interface ApprovedCall {
  id: number;
  channel: ChannelName;
  digest: string;
  /** What the call acts on, as it was when the request was filed (and approved): it must still be. */
  target: TargetBinding | null;
}

/**
 * The object a request acts on, bound when it is filed: an account by its identity and state
 * (null state: no account had that name), a host by its id, endpoint and pinned key, a policy row
 * by its last change. Approval and execution both refuse when the object is no longer this one.
 */
export type TargetBinding =
  | { kind: 'user'; name: string; state: AccountState | null }
  | { kind: 'host'; name: string; state: { id: number; address: string; port: number; fingerprint: string | null } | null }
  | { kind: 'policy'; name: string; state: { updatedAt: string; updatedBy: string | null } | null }
  | { kind: 'hierarchy'; name: string; state: { hierarchyId: string; rootKcv: string; epoch: number; shareRecord: string } | null }
  /** A catalog version (`model:version`): its status, classification and the manifest digest of its artifact (everything its identity covers). */
  | { kind: 'model-version'; name: string; state: { status: string; classification: string; digest: string } | null }
  | { kind: 'grant'; name: string; state: GrantTargetState };

interface PolicyRow {
  operation: ApprovalOperation;
  description: string;
  approver_roles: string;
  expiry_minutes: number;
  required: number;
  updated_at: string;
  updated_by: string | null;
}

interface RequestRow {
  id: number;
  operation: ApprovalOperation;
  channel: string;
  summary: string;
  input_public: string;
  input_sealed: Buffer;
  input_digest: string;
  reason: string;
  requested_by: number;
  requested_by_uid: string | null;
  requested_by_name: string;
  requested_at: string;
  identity_seq: number;
  approver_roles: string;
  expires_at: string;
  status: ApprovalStatus;
  decided_by: number | null;
  decided_by_uid: string | null;
  decided_by_name: string | null;
  decided_at: string | null;
  decision_reason: string | null;
  executed_at: string | null;
  result_code: string | null;
  /** JSON TargetBinding, or null (requests filed before migration 0004 carry none and were cancelled by it). */
  target: string | null;
}

export const SEALED = '[sealed]';

/**
 * The two-person rule. A guarded call (see guards.ts) refused with APPROVAL_REQUIRED is filed
 * here with a reason; the exact parsed input is sealed under the vault key (so secrets in it are
 * never in the clear) and HMAC'd; a different person with the policy's role approves or rejects;
 * the requester then executes it once, through the dispatcher, with exactly that input.
 */
export class Approvals {
  constructor(private readonly deps: { db: Db; vault: Vault; users: Users; now: () => Date }) {}

  // ---- policy --------------------------------------------------------------

  policy(): Array<z.input<typeof ApprovalPolicy>> {
    const byOp = channelsByOperation();
    const rows = this.deps.db.prepare('SELECT * FROM approval_policy').all() as PolicyRow[];
    const order = (op: string) => (ApprovalOperations as readonly string[]).indexOf(op);
    return rows
      .sort((a, b) => order(a.operation) - order(b.operation))
      .map((r) => ({
        operation: r.operation,
        description: r.description,
        approverRoles: JSON.parse(r.approver_roles) as Array<'admin' | 'officer'>,
        expiryMinutes: r.expiry_minutes,
        required: r.required === 1,
        implemented: (byOp.get(r.operation) ?? []).length > 0,
        channels: byOp.get(r.operation) ?? [],
        updatedAt: r.updated_at,
        updatedBy: r.updated_by,
      }));
  }

  private policyRow(op: ApprovalOperation): PolicyRow {
    const row = this.deps.db.prepare('SELECT * FROM approval_policy WHERE operation = ?').get(op) as PolicyRow | undefined;
    // A missing row (an edited database) fails safe: required, officers and admins, 24 h.
    return (
      row ?? {
        operation: op,
        description: op,
        approver_roles: '["admin","officer"]',
        expiry_minutes: 1440,
        required: 1,
        updated_at: '',
        updated_by: null,
      }
    );
  }

  setPolicy(actor: { name: string }, p: { operation: ApprovalOperation; approverRoles: Role[]; expiryMinutes: number; required: boolean }) {
    if (p.operation === 'approvals:setPolicy' && !p.required) {
      throw new AirlockError('CONFLICT', 'Changing the two-person policy always needs a second person; that row cannot be turned off.');
    }
    this.deps.db
      .prepare('UPDATE approval_policy SET approver_roles = ?, expiry_minutes = ?, required = ?, updated_at = ?, updated_by = ? WHERE operation = ?')
      .run(JSON.stringify([...new Set(p.approverRoles)]), p.expiryMinutes, p.required ? 1 : 0, this.iso(), actor.name, p.operation);
    return this.policy().find((r) => r.operation === p.operation)!;
  }

  // ---- the gate ----------------------------------------------------------------

  /**
   * For the dispatcher, after the role check, the input parse and the step-up check: null when
   * the call may run, else the error to refuse it with. `approved` is set only when
   * approvals:execute runs a request; the input must then be the approved one, byte for byte.
   */
  gate(name: ChannelName, input: Record<string, unknown>, vaultKey: Buffer, approved: ApprovedCall | undefined): AirlockError | null {
    const op = operationFor(name, input, this.deps.users, this.deps.db);
    if (!op) return null;
    const pol = this.policyRow(op);
    if (!pol.required) return null;
    if (approved) {
      if (approved.channel !== name || !safeEqualHex(approved.digest, this.digest(vaultKey, name, input))) {
        return new AirlockError('CONFLICT', `The input differs from what request ${approved.id} approved; nothing was run.`);
      }
      const changed = this.targetChange(approved.target);
      return changed ? new AirlockError('CONFLICT', `Request ${approved.id} was approved for another object: ${changed}; nothing was run.`) : null;
    }
    const roles = rolesInWords(JSON.parse(pol.approver_roles) as Role[]);
    return new AirlockError(
      'APPROVAL_REQUIRED',
      `${guardOf(name)!.describe(input)} needs a second person's approval: request it, with a reason; ` +
        `another person who is ${roles} must approve it within ${pol.expiry_minutes} minutes, then you run it.`,
    );
  }

  digest(vaultKey: Buffer, name: string, input: Record<string, unknown>): string {
    return crypto
      .createHmac('sha256', this.deps.vault.hmacKey(vaultKey, 'approvals'))
      .update(`${name}\n${canonical(input)}`)
      .digest('hex');
  }

  // ---- requests ---------------------------------------------------------------

  /** approvals:request: validates the call as the dispatcher would, then files it. */
  file(actor: Actor, channel: string, rawInput: Record<string, unknown>, reason: string): z.input<typeof ApprovalRequest> {
    if (!isChannelName(channel)) throw new AirlockError('NOT_FOUND', `No channel named "${channel.slice(0, 64)}".`);
    const def = channels[channel] as unknown as ChannelDef;
    const guard = guardOf(channel);
    if (!def.twoPerson || !guard) throw new AirlockError('CONFLICT', 'This operation does not need a second person: do it directly.');
    if (def.roles === 'public' || !actor.roles.some((r) => (def.roles as readonly Role[]).includes(r))) {
      throw new AirlockError('FORBIDDEN', forbiddenMessage(def.roles === 'public' ? [] : def.roles, actor.roles));
    }
    const parsed = def.in.safeParse(rawInput);
    if (!parsed.success) {
      const msg = parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.join('.') || 'input'}: ${i.message}`)
        .join('; ');
      throw new AirlockError('INVALID_INPUT', `Not accepted — ${msg}.`);
    }
    const input = parsed.data as Record<string, unknown>;
    const op = operationFor(channel, input, this.deps.users, this.deps.db);
    if (!op || !this.policyRow(op).required) {
      throw new AirlockError('CONFLICT', 'This does not need a second person: do it directly.');
    }
    guard.precheck?.(input, this.deps.users, this.deps.db);
    const pol = this.policyRow(op);
    const target = this.bind(guard.target?.(input) ?? null);
    const now = this.deps.now();
    const publicInput: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) publicInput[k] = def.secret?.includes(k) ? SEALED : v;

    const id = this.deps.db
      .transaction(() => {
        const id = Number(
          this.deps.db
            .prepare(
              `INSERT INTO approval_requests (operation, channel, summary, input_public, input_sealed, input_digest, reason,
                 requested_by, requested_by_uid, requested_by_name, requested_at, identity_seq, approver_roles, expires_at, status, target)
               VALUES (?, ?, ?, ?, x'', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
            )
            .run(
              op,
              channel,
              guard.describe(input),
              JSON.stringify(publicInput),
              this.digest(actor.vaultKey, channel, input),
              reason,
              actor.id,
              actor.uid,
              actor.name,
              now.toISOString(),
              this.deps.users.identitySeq(),
              pol.approver_roles,
              new Date(now.getTime() + pol.expiry_minutes * 60_000).toISOString(),
              target ? JSON.stringify(target) : null,
            ).lastInsertRowid,
        );
        // The id is bound into the seal, so a sealed input moved to another request does not open.
        const sealed = this.deps.vault.sealValue(actor.vaultKey, sealContext(id), Buffer.from(canonical(input), 'utf8'));
        this.deps.db.prepare('UPDATE approval_requests SET input_sealed = ? WHERE id = ?').run(sealed, id);
        return id;
      })
      .immediate();
    return this.get(actor, id);
  }

  list(
    viewer: Omit<Actor, 'vaultKey'>,
    opts: { status?: ApprovalStatus | 'open'; beforeId?: number; limit: number },
  ): { requests: Array<z.input<typeof ApprovalRequest>>; counts: { pending: number; awaitingMe: number; readyToExecute: number } } {
    this.expireDue();
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.status === 'open') where.push("status IN ('pending', 'approved')");
    else if (opts.status) (where.push('status = ?'), args.push(opts.status));
    if (opts.beforeId !== undefined) (where.push('id < ?'), args.push(opts.beforeId));
    const rows = this.deps.db
      .prepare(`SELECT * FROM approval_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, opts.limit) as RequestRow[];
    const pendingRows = this.deps.db.prepare("SELECT * FROM approval_requests WHERE status = 'pending'").all() as RequestRow[];
    const ready = this.deps.db
      .prepare("SELECT count(*) AS n FROM approval_requests WHERE status = 'approved' AND requested_by = ?")
      .get(viewer.id) as { n: number };
    return {
      requests: rows.map((r) => this.toView(r, viewer)),
      counts: {
        pending: pendingRows.length,
        awaitingMe: pendingRows.filter((r) => this.approvalBlocker(r, viewer) === null).length,
        readyToExecute: ready.n,
      },
    };
  }

  get(viewer: Omit<Actor, 'vaultKey'>, id: number): z.input<typeof ApprovalRequest> {
    this.expireDue();
    return this.toView(this.row(id), viewer);
  }

  approve(viewer: Omit<Actor, 'vaultKey'>, id: number, reason: string) {
    return this.decide(viewer, id, reason, 'approved');
  }

  reject(viewer: Omit<Actor, 'vaultKey'>, id: number, reason: string) {
    return this.decide(viewer, id, reason, 'rejected');
  }

  private decide(viewer: Omit<Actor, 'vaultKey'>, id: number, reason: string, to: 'approved' | 'rejected') {
    this.expireDue();
    this.deps.db
      .transaction(() => {
        const row = this.row(id);
        const why = this.approvalBlocker(row, viewer);
        if (why) throw new AirlockError(row.status === 'pending' ? 'FORBIDDEN' : 'CONFLICT', why);
        this.deps.db
          .prepare(
            "UPDATE approval_requests SET status = ?, decided_by = ?, decided_by_uid = ?, decided_by_name = ?, decided_at = ?, decision_reason = ? WHERE id = ? AND status = 'pending'",
          )
          .run(to, viewer.id, viewer.uid, viewer.name, this.iso(), reason, id);
      })
      .immediate();
    return this.get(viewer, id);
  }

  cancel(viewer: Omit<Actor, 'vaultKey'>, id: number) {
    this.expireDue();
    this.deps.db
      .transaction(() => {
        const row = this.row(id);
        if (!this.isRequester(row, viewer)) throw new AirlockError('FORBIDDEN', `Only ${row.requested_by_name}, who filed request ${id}, can cancel it.`);
        if (row.status !== 'pending' && row.status !== 'approved') throw new AirlockError('CONFLICT', `Request ${id} is ${row.status}; it can no longer be cancelled.`);
        this.deps.db.prepare("UPDATE approval_requests SET status = 'cancelled' WHERE id = ?").run(id);
      })
      .immediate();
    return this.get(viewer, id);
  }

  /** When a requester is disabled or removed, their open requests die with the account's rights. */
  cancelOpenBy(userId: number): void {
    this.deps.db
      .prepare("UPDATE approval_requests SET status = 'cancelled', decision_reason = COALESCE(decision_reason, 'requester disabled or removed') WHERE requested_by = ? AND status IN ('pending', 'approved')")
      .run(userId);
  }

  /**
   * approvals:execute, step one: the requester takes their approved request (atomically, so it runs
   * once even with two shells racing) and gets back the exact input, unsealed.
   */
  claim(actor: Actor, id: number): ApprovedCall & { input: Record<string, unknown> } {
    this.expireDue();
    const taken = this.deps.db
      .transaction((): (ApprovedCall & { input: Record<string, unknown> }) | AirlockError => {
        const row = this.row(id);
        if (!this.isRequester(row, actor)) {
          throw new AirlockError('FORBIDDEN', `Only ${row.requested_by_name}, who filed request ${id}, can execute it.`);
        }
        if (row.status !== 'approved') {
          throw new AirlockError('CONFLICT', `Request ${id} is ${row.status}${row.status === 'pending' ? ': it needs an approval first' : ''}; nothing was run.`);
        }
        // The approval is judged again now, under the policy as it is now, and the object must
        // still be the one that was approved. A void approval never runs: the request fails.
        const void_ = this.executionBlocker(row);
        if (void_) {
          this.deps.db
            .prepare("UPDATE approval_requests SET status = 'failed', executed_at = ?, result_code = 'APPROVAL_VOID', decision_reason = ? WHERE id = ? AND status = 'approved'")
            .run(this.iso(), `${row.decision_reason ?? ''} [void at execution: ${void_}]`.trim(), id);
          return new AirlockError('CONFLICT', `Request ${id} can no longer be executed: ${void_}. Nothing was run; file the request again.`);
        }
        const text = this.deps.vault.openValue(actor.vaultKey, sealContext(id), row.input_sealed);
        if (!text) throw new AirlockError('CONFLICT', `Request ${id}'s sealed input does not open: it was altered; nothing was run.`);
        const input = JSON.parse(text.toString('utf8')) as Record<string, unknown>;
        if (!safeEqualHex(this.digest(actor.vaultKey, row.channel, input), row.input_digest)) {
          throw new AirlockError('CONFLICT', `Request ${id}'s input does not match its digest: it was altered; nothing was run.`);
        }
        this.deps.db.prepare("UPDATE approval_requests SET status = 'executing' WHERE id = ? AND status = 'approved'").run(id);
        return { id, channel: row.channel as ChannelName, digest: row.input_digest, target: parseTarget(row.target), input };
      })
      .immediate();
    if (taken instanceof AirlockError) throw taken;
    return taken;
  }

  /**
   * For a handler running an approved call, right before (or inside the transaction of) the
   * change: the object must still be the one that was approved. Throws CONFLICT otherwise.
   */
  assertTarget(approved: ApprovedCall | undefined): void {
    if (!approved) return;
    const changed = this.targetChange(approved.target);
    if (changed) throw new AirlockError('CONFLICT', `Request ${approved.id} was approved for another object: ${changed}; nothing was run.`);
  }

  /** The call was refused before it ran (step-up, role, audit unavailable): the approval stays usable. */
  release(id: number): void {
    this.deps.db.prepare("UPDATE approval_requests SET status = 'approved' WHERE id = ? AND status = 'executing'").run(id);
  }

  /** The call ran: executed, or failed with its error code. Either way it never runs again. */
  finish(id: number, errorCode: string | null): void {
    this.deps.db
      .prepare("UPDATE approval_requests SET status = ?, executed_at = ?, result_code = ? WHERE id = ? AND status = 'executing'")
      .run(errorCode ? 'failed' : 'executed', this.iso(), errorCode, id);
  }

  // ---- rules -----------------------------------------------------------------------

  /**
   * Why `viewer` may not approve (or reject) this request now, or null. Self-approval is refused
   * outright; so is approval from an account whose existence, roles or credentials (set by an
   * administrator) are newer than the request — a second account made, promoted or taken over
   * during the request's life, by anyone.
   */
  approvalBlocker(row: RequestRow, viewer: Omit<Actor, 'vaultKey'>): string | null {
    if (row.status !== 'pending') return `Request ${row.id} is ${row.status}.`;
    if (Date.parse(row.expires_at) <= this.deps.now().getTime()) return `Request ${row.id} expired at ${row.expires_at}.`;
    if (this.isRequester(row, viewer)) return 'You filed this request: a different person must decide it.';
    const subject = isChannelName(row.channel) ? guardOf(row.channel)?.subject?.(JSON.parse(row.input_public) as Record<string, unknown>) : null;
    const target = parseTarget(row.target);
    if ((subject && subject === viewer.name) || (target?.kind === 'user' && target.state?.uid === viewer.uid)) {
      return 'This request is about your own account: a different person must decide it.';
    }
    if (row.requested_by_uid === null) return 'This request was filed before approvals were bound to account identities: file it again.';
    const changed = this.targetChange(target);
    if (changed) return `What this request acts on changed since it was filed: ${changed}. It cannot be approved; file it again.`;
    const roles = JSON.parse(row.approver_roles) as Role[];
    if (!viewer.roles.some((r) => roles.includes(r))) return `Deciding needs the role ${roles.join(' or ')}.`;
    const me = this.deps.users.rowById(viewer.id);
    if (!me || me.uid !== viewer.uid || me.disabled) return 'Your account is disabled.';
    if (me.created_seq > row.identity_seq) return 'Your account was created after this request was filed, so it cannot decide it.';
    if (me.roles_seq > row.identity_seq) return 'Your roles changed after this request was filed, so you cannot decide it.';
    if (me.cred_seq > row.identity_seq) return 'An administrator reset your password or TOTP after this request was filed, so you cannot decide it.';
    if (me.must_change_password) return 'Choose your own password first (an administrator set the current one).';
    return null;
  }

  /**
   * Why an approved request may not execute now, or null: the approval is judged under the
   * current policy (an approver who lost the approver role, was disabled or removed no longer
   * counts; a policy that now names other approver roles needs a new approval), and the object
   * it acts on must be unchanged.
   */
  private executionBlocker(row: RequestRow): string | null {
    if (row.requested_by_uid === null) return 'it was filed before approvals were bound to account identities';
    const pol = this.policyRow(row.operation);
    if (pol.required) {
      if (row.decided_by === null || row.decided_by_uid === null) return 'it carries no approver identity';
      const approver = this.deps.users.rowById(row.decided_by);
      if (!approver || approver.uid !== row.decided_by_uid) return `the approver ${row.decided_by_name ?? '?'} no longer exists`;
      if (approver.disabled) return `the approver ${approver.name} is disabled`;
      if (approver.id === row.requested_by || approver.uid === row.requested_by_uid) return 'the approver is the requester';
      const roles = JSON.parse(pol.approver_roles) as Role[];
      const has = JSON.parse(approver.roles) as Role[];
      if (!has.some((r) => roles.includes(r))) {
        return `the approver ${approver.name} no longer holds a role the policy requires for ${row.operation} (${roles.join(' or ')})`;
      }
      const target = parseTarget(row.target);
      if (target?.kind === 'user' && target.state?.uid === approver.uid) return 'the approver is the account the request is about';
    }
    return this.targetChange(parseTarget(row.target));
  }

  private isRequester(row: RequestRow, who: { id: number; uid: string }): boolean {
    return row.requested_by === who.id || row.requested_by_uid === who.uid;
  }

  /** The binding of a target as it is now. */
  private bind(ref: TargetRef | null): TargetBinding | null {
    if (!ref) return null;
    if (ref.kind === 'user') {
      let row = null;
      try {
        row = this.deps.users.row(ref.name);
      } catch {
        row = null;
      }
      return { kind: 'user', name: ref.name, state: row ? accountState(row) : null };
    }
    if (ref.kind === 'host') {
      const h = this.deps.db.prepare('SELECT id, address, port, fingerprint FROM hosts WHERE name = ?').get(ref.name) as
        | { id: number; address: string; port: number; fingerprint: string | null }
        | undefined;
      return { kind: 'host', name: ref.name, state: h ? { id: h.id, address: h.address, port: h.port, fingerprint: h.fingerprint } : null };
    }
    if (ref.kind === 'model-version') {
      const [model, version] = [ref.name.slice(0, ref.name.indexOf(':')), ref.name.slice(ref.name.indexOf(':') + 1)];
      const v = new Catalog({ db: this.deps.db, now: this.deps.now }).version(model, version);
      const state = v ? { status: v.status, classification: v.classification, digest: new Catalog({ db: this.deps.db, now: this.deps.now }).artifact(model, version).digest } : null;
      return { kind: 'model-version', name: ref.name, state };
    }
    if (ref.kind === 'grant') return { kind: 'grant', name: ref.name, state: grantTargetState(this.deps.db, ref.name) };
    if (ref.kind === 'hierarchy') {
      // The key hierarchy as it is: a reshare or root rotation since filing changes its share record, epoch or root.
      const k = this.deps.db.prepare('SELECT hierarchy_id, root_kcv, epoch, share_record FROM key_hierarchy WHERE singleton = 1').get() as
        | { hierarchy_id: string; root_kcv: string; epoch: number; share_record: string }
        | undefined;
      const state = k ? { hierarchyId: k.hierarchy_id, rootKcv: k.root_kcv, epoch: k.epoch, shareRecord: crypto.createHash('sha256').update(k.share_record).digest('hex') } : null;
      return { kind: 'hierarchy', name: ref.name, state };
    }
    const p = this.deps.db.prepare('SELECT updated_at, updated_by FROM approval_policy WHERE operation = ?').get(ref.name) as
      | { updated_at: string; updated_by: string | null }
      | undefined;
    return { kind: 'policy', name: ref.name, state: p ? { updatedAt: p.updated_at, updatedBy: p.updated_by } : null };
  }

  /** Why `bound` is no longer what it names now (in words), or null when it still is. */
  private targetChange(bound: TargetBinding | null): string | null {
    if (!bound) return null;
    const now = this.bind(bound);
    if (bound.kind === 'user') {
      const state = now?.state as AccountState | null;
      if (bound.state === null) return state ? `an account named "${bound.name}" was created since` : null;
      let row = null;
      try {
        row = this.deps.users.row(bound.name);
      } catch {
        row = null;
      }
      return accountChange(bound.name, row, bound.state);
    }
    if (canonical(now?.state ?? null) === canonical(bound.state)) return null;
    if (bound.kind === 'model-version') return `the model version ${bound.name} is no longer the one filed (its status, classification or contents changed, or it was removed): file the request again`;
    if (bound.kind === 'hierarchy') return 'the key hierarchy changed since (a reshare, a root rotation or a new genesis): file the request again';
    if (bound.kind === 'grant') return `the principal or the model version of the grant "${bound.name}" is no longer the one it was filed for (disabled, another principal with that id, or another version)`;
    return bound.kind === 'host'
      ? `host "${bound.name}" is no longer the same host (removed, re-added or re-keyed)`
      : `the policy for ${bound.name} was changed since`;
  }

  private expireDue(): void {
    this.deps.db
      .prepare("UPDATE approval_requests SET status = 'expired' WHERE status IN ('pending', 'approved') AND expires_at <= ?")
      .run(this.iso());
  }

  private row(id: number): RequestRow {
    const row = this.deps.db.prepare('SELECT * FROM approval_requests WHERE id = ?').get(id) as RequestRow | undefined;
    if (!row) throw new AirlockError('NOT_FOUND', `No approval request ${id}.`);
    return row;
  }

  private toView(r: RequestRow, viewer: Omit<Actor, 'vaultKey'>): z.input<typeof ApprovalRequest> {
    const blocker = this.approvalBlocker(r, viewer);
    const mine = this.isRequester(r, viewer);
    return {
      id: r.id,
      operation: r.operation,
      channel: r.channel,
      summary: r.summary,
      input: JSON.parse(r.input_public) as Record<string, unknown>,
      reason: r.reason,
      requestedBy: r.requested_by_name,
      requestedAt: r.requested_at,
      approverRoles: JSON.parse(r.approver_roles) as Array<'admin' | 'officer'>,
      expiresAt: r.expires_at,
      status: r.status,
      decidedBy: r.decided_by_name,
      decidedAt: r.decided_at,
      decisionReason: r.decision_reason,
      executedAt: r.executed_at,
      resultCode: r.result_code,
      canApprove: blocker === null,
      cannotApproveReason: r.status === 'pending' ? blocker : null,
      canExecute: mine && r.status === 'approved' && r.requested_by_uid !== null,
      canCancel: mine && (r.status === 'pending' || r.status === 'approved'),
    };
  }

  private iso(): string {
    return this.deps.now().toISOString();
  }
}

const sealContext = (id: number) => `approval:${id}`;

function parseTarget(text: string | null): TargetBinding | null {
  return text === null ? null : (JSON.parse(text) as TargetBinding);
}

function canonical(v: unknown): string {
  const s = canonicalize(v);
  if (s === undefined) throw new AirlockError('INVALID_INPUT', 'The input has no canonical JSON form.');
  return s;
}

function safeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && crypto.timingSafeEqual(x, y);
}

import type { ApprovalOperation } from '../../../shared/contract/approvals';
import { channels, type ChannelName } from '../../../shared/contract/index';
import type { ChannelDef } from '../../../shared/contract/channel';
import { AirlockError } from '../../../shared/domain/errors';
import type { Role } from '../../../shared/domain/roles';
import type { Db } from '../db/db';
import { catalogVersions, needsPhiApproval } from '../models/access/policy';
import { checkPolicy, type Users } from '../users/users';

/** Per guarded channel: when its input triggers the operation, what to show people, what to check before filing. */
interface Guard {
  operation: ApprovalOperation;
  /** Whether this input needs the operation (users:create needs it only with the admin role; grants:add only for a phi version, which the database says). */
  applies(input: Record<string, unknown>, users: Users, db: Db): boolean;
  describe(input: Record<string, unknown>): string;
  /** Refuse a request that could never execute (name taken, weak password) before anyone reviews it. */
  precheck?(input: Record<string, unknown>, users: Users, db: Db): void;
  /** The user account the call is about: that user may not decide the request (no approving one's own promotion). */
  subject?(input: Record<string, unknown>): string | null;
  /**
   * The object the call acts on, by kind and name. The request binds its identity and state when
   * filed (see TargetBinding in approvals.ts); approval and execution refuse a different object
   * with the same name. Every guard whose call acts on a named object must declare it.
   */
  target?(input: Record<string, unknown>): TargetRef | null;
}

export interface TargetRef {
  kind: 'user' | 'host' | 'policy' | 'hierarchy' | 'model-version' | 'grant';
  name: string;
}

const userTarget = (i: Record<string, unknown>): TargetRef | null => (typeof i.name === 'string' ? { kind: 'user', name: i.name } : null);

const nameOf = (i: Record<string, unknown>) => (typeof i.name === 'string' ? i.name : null);

/** A grant's selector as the contract parses it: `{ exact }` or "latest-approved". */
const selector = (i: Record<string, unknown>): { exact: string } | 'latest-approved' =>
  i.version === 'latest-approved' ? 'latest-approved' : { exact: String((i.version as { exact?: unknown } | undefined)?.exact) };
const selectorText = (i: Record<string, unknown>) => {
  const s = selector(i);
  return s === 'latest-approved' ? 'latest approved version' : s.exact;
};

const roles = (input: Record<string, unknown>) => (Array.isArray(input.roles) ? (input.roles as Role[]) : []);
const hasAdmin = (name: unknown, users: Users): boolean => {
  try {
    return users.view(String(name)).roles.includes('admin');
  } catch {
    return false;
  }
};

export const GUARDS: Partial<Record<ChannelName, Guard>> = {
  'users:create': {
    operation: 'users:grantAdmin',
    applies: (i) => roles(i).includes('admin'),
    describe: (i) => `Create user ${String(i.name)} with roles ${roles(i).join(', ')}`,
    subject: nameOf,
    target: userTarget,
    precheck: (i, users) => {
      if (users.list().some((u) => u.name === i.name)) throw new AirlockError('CONFLICT', `A user named "${String(i.name)}" already exists.`);
      checkPolicy(String(i.password), String(i.name));
    },
  },
  'users:setRoles': {
    operation: 'users:grantAdmin',
    applies: (i, users) => roles(i).includes('admin') && !hasAdmin(i.name, users),
    describe: (i) => `Give ${String(i.name)} the roles ${roles(i).join(', ')} (adds admin)`,
    subject: nameOf,
    target: userTarget,
    precheck: (i, users) => void users.view(String(i.name)),
  },
  'users:enable': {
    operation: 'users:grantAdmin',
    applies: (i, users) => hasAdmin(i.name, users),
    describe: (i) => `Re-enable administrator ${String(i.name)} with a new password`,
    subject: nameOf,
    target: userTarget,
    precheck: (i, users) => {
      if (!users.view(String(i.name)).disabled) throw new AirlockError('CONFLICT', `"${String(i.name)}" is not disabled.`);
      checkPolicy(String(i.password), String(i.name));
    },
  },
  'provision:disableEgressLockdown': {
    operation: 'provision:disableEgressLockdown',
    applies: () => true,
    describe: (i) => `Remove the egress lockdown of host ${String(i.host)} (it could then reach any address)`,
    target: (i) => (typeof i.host === 'string' ? { kind: 'host', name: i.host } : null),
  },
  'keys:beginReshare': {
    operation: 'keys:reshareRoot',
    applies: () => true,
    target: () => ({ kind: 'hierarchy', name: 'root' }),
    describe: (i) => `Reshare the root key ${String(i.threshold)}-of-${Array.isArray(i.officers) ? i.officers.length : '?'} among ${Array.isArray(i.officers) ? i.officers.join(', ') : '?'}; every current share stops working`,
  },
  'keys:beginRotateRoot': {
    operation: 'keys:rotateRoot',
    applies: () => true,
    target: () => ({ kind: 'hierarchy', name: 'root' }),
    describe: (i) => `Rotate the root key and split the new one ${String(i.threshold)}-of-${Array.isArray(i.officers) ? i.officers.length : '?'} among ${Array.isArray(i.officers) ? i.officers.join(', ') : '?'}`,
  },
  'models:approve': {
    operation: 'models:approvePhi',
    // Only a version classified phi needs the second person; any other is approved directly.
    applies: (i, _users, db) => versionRow(db, i)?.classification === 'phi',
    describe: (i) => `Approve the phi model version ${String(i.name)} ${String(i.version)}${typeof i.digest === 'string' ? ` (${i.digest.slice(0, 19)}…)` : ''}`,
    target: (i) => (typeof i.name === 'string' && typeof i.version === 'string' ? { kind: 'model-version', name: `${i.name}:${i.version}` } : null),
    precheck: (i, _users, db) => {
      const v = versionRow(db, i);
      if (!v) throw new AirlockError('NOT_FOUND', `There is no ${String(i.name)} ${String(i.version)} in the catalog.`);
      if (v.status !== 'staged') throw new AirlockError('CONFLICT', `${String(i.name)} ${String(i.version)} is ${v.status}: only a staged version is approved.`);
      if (v.base_model) {
        const b = db.prepare('SELECT status FROM model_versions WHERE model = ? AND version = ?').get(v.base_model, v.base_version) as { status: string } | undefined;
        if (b?.status !== 'approved') throw new AirlockError('CONFLICT', `${String(i.name)} ${String(i.version)} is built on ${v.base_model} ${v.base_version}, which is not approved: approve the base first.`);
      }
    },
  },
  'grants:add': {
    operation: 'models:grantPhi',
    applies: (i, _users, db) => typeof i.model === 'string' && needsPhiApproval(catalogVersions(db), i.model, selector(i)),
    describe: (i) => `Grant ${String(i.principal)} ${Array.isArray(i.actions) ? i.actions.join(' and ') : '?'} on ${String(i.model)} ${selectorText(i)} (classified phi)`,
    // Bound to the principal's identity and the version the selector names now (models/access/grant-target.ts): approved for this grant, not another.
    target: (i) => ({ kind: 'grant', name: `${String(i.principal)} ${String(i.model)} ${selectorText(i)}` }),
    precheck: (i, _users, db) => {
      const p = db.prepare('SELECT disabled_at FROM access_principals WHERE id = ?').get(String(i.principal)) as { disabled_at: string | null } | undefined;
      if (!p) throw new AirlockError('NOT_FOUND', `There is no principal ${String(i.principal)}: create it first (principals create).`);
      if (p.disabled_at) throw new AirlockError('CONFLICT', `${String(i.principal)} is disabled: it gets no new grants.`);
    },
  },
  'approvals:setPolicy': {
    operation: 'approvals:setPolicy',
    applies: () => true,
    target: (i) => (typeof i.operation === 'string' ? { kind: 'policy', name: i.operation } : null),
    describe: (i) =>
      `Set the two-person policy for ${String(i.operation)}: ${i.required ? 'required' : 'NOT required'}, approvers ${roles({ roles: i.approverRoles }).join(' or ')}, expires after ${String(i.expiryMinutes)} min`,
  },
};

/** A catalog version named by a call's `name` and `version`, as the database has it now. */
function versionRow(db: Db, i: Record<string, unknown>): { classification: string; status: string; base_model: string | null; base_version: string | null } | undefined {
  if (typeof i.name !== 'string' || typeof i.version !== 'string') return undefined;
  return db.prepare('SELECT classification, status, base_model, base_version FROM model_versions WHERE model = ? AND version = ?').get(i.name, i.version) as
    | { classification: string; status: string; base_model: string | null; base_version: string | null }
    | undefined;
}

/** The operation a call triggers, or null when it runs without a second person whatever the policy says. */
export function operationFor(name: ChannelName, input: Record<string, unknown>, users: Users, db: Db): ApprovalOperation | null {
  const g = GUARDS[name];
  return g && g.applies(input, users, db) ? g.operation : null;
}

export function guardOf(name: ChannelName): Guard | undefined {
  return GUARDS[name];
}

/** Channels that declare an operation in the contract (`twoPerson`), by operation. */
export function channelsByOperation(): Map<string, ChannelName[]> {
  const m = new Map<string, ChannelName[]>();
  for (const [name, def] of Object.entries(channels) as Array<[ChannelName, ChannelDef]>) {
    if (def.twoPerson) m.set(def.twoPerson, [...(m.get(def.twoPerson) ?? []), name]);
  }
  return m;
}

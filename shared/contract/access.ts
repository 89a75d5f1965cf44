import { z } from 'zod';
import { channel } from './channel';
import { HostName, NoInput, UserName, visibleText } from './common';

/**
 * Who may pull or invoke which model version (issue 13, docs/models.md "Principals, grants and
 * the policy"): principals (applications with a credential Airlock generates and shows once; teams
 * of people, each member with a credential of their own), grants (principal × model × version
 * selector × actions × expiry × rate limit), enclaves of hosts (one may be PHI), and the signed
 * policy compiled from them and pushed to every host's gate (policy-format in docs/gate.md).
 *
 * Four areas share this file because they are one feature: `principals:*`, `grants:*`,
 * `enclaves:*`, `policy:*` (shared/contract/index.ts spreads each).
 */

/** The name part of a principal id: lowercase, as model names (it appears in access logs and metrics labels). */
export const PrincipalName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9_][a-z0-9_.-]*$/, 'lower-case letters, digits, _ . - ; starting with a letter, digit or _');
/** `app:<name>` (an application), `team:<name>`, `user:<name>` (a team member). */
export const PrincipalId = z
  .string()
  .min(5)
  .max(69)
  .regex(/^(app|team|user):[a-z0-9_][a-z0-9_.-]*$/, 'app:NAME, team:NAME or user:NAME');
export const PrincipalKind = z.enum(['application', 'team', 'user']);
export type PrincipalKind = z.infer<typeof PrincipalKind>;
export const GrantId = z.string().regex(/^gr-[0-9a-f]{16}$/, 'a grant id (gr-…)');
export const EnclaveName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lower-case letters, digits, _ . - ; starting with a letter or digit');
const ModelName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/, "a catalog model name (lower-case letters and digits joined by '.', '_', '__' or '-')");
const VersionName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, "a catalog version (letters, digits, '_', '.', '-')");
const Reason = visibleText(z.string().trim().min(3, 'give a reason (at least 3 characters)').max(500));
const Description = visibleText(z.string().max(500));

export const GrantAction = z.enum(['pull', 'invoke']);
export type GrantAction = z.infer<typeof GrantAction>;
/** `{ exact: "1.2.0" }`, or `"latest-approved"`: compiled to the newest approved version at each policy. */
export const VersionSelector = z.union([z.object({ exact: VersionName }).strict(), z.literal('latest-approved')]);
export type VersionSelector = z.infer<typeof VersionSelector>;

export const Principal = z.object({
  id: PrincipalId,
  kind: PrincipalKind,
  name: z.string(),
  description: z.string(),
  /** Teams: their members' principals (`user:<name>`); others: []. */
  members: z.array(PrincipalId),
  /** Users: the teams they are in; others: []. */
  teams: z.array(PrincipalId),
  /** When the current credential was issued (null for a team, which has none). Never the credential. */
  credentialIssuedAt: z.string().nullable(),
  /** How many credentials it has had (1 after create, +1 per rotation). */
  credentialGeneration: z.number().int(),
  disabled: z.boolean(),
  disabledAt: z.string().nullable(),
  disabledBy: z.string().nullable(),
  createdAt: z.string(),
  createdBy: z.string(),
});
export type Principal = z.infer<typeof Principal>;

/** A credential as handed over once: `alk_` + base64url(32 random bytes). The console keeps only its SHA-256. */
export const IssuedCredential = z.object({ principal: PrincipalId, credential: z.string().regex(/^alk_[A-Za-z0-9_-]{43}$/) });
export type IssuedCredential = z.infer<typeof IssuedCredential>;

export const HostPolicyState = z.enum(['ok', 'pending', 'unreachable', 'rejected']);
export type HostPolicyState = z.infer<typeof HostPolicyState>;

/** One host's view of the policy: what the console delivered, what the gate says it enforces. */
export const HostPolicy = z.object({
  host: HostName,
  enclave: z.string(),
  phi: z.boolean(),
  /** ok: the current version is on the host (and the gate, if there is one, enforces it); pending: not yet delivered or not yet loaded; unreachable: the host did not answer; rejected: the host or its gate refused it, or holds something else. */
  state: HostPolicyState,
  deliveredVersion: z.number().int().nullable(),
  /** From the gate's /run/airlock-gate/status.json (null without a gate, or before it loaded one). */
  enforcingVersion: z.number().int().nullable(),
  /** Since when the host has been in this state. */
  since: z.string().nullable(),
  lastError: z.string().nullable(),
  checkedAt: z.string().nullable(),
});
export type HostPolicy = z.infer<typeof HostPolicy>;

/** The policy as pushed: its version and where it is. */
export const PolicyPush = z.object({
  version: z.number().int().nullable(),
  sha256: z.string().nullable(),
  /** Whether this call issued a new version (the grants, hosts or keys changed). */
  changed: z.boolean(),
  hosts: z.array(HostPolicy),
  /** "policy v42 on 19/20 hosts; gpu-07 unreachable since 2026-12-08T10:42:00.000Z". */
  summary: z.string(),
});
export type PolicyPush = z.infer<typeof PolicyPush>;

export const Grant = z.object({
  id: GrantId,
  principal: PrincipalId,
  model: z.string(),
  selector: VersionSelector,
  actions: z.array(GrantAction),
  expiresAt: z.string().nullable(),
  /** Whole days left (floor), negative once expired; null without expiry. For warnings. */
  expiresInDays: z.number().int().nullable(),
  requestsPerMinute: z.number().int().nullable(),
  reason: z.string().nullable(),
  createdAt: z.string(),
  createdBy: z.string(),
  /** The approval request (two-person rule, models:grantPhi) this grant was executed from, if any. */
  approval: z.number().int().nullable(),
  /** Whether it may resolve to a `phi` version (it passed the two-person rule). */
  phiApproved: z.boolean(),
  revokedAt: z.string().nullable(),
  revokedBy: z.string().nullable(),
  revokedReason: z.string().nullable(),
  /** The version the selector resolves to now, or null. */
  resolved: z.object({ version: z.string(), digest: z.string(), classification: z.string() }).nullable(),
  /** active: in the next policy; else why not. */
  status: z.enum(['active', 'expired', 'revoked', 'unresolved', 'needs-approval', 'principal-disabled']),
  /** In words, when not active. */
  why: z.string().nullable(),
});
export type Grant = z.infer<typeof Grant>;

export const Enclave = z.object({
  name: EnclaveName,
  phi: z.boolean(),
  description: z.string(),
  hosts: z.array(HostName),
  createdAt: z.string(),
  createdBy: z.string(),
});
export type Enclave = z.infer<typeof Enclave>;

export const PolicyStatus = z.object({
  version: z.number().int().nullable(),
  sha256: z.string().nullable(),
  issuedAt: z.string().nullable(),
  /** keyFingerprint of the policy.signing key that signed it. */
  issuer: z.string().nullable(),
  /** The pinned public key hosts verify with (SPKI PEM), null before the first policy. */
  publicKey: z.string().nullable(),
  principals: z.number().int(),
  grants: z.number().int(),
  hosts: z.array(HostPolicy),
  summary: z.string(),
});
export type PolicyStatus = z.infer<typeof PolicyStatus>;

const READ = ['admin', 'officer', 'auditor'] as const;
const MANAGE = ['admin'] as const;
const GRANTERS = ['admin', 'officer'] as const;

export const CreatePrincipal = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('application'), name: PrincipalName, description: Description.optional() }).strict(),
  z.object({ kind: z.literal('team'), name: PrincipalName, members: z.array(UserName).min(1).max(200), description: Description.optional() }).strict(),
]);

export const principals = {
  'principals:create': channel({
    in: CreatePrincipal,
    out: z.object({ principal: Principal, credentials: z.array(IssuedCredential) }),
    roles: MANAGE,
    stepUp: true,
    target: (i) => `${i.kind === 'application' ? 'app' : 'team'}:${i.name}`,
    summary: 'Create an application (its credential is shown once) or a team of people (each new member gets a credential, shown once)',
  }),
  'principals:list': channel({
    in: z.object({ kind: PrincipalKind.optional(), includeDisabled: z.boolean().optional() }).strict(),
    out: z.array(Principal),
    roles: READ,
    summary: 'List principals (applications, teams, team members); never a credential',
  }),
  'principals:rotateCredential': channel({
    in: z.object({ id: PrincipalId }).strict(),
    out: z.object({ principal: Principal, credential: IssuedCredential, policy: PolicyPush }),
    roles: MANAGE,
    stepUp: true,
    target: 'id',
    summary: 'Issue a new credential (shown once); the old one stops working with the policy this pushes',
  }),
  'principals:disable': channel({
    in: z.object({ id: PrincipalId, reason: Reason }).strict(),
    out: z.object({ principal: Principal, policy: PolicyPush }),
    roles: MANAGE,
    stepUp: true,
    target: 'id',
    summary: 'Disable a principal: its grants leave the policy, which is pushed',
  }),
} as const;

export const grants = {
  'grants:add': channel({
    in: z
      .object({
        principal: PrincipalId,
        model: ModelName,
        version: VersionSelector,
        actions: z.array(GrantAction).min(1).max(2),
        expiresAt: z.iso.datetime({ offset: true }).nullable(),
        requestsPerMinute: z.number().int().min(1).max(1_000_000).optional(),
        reason: Reason.optional(),
      })
      .strict(),
    out: z.object({ grant: Grant, policy: PolicyPush }),
    roles: GRANTERS,
    stepUp: true,
    twoPerson: 'models:grantPhi',
    target: (i) => `${i.principal}→${i.model}`,
    summary: 'Grant a principal pull and/or invoke on a model version (exact or latest approved); a phi version needs a second person',
  }),
  'grants:list': channel({
    in: z.object({ principal: PrincipalId.optional(), model: ModelName.optional(), includeRevoked: z.boolean().optional() }).strict(),
    out: z.array(Grant),
    roles: READ,
    summary: 'List grants, by principal or model, with what each resolves to and days to expiry',
  }),
  'grants:revoke': channel({
    in: z.object({ id: GrantId, reason: Reason }).strict(),
    out: z.object({ grant: Grant, policy: PolicyPush }),
    roles: GRANTERS,
    stepUp: true,
    target: 'id',
    summary: 'Revoke a grant; the policy without it is pushed to every host',
  }),
} as const;

export const enclaves = {
  'enclaves:create': channel({
    in: z.object({ name: EnclaveName, phi: z.boolean(), description: Description.optional() }).strict(),
    out: Enclave,
    roles: MANAGE,
    target: 'name',
    summary: 'Create an enclave of hosts; a PHI enclave may serve phi versions',
  }),
  'enclaves:list': channel({
    in: NoInput,
    out: z.array(Enclave),
    roles: READ,
    summary: 'List enclaves and their hosts (unassigned hosts are in "general")',
  }),
  'enclaves:assign': channel({
    in: z.object({ host: HostName, enclave: EnclaveName }).strict(),
    out: z.object({ host: HostName, enclave: EnclaveName, policy: PolicyPush }),
    roles: MANAGE,
    stepUp: true,
    target: 'host',
    summary: 'Put a host in an enclave (it decides whether the host may serve phi versions); the policy is pushed',
  }),
} as const;

export const policy = {
  'policy:status': channel({
    in: z.object({ check: z.boolean().optional() }).strict(),
    out: PolicyStatus,
    roles: READ,
    summary: 'The current policy and, per host, the version delivered and enforced (with check: read from the hosts now)',
  }),
  'policy:push': channel({
    in: z.object({ repin: z.array(HostName).max(1000).optional() }).strict(),
    out: PolicyPush,
    roles: GRANTERS,
    stepUp: true,
    summary: 'Recompile the policy if anything changed and push it to every host (pending hosts retried); --repin replaces a host’s pinned key',
  }),
} as const;

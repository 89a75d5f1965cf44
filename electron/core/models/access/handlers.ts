import type { Grant, PolicyPush } from '../../../../shared/contract/access';
import { AirlockError } from '../../../../shared/domain/errors';
import type { AuditTrail } from '../../audit/audit';
import type { Db } from '../../db/db';
import type { AreaHandlers, CallContext } from '../../dispatch';
import type { KeyRegistry } from '../../keys/registry';
import { catalogVersions, compileInputFrom, evaluate, needsPhiApproval, PolicyIssuer, selectorOf } from './policy';
import { PolicyPropagation, summarize, type PropagationHosts } from './propagate';
import { DEFAULT_POLICY_RETRY_MS, PolicyRetry } from './retry';
import { AccessStore, type GrantRow } from './store';

/**
 * The access area as the composition root builds it: the records, the policy issuer, the
 * propagation, and the handlers of the four channel areas (principals, grants, enclaves, policy).
 * Every change that can change the policy (a grant added or revoked, a credential rotated, a
 * principal disabled, a host moved to another enclave) compiles it and pushes it to every enrolled
 * host in the same call, with the caller's SSH credentials; the outcome event of the call records
 * the policy version and each host's result (never a credential: those are only in the output).
 */
export function createAccessArea(d: {
  db: Db;
  registry: KeyRegistry;
  hosts: PropagationHosts;
  now: () => Date;
  random: (n: number) => Buffer;
  timeoutMs?: number;
  concurrency?: number;
  /** Where the background retry records what it did (absent: no retry). */
  audit?: AuditTrail;
  /** How often pending and unreachable hosts are retried (default 60 s; 0: never). */
  retryMs?: number;
}) {
  const store = new AccessStore({ db: d.db, now: d.now, random: d.random });
  const enrolled = () => store.hostEnclaves().filter((h) => h.confirmed);
  const issuer = new PolicyIssuer({
    db: d.db,
    registry: d.registry,
    now: d.now,
    input: compileInputFrom(d.db, { principals: () => store.rows(), members: () => store.members(), grants: () => store.grants(), hosts: enrolled }),
  });
  const propagation = new PolicyPropagation({
    db: d.db,
    hosts: d.hosts,
    now: d.now,
    ...(d.timeoutMs ? { timeoutMs: d.timeoutMs } : {}),
    ...(d.concurrency ? { concurrency: d.concurrency } : {}),
    issuedVersionOf: (sha) => (d.db.prepare('SELECT version FROM access_policies WHERE sha256 = ?').pluck().get(sha) as number | undefined) ?? null,
  });

  // Pending and unreachable hosts retried in the background, audited as `policy:retry` events.
  const retry = new PolicyRetry({
    intervalMs: d.audit ? (d.retryMs ?? DEFAULT_POLICY_RETRY_MS) : 0,
    run: async (c, auth) => {
      const latest = issuer.latest();
      const key = issuer.publicKey();
      if (!latest || !key) return;
      const hosts = enrolled();
      const todo = propagation.states(hosts).filter((h) => h.state === 'pending' || h.state === 'unreachable' || (h.state === 'ok' && h.deliveredVersion !== latest.version));
      if (todo.length === 0) return;
      const outcomes = await propagation.push(latest, key, todo.map((h) => h.host), { auth, signal: new AbortController().signal });
      d.audit?.append({
        actor: c.actor,
        principal: c.principal,
        roles: c.roles,
        session: c.sessionRef,
        shell: c.shell,
        channel: 'policy:retry',
        phase: 'outcome',
        target: null,
        params: { policy: { version: latest.version, sha256: latest.sha256 }, hosts: outcomes.map((o) => ({ host: o.host, state: o.state, error: o.error, wrotePolicy: o.wrote.policy })) },
        outcome: outcomes.every((o) => o.state === 'ok') ? 'ok' : 'error',
        errorCode: null,
      });
    },
  });
  retry.start();
  /** An administrator's or officer's call arms the retry with its session's credentials (getters). */
  const arm = (ctx: CallContext) => {
    const s = ctx.requireSession();
    if (!s.roles.some((r) => r === 'admin' || r === 'officer')) return;
    const c = ctx.caller();
    retry.arm({ actor: c.actor, principal: c.principal ?? null, roles: c.roles, sessionRef: c.sessionRef, shell: c.shell, auth: () => ctx.sshAuth() });
  };

  /** Compile (a new version only if something changed), push to every enrolled host, audit the result per host. */
  const repush = async (ctx: CallContext, repin: string[] = []): Promise<PolicyPush> => {
    arm(ctx);
    const actor = ctx.actor();
    const { policy, changed } = issuer.ensure(actor.vaultKey, actor.name);
    const hosts = enrolled();
    const unknown = repin.filter((h) => !hosts.some((x) => x.host === h));
    if (unknown.length) throw new AirlockError('NOT_FOUND', `Not an enrolled host: ${unknown.join(', ')} (re-pin names hosts of the inventory whose key is confirmed).`);
    const outcomes = await propagation.push(policy, issuer.publicKey()!, hosts.map((h) => h.host), { auth: ctx.sshAuth(), signal: ctx.signal, repin: new Set(repin) });
    ctx.auditDetail({
      policy: { version: policy.version, sha256: policy.sha256, changed, issuer: policy.issuer },
      hosts: outcomes.map((o) => ({ host: o.host, state: o.state, error: o.error, wroteKey: o.wrote.key, wrotePolicy: o.wrote.policy, ...(o.replacedForeign ? { replacedForeign: true } : {}), ...(repin.includes(o.host) ? { repinned: true } : {}) })),
    });
    const states = propagation.states(hosts);
    return { version: policy.version, sha256: policy.sha256, changed, hosts: states, summary: summarize(policy.version, states) };
  };

  const grantView = (g: GrantRow): Grant => {
    const now = d.now();
    const e = evaluate(g, new Map(store.rows().map((p) => [p.id, p])), catalogVersions(d.db), now);
    return {
      id: g.id,
      principal: g.principal,
      model: g.model,
      selector: selectorOf(g),
      actions: g.actions.split(',') as Grant['actions'],
      expiresAt: g.expires_at,
      expiresInDays: g.expires_at === null ? null : Math.floor((Date.parse(g.expires_at) - now.getTime()) / 86_400_000),
      requestsPerMinute: g.requests_per_minute,
      reason: g.reason,
      createdAt: g.created_at,
      createdBy: g.created_by,
      approval: g.approval_id,
      phiApproved: g.phi_allowed === 1,
      revokedAt: g.revoked_at,
      revokedBy: g.revoked_by,
      revokedReason: g.revoked_reason,
      resolved: e.resolved,
      status: e.status,
      why: e.why,
    };
  };

  const principalsHandlers = (): AreaHandlers<'principals'> => ({
    'principals:create': async (ctx, i) => {
      const by = ctx.actor().name;
      const r = i.kind === 'application' ? store.createApplication(i.name, i.description ?? '', by) : store.createTeam(i.name, i.members, i.description ?? '', by);
      // Which credentials were issued, by principal and generation: never the credential.
      ctx.auditDetail({ principal: r.principal.id, credentialsIssued: r.credentials.map((c) => c.principal) });
      // Known to the gates at once: its credential is 403 (not granted) rather than 401 (unknown) until a grant.
      await repush(ctx);
      return r;
    },
    'principals:list': (_ctx, i) => store.principals({ kind: i.kind, includeDisabled: i.includeDisabled }),
    'principals:rotateCredential': async (ctx, i) => {
      const r = store.rotateCredential(i.id);
      ctx.auditDetail({ principal: i.id, credentialGeneration: r.principal.credentialGeneration });
      const policy = await repush(ctx);
      return { principal: r.principal, credential: { principal: i.id, credential: r.credential }, policy };
    },
    'principals:disable': async (ctx, i) => {
      const principal = store.disable(i.id, i.reason, ctx.actor().name);
      return { principal, policy: await repush(ctx) };
    },
  });

  const grantsHandlers = (): AreaHandlers<'grants'> => ({
    'grants:add': async (ctx, i) => {
      // The dispatcher has already applied the two-person rule (models:grantPhi) when this grant can
      // reach a phi version; a grant that could not then may never widen to one later.
      const phiAllowed = needsPhiApproval(catalogVersions(d.db), i.model, i.version);
      const row = store.addGrant(
        { principal: i.principal, model: i.model, version: i.version, actions: i.actions, expiresAt: i.expiresAt, requestsPerMinute: i.requestsPerMinute, reason: i.reason },
        ctx.actor().name,
        { phiAllowed, approvalId: ctx.approval?.id ?? null },
      );
      ctx.auditDetail({ grant: row.id, phiApproved: phiAllowed });
      const policy = await repush(ctx);
      return { grant: grantView(row), policy };
    },
    'grants:list': (_ctx, i) =>
      store
        .grants()
        .filter((g) => (i.principal ? g.principal === i.principal : true) && (i.model ? g.model === i.model : true) && (i.includeRevoked ? true : g.revoked_at === null))
        .map(grantView),
    'grants:revoke': async (ctx, i) => {
      const row = store.revokeGrant(i.id, i.reason, ctx.actor().name);
      const policy = await repush(ctx);
      return { grant: grantView(row), policy };
    },
  });

  const enclavesHandlers = (): AreaHandlers<'enclaves'> => ({
    'enclaves:create': (ctx, i) => store.createEnclave(i.name, i.phi, i.description ?? '', ctx.actor().name),
    'enclaves:list': () => store.enclaves(),
    'enclaves:assign': async (ctx, i) => {
      store.assign(i.host, i.enclave, ctx.actor().name);
      return { host: i.host, enclave: i.enclave, policy: await repush(ctx) };
    },
  });

  const policyHandlers = (): AreaHandlers<'policy'> => ({
    'policy:status': async (ctx, i) => {
      const latest = issuer.latest();
      const hosts = enrolled();
      if (i.check) {
        // Reaching the hosts is an administrator's or officer's act (as hosts:scan); an auditor reads the record.
        if (!ctx.requireSession().roles.some((r) => r === 'admin' || r === 'officer')) {
          throw new AirlockError('FORBIDDEN', 'Reading every host now (check) is for administrators and officers; without check you see the state last recorded.');
        }
        const outcomes = await propagation.check(latest, issuer.publicKey(), hosts.map((h) => h.host), { auth: ctx.sshAuth(), signal: ctx.signal });
        ctx.auditDetail({ checked: outcomes.map((o) => ({ host: o.host, state: o.state, error: o.error })) });
      }
      const states = propagation.states(hosts);
      const body = latest ? (JSON.parse(latest.body) as { principals: unknown[]; grants: unknown[] }) : null;
      return {
        version: latest?.version ?? null,
        sha256: latest?.sha256 ?? null,
        issuedAt: latest?.issuedAt ?? null,
        issuer: latest?.issuer ?? null,
        publicKey: latest ? issuer.publicKey() : null,
        principals: body?.principals.length ?? 0,
        grants: body?.grants.length ?? 0,
        hosts: states,
        summary: summarize(latest?.version ?? null, states),
      };
    },
    'policy:push': (ctx, i) => repush(ctx, i.repin ?? []),
  });

  return {
    store,
    issuer,
    propagation,
    /**
     * Compile and push after a change this area does not make itself: a catalog version approved,
     * deprecated or revoked (latest-approved grants resolve anew; a revoked version leaves the
     * policy). The catalog's status channels call it with their call's context.
     */
    repush,
    retry,
    principalsHandlers,
    grantsHandlers,
    enclavesHandlers,
    policyHandlers,
  };
}

/** The handlers of the four areas, each exactly its own channels (electron/core/area-handlers.test.ts). */
export const accessHandlers = (a: ReturnType<typeof createAccessArea>) => ({ ...a.principalsHandlers(), ...a.grantsHandlers(), ...a.enclavesHandlers(), ...a.policyHandlers() });

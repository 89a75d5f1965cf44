import crypto from 'node:crypto';
import path from 'node:path';
import type { EventPayload } from '../../shared/contract/index';
import { AirlockError, type Result } from '../../shared/domain/errors';
import { Approvals } from './approvals/approvals';
import { ApprovalWatch } from './approvals/watch';
import { keyFingerprint } from './audit/keys';
import { createAuditService, openAuditedDatabase } from './audit/service';
import { Identity } from './session/signin';
import { DEFAULT_TOTP_ROLES, restrictionFor } from './session/policy';
import { Sessions } from './session/sessions';
import { Broadcaster } from './broadcast';
import { eventChecker, FLOW_LIMITS, Outbox } from './outbox';
import { IdentitySettings } from './settings/settings';
import { DEFAULT_LOCKOUT, Throttle, userKey } from './session/throttle';
import { Users } from './users/users';
import { secureDataDir } from './db/data-dir';
import { openDatabase } from './db/db';
import { Dispatcher, Operations, sessionRef, toShape, type ApprovedRun, type CallContext, type Handlers } from './dispatch';
import { HostsService } from './hosts/service';
import { Attestations } from './attest/attest';
import { Provisioner, type Caller } from './provision/engine';
import { Playbooks } from './provision/playbooks';
import { DEFAULT_MEDIA_ROOTS, OfflineStore } from './store/store';
import { fingerprintOfLine } from './ssh/fingerprint';
import { generateIdentity } from './ssh/identity';
import type { SshAuth } from './ssh/connection';
import { TerminalService } from './terminal/service';
import { DEFAULT_KDF, type KdfParams } from './vault/crypto';
import { Vault } from './vault/vault';
import type { ClientContext, Core, CoreConfig } from './types';

export const DB_FILE = 'airlock.db';
const IDENTITY_SECRET = 'ssh.identity.private';
const IDENTITY_PUBLIC = 'ssh.identity.public';

/**
 * The composition root: every service is built here, by hand, from the config.
 * Nothing in the core is a module-level singleton; tests build the same graph on a temp dir.
 */
export async function createCore(config: CoreConfig): Promise<Core> {
  const clock = config.clock ?? (() => new Date());
  const random = config.random ?? ((n: number) => crypto.randomBytes(n));
  const nowIso = () => clock().toISOString();
  const kdf: KdfParams = config.kdf ? { alg: 'argon2id', parallelism: 1, ...config.kdf } : DEFAULT_KDF;
  const version = config.version ?? '0.1.0';

  // 0700, ours, files 0600 — or refused (db/data-dir.ts); from here on, its real path.
  const dataDir = secureDataDir(config.dataDir, DB_FILE);
  const dbFile = path.join(dataDir, DB_FILE);
  const db = openAuditedDatabase(dbFile, (f) => openDatabase(f));

  const vault = new Vault({ db, kdf, random, now: nowIso });
  // ---- audit: the trail, its keys (unsealed at sign-in), checkpoints, verify, export, syslog ----
  const auditService = createAuditService({ db, dbFile, dataDir, vault, clock, random, config });
  const audit = auditService.trail;
  // ---- identity: users, sessions, lockout, TOTP, settings, the two-person rule ----
  const requireTotpFor = [...(config.requireTotpFor ?? DEFAULT_TOTP_ROLES)];
  const lockout = {
    threshold: config.lockout?.threshold ?? DEFAULT_LOCKOUT.threshold,
    baseMs: (config.lockout?.baseSeconds ?? DEFAULT_LOCKOUT.baseMs / 1000) * 1000,
    maxMs: (config.lockout?.maxSeconds ?? DEFAULT_LOCKOUT.maxMs / 1000) * 1000,
  };
  const throttle = new Throttle({ db, now: () => clock().getTime(), policy: lockout });
  const settings = new IdentitySettings({
    db,
    defaults: { sessionIdleMinutes: config.sessionIdleMinutes ?? 30, stepUpMinutes: config.stepUpMinutes ?? 5 },
    lockout,
    requireTotpFor,
  });
  const users = new Users({ db, vault, kdf, now: nowIso, lockedUntil: (name) => throttle.lockedUntilIso(userKey(name)) });
  const sessions = new Sessions({
    idleMs: () => settings.idleMs(),
    stepUpMs: () => settings.stepUpMs(),
    now: () => clock().getTime(),
    random,
    check: (userId, uid, epoch) => {
      const st = users.state(userId);
      if (!st || st.uid !== uid || st.disabled || st.epoch !== epoch) return null;
      return { user: st.name, roles: st.roles, restriction: restrictionFor(st, requireTotpFor) };
    },
  });
  const identity = new Identity({ db, users, vault, sessions, throttle, now: () => clock().getTime(), random, requireTotpFor });
  const approvals = new Approvals({ db, vault, users, now: clock });
  const ops = new Operations();
  const hosts = new HostsService({
    db,
    now: clock,
    timeoutMs: config.sshTimeoutMs ?? 15_000,
    concurrency: config.scanConcurrency ?? 32,
    poolIdleMs: config.sshPoolIdleMs ?? 30_000,
  });
  const terminals = new TerminalService({ hosts, random });
  // ---- provisioning: playbooks, the offline store, runs, attestations ----
  const store = new OfflineStore({ db, dataDir, mediaRoots: config.mediaRoots ?? DEFAULT_MEDIA_ROOTS, now: nowIso });
  const playbooks = new Playbooks({ db, now: nowIso });
  const attestations = new Attestations({ db, vault, now: nowIso });
  const provisioner = new Provisioner({
    db,
    hosts,
    store,
    playbooks,
    attestations,
    audit,
    now: clock,
    timeoutMs: config.sshTimeoutMs ?? 15_000,
    concurrency: config.provisionConcurrency ?? 8,
  });
  /** Who runs a provisioning operation, with what credentials, reporting progress to which client. */
  const callerOf = (ctx: CallContext): Caller => {
    const s = ctx.requireSession();
    return {
      actor: s.user,
      principal: s.uid,
      roles: s.roles,
      sessionRef: sessionRef(s.id),
      shell: `${ctx.client.shell}:${ctx.client.source}`,
      vaultKey: sessions.vaultKey(s.id),
      auth: sshAuth(s.id),
      signal: ctx.signal,
      // Caller.emit (provision/engine.ts) names its event as a string: the client's outbox checks it against the contract.
      emit: (event, payload) => ctx.client.emit(event as 'provision:progress', payload as EventPayload<'provision:progress'>),
    };
  };

  const meta = {
    get: (k: string) => (db.prepare('SELECT value FROM meta WHERE key = ?').get(k) as { value: string } | undefined)?.value ?? null,
    set: (k: string, v: string) => db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(k, v),
  };

  /** Credentials for SSH: Airlock's own key (unsealed with this session's vault key), and the agent if configured. */
  const sshAuth = (sessionId: string): SshAuth => {
    const key = vault.getSecret(sessions.vaultKey(sessionId), IDENTITY_SECRET);
    return { privateKey: key?.toString('utf8'), agent: config.sshAgent ?? null };
  };

  /** A session now holds the vault key: the audit keys are unsealed for the process (see audit/service.ts). */
  const auditSignedIn = (client: ClientContext) => {
    if (client.session) auditService.signedIn(sessions.vaultKey(client.session.id), client.session.roles);
  };

  /** The signed-in user acting in a handler, with the vault key their session holds. */
  const actorOf = (ctx: CallContext) => {
    const s = ctx.requireSession();
    return { id: sessions.userId(s.id), uid: sessions.uid(s.id), name: s.user, roles: s.roles, vaultKey: sessions.vaultKey(s.id) };
  };
  const viewerOf = (ctx: CallContext) => {
    const s = ctx.requireSession();
    return { id: sessions.userId(s.id), uid: sessions.uid(s.id), name: s.user, roles: s.roles };
  };
  /**
   * An approved run: the object must still be the one approved (checked here, after the request
   * event was written); for accounts, the state is passed on and checked again inside the change's
   * own transaction.
   */
  const approvedAccount = (ctx: CallContext) => {
    approvals.assertTarget(ctx.approval ?? undefined);
    const t = ctx.approval?.target;
    return t?.kind === 'user' && t.state ? t.state : undefined;
  };
  /** A user lost their account or credentials: their sessions here end, their open requests are cancelled. */
  const revoke = (userId: number, opts: { cancelRequests: boolean }) => {
    sessions.closeUser(userId);
    if (opts.cancelRequests) approvals.cancelOpenBy(userId);
  };

  const handlers: Handlers = {
    'session:status': (ctx) => {
      // Asking is not activity: a UI polling status must not keep an idle session alive.
      const s = sessions.get(ctx.client.session?.id, { touch: false });
      const times = s ? sessions.times(s.id) : null;
      const set = settings.get();
      let user = null;
      if (s && times) {
        const userId = sessions.userId(s.id);
        user = {
          name: s.user,
          roles: s.roles,
          restriction: s.restriction ?? null,
          totp: { enrolled: identity.enrolled(userId), required: identity.totpRequiredFor(s.roles), recoveryCodesLeft: identity.recoveryCodesLeft(userId) },
          stepUpUntil: times.stepUpUntil === null ? null : new Date(times.stepUpUntil).toISOString(),
          lockAt: new Date(times.lockAt).toISOString(),
        };
      }
      return {
        setupRequired: users.count() === 0,
        user,
        shell: config.shell,
        version,
        now: nowIso(),
        idleMinutes: set.sessionIdleMinutes,
        stepUpMinutes: set.stepUpMinutes,
        totpPolicy: { requiredFor: requireTotpFor },
      };
    },
    'session:setup': async (ctx, input) => {
      const u = await users.createFirst(input.admin, input.password, (vaultKey) => {
        const id = generateIdentity(`airlock@${input.admin}`);
        vault.putSecret(vaultKey, IDENTITY_SECRET, Buffer.from(id.privateKey, 'utf8'));
        meta.set(IDENTITY_PUBLIC, id.publicKey);
        auditService.sealAtSetup(vaultKey);
      });
      if (ctx.client.session) sessions.close(ctx.client.session.id);
      users.recordLogin(u.id);
      ctx.client.session = sessions.open({ ...u, restriction: identity.restrictionOf(u.id) });
      auditSignedIn(ctx.client);
      return users.view(u.name);
    },
    'session:login': async (ctx, input) => {
      const v = await identity.login(ctx.client, input);
      auditSignedIn(ctx.client);
      return v;
    },
    'session:logout': (ctx) => {
      terminals.closeAllFor(ctx.client);
      sessions.close(ctx.requireSession().id);
      ctx.client.session = null;
      return {};
    },
    'session:stepUp': (ctx, input) => identity.stepUp(ctx.client, ctx.requireSession(), input),
    'session:changePassword': async (ctx, input) => {
      await identity.changePassword(ctx.client, ctx.requireSession(), input.oldPassword, input.newPassword);
      return {};
    },
    'totp:begin': (ctx) => identity.totpBegin(ctx.requireSession()),
    'totp:confirm': (ctx, input) => identity.totpConfirm(ctx.requireSession(), input.code),
    'totp:recoveryCodes': (ctx) => identity.regenerateRecoveryCodes(ctx.requireSession()),
    'totp:disable': (ctx) => (identity.totpDisable(ctx.requireSession()), {}),
    'users:list': () => users.list(),
    'users:create': (ctx, input) => {
      approvedAccount(ctx);
      const a = actorOf(ctx);
      return users.create(a, input.name, input.password, input.roles, a.vaultKey, { mustChangePassword: input.mustChangePassword });
    },
    'users:setRoles': (ctx, input) => users.setRoles(input.name, input.roles, approvedAccount(ctx)),
    'users:disable': (ctx, input) => {
      const v = users.disable(actorOf(ctx), input.name);
      revoke(users.row(input.name).id, { cancelRequests: true });
      return v;
    },
    'users:enable': (ctx, input) => users.enable(input.name, input.password, actorOf(ctx).vaultKey, approvedAccount(ctx)),
    'users:resetPassword': async (ctx, input) => {
      const a = actorOf(ctx);
      const v = await users.resetPassword(a, input.name, input.password, a.vaultKey);
      revoke(users.row(input.name).id, { cancelRequests: false });
      return v;
    },
    'users:resetTotp': (ctx, input) => {
      const v = users.resetTotp(actorOf(ctx), input.name);
      revoke(users.row(input.name).id, { cancelRequests: false });
      return v;
    },
    'users:unlock': (_ctx, input) => {
      const v = users.view(input.name);
      throttle.clear(userKey(input.name));
      // In the browser shell every tab signs in from 127.0.0.1: a source lock there locks everyone
      // out, so an administrator's unlock lifts the loopback sources too (remote sources stay locked).
      throttle.clearLoopbackSources();
      return { ...v, lockedUntil: null };
    },
    'users:remove': (ctx, input) => {
      const id = users.remove(actorOf(ctx), input.name);
      revoke(id, { cancelRequests: true });
      throttle.clear(userKey(input.name));
      return {};
    },
    'settings:get': () => settings.get(),
    'settings:set': (_ctx, input) => settings.set(input),
    'approvals:list': (ctx, input) => approvals.list(viewerOf(ctx), input),
    'approvals:get': (ctx, input) => approvals.get(viewerOf(ctx), input.id),
    'approvals:request': (ctx, input) => approvals.file(actorOf(ctx), input.channel, input.input, input.reason),
    'approvals:approve': (ctx, input) => approvals.approve(viewerOf(ctx), input.id, input.reason),
    'approvals:reject': (ctx, input) => approvals.reject(viewerOf(ctx), input.id, input.reason),
    'approvals:cancel': (ctx, input) => approvals.cancel(viewerOf(ctx), input.id),
    'approvals:execute': async (ctx, input) => {
      const actor = actorOf(ctx);
      const claim = approvals.claim(actor, input.id);
      // Through the dispatcher, so the approved call is checked (role, step-up, exact input) and audited as itself.
      const run: ApprovedRun = { approval: { id: claim.id, channel: claim.channel, digest: claim.digest, target: claim.target }, ran: false };
      let r: Result<unknown>;
      try {
        r = await dispatcher.dispatch(ctx.client, claim.channel, claim.input, run);
      } catch (e) {
        r = { ok: false, error: toShape(e) };
      }
      if (run.ran) approvals.finish(claim.id, r.ok ? null : r.error.code);
      else approvals.release(claim.id);
      if (!r.ok) throw new AirlockError(r.error.code, `Request ${claim.id}: ${r.error.message}`);
      return { request: approvals.get(actor, claim.id), value: r.value };
    },
    'approvals:policy': () => approvals.policy(),
    'approvals:setPolicy': (ctx, input) => {
      approvals.assertTarget(ctx.approval ?? undefined);
      return approvals.setPolicy(viewerOf(ctx), input);
    },
    'identity:show': () => {
      const publicKey = meta.get(IDENTITY_PUBLIC);
      if (!publicKey) throw new AirlockError('SETUP_REQUIRED', 'Airlock has no SSH identity yet: run the first-run setup.');
      return {
        publicKey,
        fingerprint: fingerprintOfLine(publicKey)?.fingerprint ?? '',
        agent: { available: Boolean(config.sshAgent), socket: config.sshAgent ?? null },
      };
    },
    'hosts:probe': (ctx, input) => hosts.probe(input.address, input.port, ctx.signal),
    'hosts:add': (ctx, input) => hosts.add(input, ctx.signal),
    'hosts:confirm': (ctx, input) => hosts.confirm(input.name, input.fingerprint, ctx.signal),
    'hosts:remove': (_ctx, input) => (hosts.remove(input.name), {}),
    'hosts:list': () => hosts.list(),
    'hosts:setLabels': (_ctx, input) => hosts.setLabels(input.name, input.labels),
    'provision:playbooks': () => playbooks.all().map((p) => playbooks.info(p)),
    'provision:importPlaybook': (ctx, input) => playbooks.info(playbooks.import(input.text, ctx.requireSession().user)),
    'provision:plan': (ctx, input) => provisioner.plan(callerOf(ctx), input),
    'provision:apply': (ctx, input) => provisioner.apply(callerOf(ctx), input),
    'provision:resume': (ctx, input) => provisioner.resume(callerOf(ctx), input.runId, input.concurrency),
    'provision:drift': (ctx, input) => provisioner.drift(callerOf(ctx), input.hosts),
    'provision:disableEgressLockdown': (ctx, input) => {
      approvals.assertTarget(ctx.approval ?? undefined);
      return provisioner.disableEgress(callerOf(ctx), input.host);
    },
    'provision:status': (_ctx, input) => provisioner.get(input.runId),
    'provision:runs': (_ctx, input) => provisioner.list(input.limit),
    'store:list': () => ({ debs: store.listDebs(), models: store.listModels(), mediaRoots: store.mediaRoots }),
    'store:importDebs': (ctx, input) => store.importDebs(input.dir, ctx.requireSession().user, ctx.signal),
    'store:importModel': (ctx, input) => store.importModel(input.dir, input.name, input.version, ctx.requireSession().user, ctx.signal),
    'attest:list': (_ctx, input) => attestations.list(input.host),
    'attest:show': (_ctx, input) => {
      if (input.id) return attestations.get(input.id);
      if (!input.host) throw new AirlockError('INVALID_INPUT', 'Name an attestation id or a host.');
      const a = attestations.latest(input.host);
      if (!a) throw new AirlockError('NOT_FOUND', `No attestation for ${input.host} yet.`);
      return a;
    },
    'attest:verify': (_ctx, input) => attestations.verify(input.text),
    'attest:key': () => {
      const pem = attestations.publicKeyPem();
      return { publicKey: pem, fingerprint: pem ? keyFingerprint(pem) : null };
    },
    'hosts:scan': (ctx, input) => hosts.scan(input.names, sshAuth(ctx.requireSession().id), ctx.signal, input.timeoutMs),
    'hosts:importKnownHosts': (_ctx, input) => hosts.importKnownHosts(input.text, input.user),
    'hosts:importSshConfig': (_ctx, input) => hosts.importSshConfig(input.text),
    'ops:cancel': (ctx, input) => ({ cancelled: ops.cancel(ctx.client, input.requestId) }),
    'terminal:open': (ctx, input) =>
      terminals.start(ctx.client, input.host, input.cols, input.rows, sshAuth(ctx.requireSession().id), ctx.signal),
    'terminal:input': (ctx, input) => (terminals.write(ctx.client, input.id, input.data), {}),
    'terminal:resize': (ctx, input) => (terminals.resize(ctx.client, input.id, input.cols, input.rows), {}),
    'terminal:close': (ctx, input) => (terminals.close(ctx.client, input.id), {}),
    ...auditService.handlers,
  };

  const dispatcher: Dispatcher = new Dispatcher({
    handlers,
    audit,
    sessions,
    ops,
    auditHmac: auditService.hmac,
    gate: auditService.gate,
    approvalGate: (name, input, session, approved) => approvals.gate(name, input, sessions.vaultKey(session.id), approved),
  });
  let clients = 0;
  /** Every client's events are checked against the contract; an invalid one is logged once per core. */
  const checkEvent = eventChecker(console.error);

  // ---- pushed events: the approval queue changed (here or in another process), instead of polling ----
  const broadcaster = new Broadcaster(sessions);
  const approvalWatch = new ApprovalWatch({ db, now: clock, onChange: (version) => broadcaster.broadcast('approvals:changed', { version }) });
  approvalWatch.start();
  // An audit alarm raised or acknowledged (by this process or another on the same database) is
  // pushed too, so the banner is never polled. alarms.status() looks at meta only when SQLite's
  // data_version moved, so the 1 s look is one pragma when nothing changed.
  const alarmState = () => {
    const s = auditService.alarms.status();
    return `${s.active?.id ?? 0}/${s.alarms.length}/${s.alarms.filter((a) => a.acknowledged).length}`;
  };
  let alarmSeen = alarmState();
  let alarmVersion = 0;
  const alarmLook = () => {
    try {
      const now = alarmState();
      if (now === alarmSeen) return;
      alarmSeen = now;
      broadcaster.broadcast('audit:alarmChanged', { version: ++alarmVersion });
    } catch {
      // A database that cannot be read now is looked at again in a second.
    }
  };
  const alarmTimer = setInterval(alarmLook, 1000);
  alarmTimer.unref();

  return {
    config: { ...config },
    newClient({ shell, source, emit, buffered, overflow }) {
      const id = `c${++clients}-${random(6).toString('hex')}`;
      const outbox = new Outbox({ send: emit ?? (() => {}), buffered, overflow }, checkEvent, console.error, FLOW_LIMITS, `${shell} client ${id}`);
      const client: ClientContext = { id, shell, source, session: null, emit: (event, payload) => outbox.push(event, payload), flow: outbox };
      broadcaster.add(client);
      return client;
    },
    dispatch: async (client, channel, input) => {
      try {
        return await dispatcher.dispatch(client, channel, input);
      } finally {
        // Any call may have changed the queue (a request, a decision, a removed requester's requests).
        approvalWatch.poke();
        setImmediate(alarmLook);
      }
    },
    async closeClient(client) {
      broadcaster.delete(client);
      (client.flow as Outbox | undefined)?.close?.();
      ops.cancelAll(client);
      terminals.closeAllFor(client);
      if (client.session) sessions.close(client.session.id);
      client.session = null;
    },
    async close() {
      approvalWatch.stop();
      clearInterval(alarmTimer);
      broadcaster.clear();
      terminals.closeAll();
      hosts.close();
      sessions.closeAll();
      await auditService.close();
      db.close();
    },
  };
}

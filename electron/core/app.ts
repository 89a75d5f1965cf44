import crypto from 'node:crypto';
import path from 'node:path';
import { Approvals } from './approvals/approvals';
import { approvalsHandlers } from './approvals/handlers';
import { approvalQueueState } from './approvals/watch';
import { Attestations } from './attest/attest';
import { attestHandlers } from './attest/handlers';
import { createAuditService, openAuditedDatabase } from './audit/service';
import { Broadcaster } from './broadcast';
import { eventChecker, FLOW_LIMITS, Outbox } from './outbox';
import { secureDataDir } from './db/data-dir';
import { openDatabase } from './db/db';
import { DataWatch } from './db/watch';
import { Dispatcher, Operations, type Handlers } from './dispatch';
import { hostsHandlers } from './hosts/handlers';
import { HostsService } from './hosts/service';
import { identityHandlers } from './identity/handlers';
import { createKeysArea } from './keys/area';
import { Catalog } from './models/catalog';
import { KeyRegistry } from './keys/registry';
import { createModelsArea } from './models/handlers';
import { accessHandlers, createAccessArea } from './models/access/handlers';
import { opsHandlers } from './ops/handlers';
import { Provisioner } from './provision/engine';
import { provisionHandlers } from './provision/handlers';
import { Playbooks } from './provision/playbooks';
import { callTools } from './session/call-tools';
import { sessionHandlers } from './session/handlers';
import { DEFAULT_TOTP_ROLES, restrictionFor } from './session/policy';
import { Sessions } from './session/sessions';
import { Identity } from './session/signin';
import { DEFAULT_LOCKOUT, Throttle, userKey } from './session/throttle';
import { settingsHandlers } from './settings/handlers';
import { IdentitySettings } from './settings/settings';
import { storeHandlers } from './store/handlers';
import { DEFAULT_MEDIA_ROOTS, OfflineStore } from './store/store';
import { terminalHandlers } from './terminal/handlers';
import { TerminalService } from './terminal/service';
import { totpHandlers } from './totp/handlers';
import type { ClientContext, Core, CoreConfig } from './types';
import { usersHandlers } from './users/handlers';
import { Users } from './users/users';
import { DEFAULT_KDF, type KdfParams } from './vault/crypto';
import { Vault } from './vault/vault';

export const DB_FILE = 'airlock.db';

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
  // Airlock's own keys (SSH identity, audit, attestation): minted and sealed one way (keys/registry.ts).
  const keys = new KeyRegistry({ db, vault, random, now: clock });
  // ---- audit: the trail, its keys (unsealed at sign-in), checkpoints, verify, export, syslog ----
  const auditService = createAuditService({ db, dbFile, dataDir, vault, registry: keys, clock, random, config });
  const audit = auditService.trail;
  // ---- sign-in: users, sessions, lockout, TOTP, settings, the two-person rule ----
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
    // The console locked (nobody signed in here any more): the key hierarchy seals, its root and KEKs zeroed.
    onLocked: () => {
      keysArea.close();
      access.retry.disarm();
    },
    check: (userId, uid, epoch) => {
      const st = users.state(userId);
      if (!st || st.uid !== uid || st.disabled || st.epoch !== epoch) return null;
      return { user: st.name, roles: st.roles, restriction: restrictionFor(st, requireTotpFor) };
    },
  });
  const signin = new Identity({ db, users, vault, sessions, throttle, now: () => clock().getTime(), random, requireTotpFor });
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
  // ---- customer-managed keys: the hierarchy (sealed in every new process), the CA, ceremonies; host certificates (after `hosts`) ----
  const keysArea = createKeysArea({
    db,
    vault,
    random,
    now: clock,
    kdf,
    hosts,
    sshTimeoutMs: config.sshTimeoutMs ?? 15_000,
    audit,
    // The provisioner is built below; the rotation reaches it only when it runs.
    sshRotation: { registry: keys, hosts: () => hosts, resolveHosts: (s) => provisioner.resolveHosts(s), env: process.env },
    ownKeys: { registry: keys, trail: audit, auditKeys: auditService.keys },
  });
  // ---- provisioning: playbooks, the offline store, runs, attestations ----
  const store = new OfflineStore({ db, dataDir, mediaRoots: config.mediaRoots ?? DEFAULT_MEDIA_ROOTS, now: nowIso });
  // ---- the models catalog: datasets, versions imported from the media roots, approvals, publishing ----
  const modelsArea = createModelsArea({
    db,
    now: clock,
    random,
    mediaRoots: () => store.mediaRoots,
    workDir: path.join(dataDir, 'models-work'),
    keys: keysArea.service,
    registryTokens: () => config.modelsRegistryTokens ?? null,
    // Published versions are signed by the console CA once it exists (genesis); unsigned before.
    signStatement: () => (keysArea.ca.root() ? (bytes, vaultKey) => keysArea.ca.signDetached(bytes, vaultKey) : null),
    // A status change reaches the gates when live grants name the model (access is built below).
    afterStatusChange: async (ctx, model) => {
      if (!db.prepare('SELECT 1 FROM access_grants WHERE model = ? AND revoked_at IS NULL LIMIT 1').get(model)) return null;
      const r = await access.repush(ctx);
      return { version: r.version, summary: r.summary };
    },
  });
  const playbooks = new Playbooks({ db, now: nowIso });
  const attestations = new Attestations({ db, keys, now: nowIso });
  const catalog = new Catalog({ db, now: clock });
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
    // The inference API key is a host-secrets data key (keys/host-secrets.ts): fails closed while sealed.
    hostSecrets: keysArea.service,
    // The inference-gate step installs the gate with the console's pinned key and current signed policy.
    gatePolicy: ({ issue, vaultKey, actor }) => {
      const p = issue ? access.issuer.ensure(vaultKey, actor).policy : access.issuer.latest();
      return { keyPem: access.issuer.publicKey(), policy: p ? { bytes: Buffer.from(p.body, 'utf8'), sig: p.signature, version: p.version } : null };
    },
    // Deployment rules (models/deploy-rules.ts): the catalog's status and classification; enclaves.
    deployRules: {
      version: (model, version) => catalog.version(model, version),
      enclaveOf: (host) => {
        const e = access.store.hostEnclaves().find((x) => x.host === host);
        return e ? { name: e.enclave, phi: e.phi } : null;
      },
    },
  });
  // ---- model access: principals, grants, enclaves, the signed gate policy pushed to every host ----
  const access = createAccessArea({ db, registry: keys, hosts, now: clock, random, timeoutMs: config.sshTimeoutMs ?? 15_000, audit, ...(config.policyRetryMs !== undefined ? { retryMs: config.policyRetryMs } : {}) });
  const handlers: Handlers = {
    ...sessionHandlers({ shell: config.shell, version, now: clock, requireTotpFor, users, sessions, signin, settings, terminals, keys, audit: auditService }),
    ...totpHandlers({ signin }),
    ...usersHandlers({ users, sessions, throttle, approvals }),
    ...settingsHandlers({ settings }),
    ...approvalsHandlers({ approvals, dispatch: (client, channel, input, run) => dispatcher.dispatch(client, channel, input, run) }),
    ...identityHandlers({ keys, sshAgent: config.sshAgent ?? null }),
    ...hostsHandlers({ hosts }),
    ...opsHandlers({ ops }),
    ...terminalHandlers({ terminals }),
    ...provisionHandlers({ playbooks, provisioner }),
    ...storeHandlers({ store }),
    ...attestHandlers({ attestations }),
    ...keysArea.handlers,
    ...modelsArea.handlers,
    ...accessHandlers(access),
    ...auditService.handlers,
  };

  const dispatcher: Dispatcher = new Dispatcher({
    handlers,
    callTools: callTools({ sessions, keys, approvals, sshAgent: config.sshAgent ?? null }),
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

  // ---- pushed events, instead of polling: the approval queue or the audit alarms changed (here or in another process) ----
  const broadcaster = new Broadcaster(sessions, checkEvent);
  const watches = [
    new DataWatch({ db, now: clock, read: approvalQueueState(db, clock), onChange: (version) => broadcaster.broadcast('approvals:changed', { version }) }),
    // Alarms are also raised by this process outside a call (a timed checkpoint): looked at every tick.
    new DataWatch({ db, now: clock, read: () => auditService.alarms.watched(), everyTick: true, onChange: (version) => broadcaster.broadcast('audit:alarmChanged', { version }) }),
  ];
  for (const w of watches) w.start();

  return {
    config: { ...config },
    newClient({ shell, source, emit, buffered, overflow, signInLink }) {
      const id = `c${++clients}-${random(6).toString('hex')}`;
      const outbox = new Outbox({ send: emit ?? (() => {}), buffered, overflow }, checkEvent, console.error, FLOW_LIMITS, `${shell} client ${id}`);
      const client: ClientContext = {
        id,
        shell,
        source,
        session: null,
        emit: (event, payload) => outbox.push(event, payload),
        flow: outbox,
        ...(signInLink ? { signInLink } : {}),
      };
      broadcaster.add(client);
      return client;
    },
    dispatch: async (client, channel, input) => {
      try {
        return await dispatcher.dispatch(client, channel, input);
      } finally {
        // Any call may have changed what is watched (a request, a decision, a removed requester's requests, an acknowledged alarm).
        for (const w of watches) w.poke();
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
      for (const w of watches) w.stop();
      broadcaster.clear();
      terminals.closeAll();
      keysArea.close();
      await keysArea.drain();
      access.retry.stop();
      hosts.close();
      sessions.closeAll();
      await auditService.close();
      db.close();
    },
  };
}

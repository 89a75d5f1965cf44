import crypto from 'node:crypto';
import type { KeyStatus as ContractKeyStatus } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { AuditTrail } from '../audit/audit';
import type { AreaHandlers, CallContext } from '../dispatch';
import type { HostsService } from '../hosts/service';
import type { KdfParams } from '../vault/crypto';
import type { AuditKeys } from '../audit/keys';
import type { Vault } from '../vault/vault';
import { sharedPool } from '../workers/pool';
import { Ceremonies, type CeremonyKeys, type IssuedShare } from './ceremony';
import { caHandlers } from './ca-handlers';
import { CaOps, DEFAULT_RENEWAL_WINDOW_DAYS, RenewalSchedule, type CaHosts } from './ca-ops';
import { CertRenewals } from './cert-renewal';
import { CertStore } from './cert-store';
import { ConsoleCa } from './console-ca';
import { keysHandlers } from './handlers';
import { hostSecretsHandlers } from './host-secrets';
import { modelsKeysHandlers, modelsUnlocker } from './models-handlers';
import { ownKeysHandlers } from './own-keys-handlers';
import { OwnKeyRotations } from './own-rotation';
import { ModelsRekeys } from './models-rekey';
import { modelsRekeyHandlers } from './models-rekey-handlers';
import { modelsScanProbe } from './models-rekey-scan';
import { workerRewrap } from './rewrap';
import type { KeyRegistry } from './registry';
import { KeyService, type IssuedShare as ServiceShare } from './service';
import { killHookFromEnv, SshRotations, type SshRotationDeps } from './ssh-rotation';
import { sshRotationHandlers } from './ssh-rotation-handlers';

/**
 * The fingerprint an officer checks for a share: the one of their passphrase sealing key when the
 * share is sealed to them, else the first 64 bits of the SHA-256 of the armored file itself (what
 * `sha256sum share-N.txt` starts with), grouped for reading aloud.
 */
export function shareFingerprint(s: ServiceShare): { sealing: 'none' | 'passphrase'; fingerprint: string } {
  if (s.fingerprint) return { sealing: 'passphrase', fingerprint: s.fingerprint };
  const h = crypto.createHash('sha256').update(s.armored, 'utf8').digest('hex').slice(0, 16);
  return { sealing: 'none', fingerprint: h.match(/.{4}/g)!.join('-') };
}

const issued = (s: ServiceShare): IssuedShare => ({ index: s.index, officer: s.officer, armored: s.armored, ...shareFingerprint(s) });

/** How often the renewal schedule checks (6 hours), and its window: a 90-day host certificate is renewed in its last 30. */
export const DEFAULT_RENEWAL = { intervalMs: 6 * 3_600_000, windowDays: DEFAULT_RENEWAL_WINDOW_DAYS } as const;

/**
 * The keys area as the composition root builds it: the key service (the hierarchy), the CA, the
 * ceremonies over both, and their handlers. Genesis also creates the CA (its keys sealed under the
 * new `console` KEK). The hierarchy starts sealed in every process and is sealed on `close`.
 * `hosts` reaches the GPU hosts: their models directories (models-handlers.ts), and the CA's host operations and the renewal schedule (a timer,
 * stopped on `close`; `renewal.intervalMs` 0 disables it) come too.
 */
export function createKeysArea(d: {
  db: Db;
  vault: Vault;
  random: (n: number) => Buffer;
  now: () => Date;
  kdf: KdfParams;
  workers?: boolean;
  owner?: string;
  hosts: HostsService;
  renewal?: { intervalMs?: number; windowDays?: number };
  sshTimeoutMs?: number;
  /** Where background work records what it did (the models unlock an unseal starts); without it that unlock is not offered. */
  audit?: AuditTrail;
  /**
   * What rotating Airlock's own SSH identity needs: its keys, the hosts (a getter: the composition
   * root builds the hosts service after this area), a host selector. Without it the rotation
   * channels refuse.
   */
  sshRotation?: {
    registry: KeyRegistry;
    hosts: () => SshRotationDeps['hosts'];
    resolveHosts: (selector: string[]) => Array<{ name: string }>;
    /** The process environment, read only for the test-only kill hook (AIRLOCK_TEST_KILL_AT). */
    env?: NodeJS.ProcessEnv;
  };
  /** What rotating the audit and attestation keys needs (keys/own-rotation.ts); without it `keys:rotateOwnKey` refuses. */
  ownKeys?: { registry: KeyRegistry; trail: AuditTrail; auditKeys: AuditKeys };
}) {
  const service = new KeyService({ db: d.db, random: d.random, now: d.now, kdf: d.kdf, ...(d.workers === false ? {} : { rewrap: workerRewrap(sharedPool()) }) });
  const certs = new CertStore({ db: d.db, now: d.now });
  const ca = new ConsoleCa({ vault: d.vault, keys: service, certs, random: d.random, now: d.now });
  const status = (): ContractKeyStatus => service.status();
  const keys: CeremonyKeys & { seal(): void } = {
    status,
    async genesis(o, vaultKey) {
      const r = await service.genesis({ ...o, vaultKey });
      await ca.genesis(vaultKey);
      return { hierarchyId: r.hierarchyId, rootKcv: r.rootKcv, shares: r.shares.map(issued) };
    },
    beginUnseal: (nonce) => service.beginUnseal(nonce),
    async addShare(armored, o) {
      const p = await service.addShare(armored, o);
      // A KEK rotation a crash interrupted is finished as soon as the root is back.
      if (p.done) await service.finishRewraps();
      return p;
    },
    cancelUnseal: () => service.cancelUnseal(),
    verifyShares: (shares) =>
      service.verifyShares(
        shares.map((s) => s.share),
        shares.map((s) => s.passphrase),
      ),
    rotateKek: (domain, vaultKey) => service.rotateKek(domain, { vaultKey }),
    async reshare(o) {
      const r = await service.reshare(o);
      return { shares: r.shares.map(issued) };
    },
    async rotateRoot(o) {
      const r = await service.rotateRoot(o);
      return { rootKcv: r.rootKcv, shares: r.shares.map(issued) };
    },
    seal: () => service.seal(),
  };
  const ceremonies = new Ceremonies({ db: d.db, keys, random: d.random, now: d.now, sign: (body, vaultKey) => ca.signTranscript(body, vaultKey), certificates: () => ca.fingerprints(), ...(d.owner ? { owner: d.owner } : {}) });
  ceremonies.sweep();
  const ops = d.hosts ? new CaOps({ ca, certs, hosts: d.hosts, random: d.random, now: d.now, ...(d.sshTimeoutMs ? { timeoutMs: d.sshTimeoutMs } : {}) }) : null;
  // Host certificate renewal, journaled like the rotations (the same test-only kill hook).
  const renewals = ops
    ? new CertRenewals({ db: d.db, now: d.now, random: d.random, ops, certs, sealed: () => service.status().sealed, boundary: killHookFromEnv(d.sshRotation?.env ?? {}), ...(d.owner ? { owner: d.owner } : {}) })
    : null;
  renewals?.sweep();
  const schedule = ops && renewals
    ? new RenewalSchedule({
        ops,
        renew: (cred, windowDays) => renewals.renewDue(cred, 'renewal schedule', windowDays),
        unfinished: () => renewals.unfinished().length > 0,
        sealed: () => service.status().sealed,
        now: d.now,
        intervalMs: d.renewal?.intervalMs ?? DEFAULT_RENEWAL.intervalMs,
        windowDays: d.renewal?.windowDays ?? DEFAULT_RENEWAL.windowDays,
      })
    : null;
  schedule?.start();
  const seal = () => {
    // Sealed or locked: the schedule forgets the session that armed it, along with the keys.
    schedule?.disarm();
    service.seal();
  };
  keys.seal = seal;
  const sr = d.sshRotation;
  const rotations = sr
    ? new SshRotations({
        db: d.db,
        now: d.now,
        random: d.random,
        registry: sr.registry,
        hosts: { list: () => sr.hosts().list(), open: (name, auth, signal) => sr.hosts().open(name, auth, signal) },
        resolveHosts: (s) => sr.resolveHosts(s),
        boundary: killHookFromEnv(sr.env ?? {}),
        ...(d.owner ? { owner: d.owner } : {}),
      })
    : null;
  rotations?.sweep();
  const ownRotations = d.ownKeys ? new OwnKeyRotations({ ...d.ownKeys, boundary: killHookFromEnv(sr?.env ?? {}) }) : null;
  const rotationsOrRefuse = () => {
    if (!rotations) throw new AirlockError('INTERNAL', 'SSH identity rotation is not set up in this console.');
    return rotations;
  };
  // Re-keying models directories (journaled like the SSH rotation; the same test-only kill hook), and the scan's models state.
  const rekeys = new ModelsRekeys({
    db: d.db,
    now: d.now,
    random: d.random,
    keys: service,
    hosts: d.hosts,
    boundary: killHookFromEnv(sr?.env ?? {}),
    ...(d.owner ? { owner: d.owner } : {}),
  });
  rekeys.sweep();
  d.hosts.setModelsProbe(modelsScanProbe({ db: d.db, keys: service, staged: (h) => rekeys.stagedKey(h), ...(d.sshTimeoutMs ? { timeoutMs: d.sshTimeoutMs } : {}) }));
  // The unlock an unseal starts (keys:addShare with unlockModels): in the background, one audit
  // event per host; aborted when the hierarchy is sealed again, awaited by `drain` before the core closes.
  const unlocker = modelsUnlocker({ db: d.db, keys: service, hosts: d.hosts, now: d.now, ...(d.sshTimeoutMs ? { timeoutMs: d.sshTimeoutMs } : {}) });
  const background = new Set<Promise<void>>();
  let unlockAbort = new AbortController();
  const unlockAfterUnseal = (ctx: CallContext): string[] => {
    const audit = d.audit;
    if (!audit) return [];
    const hosts = d.hosts.list().filter((h) => unlocker.row(h.name)?.protected_at).map((h) => h.name);
    if (!hosts.length) return [];
    const caller = ctx.caller();
    const record = (target: string, params: Record<string, unknown>, outcome: 'ok' | 'error', errorCode: string | null) =>
      audit.append({ actor: caller.actor, principal: caller.principal ?? null, roles: caller.roles, session: caller.sessionRef, shell: caller.shell, channel: 'keys:unlockModels', phase: 'outcome', target, params, outcome, errorCode });
    const run = unlocker
      .unlockProtected(caller.auth, unlockAbort.signal)
      .then((results) => {
        for (const r of results) record(r.host, { after: 'unseal', outcome: r.outcome, keyId: r.keyId, state: r.state, ...(r.message ? { message: r.message } : {}) }, r.outcome === 'failed' ? 'error' : 'ok', r.code);
      })
      .catch((e: unknown) => {
        try {
          record(hosts.join(','), { after: 'unseal', message: e instanceof Error ? e.message : String(e) }, 'error', e instanceof AirlockError ? e.code : 'INTERNAL');
        } catch {
          // the trail is closed (the core is closing): nothing more to record
        }
      })
      .finally(() => background.delete(run));
    background.add(run);
    return hosts;
  };
  const sealAll = keys.seal;
  keys.seal = () => {
    unlockAbort.abort();
    unlockAbort = new AbortController();
    sealAll();
  };
  const handlers = {
    ...keysHandlers({
    unlockAfterUnseal,
    ceremonies,
    keys,
    caCertificate: () => {
      const root = ca.root();
      return { pem: root?.certPem ?? null, fingerprint: root?.sha256 ?? null };
    },
    verifyTranscript: (text) => ca.verifyTranscript(text),
    }),
    ...modelsKeysHandlers({ db: d.db, keys: service, hosts: d.hosts, now: d.now }),
    ...hostSecretsHandlers({ db: d.db, keys: service, hosts: d.hosts, ...(d.sshTimeoutMs ? { timeoutMs: d.sshTimeoutMs } : {}) }),
    ...caHandlers({ certs, ops, schedule, renewals, now: d.now }),
    ...sshRotationHandlers({ rotations: rotationsOrRefuse }),
    ...ownKeysHandlers({ rotations: ownRotations ? () => ownRotations : null }),
    ...modelsRekeyHandlers({ rekeys: () => rekeys, keys: service }),
  };
  return {
    service,
    certs,
    ca,
    ops,
    schedule,
    renewals,
    ceremonies,
    rotations,
    rekeys,
    handlers,
    /** The console locked or exits: sealed, and the schedule disarmed (its unref'd timer keeps only checking). */
    close: () => keys.seal(),
    /** Waits for background work (an unseal's models unlock) to end: before the core closes its database. */
    drain: async () => {
      await Promise.allSettled([...background]);
    },
    /** Stops the renewal timer for good (tests, a core that is thrown away). */
    stop: () => schedule?.stop(),
  };
}

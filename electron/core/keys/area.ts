import crypto from 'node:crypto';
import type { KeyStatus as ContractKeyStatus } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { KdfParams } from '../vault/crypto';
import type { Vault } from '../vault/vault';
import { sharedPool } from '../workers/pool';
import { Ceremonies, type CeremonyKeys, type IssuedShare } from './ceremony';
import { CertStore } from './cert-store';
import { ConsoleCa } from './console-ca';
import { keysHandlers } from './handlers';
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

/**
 * The keys area as the composition root builds it: the key service (the hierarchy), the CA, the
 * ceremonies over both, and their handlers. Genesis also creates the CA (its keys sealed under the
 * new `console` KEK). The hierarchy starts sealed in every process and is sealed on `close`.
 */
export function createKeysArea(d: {
  db: Db;
  vault: Vault;
  random: (n: number) => Buffer;
  now: () => Date;
  kdf: KdfParams;
  workers?: boolean;
  owner?: string;
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
}) {
  const service = new KeyService({ db: d.db, random: d.random, now: d.now, kdf: d.kdf, ...(d.workers === false ? {} : { rewrap: workerRewrap(sharedPool()) }) });
  const certs = new CertStore({ db: d.db, now: d.now });
  const ca = new ConsoleCa({ vault: d.vault, keys: service, certs, random: d.random, now: d.now });
  const status = (): ContractKeyStatus => service.status();
  const keys: CeremonyKeys & { seal(): void } = {
    status,
    async genesis(o, vaultKey) {
      const r = await service.genesis(o);
      await ca.genesis(vaultKey);
      return { hierarchyId: r.hierarchyId, rootKcv: r.rootKcv, shares: r.shares.map(issued) };
    },
    beginUnseal: () => service.beginUnseal(),
    addShare: (armored, o) => service.addShare(armored, o),
    cancelUnseal: () => service.cancelUnseal(),
    verifyShares: (shares) =>
      service.verifyShares(
        shares.map((s) => s.share),
        shares.map((s) => s.passphrase),
      ),
    rotateKek: (domain) => service.rotateKek(domain),
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
  const rotationsOrRefuse = () => {
    if (!rotations) throw new AirlockError('INTERNAL', 'SSH identity rotation is not set up in this console.');
    return rotations;
  };
  const handlers = {
    ...keysHandlers({
    ceremonies,
    keys,
    caCertificate: () => {
      const root = ca.root();
      return { pem: root?.certPem ?? null, fingerprint: root?.sha256 ?? null };
    },
    verifyTranscript: (text) => ca.verifyTranscript(text),
    }),
    ...sshRotationHandlers({ rotations: rotationsOrRefuse }),
  };
  return { service, certs, ca, ceremonies, rotations, handlers, close: () => service.seal() };
}

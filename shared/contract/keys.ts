import { z } from 'zod';
import { channel } from './channel';
import { HostName, NoInput, UserName, visibleText } from './common';
import { HostSelector } from './provision';

/**
 * Customer-managed keys (docs/keys.md): the root key split m-of-n among security officers, KEKs
 * per domain wrapped by the root, data keys per asset wrapped by a KEK version, and the
 * ceremonies that create, open and change them. Shares cross this contract only as armored text
 * that the officer keeps; the core never stores one.
 */

export const KeyDomains = ['models', 'datasets', 'host-secrets', 'console'] as const;
export const KeyDomain = z.enum(KeyDomains);
export type KeyDomain = z.infer<typeof KeyDomain>;

/** The most shares a root may be split into (a ceremony room, not a crowd). */
export const MAX_SHARES = 16;

/** A person named in a ceremony: an officer who holds a share, a witness. Names as people say them (not accounts). */
export const ParticipantName = visibleText(
  z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9][A-Za-z0-9 ._'-]*$/, "letters, digits, spaces and . _ ' - ; starting with a letter or digit"),
);

/** An armored share (`-----BEGIN AIRLOCK ROOT KEY SHARE-----`): the core parses it strictly (keys/shares.ts). */
export const ArmoredShare = z.string().min(1).max(16 * 1024);
export const SharePassphrase = z.string().min(1).max(1024);
/** A key check value: HMAC-SHA256 of a fixed label under the key, 8 bytes hex. Safe to show; names a key. */
export const Kcv = z.string().regex(/^[0-9a-f]{16}$/);
export const CeremonyId = z.string().regex(/^cer-[0-9a-f]{16}$/, 'a ceremony id (cer-…)');
/** A ceremony's nonce: every share, step and transcript of it is bound to it. */
export const Nonce = z.string().regex(/^[0-9a-f]{32}$/);

export const CeremonyKinds = ['genesis', 'unseal', 'verify-shares', 'rotate-kek', 'reshare', 'rotate-root'] as const;
export const CeremonyKind = z.enum(CeremonyKinds);
export type CeremonyKind = z.infer<typeof CeremonyKind>;
export const CeremonyRole = z.enum(['administrator', 'officer', 'witness']);
export type CeremonyRole = z.infer<typeof CeremonyRole>;

/** Airlock's own keys (keys/registry.ts OWN_KEYS). */
export const OwnKeyPurpose = z.enum(['ssh.identity', 'audit.signing', 'audit.hmac', 'attest.signing', 'policy.signing']);
/** The own keys `keys:rotateOwnKey` rotates; the SSH identity has its fleet rotation (`keys:rotateSshIdentity`). */
export const RotatableOwnKeys = ['audit.signing', 'audit.hmac', 'attest.signing'] as const;
export type RotatableOwnKey = (typeof RotatableOwnKeys)[number];

/** What one own-key rotation did (also its audit detail): versions, fingerprints, where the handover sits in the trail. */
export const OwnKeyRotation = z.object({
  purpose: z.enum(RotatableOwnKeys),
  oldVersion: z.number().int(),
  newVersion: z.number().int(),
  /** Null for the HMAC key (nothing public). */
  oldFingerprint: z.string().nullable(),
  newFingerprint: z.string().nullable(),
  /** The `audit:keyHandover` event, and the checkpoint right after it that covers it. */
  handoverSeq: z.number().int(),
  checkpointSeq: z.number().int(),
  /** HMAC key: events from this sequence number on are tagged with the new key. */
  hmacFromSeq: z.number().int().optional(),
});
export type OwnKeyRotation = z.infer<typeof OwnKeyRotation>;

export const KeyStatus = z.object({
  initialised: z.boolean(),
  sealed: z.boolean(),
  hierarchyId: z.string().nullable(),
  threshold: z.number().int().nullable(),
  count: z.number().int().nullable(),
  rootKcv: Kcv.nullable(),
  /** `fingerprint`: the officer's passphrase sealing key's, which they confirmed; null for a share not sealed to a passphrase. */
  officers: z.array(z.object({ index: z.number().int(), name: z.string(), fingerprint: z.string().nullable() })),
  /** An unseal in progress: how many of the threshold's shares are in, from whom. */
  unsealing: z.object({ nonce: Nonce, collected: z.number().int(), threshold: z.number().int(), contributors: z.array(z.string()) }).nullable(),
  unsealedBy: z.array(z.string()),
  unsealedAt: z.string().nullable(),
  domains: z.array(
    z.object({
      domain: KeyDomain,
      currentVersion: z.number().int(),
      minDecryptionVersion: z.number().int(),
      versions: z.array(z.object({ version: z.number().int(), kcv: Kcv, createdAt: z.string(), dataKeys: z.number().int() })),
    }),
  ),
  /**
   * Airlock's own keys (entries of the `console` domain), every version: retired ones keep their
   * fingerprint so old signatures stay attributable; `stagedFor` names the SSH rotation staging a
   * not-yet-current identity. `fingerprint` is what `identity:show` and audit checkpoints show
   * (null for the HMAC key); `kekVersion` the console KEK version sealing it. Readable sealed.
   */
  ownKeys: z.array(
    z.object({
      purpose: OwnKeyPurpose,
      version: z.number().int(),
      algorithm: z.string(),
      fingerprint: z.string().nullable(),
      createdAt: z.string(),
      retiredAt: z.string().nullable(),
      kekVersion: z.number().int(),
      stagedFor: z.string().nullable(),
    }),
  ),
});
export type KeyStatus = z.infer<typeof KeyStatus>;

export const CeremonyStep = z.object({
  n: z.number().int(),
  title: z.string(),
  /** Who must acknowledge it. */
  by: CeremonyRole,
  /** Done by the core (the key operation itself), not acknowledged by a person. */
  automatic: z.boolean(),
  acknowledgedBy: z.string().nullable(),
  /** The account whose session recorded the acknowledgement (one console in a room). */
  recordedBy: UserName.nullable(),
  at: z.string().nullable(),
});
export type CeremonyStep = z.infer<typeof CeremonyStep>;

export const Ceremony = z.object({
  id: CeremonyId,
  kind: CeremonyKind,
  nonce: Nonce,
  scriptVersion: z.string(),
  status: z.enum(['open', 'completed', 'cancelled', 'failed']),
  administrator: UserName,
  participants: z.array(z.object({ name: z.string(), role: CeremonyRole })),
  steps: z.array(CeremonyStep),
  /** The parameters fixed when it began (threshold, count, domain). */
  params: z.object({ threshold: z.number().int().optional(), count: z.number().int().optional(), domain: KeyDomain.optional() }),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  message: z.string().nullable(),
  /** The signed transcript (JSON text) once completed. */
  hasTranscript: z.boolean(),
  /**
   * While the ceremony is open and its key operation has run: each share it made, by officer, with
   * the fingerprint that officer checks (their passphrase sealing key's, or the start of the share
   * file's SHA-256) — never the share. An officer can see theirs again after leaving the screen.
   */
  shares: z.array(z.object({ index: z.number().int(), officer: z.string(), sealing: z.enum(['none', 'passphrase']), fingerprint: z.string() })).optional(),
});
export type Ceremony = z.infer<typeof Ceremony>;

/** A share a ceremony made: who holds it, how it is sealed, the fingerprint its officer checks before taking it. */
export const ShareMade = z.object({
  index: z.number().int(),
  officer: z.string(),
  sealing: z.enum(['none', 'passphrase']),
  /** Printed in the armor too, and checked on unseal. */
  fingerprint: z.string(),
});
/** A share as handed to its officer (keys:issueShare), to be saved by that officer only (removable media, paper). */
export const IssuedShare = ShareMade.extend({ armored: z.string() });

export const VerifySharesReport = z.object({
  shares: z.array(z.object({ index: z.number().int().nullable(), officer: z.string().nullable(), ok: z.boolean(), problem: z.string().nullable() })),
  /** True when at least the threshold of valid shares combine to the root (its canary opens); null when too few valid shares were given to try. */
  combines: z.boolean().nullable(),
});

export const TranscriptReport = z.object({
  ok: z.boolean(),
  problems: z.array(z.string()),
  kind: z.string().nullable(),
  nonce: z.string().nullable(),
  signer: z.object({ subject: z.string(), fingerprint: z.string() }).nullable(),
});

/**
 * Model weights at rest on a GPU host (docs/keys-fscrypt.md): the host's models directory as its
 * kernel reports it, and the `models` data key Airlock holds for it. `identifier` is the fscrypt
 * key identifier the directory's policy names (32 hex digits; names a key, does not open it).
 */
export const ModelsState = z.enum(['unencrypted', 'locked', 'unlocked', 'absent', 'unsupported']);
export const ModelsStatus = z.object({
  host: HostName,
  state: ModelsState,
  /** The `models` data key Airlock holds for this host, or null when it has none. */
  keyId: z.string().nullable(),
  /** The `models` KEK version that wraps that data key (hosts per KEK version on the Keys page); absent without one. */
  kekVersion: z.number().int().optional(),
  identifier: z.string().regex(/^[0-9a-f]{32}$/).nullable(),
  dir: z.string(),
});
export type ModelsStatus = z.infer<typeof ModelsStatus>;
/** One host of keys:unlockModels: what it is now, and what was done (`unlocked`: the key was delivered; `already`: it was unlocked; `skipped`/`failed`: see `message`). */
export const ModelsUnlockResult = ModelsStatus.extend({
  state: ModelsState.nullable(),
  outcome: z.enum(['unlocked', 'already', 'skipped', 'failed']),
  code: z.string().nullable(),
  message: z.string().nullable(),
});

/** A rotation of Airlock's own SSH identity across the fleet (docs/keys.md "SSH identity rotation"). */
export const SshRotationId = z.string().regex(/^rot-[0-9a-f]{16}$/, 'a rotation id (rot-…)');
export const SshRotationStepNames = ['add', 'verify', 'remove'] as const;
export const SshRotationStepName = z.enum(SshRotationStepNames);
export const SshRotationHost = z.object({
  host: z.string(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  /** The host's first step not done (where a resume starts); null when all are done. */
  next: SshRotationStepName.nullable(),
  /** The rotation is not finished on this host: it may still need the old key, which therefore stays in the vault. */
  pending: z.boolean(),
  message: z.string().nullable(),
  steps: z.array(
    z.object({
      step: SshRotationStepName,
      status: z.enum(['pending', 'running', 'done', 'failed', 'interrupted']),
      message: z.string().nullable(),
      startedAt: z.string().nullable(),
      finishedAt: z.string().nullable(),
    }),
  ),
});
export const SshRotation = z.object({
  id: SshRotationId,
  status: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  actor: z.string(),
  oldFingerprint: z.string(),
  newFingerprint: z.string(),
  /** The new key is current and the old one is deleted from the vault. */
  promoted: z.boolean(),
  promotedAt: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  attempts: z.number().int(),
  /** Hosts the rotation is not finished on (unreachable, failed, interrupted): resume once they are back. */
  pendingHosts: z.array(z.string()),
  hosts: z.array(SshRotationHost),
});
export type SshRotation = z.infer<typeof SshRotation>;
const ofRotation = (i: { id: string }) => i.id;

/**
 * A re-key of GPU hosts' models directories (docs/keys-fscrypt.md "Re-keying from the console"):
 * per host, a new `models` data key staged in the database, the five host steps of
 * keys/fscrypt-rekey.ts, then promote (the new key becomes the host's, the old one is deleted).
 */
export const ModelsRekeyId = z.string().regex(/^mrk-[0-9a-f]{16}$/, 'a models re-key id (mrk-…)');
export const ModelsRekeyStepNames = ['stage', 'prepare', 'copy', 'verify', 'swap', 'cleanup', 'promote'] as const;
export const ModelsRekeyStepName = z.enum(ModelsRekeyStepNames);
export const ModelsRekeyHost = z.object({
  host: z.string(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  /** The host's first step not done (where a resume starts); null when all are done. */
  next: ModelsRekeyStepName.nullable(),
  /** Not finished on this host: its old key stays in the database (and in use, before `swap`). */
  pending: z.boolean(),
  message: z.string().nullable(),
  dir: z.string().nullable(),
  oldKeyId: z.string().nullable(),
  newKeyId: z.string().nullable(),
  /** Which key the host's models directory is under, as far as the journal knows: `old` until `swap` is done. */
  current: z.enum(['old', 'new']),
  steps: z.array(
    z.object({
      step: ModelsRekeyStepName,
      status: z.enum(['pending', 'running', 'done', 'failed', 'interrupted']),
      message: z.string().nullable(),
      startedAt: z.string().nullable(),
      finishedAt: z.string().nullable(),
    }),
  ),
});
export const ModelsRekey = z.object({
  id: ModelsRekeyId,
  status: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  actor: z.string(),
  concurrency: z.number().int(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  attempts: z.number().int(),
  /** Hosts not finished (unreachable, failed, interrupted): resume once they are back. */
  pendingHosts: z.array(z.string()),
  hosts: z.array(ModelsRekeyHost),
});
export type ModelsRekey = z.infer<typeof ModelsRekey>;
const ofRekey = (i: { id: string }) => i.id;

/**
 * A journaled renewal of host TLS certificates (docs/keys-ca.md "Renewal as a journaled state
 * machine"): per host a new key made on the host, its CSR checked, the certificate issued (on record,
 * not yet current), installed as a new pair switched in by one rename, verified over SSH, promoted
 * (current; the old one revoked as superseded), then retired (CRL sent, old pair deleted).
 */
export const CertRenewalId = z.string().regex(/^crn-[0-9a-f]{16}$/, 'a certificate renewal id (crn-…)');
export const CertRenewalStepNames = ['keygen', 'csr', 'issue', 'install', 'verify', 'promote', 'retire'] as const;
export const CertRenewalStepName = z.enum(CertRenewalStepNames);
export const CertRenewalHost = z.object({
  host: z.string(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  /** The host's first step not done (where a resume starts); null when all are done. */
  next: CertRenewalStepName.nullable(),
  /** Not finished on this host: it keeps serving its old certificate until `install`, and the store names the old one current until `promote`. */
  pending: z.boolean(),
  message: z.string().nullable(),
  oldSerial: z.string(),
  newSerial: z.string().nullable(),
  /** Which pair the host serves, as far as the journal knows: `old` until `install` is done. */
  serving: z.enum(['old', 'new']),
  promoted: z.boolean(),
  steps: z.array(
    z.object({
      step: CertRenewalStepName,
      status: z.enum(['pending', 'running', 'done', 'failed', 'interrupted']),
      message: z.string().nullable(),
      startedAt: z.string().nullable(),
      finishedAt: z.string().nullable(),
    }),
  ),
});
export const CertRenewal = z.object({
  id: CertRenewalId,
  status: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  actor: z.string(),
  windowDays: z.number().int(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  attempts: z.number().int(),
  /** Hosts not finished (unreachable, failed, interrupted): resumed by `keys:resumeCertRenewal`, `keys:renewCertificates` and the schedule. */
  pendingHosts: z.array(z.string()),
  hosts: z.array(CertRenewalHost),
});
export type CertRenewal = z.infer<typeof CertRenewal>;
const ofRenewal = (i: { id: string }) => i.id;

const ShareInput = z.object({ share: ArmoredShare, passphrase: SharePassphrase.optional() }).strict();

const ceremonyIn = { ceremony: CeremonyId };
/** Opening a ceremony that moves the root: new officers, threshold and witnesses. */
const IssuingBegin = z
  .object({
    officers: z.array(ParticipantName).min(2).max(MAX_SHARES),
    witnesses: z.array(ParticipantName).min(1).max(8),
    threshold: z.number().int().min(2).max(MAX_SHARES),
  })
  .strict();
const ofCeremony = (i: { ceremony: string }) => i.ceremony;

/** RFC 5280 reason codes a revocation may give (electron/core/keys/ca.ts REVOCATION_REASONS). */
export const RevocationReason = z.enum(['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn']);
/** A certificate serial as the CA writes it: lowercase hex. */
export const CertSerial = z
  .string()
  .regex(/^[0-9a-fA-F]{2,40}$/, 'a certificate serial (hexadecimal)')
  .transform((s) => s.toLowerCase());

/** A certificate on record, as listed by expiry: `daysLeft` (negative once expired), `renewalDue` inside the renewal window. */
export const CertificateRow = z.object({
  serial: z.string(),
  profile: z.enum(['root-ca', 'issuing-ca', 'host-tls', 'bundle-signing', 'registry-token', 'release-signing']),
  subject: z.string(),
  issuerSerial: z.string(),
  host: z.string().nullable(),
  sha256: z.string(),
  notBefore: z.string(),
  notAfter: z.string(),
  daysLeft: z.number().int(),
  renewalDue: z.boolean(),
  revokedAt: z.string().nullable(),
  revokeReason: RevocationReason.nullable(),
  /** Issued for this certificate renewal (crn-…) and not yet current: the host's current certificate is still the one it replaces. */
  renewal: z.string().nullable().optional(),
});
export type CertificateRow = z.infer<typeof CertificateRow>;

/** Where an issuer's new CRL went: hosts that have it, hosts it is pending for (unreachable; retried). */
export const CrlPublication = z.object({
  issuerSerial: z.string(),
  crlNumber: z.number().int(),
  published: z.array(z.string()),
  pending: z.array(z.object({ host: z.string(), message: z.string() })),
});

/**
 * The renewal schedule (docs/keys-ca.md): it renews only while the hierarchy is unsealed and an
 * administrator's or officer's session is signed in; `blocked` says why it waited.
 */
export const RenewalScheduleStatus = z.object({
  intervalMinutes: z.number(),
  windowDays: z.number(),
  lastCheckAt: z.string().nullable(),
  lastRunAt: z.string().nullable(),
  /** Serials due (or that failed) at the last check. */
  due: z.array(z.string()),
  blocked: z.enum(['sealed', 'no-session']).nullable(),
  lastError: z.string().nullable(),
});

/**
 * A host secret Airlock keeps sealed under the `host-secrets` KEK (docs/keys.md "Host secrets"):
 * today the inference API key of a host's inference unit. What it is, never its value.
 */
export const HostSecretKinds = ['inference-api-key'] as const;
export const HostSecretId = z
  .string()
  .max(200)
  .regex(/^inference-api-key\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\/[a-z0-9][a-z0-9_-]{0,63}$/, 'a host secret id (inference-api-key/HOST/UNIT)');
export const HostSecret = z.object({
  host: z.string(),
  unit: z.string(),
  id: z.string(),
  kind: z.enum(HostSecretKinds),
  /** The `host-secrets` KEK version that wraps it now (a rotation's rewrap moves it). */
  kekVersion: z.number().int(),
  createdAt: z.string(),
});
export type HostSecret = z.infer<typeof HostSecret>;
/** keys:redeliverHostSecret: where the secret went (`already`: the host's file was the sealed key, nothing written) and whether its service was restarted to read it. */
export const HostSecretDelivery = HostSecret.extend({
  path: z.string(),
  outcome: z.enum(['delivered', 'already']),
  restarted: z.boolean(),
});
export type HostSecretDelivery = z.infer<typeof HostSecretDelivery>;

export const keys = {
  'keys:status': channel({
    in: NoInput,
    out: KeyStatus,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'The key hierarchy: seal state, officers, KEKs and their versions (fingerprints only)',
  }),
  'keys:ceremonies': channel({
    in: z.object({ limit: z.number().int().min(1).max(500).optional() }).strict(),
    out: z.array(Ceremony),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Key ceremonies, newest first',
  }),
  'keys:ceremony': channel({
    in: z.object(ceremonyIn).strict(),
    out: Ceremony,
    roles: ['admin', 'officer', 'auditor'],
    target: ofCeremony,
    summary: 'One key ceremony: its script, who acknowledged each step',
  }),
  'keys:begin': channel({
    in: z
      .object({
        kind: z.enum(['genesis', 'unseal', 'verify-shares', 'rotate-kek']),
        officers: z.array(ParticipantName).max(MAX_SHARES).default([]),
        witnesses: z.array(ParticipantName).max(8).default([]),
        threshold: z.number().int().min(2).max(MAX_SHARES).optional(),
        domain: KeyDomain.optional(),
      })
      .strict(),
    out: Ceremony,
    roles: ['admin', 'officer'],
    stepUp: true,
    summary: 'Open a key ceremony: a fresh nonce, its script of numbered steps, its participants',
  }),
  'keys:beginReshare': channel({
    in: IssuingBegin,
    out: Ceremony,
    roles: ['admin', 'officer'],
    stepUp: true,
    twoPerson: 'keys:reshareRoot',
    summary: 'Open a reshare ceremony: the root split among new officers or a new m-of-n (two-person rule)',
  }),
  'keys:beginRotateRoot': channel({
    in: IssuingBegin,
    out: Ceremony,
    roles: ['admin', 'officer'],
    stepUp: true,
    twoPerson: 'keys:rotateRoot',
    summary: 'Open a root rotation ceremony: a new root key, every KEK rewrapped, new shares (two-person rule)',
  }),
  'keys:acknowledge': channel({
    in: z.object({ ...ceremonyIn, step: z.number().int().min(1).max(100), by: ParticipantName }).strict(),
    out: Ceremony,
    roles: ['admin', 'officer'],
    target: ofCeremony,
    summary: 'Record that the named participant acknowledged a ceremony step',
  }),
  'keys:cancel': channel({
    in: z.object({ ...ceremonyIn, reason: visibleText(z.string().min(1).max(500)) }).strict(),
    out: Ceremony,
    roles: ['admin', 'officer'],
    target: ofCeremony,
    summary: 'Cancel an open ceremony (an unseal in progress forgets its shares)',
  }),
  'keys:genesis': channel({
    in: z.object({ ...ceremonyIn, passphrases: z.record(z.string(), SharePassphrase).default({}) }).strict(),
    out: z.object({ hierarchyId: z.string(), rootKcv: Kcv, shares: z.array(ShareMade), ceremony: Ceremony }),
    roles: ['admin', 'officer'],
    stepUp: true,
    secret: ['passphrases'],
    target: ofCeremony,
    summary: 'Genesis: create the root key, split it among the officers, create every domain KEK',
  }),
  'keys:issueShare': channel({
    in: z.object({ ...ceremonyIn, officer: ParticipantName }).strict(),
    out: IssuedShare,
    roles: ['admin', 'officer'],
    target: ofCeremony,
    summary: 'Hand an officer their share, once they have checked its fingerprint (their step is acknowledged)',
  }),
  'keys:addShare': channel({
    in: z
      .object({
        ...ceremonyIn,
        ...ShareInput.shape,
        /** When this share opens the hierarchy: deliver the models key again to every protected host whose directory is locked (in the background; each host's result is an audit event). */
        unlockModels: z.boolean().optional(),
      })
      .strict(),
    out: z.object({
      collected: z.number().int(),
      threshold: z.number().int(),
      done: z.boolean(),
      contributors: z.array(z.string()),
      ceremony: Ceremony,
      /** The protected hosts whose models directories this unseal is unlocking in the background (empty unless asked). */
      unlocking: z.array(HostName).optional(),
    }),
    roles: ['admin', 'officer'],
    secret: ['share', 'passphrase'],
    target: ofCeremony,
    summary: 'Unseal: give one officer’s share; the hierarchy opens when the threshold is reached',
  }),
  'keys:seal': channel({
    in: NoInput,
    out: KeyStatus,
    roles: ['admin', 'officer'],
    summary: 'Seal the hierarchy: the root key and KEKs leave memory',
  }),
  'keys:verifyShares': channel({
    in: z.object({ ...ceremonyIn, shares: z.array(ShareInput).min(1).max(MAX_SHARES) }).strict(),
    out: z.object({ report: VerifySharesReport, ceremony: Ceremony }),
    roles: ['admin', 'officer'],
    secret: ['shares'],
    target: ofCeremony,
    summary: 'Verify shares: each is this hierarchy’s, current and opens; the set combines to the root',
  }),
  'keys:rotateKek': channel({
    in: z.object(ceremonyIn).strict(),
    out: z.object({ domain: KeyDomain, version: z.number().int(), rewrapped: z.number().int(), ceremony: Ceremony }),
    roles: ['admin', 'officer'],
    stepUp: true,
    target: ofCeremony,
    summary: 'Rotate a domain KEK: a new version, and every data key rewrapped to it',
  }),
  'keys:setMinDecryptionVersion': channel({
    in: z.object({ domain: KeyDomain, version: z.number().int().min(1).max(1_000_000) }).strict(),
    out: z.object({ domain: KeyDomain, minDecryptionVersion: z.number().int() }),
    roles: ['admin', 'officer'],
    stepUp: true,
    target: 'domain',
    summary:
      "Retire a domain's older KEK versions for decryption (min_decryption_version); refused while a data key is still wrapped by one or a host pending in a models re-key still needs one",
  }),
  'keys:reshare': channel({
    in: z.object({ ...ceremonyIn, passphrases: z.record(z.string(), SharePassphrase).default({}) }).strict(),
    out: z.object({ shares: z.array(ShareMade), ceremony: Ceremony }),
    roles: ['admin', 'officer'],
    stepUp: true,
    secret: ['passphrases'],
    target: ofCeremony,
    summary: 'Reshare the root among new officers or a new m-of-n; the old shares stop working',
  }),
  'keys:rotateRoot': channel({
    in: z.object({ ...ceremonyIn, passphrases: z.record(z.string(), SharePassphrase).default({}) }).strict(),
    out: z.object({ rootKcv: Kcv, shares: z.array(ShareMade), ceremony: Ceremony }),
    roles: ['admin', 'officer'],
    stepUp: true,
    secret: ['passphrases'],
    target: ofCeremony,
    summary: 'Rotate the root key: a new root, every KEK rewrapped under it, new shares',
  }),
  'keys:transcript': channel({
    in: z.object(ceremonyIn).strict(),
    out: z.object({ text: z.string() }),
    roles: ['admin', 'officer', 'auditor'],
    target: ofCeremony,
    summary: 'A completed ceremony’s signed transcript (JSON), to verify offline',
  }),
  'keys:verifyTranscript': channel({
    in: z.object({ text: z.string().max(1024 * 1024) }).strict(),
    out: TranscriptReport,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Verify a ceremony transcript against this console’s root CA certificate',
  }),
  'keys:caCertificate': channel({
    in: NoInput,
    out: z.object({ pem: z.string().nullable(), fingerprint: z.string().nullable() }),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'The root CA certificate (PEM): all an auditor needs to verify transcripts offline',
  }),
  'keys:modelsStatus': channel({
    in: z.object({ host: HostName }).strict(),
    out: ModelsStatus,
    roles: ['admin', 'officer', 'auditor'],
    target: 'host',
    summary: "A host's models directory: unencrypted, locked, unlocked (fscrypt), and the data key Airlock holds for it",
  }),
  'keys:protectModels': channel({
    in: z.object({ host: HostName }).strict(),
    out: ModelsStatus,
    roles: ['admin', 'officer'],
    stepUp: true,
    target: 'host',
    summary: "Encrypt a host's (empty) models directory under a new models data key, delivered over SSH into the host's kernel only",
  }),
  'keys:unlockModels': channel({
    in: z.object({ hosts: HostSelector }).strict(),
    out: z.array(ModelsUnlockResult),
    roles: ['admin', 'officer'],
    target: (i) => i.hosts.join(',').slice(0, 200),
    summary: 'Deliver the models key again to each chosen host whose models directory is locked (after a reboot); needs the hierarchy unsealed',
  }),
  'keys:certificates': channel({
    in: z.object({ host: HostName.optional(), includeRevoked: z.boolean().optional() }).strict(),
    out: z.object({
      certificates: z.array(CertificateRow),
      /** Hosts still to be sent their issuer's newest CRL (unreachable when it was published). */
      crlPending: z.array(z.object({ host: z.string(), issuers: z.array(z.string()), message: z.string() })),
      schedule: RenewalScheduleStatus,
    }),
    roles: ['admin', 'officer', 'auditor'],
    target: 'host',
    summary: 'The CA’s certificates by expiry (days left, renewal due), CRLs pending and the renewal schedule',
  }),
  'keys:issueHostCertificate': channel({
    in: z.object({ host: HostName }).strict(),
    out: CertificateRow,
    roles: ['admin', 'officer'],
    stepUp: true,
    target: 'host',
    summary: 'Issue a host TLS certificate: a key made on the host, certified by the issuing CA, installed with the chain and CRL',
  }),
  'keys:revokeCertificate': channel({
    in: z.object({ serial: CertSerial, reason: RevocationReason }).strict(),
    out: z.object({ certificate: CertificateRow, crl: CrlPublication }),
    roles: ['admin', 'officer'],
    stepUp: true,
    target: 'serial',
    summary: 'Revoke a certificate and publish its issuer’s new CRL to every host holding one of its certificates',
  }),
  'keys:renewCertificates': channel({
    in: z.object({ windowDays: z.number().int().min(0).max(3650).optional() }).strict(),
    out: z.object({
      renewed: z.array(z.object({ host: z.string().nullable(), oldSerial: z.string(), newSerial: z.string() })),
      failed: z.array(z.object({ host: z.string().nullable(), serial: z.string(), message: z.string() })),
      crls: z.array(CrlPublication),
      /** The journaled renewals this run started or resumed, with each host's steps. */
      renewals: z.array(CertRenewal),
    }),
    roles: ['admin', 'officer'],
    summary: 'Renew every host certificate within the window (old ones revoked as superseded) and send pending CRLs',
  }),
  'keys:crl': channel({
    in: z.object({ issuer: CertSerial.optional() }).strict(),
    out: z.object({ issuerSerial: z.string(), crlNumber: z.number().int().nullable(), pem: z.string().nullable() }),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'The newest CRL (PEM) of the issuing CA, or of the CA given',
  }),
  'keys:certRenewals': channel({
    in: z.object({ limit: z.number().int().min(1).max(200).optional() }).strict(),
    out: z.array(CertRenewal),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Host certificate renewals, newest first (default 50): each with its hosts’ steps and pending hosts',
  }),
  'keys:certRenewal': channel({
    in: z.object({ id: CertRenewalId }).strict(),
    out: CertRenewal,
    roles: ['admin', 'officer', 'auditor'],
    target: ofRenewal,
    summary: 'One host certificate renewal: each host’s steps, which hosts are pending',
  }),
  'keys:resumeCertRenewal': channel({
    in: z.object({ id: CertRenewalId }).strict(),
    out: CertRenewal,
    roles: ['admin', 'officer'],
    stepUp: true,
    target: ofRenewal,
    summary: 'Resume a host certificate renewal from each host’s first unfinished step (after a crash, or once pending hosts are back); needs the hierarchy unsealed',
  }),
  'keys:rotateSshIdentity': channel({
    in: z.object({ hosts: HostSelector }).strict(),
    out: SshRotation,
    roles: ['admin', 'officer'],
    stepUp: true,
    summary: "Rotate Airlock's own SSH identity on every host: add the new key, log in with it, remove the old one, then retire the old key",
  }),
  'keys:rotateOwnKey': channel({
    // The SSH identity is in the enum so that asking for it gets the pointer to the fleet rotation, not a schema error.
    in: z.object({ purpose: OwnKeyPurpose }).strict(),
    out: OwnKeyRotation,
    roles: ['admin', 'officer'],
    stepUp: true,
    target: 'purpose',
    summary: "Rotate one of Airlock's own keys (audit signing, audit HMAC, attestation signing): a new version current, the old one retired, the handover recorded in the audit trail and signed by the old audit key",
  }),
  'keys:sshRotations': channel({
    in: z.object({ limit: z.number().int().min(1).max(200).optional() }).strict(),
    out: z.array(SshRotation),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'SSH identity rotations, newest first (default 50): each with its hosts’ steps and pending hosts',
  }),
  'keys:sshRotation': channel({
    in: z.object({ id: SshRotationId }).strict(),
    out: SshRotation,
    roles: ['admin', 'officer', 'auditor'],
    target: ofRotation,
    summary: 'One SSH identity rotation: each host’s steps, which hosts are pending',
  }),
  'keys:resumeSshRotation': channel({
    in: z.object({ id: SshRotationId }).strict(),
    out: SshRotation,
    roles: ['admin', 'officer'],
    stepUp: true,
    target: ofRotation,
    summary: 'Resume an SSH identity rotation from each host’s first unfinished step (after a crash, or once pending hosts are back)',
  }),
  'keys:hostSecrets': channel({
    in: z.object({ host: HostName.optional() }).strict(),
    out: z.array(HostSecret),
    roles: ['admin', 'officer', 'auditor'],
    target: 'host',
    summary: 'Host secrets sealed under the host-secrets KEK (inference API keys): host, unit, id, KEK version, created; never the value',
  }),
  'keys:redeliverHostSecret': channel({
    in: z.object({ host: HostName, id: HostSecretId }).strict(),
    out: HostSecretDelivery,
    roles: ['admin', 'officer'],
    target: 'host',
    summary: "Deliver a sealed host secret to its host again (0600, over SSH on stdin) and restart the service that reads it; needs the hierarchy unsealed",
  }),
  'keys:rekeyModels': channel({
    in: z.object({ hosts: HostSelector, concurrency: z.number().int().min(1).max(16).optional() }).strict(),
    out: ModelsRekey,
    roles: ['admin', 'officer'],
    stepUp: true,
    target: (i) => i.hosts.join(',').slice(0, 200),
    summary: "Re-key hosts' models directories: a new models key per host, the files re-encrypted on the host and verified, swapped in, the old key retired",
  }),
  'keys:modelsRekey': channel({
    in: z.object({ id: ModelsRekeyId }).strict(),
    out: ModelsRekey,
    roles: ['admin', 'officer', 'auditor'],
    target: ofRekey,
    summary: 'One models re-key: each host’s steps, which hosts are pending',
  }),
  'keys:resumeModelsRekey': channel({
    in: z.object({ id: ModelsRekeyId }).strict(),
    out: ModelsRekey,
    roles: ['admin', 'officer'],
    stepUp: true,
    target: ofRekey,
    summary: 'Resume a models re-key from each host’s first unfinished step (after a crash, or once pending hosts are back)',
  }),
} as const;

import { signDetachedCms } from './cms';
import { AirlockError } from '../../../shared/domain/errors';
import { open as aeadOpen, seal as aeadSeal } from '../vault/aead';
import type { Vault } from '../vault/vault';
import { certInfo, createIssuingCa, createRootCa, issueCertificate, type CaKeyPair } from './ca';
import type { CertStore, StoredCertificate } from './cert-store';
import type { KeyService } from './service';
import { signTranscript, verifyTranscript, type TranscriptBody } from './transcript';

/** Validity of what genesis creates (days). The root outlives every issuing CA it will sign. */
export const CA_VALIDITY = { root: 20 * 365, issuing: 5 * 365, bundleSigning: 2 * 365 } as const;

const secretName = (serial: string) => `ca.key.${serial}`;
const caAad = (serial: string) => `airlock.ca-key/v1|${serial}`;

/**
 * Airlock's internal CA as the console runs it (docs/keys-ca.md): created at genesis — a root CA,
 * an issuing CA below it, and a bundle-signing certificate for transcripts (and later bundles and
 * attestations). Where each private key lives:
 *
 * - The root CA and issuing CA keys are sealed twice: by a data key of the `console` KEK (so they
 *   open only while the hierarchy is unsealed) and by the vault key (so a copy of the database
 *   without a signed-in account's password opens nothing). Their `key_ref` is `console:ca.<serial>`.
 * - The bundle-signing key is sealed by the vault key only (`vault:ca.<serial>`): ceremonies that
 *   end with the hierarchy sealed (verify-shares, a cancelled unseal) still get a signed
 *   transcript, and a console restart never needs a quorum of officers to sign.
 *
 * No key is ever written in the clear; every opened key is zeroed after use.
 */
export class ConsoleCa {
  constructor(
    private readonly d: {
      vault: Vault;
      keys: KeyService;
      certs: CertStore;
      random: (n: number) => Buffer;
      now: () => Date;
      organization?: string;
    },
  ) {}

  /** The root CA certificate on record, or null before genesis. */
  root(): StoredCertificate | null {
    return this.d.certs.listByExpiry({ profile: 'root-ca' }).at(-1) ?? null;
  }

  /** Every certificate's identity, for a transcript's before/after fingerprints. */
  fingerprints(): { serial: string; kind: string; sha256: string }[] {
    return this.d.certs.listByExpiry({ includeRevoked: true }).map((c) => ({ serial: c.serial, kind: c.profile, sha256: c.sha256 }));
  }

  /** Creates the CA at genesis (the hierarchy is unsealed: the console KEK exists). Idempotent: an existing root is kept. */
  async genesis(vaultKey: Buffer): Promise<void> {
    if (this.root()) return;
    const now = this.d.now();
    const common = { now, random: this.d.random, ...(this.d.organization ? { organization: this.d.organization } : {}) };
    const root = await createRootCa({ ...common, commonName: 'Airlock Root CA', validityDays: CA_VALIDITY.root });
    const rootRec = this.d.certs.record({ certPem: root.certPem, keyRef: `console:ca.${certInfo(root.certPem).serial}` });
    this.sealUnderHierarchy(vaultKey, rootRec.serial, root.privateKeyPkcs8);
    const issuing = await createIssuingCa(root, { ...common, commonName: 'Airlock Issuing CA 1', validityDays: CA_VALIDITY.issuing });
    root.privateKeyPkcs8.fill(0);
    const issRec = this.d.certs.record({ certPem: issuing.certPem, issuerSerial: rootRec.serial, keyRef: `console:ca.${certInfo(issuing.certPem).serial}` });
    this.sealUnderHierarchy(vaultKey, issRec.serial, issuing.privateKeyPkcs8);
    await this.issueBundleSigning(vaultKey, issuing, issRec.serial);
    issuing.privateKeyPkcs8.fill(0);
  }

  private async issueBundleSigning(vaultKey: Buffer, issuing: CaKeyPair, issuerSerial: string): Promise<void> {
    const cert = await issueCertificate(issuing, { now: this.d.now(), random: this.d.random, profile: 'bundle-signing', commonName: 'Airlock ceremony transcripts and bundles', validityDays: CA_VALIDITY.bundleSigning });
    const rec = this.d.certs.record({ certPem: cert.certPem, issuerSerial, keyRef: `vault:ca.${certInfo(cert.certPem).serial}` });
    this.d.vault.putSecret(vaultKey, secretName(rec.serial), cert.privateKeyPkcs8!);
    cert.privateKeyPkcs8!.fill(0);
  }

  /** A CA key: sealed by a `console` data key, the result sealed again in the vault. */
  private sealUnderHierarchy(vaultKey: Buffer, serial: string, pkcs8: Buffer): void {
    const id = `ca.${serial}`;
    this.d.keys.putDataKey('console', id);
    const dk = this.d.keys.openDataKey('console', id);
    try {
      this.d.vault.putSecret(vaultKey, secretName(serial), aeadSeal(dk, pkcs8, caAad(serial), this.d.random));
    } finally {
      dk.fill(0);
    }
  }

  /** Opens a CA key (root or issuing): needs the hierarchy unsealed and a signed-in session. */
  openCaKey(vaultKey: Buffer, serial: string): Buffer {
    const sealed = this.d.vault.getSecret(vaultKey, secretName(serial));
    if (!sealed) throw new AirlockError('NOT_FOUND', `The private key of CA certificate ${serial} is not held by this console.`);
    const dk = this.d.keys.openDataKey('console', `ca.${serial}`);
    try {
      const key = aeadOpen(dk, sealed, caAad(serial));
      if (!key) throw new AirlockError('INTERNAL', `The sealed key of CA certificate ${serial} does not open: it was altered or belongs elsewhere.`);
      return key;
    } finally {
      dk.fill(0);
    }
  }

  /** The newest unrevoked bundle-signing certificate with its chain (issuing CA). */
  private signer(vaultKey: Buffer) {
    const cert = this.d.certs.listByExpiry({ profile: 'bundle-signing' }).at(-1);
    if (!cert) throw new AirlockError('KEY_UNAVAILABLE', 'There is no bundle-signing certificate yet: the genesis ceremony creates it.');
    const issuer = this.d.certs.get(cert.issuerSerial)!;
    const key = this.d.vault.getSecret(vaultKey, secretName(cert.serial));
    if (!key) throw new AirlockError('KEY_UNAVAILABLE', `The bundle-signing key ${cert.serial} is not in this console's vault.`);
    return { certPem: cert.certPem, chainPems: [issuer.certPem], privateKeyPkcs8: key };
  }

  async signTranscript(body: TranscriptBody, vaultKey: Buffer): Promise<string> {
    const signer = this.signer(vaultKey);
    try {
      return await signTranscript(body, signer);
    } finally {
      signer.privateKeyPkcs8.fill(0);
    }
  }

  /** A detached CMS over `bytes` by the bundle-signing certificate (model version signatures, models/signature.ts). */
  async signDetached(bytes: Buffer, vaultKey: Buffer): Promise<Buffer> {
    const signer = this.signer(vaultKey);
    try {
      return await signDetachedCms(bytes, signer);
    } finally {
      signer.privateKeyPkcs8.fill(0);
    }
  }

  /** Verifies a transcript against this console's root CA, as `airlock keys verify-transcript --ca` does offline. */
  async verifyTranscript(text: string) {
    const root = this.root();
    if (!root) return { ok: false, problems: ['This console has no root CA yet (no genesis): there is nothing to verify against.'], kind: null, nonce: null, signer: null };
    return transcriptReport(await verifyTranscript(text, root.certPem));
  }
}

/** The contract's report of a verification. */
export function transcriptReport(v: Awaited<ReturnType<typeof verifyTranscript>>) {
  return { ok: v.ok, problems: v.problems, kind: v.body?.ceremony ?? null, nonce: v.body?.nonce ?? null, signer: v.signer };
}

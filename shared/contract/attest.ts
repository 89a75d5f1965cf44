import { z } from 'zod';
import { channel } from './channel';
import { Fingerprint, HostName, NoInput } from './common';
import { AttestationId, PlaybookName, RunId, Sha256Hex, StepId } from './provision';

/** What an as-built attestation holds (canonical JSON, signed). See docs/formats.md. */
export const AttestationBody = z.object({
  format: z.literal('airlock.attestation/v1'),
  id: AttestationId,
  host: z.object({ name: HostName, address: z.string(), port: z.number(), hostKey: z.object({ fingerprint: Fingerprint, type: z.string().nullable() }) }),
  playbook: z.object({ name: PlaybookName, version: z.string(), digest: Sha256Hex }),
  run: RunId,
  operator: z.string(),
  createdAt: z.string(),
  /** Facts proven by each step's verify, keyed by step id (GPU inventory, packages, model files, firewall, sshd...). */
  facts: z.record(StepId, z.object({ type: z.string(), facts: z.unknown() })),
});
export type AttestationBody = z.infer<typeof AttestationBody>;

export const SignedAttestation = z.object({
  attestation: AttestationBody,
  signature: z.object({
    alg: z.literal('Ed25519'),
    /** SPKI DER, base64. */
    publicKey: z.string(),
    keyFingerprint: z.string(),
    /** Over the UTF-8 bytes of canonical JSON (RFC 8785) of `attestation`. */
    value: z.string(),
  }),
});
export type SignedAttestation = z.infer<typeof SignedAttestation>;

export const AttestVerifyReport = z.object({
  ok: z.boolean(),
  /** The signature is valid for the key in the file. */
  signatureValid: z.boolean(),
  /** The key in the file is this console's attestation key. */
  trustedKey: z.boolean(),
  keyFingerprint: z.string().nullable(),
  host: z.string().nullable(),
  problems: z.array(z.string()),
});

export const attest = {
  'attest:list': channel({
    in: z.object({ host: HostName.optional() }).strict(),
    out: z.array(
      z.object({
        id: AttestationId,
        host: HostName,
        run: RunId,
        createdAt: z.string(),
        playbook: z.string(),
        /** The playbook's digest (`playbook.digest` in the body): which playbook bytes were applied. */
        playbookDigest: Sha256Hex,
        /** SHA-256 of the attestation body's canonical JSON (the signed bytes): which attestation this is. */
        digest: Sha256Hex,
      }),
    ),
    roles: ['admin', 'officer', 'auditor'],
    target: 'host',
    summary: 'As-built attestations, newest first',
  }),
  'attest:show': channel({
    in: z.object({ id: AttestationId.optional(), host: HostName.optional() }).strict(),
    out: SignedAttestation,
    roles: ['admin', 'officer', 'auditor'],
    // The host when given, else the attestation.
    target: (i) => i.host ?? i.id ?? null,
    summary: "An attestation (by id, or a host's latest) with its signature, ready to export",
  }),
  'attest:key': channel({
    in: NoInput,
    out: z.object({
      publicKey: z.string().nullable(),
      fingerprint: z.string().nullable(),
      /** Every version this console trusts (retired ones too: attestations they signed still verify), oldest first. */
      versions: z
        .array(z.object({ version: z.number().int(), fingerprint: z.string(), publicKey: z.string(), createdAt: z.string(), retiredAt: z.string().nullable() }))
        .optional(),
    }),
    roles: ['admin', 'officer', 'auditor'],
    summary: "This console's attestation public key (PEM) and fingerprint, and every earlier version's, for verifying attestations offline",
  }),
  'attest:verify': channel({
    in: z.object({ text: z.string().max(4 * 1024 * 1024) }).strict(),
    out: AttestVerifyReport,
    roles: ['admin', 'officer', 'auditor'],
    summary: "Verify an exported attestation's signature and that it was made by this console's key",
  }),
} as const;

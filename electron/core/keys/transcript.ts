import crypto, { webcrypto } from 'node:crypto';
import canonicalize from 'canonicalize';
import * as pkijs from 'pkijs';
import { z } from 'zod';
import { visibleText } from '../../../shared/contract/common';
import { AirlockError } from '../../../shared/domain/errors';
import { certInfo, publicKeyOf, verifyChain } from './ca';

/**
 * Signed ceremony transcripts: what happened at a key ceremony (who was in the room in which
 * role, who acknowledged each step, which officers contributed a share — never the shares —, the
 * key fingerprints before and after), as canonical JSON (RFC 8785) signed by the bundle-signing
 * certificate in a detached CMS SignedData. An auditor checks one offline with the root CA
 * certificate alone, with `airlock keys verify-transcript` or plain openssl (docs/keys-ca.md).
 */

export const TRANSCRIPT_FORMAT = 'airlock.ceremony-transcript/v1';
export const CEREMONY_KINDS = ['genesis', 'unseal', 'verify-shares', 'rotate-kek', 'reshare', 'rotate-root', 'add-officer', 'remove-officer'] as const;
export const CEREMONY_ROLES = ['administrator', 'officer', 'witness'] as const;
export const KEY_DOMAINS = ['models', 'datasets', 'host-secrets', 'console'] as const;

/** A transcript file is a few kilobytes; the bound keeps a hostile file from costing memory or time. */
export const MAX_TRANSCRIPT_BYTES = 1024 * 1024;
const MAX_CMS_BASE64 = 64 * 1024;

// Text other people read goes through visibleText: no control, format or invisible characters, so
// a name cannot pass for another and the canonical bytes are the ones `jq -cjS` prints too.
const PersonName = visibleText(z.string().min(1).max(128));
const Title = visibleText(z.string().min(1).max(300));
const Token = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9._:+/=-]+$/, 'letters, digits and . _ : + / = -');
/** A key check value or fingerprint as the component that made it prints it (hex, base64, SHA256:…). */
const KeyFingerprint = Token(128);
const Instant = z.iso.datetime();

const Fingerprints = z.strictObject({
  /** Key check value of the root CMK; null before genesis. */
  rootKcv: KeyFingerprint.nullable(),
  keks: z.array(z.strictObject({ domain: z.enum(KEY_DOMAINS), version: z.number().int().min(1).max(1_000_000), kcv: KeyFingerprint })).max(256),
  certificates: z.array(z.strictObject({ serial: z.string().regex(/^[0-9a-f]{2,40}$/), kind: Token(32), sha256: z.string().regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/) })).max(256),
});

export const TranscriptBody = z
  .strictObject({
    format: z.literal(TRANSCRIPT_FORMAT),
    /** The version of the ceremony script read out in the room (steps and their wording). */
    scriptVersion: Token(32),
    ceremony: z.enum(CEREMONY_KINDS),
    /** The ceremony's fresh nonce: every share and input was bound to it (vault#844). */
    nonce: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'hex or base64url, 16 to 128 characters'),
    hierarchyId: Token(64),
    participants: z
      .array(
        z.strictObject({
          name: PersonName,
          role: z.enum(CEREMONY_ROLES),
          /** The fingerprint of the officer's share-sealing key, as the officer confirmed it aloud. */
          sealingKeyFingerprint: KeyFingerprint.optional(),
        }),
      )
      .min(1)
      .max(64),
    quorum: z.strictObject({ threshold: z.number().int().min(1).max(255), shares: z.number().int().min(1).max(255) }).optional(),
    steps: z.array(z.strictObject({ n: z.number().int().min(1).max(1000), title: Title, acknowledgedBy: PersonName, at: Instant })).max(1000),
    /** Officers whose share was used, by name and share index: never the share itself. */
    contributors: z.array(z.strictObject({ name: PersonName, shareIndex: z.number().int().min(1).max(255) })).max(255),
    before: Fingerprints,
    after: Fingerprints,
    startedAt: Instant,
    finishedAt: Instant,
    outcome: z.enum(['completed', 'aborted', 'failed']),
    /** Why a ceremony was aborted or failed, in the administrator's words. */
    reason: visibleText(z.string().min(1).max(2000)).optional(),
  })
  .superRefine((t, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const roles = new Map<string, string>();
    t.participants.forEach((p, i) => {
      if (roles.has(p.name)) issue(['participants', i, 'name'], `${p.name} is listed twice`);
      roles.set(p.name, p.role);
    });
    if (!t.participants.some((p) => p.role === 'administrator')) issue(['participants'], 'a ceremony has a ceremony administrator');
    const start = Date.parse(t.startedAt);
    const end = Date.parse(t.finishedAt);
    if (end < start) issue(['finishedAt'], 'the ceremony cannot finish before it started');
    t.steps.forEach((s, i) => {
      if (s.n !== i + 1) issue(['steps', i, 'n'], `steps are numbered 1, 2, 3… in order; step ${i + 1} says ${s.n}`);
      if (!roles.has(s.acknowledgedBy)) issue(['steps', i, 'acknowledgedBy'], `${s.acknowledgedBy} is not a participant`);
      const at = Date.parse(s.at);
      if (at < start || at > end) issue(['steps', i, 'at'], 'a step is acknowledged between the start and the end of the ceremony');
    });
    const indexes = new Set<number>();
    const names = new Set<string>();
    t.contributors.forEach((c, i) => {
      if (roles.get(c.name) !== 'officer') issue(['contributors', i, 'name'], `${c.name} is not an officer of this ceremony`);
      if (names.has(c.name)) issue(['contributors', i, 'name'], `${c.name} contributed twice`);
      if (indexes.has(c.shareIndex)) issue(['contributors', i, 'shareIndex'], `share ${c.shareIndex} was counted twice`);
      names.add(c.name);
      indexes.add(c.shareIndex);
    });
    if (t.quorum && t.quorum.threshold > t.quorum.shares) issue(['quorum', 'threshold'], 'the threshold cannot exceed the number of shares');
    if (t.outcome !== 'completed' && t.reason === undefined) issue(['reason'], `a ceremony that ${t.outcome === 'failed' ? 'failed' : 'was aborted'} says why`);
  });
export type TranscriptBody = z.infer<typeof TranscriptBody>;

const TranscriptFile = z.strictObject({
  transcript: z.unknown(),
  signature: z.strictObject({ format: z.literal('cms-detached'), cms: z.base64().max(MAX_CMS_BASE64) }),
});

export interface TranscriptSigner {
  /** The bundle-signing certificate. */
  certPem: string;
  /** The CA certificates above it (issuing CA; the root may be included), embedded so a verifier needs only the root. */
  chainPems: readonly string[];
  privateKeyPkcs8: Buffer;
}

export interface TranscriptVerification {
  /** True only when the file parsed, the signature verified and the signer chains to the root given with the bundle-signing profile. */
  ok: boolean;
  problems: string[];
  /** What the file says, once it parsed: trust it only when `ok`. */
  body: TranscriptBody | null;
  /** Who signed it, once the signer's certificate was found in the CMS. */
  signer: { subject: string; fingerprint: string } | null;
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  sha256: '2.16.840.1.101.3.4.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
};

/** pkijs takes its WebCrypto per call: Node's, so nothing depends on a global engine. */
const engine = () => new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'] });

const problemsOf = (error: z.ZodError, prefix: string) =>
  error.issues.map((i) => `${[prefix, ...i.path.map(String)].filter((p) => p !== '').join('.')}: ${i.message}`);

/** The exact bytes the CMS signs: RFC 8785 canonical JSON of the transcript, UTF-8. */
export function canonicalTranscriptBytes(body: TranscriptBody): Buffer {
  const text = canonicalize(body);
  if (text === undefined) throw new AirlockError('INTERNAL', 'The transcript has no canonical form.');
  return Buffer.from(text, 'utf8');
}

/** A copy as a standalone ArrayBuffer: a small Buffer's `.buffer` is Node's shared pool, not its bytes. */
const exactBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

function derOfPem(pem: string, what: string): ArrayBuffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new AirlockError('PARSE_ERROR', `The ${what} certificate is not PEM.`);
  return exactBuffer(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/** PEM of a certificate from the CMS, its bytes as they came (toSchema() reuses the stored TBS, so the signature still verifies). */
const pemOfCert = (cert: pkijs.Certificate) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(cert.toSchema().toBER(false)).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd()}\n-----END CERTIFICATE-----\n`;

/**
 * Signs a transcript: validates it against the schema (a malformed transcript is refused, not
 * signed), checks that the signer holds a bundle-signing certificate valid when the ceremony
 * finished and that the key is that certificate's, then makes a detached CMS SignedData (ECDSA
 * P-256 / SHA-256, no signed attributes: the content carries its own times) over the canonical
 * bytes, with the signer certificate and its chain embedded. Returns the file's text.
 */
export async function signTranscript(body: TranscriptBody, signer: TranscriptSigner): Promise<string> {
  const parsed = TranscriptBody.safeParse(body);
  if (!parsed.success) throw new AirlockError('INVALID_INPUT', `The transcript is not valid, so it was not signed: ${problemsOf(parsed.error, 'transcript').join('; ')}.`);
  const info = certInfo(signer.certPem);
  if (info.kind !== 'bundle-signing') throw new AirlockError('INVALID_INPUT', `Transcripts are signed with the bundle-signing certificate; ${info.subject} is ${info.kind ?? 'not an Airlock profile'}.`);
  const finished = new Date(parsed.data.finishedAt);
  if (finished < info.notBefore || finished > info.notAfter) {
    throw new AirlockError('INVALID_INPUT', `The bundle-signing certificate ${info.subject} was not valid when the ceremony finished; renew it, then sign again.`);
  }
  const certDer = derOfPem(signer.certPem, 'signer');
  if (!publicKeyOf(signer.privateKeyPkcs8).equals(crypto.createPublicKey(signer.certPem).export({ format: 'der', type: 'spki' }))) {
    throw new AirlockError('INVALID_INPUT', `The private key given is not the key of ${info.subject}.`);
  }
  const cert = pkijs.Certificate.fromBER(certDer);
  const chain = signer.chainPems.map((p) => pkijs.Certificate.fromBER(derOfPem(p, 'chain')));
  const content = canonicalTranscriptBytes(parsed.data);
  const key = await webcrypto.subtle.importKey('pkcs8', signer.privateKeyPkcs8, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    signerInfos: [new pkijs.SignerInfo({ version: 1, sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }) })],
    certificates: [cert, ...chain],
  });
  await signed.sign(key as unknown as Parameters<typeof signed.sign>[0], 0, 'SHA-256', exactBuffer(content), engine());
  const der = new pkijs.ContentInfo({ contentType: OID.signedData, content: signed.toSchema(true) }).toSchema().toBER(false);
  const file = { transcript: parsed.data, signature: { format: 'cms-detached', cms: Buffer.from(der).toString('base64') } };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * Verifies a transcript file offline against the root CA certificate alone: the file's shape and
 * size, the transcript's schema, the CMS (one signer, ECDSA with SHA-256, detached: an embedded
 * content would be what got signed instead of the transcript shown), the signature over the
 * canonical bytes, and the signer's chain to `rootCaPem` with the bundle-signing profile. The
 * chain is checked at the time the ceremony finished (`at` overrides): a transcript stays
 * verifiable after its signing certificate expires, and a certificate that was not yet or no
 * longer valid then fails. With `crlPems` the signer and its issuing CA are also checked for
 * revocation (a compromised key fails whatever date the transcript claims). Hostile input gives
 * problems, never an exception.
 */
export async function verifyTranscript(text: string, rootCaPem: string, opts: { at?: Date; crlPems?: readonly string[] } = {}): Promise<TranscriptVerification> {
  const fail = (problems: string[], body: TranscriptBody | null = null, signer: TranscriptVerification['signer'] = null): TranscriptVerification => ({
    ok: false,
    problems,
    body,
    signer,
  });
  if (typeof text !== 'string' || Buffer.byteLength(text, 'utf8') > MAX_TRANSCRIPT_BYTES) {
    return fail([`A transcript file is text of at most ${MAX_TRANSCRIPT_BYTES} bytes.`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail(['The file is not JSON.']);
  }
  const file = TranscriptFile.safeParse(json);
  if (!file.success) return fail(problemsOf(file.error, ''));
  const body = TranscriptBody.safeParse(file.data.transcript);
  if (!body.success) return fail(problemsOf(body.error, 'transcript'));

  let signed: pkijs.SignedData;
  try {
    const ci = pkijs.ContentInfo.fromBER(exactBuffer(Buffer.from(file.data.signature.cms, 'base64')));
    if (ci.contentType !== OID.signedData) return fail(['The signature is not a CMS SignedData.'], body.data);
    signed = new pkijs.SignedData({ schema: ci.content });
  } catch {
    return fail(['The signature could not be read as CMS (DER).'], body.data);
  }
  const shape: string[] = [];
  if (signed.signerInfos.length !== 1) shape.push(`The CMS has ${signed.signerInfos.length} signers; a transcript has exactly one.`);
  if (signed.encapContentInfo.eContentType !== OID.data) shape.push('The CMS does not sign plain data.');
  if (signed.encapContentInfo.eContent) shape.push('The CMS carries content of its own; a transcript signature is detached.');
  const si = signed.signerInfos[0];
  if (si && si.digestAlgorithm.algorithmId !== OID.sha256) shape.push('The CMS digest is not SHA-256.');
  if (si && si.signatureAlgorithm.algorithmId !== OID.ecdsaWithSha256) shape.push('The CMS signature is not ECDSA with SHA-256.');
  const certs = (signed.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
  if (certs.length === 0 || certs.length > 8) shape.push('The CMS embeds no certificates, or more than 8.');
  if (shape.length > 0) return fail(shape, body.data);

  let signerCert: pkijs.Certificate | null = null;
  let signatureOk = false;
  try {
    const r = await signed.verify({ signer: 0, data: exactBuffer(canonicalTranscriptBytes(body.data)), extendedMode: true, checkChain: false }, engine());
    signerCert = r.signerCertificate ?? null;
    signatureOk = r.signatureVerified === true;
  } catch (e) {
    signerCert = (e as { signerCertificate?: pkijs.Certificate | null }).signerCertificate ?? null;
  }
  if (!signerCert) return fail(["The signer's certificate is not in the CMS."], body.data);
  let signerPem: string;
  let info: ReturnType<typeof certInfo>;
  let intermediatePems: string[];
  try {
    signerPem = pemOfCert(signerCert);
    info = certInfo(signerPem);
    intermediatePems = certs.filter((c) => c !== signerCert).map(pemOfCert);
  } catch {
    return fail(["The signer's certificate in the CMS could not be read."], body.data);
  }
  const signer = { subject: info.subject, fingerprint: info.sha256 };
  const problems: string[] = [];
  if (!signatureOk) problems.push('The signature does not match the transcript: it was changed after signing, or signed by another key.');
  const chain = await verifyChain(signerPem, {
    intermediatePems,
    rootPem: rootCaPem,
    at: opts.at ?? new Date(body.data.finishedAt),
    ...(opts.crlPems ? { crlPems: opts.crlPems } : {}),
  });
  problems.push(...chain.problems);
  if (info.kind !== 'bundle-signing') problems.push(`The signer ${info.subject} does not hold a bundle-signing certificate (${info.kind ?? 'no Airlock profile'}).`);
  return { ok: problems.length === 0, problems, body: body.data, signer };
}

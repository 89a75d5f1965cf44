import canonicalize from 'canonicalize';
import { z } from 'zod';
import { visibleText } from '../../../shared/contract/common';
import { AirlockError } from '../../../shared/domain/errors';
import { certInfo } from './ca';
import { signDetachedCms, verifyDetachedCms, type CmsSigner } from './cms';

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

/** The bundle-signing certificate, its chain and key. */
export type TranscriptSigner = CmsSigner;

export interface TranscriptVerification {
  /** True only when the file parsed, the signature verified and the signer chains to the root given with the bundle-signing profile. */
  ok: boolean;
  problems: string[];
  /** What the file says, once it parsed: trust it only when `ok`. */
  body: TranscriptBody | null;
  /** Who signed it, once the signer's certificate was found in the CMS. */
  signer: { subject: string; fingerprint: string } | null;
}

const problemsOf = (error: z.ZodError, prefix: string) =>
  error.issues.map((i) => `${[prefix, ...i.path.map(String)].filter((p) => p !== '').join('.')}: ${i.message}`);

/** The exact bytes the CMS signs: RFC 8785 canonical JSON of the transcript, UTF-8. */
export function canonicalTranscriptBytes(body: TranscriptBody): Buffer {
  const text = canonicalize(body);
  if (text === undefined) throw new AirlockError('INTERNAL', 'The transcript has no canonical form.');
  return Buffer.from(text, 'utf8');
}

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
  const der = await signDetachedCms(canonicalTranscriptBytes(parsed.data), signer);
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

  const v = await verifyDetachedCms(canonicalTranscriptBytes(body.data), Buffer.from(file.data.signature.cms, 'base64'), rootCaPem, {
    at: opts.at ?? new Date(body.data.finishedAt),
    kind: 'bundle-signing',
    what: 'the transcript',
    ...(opts.crlPems ? { crlPems: opts.crlPems } : {}),
  });
  return { ok: v.ok, problems: v.problems, body: body.data, signer: v.signer ? { subject: v.signer.subject, fingerprint: v.signer.fingerprint } : null };
}

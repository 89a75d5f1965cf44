import crypto, { webcrypto } from 'node:crypto';
import * as pkijs from 'pkijs';
import { AirlockError } from '../../../shared/domain/errors';
import { certInfo, publicKeyOf, verifyChain, type CertInfo } from './ca';

/**
 * Detached CMS SignedData over bytes, signed with a certificate of Airlock's CA and verified
 * offline against the root CA certificate alone (the way `openssl cms -verify -binary -content`
 * checks it): what ceremony transcripts (transcript.ts) and model version signatures
 * (models/signature.ts) are signed with. ECDSA P-256 / SHA-256, no signed attributes (the content
 * carries its own times), the signer certificate and its chain embedded.
 */

export interface CmsSigner {
  /** The signing certificate (its profile is the caller's to check). */
  certPem: string;
  /** The CA certificates above it (issuing CA; the root may be included), embedded so a verifier needs only the root. */
  chainPems: readonly string[];
  privateKeyPkcs8: Buffer;
}

export interface CmsVerification {
  ok: boolean;
  problems: string[];
  /** Who signed it, once the signer's certificate was found in the CMS. */
  signer: { subject: string; fingerprint: string; kind: CertInfo['kind'] } | null;
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  sha256: '2.16.840.1.101.3.4.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
};

/** pkijs takes its WebCrypto per call: Node's, so nothing depends on a global engine. */
const engine = () => new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'] });

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

/** A detached CMS SignedData (DER) over `content`; refuses a key that is not the certificate's. */
export async function signDetachedCms(content: Buffer, signer: CmsSigner): Promise<Buffer> {
  const info = certInfo(signer.certPem);
  const certDer = derOfPem(signer.certPem, 'signer');
  if (!publicKeyOf(signer.privateKeyPkcs8).equals(crypto.createPublicKey(signer.certPem).export({ format: 'der', type: 'spki' }))) {
    throw new AirlockError('INVALID_INPUT', `The private key given is not the key of ${info.subject}.`);
  }
  const cert = pkijs.Certificate.fromBER(certDer);
  const chain = signer.chainPems.map((p) => pkijs.Certificate.fromBER(derOfPem(p, 'chain')));
  const key = await webcrypto.subtle.importKey('pkcs8', signer.privateKeyPkcs8, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.data }),
    signerInfos: [new pkijs.SignerInfo({ version: 1, sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }) })],
    certificates: [cert, ...chain],
  });
  await signed.sign(key as unknown as Parameters<typeof signed.sign>[0], 0, 'SHA-256', exactBuffer(content), engine());
  return Buffer.from(new pkijs.ContentInfo({ contentType: OID.signedData, content: signed.toSchema(true) }).toSchema().toBER(false));
}

/**
 * Verifies a detached CMS (DER) over `content` against `rootPem` alone: one signer, plain data,
 * detached (an embedded content would be what got signed instead of the one shown), SHA-256 with
 * ECDSA, at most 8 certificates, the signature over `content`, the signer's chain to the root at
 * `at` (revocation too with `crlPems`), and the signer's profile `kind`. Hostile input gives
 * problems, never an exception. `what` names the content in messages ("the transcript").
 */
export async function verifyDetachedCms(
  content: Buffer,
  cmsDer: Buffer,
  rootPem: string,
  opts: { at: Date; kind: NonNullable<CertInfo['kind']>; what: string; crlPems?: readonly string[] },
): Promise<CmsVerification> {
  const fail = (problems: string[], signer: CmsVerification['signer'] = null): CmsVerification => ({ ok: false, problems, signer });
  let signed: pkijs.SignedData;
  try {
    const ci = pkijs.ContentInfo.fromBER(exactBuffer(cmsDer));
    if (ci.contentType !== OID.signedData) return fail(['The signature is not a CMS SignedData.']);
    signed = new pkijs.SignedData({ schema: ci.content });
  } catch {
    return fail(['The signature could not be read as CMS (DER).']);
  }
  const shape: string[] = [];
  if (signed.signerInfos.length !== 1) shape.push(`The CMS has ${signed.signerInfos.length} signers; it must have exactly one.`);
  if (signed.encapContentInfo.eContentType !== OID.data) shape.push('The CMS does not sign plain data.');
  if (signed.encapContentInfo.eContent) shape.push(`The CMS carries content of its own; the signature of ${opts.what} is detached.`);
  const si = signed.signerInfos[0];
  if (si && si.digestAlgorithm.algorithmId !== OID.sha256) shape.push('The CMS digest is not SHA-256.');
  if (si && si.signatureAlgorithm.algorithmId !== OID.ecdsaWithSha256) shape.push('The CMS signature is not ECDSA with SHA-256.');
  const certs = (signed.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
  if (certs.length === 0 || certs.length > 8) shape.push('The CMS embeds no certificates, or more than 8.');
  if (shape.length > 0) return fail(shape);

  let signerCert: pkijs.Certificate | null = null;
  let signatureOk = false;
  try {
    const r = await signed.verify({ signer: 0, data: exactBuffer(content), extendedMode: true, checkChain: false }, engine());
    signerCert = r.signerCertificate ?? null;
    signatureOk = r.signatureVerified === true;
  } catch (e) {
    signerCert = (e as { signerCertificate?: pkijs.Certificate | null }).signerCertificate ?? null;
  }
  if (!signerCert) return fail(["The signer's certificate is not in the CMS."]);
  let signerPem: string;
  let info: CertInfo;
  let intermediatePems: string[];
  try {
    signerPem = pemOfCert(signerCert);
    info = certInfo(signerPem);
    intermediatePems = certs.filter((c) => c !== signerCert).map(pemOfCert);
  } catch {
    return fail(["The signer's certificate in the CMS could not be read."]);
  }
  const signer = { subject: info.subject, fingerprint: info.sha256, kind: info.kind };
  const problems: string[] = [];
  if (!signatureOk) problems.push(`The signature does not match ${opts.what}: it was changed after signing, or signed by another key.`);
  const chain = await verifyChain(signerPem, { intermediatePems, rootPem, at: opts.at, ...(opts.crlPems ? { crlPems: opts.crlPems } : {}) });
  problems.push(...chain.problems);
  if (info.kind !== opts.kind) problems.push(`The signer ${info.subject} does not hold a ${opts.kind} certificate (${info.kind ?? 'no Airlock profile'}).`);
  return { ok: problems.length === 0, problems, signer };
}

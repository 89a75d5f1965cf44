import crypto, { webcrypto } from 'node:crypto';
import net from 'node:net';
import * as x509 from '@peculiar/x509';
import { AirlockError } from '../../../shared/domain/errors';

// @peculiar/x509 takes its WebCrypto from a provider table of its own; Node's is the only one we
// use, set once here so no caller has to remember it (docs/keys-ca.md).
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** What an issued (end-entity) certificate is for. Each profile has its own EKU set, so one cannot stand in for another. */
export const CERT_PROFILES = ['host-tls', 'bundle-signing', 'registry-token', 'release-signing'] as const;
export type CertProfile = (typeof CERT_PROFILES)[number];
/** A profile, or one of the two CA certificates. */
export type CertKind = 'root-ca' | 'issuing-ca' | CertProfile;

/**
 * Extended key usages. `documentSigning` is RFC 9336's (this OpenSSL does not know it by name,
 * hence `-purpose any` when it verifies a CMS). No standard EKU says "signs registry tokens", and
 * a certificate without an EKU is good for anything, so registry tokens get an OID of Airlock's own
 * under `2.25` (X.667's arc for UUIDs, which needs no registration): `2.25.<N>.1`, N a random
 * number below 2^31, the `.1` Airlock's first OID under it. Not a full 128-bit UUID because Go's
 * x509 parser (and so CNCF distribution, which parses the token certificate) refuses any OID arc
 * of 2^31 or more ("x509: invalid extended key usages") — measured against docker-registry 2.8.2
 * in the lab. Random 128-bit UUIDs practically never fall below 2^31, so N collides with no one
 * who follows X.667.
 */
export const EKU = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  documentSigning: '1.3.6.1.5.5.7.3.36',
  airlockRegistryToken: '2.25.1245834279.1',
} as const;

const KU = x509.KeyUsageFlags;
const PROFILES: Record<CertProfile, { ekus: readonly string[]; keyUsage: number; needsSan: boolean }> = {
  'host-tls': { ekus: [EKU.serverAuth, EKU.clientAuth], keyUsage: KU.digitalSignature, needsSan: true },
  // nonRepudiation (contentCommitment): the signer stands behind the content, as a transcript's does.
  'bundle-signing': { ekus: [EKU.documentSigning], keyUsage: KU.digitalSignature | KU.nonRepudiation, needsSan: false },
  'registry-token': { ekus: [EKU.airlockRegistryToken], keyUsage: KU.digitalSignature, needsSan: false },
  'release-signing': { ekus: [EKU.codeSigning], keyUsage: KU.digitalSignature, needsSan: false },
};

/** RFC 5280 §5.3.1 reason codes a CRL entry may carry (removeFromCRL only makes sense in delta CRLs). */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** A CA's certificate and its private key (PKCS#8 DER). The caller seals the key; it never reaches a disk in the clear. */
export interface CaKeyPair {
  certPem: string;
  privateKeyPkcs8: Buffer;
}

/** An issued certificate; its private key if this call generated one (null when the caller brought a public key). */
export interface IssuedCertificate {
  certPem: string;
  privateKeyPkcs8: Buffer | null;
}

interface CommonOptions {
  commonName: string;
  organization?: string;
  validityDays: number;
  now: Date;
  /** Hex serial; by default 16 random bytes (RFC 5280 wants ≥ 64 bits of entropy in a serial). */
  serial?: string;
  random: (n: number) => Buffer;
}

export type RootCaOptions = CommonOptions;
export interface IssuingCaOptions extends CommonOptions {
  crlDistributionPoints?: string[];
}
export interface IssueOptions extends CommonOptions {
  profile: CertProfile;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** SPKI DER of an ECDSA P-256 key held elsewhere (a host's own key); without it a key pair is generated. */
  publicKey?: Buffer;
  crlDistributionPoints?: string[];
}

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason?: RevocationReason;
}

export interface CrlOptions {
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: number | bigint;
}

/** What a list of certificates by expiry shows, read from the certificate itself. */
export interface CertInfo {
  serial: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** The profile its EKUs say, or a CA; null for a certificate this CA would not have issued. */
  kind: CertKind | null;
  ekus: string[];
  dnsNames: string[];
  ipAddresses: string[];
  isCa: boolean;
  /** SHA-256 of the DER, uppercase hex with colons: what `openssl x509 -noout -fingerprint -sha256` prints. */
  sha256: string;
}

const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const DAY_MS = 86_400_000;
/** Hosts' clocks may lag the console's: a certificate issued now is valid from a few minutes ago. */
const BACKDATE_MS = 5 * 60_000;
/** The P-256 group order n: a private scalar is in [1, n-1]. */
const P256_ORDER = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
/** PKCS#8 v1 around an RFC 5915 ECPrivateKey on P-256, before its 32-byte scalar (no public key: OpenSSL derives it). */
const P256_PKCS8_PREFIX = Buffer.from('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420', 'hex');

/** PEM ending in a newline, so certificates and CRLs concatenate into a bundle openssl reads. */
const pemText = (o: { toString(format: 'pem'): string }) => `${o.toString('pem').trimEnd()}\n`;

type WebKey = webcrypto.CryptoKey;

const invalid = (message: string) => new AirlockError('INVALID_INPUT', message);

/**
 * A fresh ECDSA P-256 private key (PKCS#8 DER, public key included) from the injected random
 * source, so a seeded source gives the same key (as `ed25519FromSeed`). Rejection sampling keeps
 * the scalar uniform in [1, n-1].
 */
export function generateP256Key(random: (n: number) => Buffer): Buffer {
  for (;;) {
    const d = random(32);
    // Compared as bytes (big-endian, same length): no string or BigInt copy of the secret is made.
    if (d.length !== 32 || d.every((b) => b === 0) || Buffer.compare(d, P256_ORDER) >= 0) {
      d.fill(0);
      continue;
    }
    const bare = Buffer.concat([P256_PKCS8_PREFIX, d]);
    d.fill(0);
    try {
      return crypto.createPrivateKey({ key: bare, format: 'der', type: 'pkcs8' }).export({ format: 'der', type: 'pkcs8' });
    } finally {
      bare.fill(0);
    }
  }
}

/** The SPKI DER of a PKCS#8 private key's public half. */
export function publicKeyOf(privateKeyPkcs8: Buffer): Buffer {
  return crypto.createPublicKey(crypto.createPrivateKey({ key: privateKeyPkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
}

/** 16 random bytes as a positive DER INTEGER of exactly 16 bytes (top bit clear, first byte non-zero). */
export function randomSerial(random: (n: number) => Buffer): string {
  const b = random(16);
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b.toString('hex');
}

function checkSerial(serial: string): string {
  // Positive and minimally encoded: a leading 00 or a high first bit would make another integer of it.
  if (!/^[0-9a-f]{2,40}$/i.test(serial) || serial.length % 2 !== 0 || /^00/.test(serial) || parseInt(serial[0]!, 16) >= 8) {
    throw invalid(`Serial ${JSON.stringify(serial)} is not a positive hexadecimal integer of 1 to 20 bytes (even length, no leading 00, first digit 0-7).`);
  }
  return serial.toLowerCase();
}

function checkText(what: string, value: string): void {
  // X.520 upper bound for CN and O; control characters would garble every listing that shows them.
  if (value.length < 1 || value.length > 64 || /\p{Cc}/u.test(value)) {
    throw invalid(`The ${what} must be 1 to 64 characters without control characters.`);
  }
}

function subjectName(opts: CommonOptions): x509.JsonName {
  checkText('common name', opts.commonName);
  const name: x509.JsonName = [];
  if (opts.organization !== undefined) {
    checkText('organization', opts.organization);
    name.push({ O: [opts.organization] });
  }
  name.push({ CN: [opts.commonName] });
  return name;
}

function validity(opts: CommonOptions, ceiling?: Date): { notBefore: Date; notAfter: Date } {
  if (!Number.isInteger(opts.validityDays) || opts.validityDays < 1 || opts.validityDays > 36_500) {
    throw invalid(`Validity must be a whole number of days from 1 to 36500; got ${opts.validityDays}.`);
  }
  const notBefore = new Date(opts.now.getTime() - BACKDATE_MS);
  let notAfter = new Date(opts.now.getTime() + opts.validityDays * DAY_MS);
  // A certificate cannot be trusted past its issuer: clamped (as step-ca does), so the
  // renewal window flags it and the issuing CA is renewed first.
  if (ceiling && notAfter > ceiling) notAfter = ceiling;
  if (notAfter <= opts.now) throw invalid('The issuer has expired: renew the issuing CA before issuing from it.');
  return { notBefore, notAfter };
}

async function importSigningKey(privateKeyPkcs8: Buffer, whose: string): Promise<WebKey> {
  try {
    return await webcrypto.subtle.importKey('pkcs8', privateKeyPkcs8, P256, false, ['sign']);
  } catch {
    throw invalid(`The ${whose} private key is not an ECDSA P-256 PKCS#8 key.`);
  }
}

async function importPublicKey(spki: Buffer): Promise<WebKey> {
  try {
    return await webcrypto.subtle.importKey('spki', spki, P256, true, ['verify']);
  } catch {
    throw invalid('The public key is not an ECDSA P-256 key (SPKI DER); Airlock issues P-256 certificates only.');
  }
}

function parseCert(pem: string, what: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem);
  } catch {
    throw new AirlockError('PARSE_ERROR', `The ${what} certificate could not be read as PEM or DER X.509.`);
  }
}

/** The issuer as a CA that may sign: a CA certificate whose key is the one given (a mismatch would issue unverifiable certificates). */
async function loadIssuer(issuer: CaKeyPair): Promise<{ cert: x509.X509Certificate; key: WebKey }> {
  const cert = parseCert(issuer.certPem, 'issuer');
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw invalid(`${cert.subject} is not a CA certificate and cannot issue.`);
  let spki: Buffer;
  try {
    spki = publicKeyOf(issuer.privateKeyPkcs8);
  } catch {
    throw invalid("The issuer's private key is not a PKCS#8 key.");
  }
  if (!spki.equals(Buffer.from(cert.publicKey.rawData))) throw invalid(`The private key given is not the key of ${cert.subject}.`);
  return { cert, key: await importSigningKey(issuer.privateKeyPkcs8, "issuer's") };
}

async function keyPairFor(privateKeyPkcs8: Buffer): Promise<{ privateKey: WebKey; publicKey: WebKey }> {
  return { privateKey: await importSigningKey(privateKeyPkcs8, 'new'), publicKey: await importPublicKey(publicKeyOf(privateKeyPkcs8)) };
}

/**
 * A self-signed root CA: basicConstraints CA:true (critical, no path length: the issuing CA
 * below it sets pathLen 0), keyUsage keyCertSign+cRLSign (critical), SKI. The root signs only
 * issuing CAs and its own CRL; its key is sealed by the hierarchy and unsealed for those alone.
 */
export async function createRootCa(opts: RootCaOptions): Promise<CaKeyPair> {
  const serial = checkSerial(opts.serial ?? randomSerial(opts.random));
  const name = subjectName(opts);
  const { notBefore, notAfter } = validity(opts);
  const privateKeyPkcs8 = generateP256Key(opts.random);
  const keys = await keyPairFor(privateKeyPkcs8);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: pemText(cert), privateKeyPkcs8 };
}

/** An issuing (intermediate) CA signed by the root: pathLen 0, so it issues end-entity certificates only. */
export async function createIssuingCa(root: CaKeyPair, opts: IssuingCaOptions): Promise<CaKeyPair> {
  const signer = await loadIssuer(root);
  // Below an issuing CA (pathLen 0) another CA would fail every verifier: refused here instead.
  if (certInfo(root.certPem).kind !== 'root-ca') throw invalid(`${signer.cert.subject} is not a root CA; issuing CAs are signed by the root.`);
  const serial = checkSerial(opts.serial ?? randomSerial(opts.random));
  const subject = subjectName(opts);
  const { notBefore, notAfter } = validity(opts, signer.cert.notAfter);
  const privateKeyPkcs8 = generateP256Key(opts.random);
  const publicKey = await importPublicKey(publicKeyOf(privateKeyPkcs8));
  const cert = await signCertificate(signer, { serial, subject, notBefore, notAfter, publicKey, crlDistributionPoints: opts.crlDistributionPoints }, [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign, true),
  ]);
  return { certPem: pemText(cert), privateKeyPkcs8 };
}

/**
 * A certificate signed by `signer` (the root for an issuing CA, the issuing CA for a leaf): the
 * caller's extensions first, then the ones every issued certificate carries — SKI, AKI and the
 * optional CRL distribution point — so both builders stay alike where they must.
 */
async function signCertificate(
  signer: Awaited<ReturnType<typeof loadIssuer>>,
  c: { serial: string; subject: x509.JsonName; notBefore: Date; notAfter: Date; publicKey: WebKey; crlDistributionPoints: string[] | undefined },
  extensions: x509.Extension[],
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: c.serial,
    subject: c.subject,
    issuer: signer.cert.subjectName,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    signingAlgorithm: SIGNING,
    publicKey: c.publicKey,
    signingKey: signer.key,
    extensions: [
      ...extensions,
      await x509.SubjectKeyIdentifierExtension.create(c.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(signer.cert.publicKey),
      ...crlDp(c.crlDistributionPoints),
    ],
  });
}

function crlDp(urls: string[] | undefined): x509.Extension[] {
  if (!urls || urls.length === 0) return [];
  for (const u of urls) {
    let ok = false;
    try {
      ok = ['http:', 'https:', 'file:', 'ldap:'].includes(new URL(u).protocol);
    } catch {
      ok = false;
    }
    if (!ok) throw invalid(`CRL distribution point ${JSON.stringify(u)} is not an http(s), file or ldap URL.`);
  }
  return [new x509.CRLDistributionPointsExtension(urls)];
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function sans(opts: IssueOptions): x509.JsonGeneralName[] {
  const names: x509.JsonGeneralName[] = [];
  for (const d of opts.dnsNames ?? []) {
    // No wildcards: every host gets a certificate of its own, so one stolen key is one host.
    if (!DNS_NAME.test(d)) throw invalid(`${JSON.stringify(d)} is not a DNS name (letters, digits, hyphens and dots; no wildcards).`);
    names.push({ type: 'dns', value: d.toLowerCase() });
  }
  for (const ip of opts.ipAddresses ?? []) {
    if (net.isIP(ip) === 0) throw invalid(`${JSON.stringify(ip)} is not an IPv4 or IPv6 address.`);
    names.push({ type: 'ip', value: ip });
  }
  return names;
}

/**
 * An end-entity certificate of `profile`, signed by `issuer` (the issuing CA): critical keyUsage,
 * the profile's EKUs, SKI/AKI, SANs (required for host-tls), an optional CRL distribution point.
 * With `publicKey` the certificate certifies a key held elsewhere and no private key is returned.
 */
export async function issueCertificate(issuer: CaKeyPair, opts: IssueOptions): Promise<IssuedCertificate> {
  const profile = PROFILES[opts.profile];
  if (!profile) throw invalid(`Unknown certificate profile ${JSON.stringify(opts.profile)}; one of ${CERT_PROFILES.join(', ')}.`);
  const signer = await loadIssuer(issuer);
  const serial = checkSerial(opts.serial ?? randomSerial(opts.random));
  const subject = subjectName(opts);
  const altNames = sans(opts);
  if (profile.needsSan && altNames.length === 0) throw invalid('A host TLS certificate needs at least one DNS name or IP address.');
  const { notBefore, notAfter } = validity(opts, signer.cert.notAfter);
  const privateKeyPkcs8 = opts.publicKey ? null : generateP256Key(opts.random);
  const publicKey = await importPublicKey(opts.publicKey ?? publicKeyOf(privateKeyPkcs8!));
  const cert = await signCertificate(signer, { serial, subject, notBefore, notAfter, publicKey, crlDistributionPoints: opts.crlDistributionPoints }, [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(profile.keyUsage, true),
    new x509.ExtendedKeyUsageExtension([...profile.ekus], false),
    ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames, false)] : []),
  ]);
  return { certPem: pemText(cert), privateKeyPkcs8 };
}

/** DER of one extension: SEQUENCE { OID, [critical,] OCTET STRING { value } }, for the CRL number x509 has no class for. */
function derTlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  const head = len < 0x80 ? Buffer.from([tag, len]) : len < 0x100 ? Buffer.from([tag, 0x81, len]) : Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  return Buffer.concat([head, content]);
}

function derPositiveInteger(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return derTlv(0x02, bytes);
}

/** id-ce-cRLNumber (2.5.29.20) = 55 1d 14. */
const CRL_NUMBER_OID = Buffer.from('0603551d14', 'hex');

function crlNumberExtension(n: bigint): x509.Extension {
  return new x509.Extension(derTlv(0x30, Buffer.concat([CRL_NUMBER_OID, derTlv(0x04, derPositiveInteger(n))])));
}

/**
 * A CRL signed by `issuer` (v2, AKI, CRL number, each entry's reason). Hosts check it with the
 * chain (`openssl verify -crl_check`); an empty list is a valid CRL too ("nothing revoked, as of").
 */
export async function createCrl(issuer: CaKeyPair, revoked: readonly RevokedEntry[], opts: CrlOptions): Promise<string> {
  const signer = await loadIssuer(issuer);
  const crlNumber = BigInt(opts.crlNumber);
  // RFC 5280 §5.2.3: a non-negative integer of at most 20 octets.
  if (crlNumber < 0n || crlNumber >= 1n << 159n) throw invalid('The CRL number must be a non-negative integer below 2^159.');
  if (!(opts.nextUpdate > opts.thisUpdate)) throw invalid("The CRL's next update must be after its this update.");
  const crl = await x509.X509CrlGenerator.create({
    issuer: signer.cert.subjectName,
    thisUpdate: opts.thisUpdate,
    nextUpdate: opts.nextUpdate,
    signingAlgorithm: SIGNING,
    signingKey: signer.key,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(signer.cert.publicKey), crlNumberExtension(crlNumber)],
    entries: revoked.map((r) => {
      if (r.reason !== undefined && !REVOCATION_REASONS.includes(r.reason)) throw invalid(`Unknown revocation reason ${JSON.stringify(r.reason)}.`);
      return {
        serialNumber: checkSerial(r.serial),
        revocationDate: r.revokedAt,
        ...(r.reason !== undefined ? { reason: x509.X509CrlReason[r.reason] } : {}),
      };
    }),
  });
  // OpenSSL (and RFC 7468 §5) label a CRL `X509 CRL`; @peculiar/x509 writes `CRL`, which openssl cannot load.
  return pemText(crl).replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----');
}

function colonHex(b: Buffer): string {
  return b.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** SHA-256 of a certificate's DER as `openssl x509 -fingerprint -sha256` prints it. */
export function certFingerprint(pem: string): string {
  return colonHex(crypto.createHash('sha256').update(Buffer.from(parseCert(pem, 'given').rawData)).digest());
}

function kindOf(cert: x509.X509Certificate, isCa: boolean, ekus: string[]): CertKind | null {
  if (isCa) {
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    // Self-issued (subject = issuer, no AKI or AKI = SKI): a root.
    return cert.subject === cert.issuer && (aki === undefined || aki === ski) ? 'root-ca' : 'issuing-ca';
  }
  const sorted = [...ekus].sort().join(',');
  for (const p of CERT_PROFILES) if ([...PROFILES[p].ekus].sort().join(',') === sorted) return p;
  return null;
}

/** One DER TLV at `at`: its tag, content and where the next begins (short and long lengths up to 4 bytes). */
function readTlv(der: Buffer, at: number): { tag: number; content: Buffer; next: number } {
  const tag = der[at];
  let len = der[at + 1];
  if (tag === undefined || len === undefined) throw new AirlockError('PARSE_ERROR', 'A certificate extension is truncated.');
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4 || start + n > der.length) throw new AirlockError('PARSE_ERROR', 'A certificate extension has a bad length.');
    len = der.readUIntBE(start, n);
    start += n;
  }
  if (start + len > der.length) throw new AirlockError('PARSE_ERROR', 'A certificate extension is truncated.');
  return { tag, content: der.subarray(start, start + len), next: start + len };
}

/** Dotted form of an OID's content octets, arcs of any size (asn1js garbles arcs past 2^53, as 2.25 UUID arcs are). */
function oidString(content: Buffer): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const byte of content) {
    v = (v << 7n) | BigInt(byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs].join('.');
}

/** The EKU OIDs, read from the extension's DER (SEQUENCE OF OBJECT IDENTIFIER). */
function ekusOf(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension('2.5.29.37');
  if (!ext) return [];
  const seq = readTlv(Buffer.from(ext.value), 0);
  const out: string[] = [];
  for (let at = 0; at < seq.content.length; ) {
    const oid = readTlv(seq.content, at);
    if (oid.tag !== 0x06) throw new AirlockError('PARSE_ERROR', 'The extended key usage extension holds something other than OIDs.');
    out.push(oidString(oid.content));
    at = oid.next;
  }
  return out;
}

/** What a certificate says about itself, for listing by expiry and matching against the store. PARSE_ERROR for a malformed one. */
export function certInfo(pem: string): CertInfo {
  const cert = parseCert(pem, 'given');
  try {
    return readInfo(cert);
  } catch (e) {
    if (e instanceof AirlockError) throw e;
    // @peculiar/x509 decodes an extension when first asked for it: a malformed one throws there.
    throw new AirlockError('PARSE_ERROR', `The certificate ${cert.subject} has a malformed extension.`);
  }
}

function readInfo(cert: x509.X509Certificate): CertInfo {
  const isCa = cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
  const ekus = ekusOf(cert);
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const n of cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? []) {
    if (n.type === 'dns') dnsNames.push(n.value);
    if (n.type === 'ip') ipAddresses.push(n.value);
  }
  return {
    serial: cert.serialNumber.toLowerCase(),
    subject: cert.subject,
    issuer: cert.issuer,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    kind: kindOf(cert, isCa, ekus),
    ekus,
    dnsNames,
    ipAddresses,
    isCa,
    sha256: colonHex(crypto.createHash('sha256').update(Buffer.from(cert.rawData)).digest()),
  };
}

/** True once `now` is within `windowDays` of the certificate's end (or past it): time to issue its successor. */
export function needsRenewal(info: Pick<CertInfo, 'notAfter'>, now: Date, windowDays: number): boolean {
  if (!(windowDays >= 0)) throw invalid('The renewal window must be zero or more days.');
  return now.getTime() >= info.notAfter.getTime() - windowDays * DAY_MS;
}

/** Extensions this CA writes and `verifyChain` understands; any other marked critical fails the chain (RFC 5280 §4.2). */
const KNOWN_EXTENSIONS = new Set(['2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.31', '2.5.29.35', '2.5.29.37']);
/** Leaf, issuing CA, root: a longer path is not one this CA builds. */
const MAX_PATH = 4;

export interface ChainCheck {
  ok: boolean;
  problems: string[];
  /** Leaf first, root last, as far as it could be built. */
  path: CertInfo[];
}

const sameDer = (a: x509.X509Certificate, b: x509.X509Certificate) => Buffer.from(a.rawData).equals(Buffer.from(b.rawData));

async function signedBy(child: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (child.issuer !== issuer.subject) return false;
  const aki = child.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (aki !== undefined && ski !== undefined && aki !== ski) return false;
  try {
    return await child.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/** Reasons after which nothing the key signed can be trusted, whenever it was signed. */
const COMPROMISE = new Set<number>([x509.X509CrlReason.keyCompromise, x509.X509CrlReason.cACompromise, x509.X509CrlReason.aACompromise]);

async function revocationProblems(chain: readonly x509.X509Certificate[], crlPems: readonly string[], at: Date): Promise<string[]> {
  const problems: string[] = [];
  const crls: x509.X509Crl[] = [];
  for (const pem of crlPems) {
    try {
      crls.push(new x509.X509Crl(pem));
    } catch {
      problems.push('A CRL could not be read; it was ignored.');
    }
  }
  // Each certificate but the root, against a CRL its own issuer (the next one up) signed.
  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    let crl: x509.X509Crl | undefined;
    for (const c of crls) {
      if (c.issuer !== issuer.subject) continue;
      if (await c.verify({ publicKey: issuer.publicKey }).catch(() => false)) {
        // The newest such CRL speaks for the issuer.
        if (!crl || c.thisUpdate > crl.thisUpdate) crl = c;
      }
    }
    if (!crl) {
      problems.push(`No CRL signed by ${issuer.subject} was given, so ${cert.subject} could not be checked for revocation.`);
      continue;
    }
    const entry = crl.findRevoked(cert.serialNumber);
    if (!entry) continue;
    const reason = entry.reason ?? x509.X509CrlReason.unspecified;
    if (COMPROMISE.has(reason) || entry.revocationDate <= at) {
      problems.push(`${cert.subject} (serial ${cert.serialNumber.toLowerCase()}) was revoked on ${entry.revocationDate.toISOString()} (${x509.X509CrlReason[reason]}).`);
    }
  }
  return problems;
}

/**
 * Checks offline that `leaf` chains to `rootPem` (the one trust anchor: nothing else is trusted,
 * whatever the intermediates claim), every signature verifies, every certificate is valid at `at`,
 * every issuer is a CA allowed to sign certificates within its path length, and no certificate
 * carries a critical extension this code does not understand. Revocation is the CRL's business
 * (`openssl verify -crl_check` on hosts). Never throws for hostile certificates: problems say why.
 */
export interface ChainOptions {
  intermediatePems: readonly string[];
  rootPem: string;
  at: Date;
  /**
   * CRLs to check the path against (as `-crl_check_all`): each certificate below the root needs a
   * CRL signed by its issuer. A certificate revoked for key or CA compromise fails whatever the
   * date (its key may have signed anything, backdated); any other revocation fails from its date.
   */
  crlPems?: readonly string[];
}

export async function verifyChain(leafPem: string, opts: ChainOptions): Promise<ChainCheck> {
  try {
    return await checkChain(leafPem, opts);
  } catch {
    // @peculiar/x509 decodes extensions when first asked: a malformed one throws there.
    return { ok: false, problems: ['A certificate in the chain has a malformed extension.'], path: [] };
  }
}

async function checkChain(leafPem: string, opts: ChainOptions): Promise<ChainCheck> {
  const problems: string[] = [];
  let leaf: x509.X509Certificate;
  let root: x509.X509Certificate;
  try {
    leaf = parseCert(leafPem, 'leaf');
    root = parseCert(opts.rootPem, 'root CA');
  } catch (e) {
    return { ok: false, problems: [(e as Error).message], path: [] };
  }
  const intermediates: x509.X509Certificate[] = [];
  for (const pem of opts.intermediatePems) {
    try {
      intermediates.push(parseCert(pem, 'intermediate'));
    } catch {
      problems.push('An intermediate certificate could not be read; it was ignored.');
    }
  }
  if (!(root.getExtension(x509.BasicConstraintsExtension)?.ca === true && (await signedBy(root, root)))) {
    return { ok: false, problems: [`The root CA given (${root.subject}) is not a self-signed CA certificate.`], path: [] };
  }
  const chain: x509.X509Certificate[] = [leaf];
  for (let current = leaf; !sameDer(current, root); ) {
    if (chain.length >= MAX_PATH) {
      problems.push(`No path of at most ${MAX_PATH} certificates leads from ${leaf.subject} to the root CA.`);
      break;
    }
    let next: x509.X509Certificate | null = null;
    for (const candidate of [root, ...intermediates]) {
      if (chain.some((c) => sameDer(c, candidate)) && !sameDer(candidate, root)) continue;
      if (await signedBy(current, candidate)) {
        next = candidate;
        break;
      }
    }
    if (!next) {
      problems.push(`${current.subject} is not signed by the root CA given (${root.subject}) or by a CA that chains to it.`);
      break;
    }
    chain.push(next);
    current = next;
  }
  chain.forEach((cert, i) => {
    if (opts.at < cert.notBefore || opts.at > cert.notAfter) {
      problems.push(`${cert.subject} was not valid at ${opts.at.toISOString()} (valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}).`);
    }
    for (const ext of cert.extensions) {
      if (ext.critical && !KNOWN_EXTENSIONS.has(ext.type)) problems.push(`${cert.subject} has a critical extension this verifier does not understand (${ext.type}).`);
    }
    if (i === 0) return;
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) problems.push(`${cert.subject} signed a certificate but is not a CA.`);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    if (ku && !(ku.usages & KU.keyCertSign)) problems.push(`${cert.subject} may not sign certificates (no keyCertSign).`);
    // pathLen counts the CA certificates below this one, the leaf excluded.
    if (bc?.pathLength !== undefined && i - 1 > bc.pathLength) problems.push(`${cert.subject} allows ${bc.pathLength} CA certificates below it; this path has ${i - 1}.`);
  });
  if (opts.crlPems) problems.push(...(await revocationProblems(chain, opts.crlPems, opts.at)));
  return { ok: problems.length === 0, problems, path: chain.map((c) => certInfo(c.toString('pem'))) };
}

import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CERT_PROFILES,
  EKU,
  certFingerprint,
  certInfo,
  createCrl,
  createIssuingCa,
  createRootCa,
  generateP256Key,
  issueCertificate,
  needsRenewal,
  publicKeyOf,
  randomSerial,
  verifyChain,
  type CaKeyPair,
  type CertProfile,
} from './ca';

/** Runs the real openssl (no shell); resolves with its exit code and both outputs. */
function openssl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

const random = (n: number) => crypto.randomBytes(n);
const DAY = 86_400_000;

let dir: string;
let root: CaKeyPair;
let issuing: CaKeyPair;
const now = new Date();

/** Certificates and CRLs only: private keys never go to disk. */
const write = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ca-'));
  root = await createRootCa({ commonName: 'Airlock Root CA', organization: 'Acme Research', validityDays: 3650, now, random });
  issuing = await createIssuingCa(root, { commonName: 'Airlock Issuing CA', organization: 'Acme Research', validityDays: 1825, now, random });
  write('root.pem', root.certPem);
  write('issuing.pem', issuing.certPem);
  write('chain.pem', issuing.certPem + root.certPem);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  root.privateKeyPkcs8.fill(0);
  issuing.privateKeyPkcs8.fill(0);
});

const issue = (profile: CertProfile, extra: { dnsNames?: string[]; ipAddresses?: string[]; commonName?: string } = {}) =>
  issueCertificate(issuing, {
    profile,
    commonName: extra.commonName ?? `${profile} test`,
    validityDays: 90,
    now,
    random,
    ...(profile === 'host-tls' ? { dnsNames: extra.dnsNames ?? ['gpu1.lab.example'], ipAddresses: extra.ipAddresses ?? ['10.20.0.11'] } : {}),
  });

describe('internal CA: root and issuing CA', () => {
  it('has a self-signed root with critical CA:true and keyCertSign+cRLSign, and an issuing CA with pathlen 0', async () => {
    const r = await openssl(['x509', '-noout', '-text', '-in', path.join(dir, 'root.pem')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Basic Constraints: critical\s+CA:TRUE\n/);
    expect(r.out).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(r.out).toMatch(/Subject Key Identifier/);
    expect(r.out).toMatch(/ecdsa-with-SHA256/);
    expect(r.out).toMatch(/ASN1 OID: prime256v1/);
    const i = await openssl(['x509', '-noout', '-text', '-in', path.join(dir, 'issuing.pem')]);
    expect(i.out).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(i.out).toMatch(/Authority Key Identifier/);
    expect((await openssl(['verify', '-CAfile', path.join(dir, 'root.pem'), path.join(dir, 'issuing.pem')])).code).toBe(0);
    expect(certInfo(root.certPem).kind).toBe('root-ca');
    expect(certInfo(issuing.certPem).kind).toBe('issuing-ca');
  });

  it('refuses to issue from a certificate that is not a CA, or with a key that is not its own', async () => {
    const leaf = await issue('release-signing');
    await expect(issueCertificate({ certPem: leaf.certPem, privateKeyPkcs8: leaf.privateKeyPkcs8! }, { profile: 'release-signing', commonName: 'x', validityDays: 1, now, random })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/not a CA certificate/),
    });
    await expect(issueCertificate({ certPem: issuing.certPem, privateKeyPkcs8: root.privateKeyPkcs8 }, { profile: 'release-signing', commonName: 'x', validityDays: 1, now, random })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/not the key of/),
    });
  });
});

describe('internal CA: issued certificates, checked by the real openssl', () => {
  for (const profile of CERT_PROFILES) {
    it(`a ${profile} certificate verifies against the chain`, async () => {
      const leaf = await issue(profile);
      expect(leaf.privateKeyPkcs8).not.toBeNull();
      const f = write(`${profile}.pem`, leaf.certPem);
      const viaChain = await openssl(['verify', '-CAfile', path.join(dir, 'chain.pem'), f]);
      expect(viaChain.out).toContain(': OK');
      expect(viaChain.code).toBe(0);
      // Trusting the root alone, the issuing CA as an untrusted intermediate: the path the hosts take.
      const viaRoot = await openssl(['verify', '-CAfile', path.join(dir, 'root.pem'), '-untrusted', path.join(dir, 'issuing.pem'), f]);
      expect(viaRoot.code).toBe(0);
      expect(certInfo(leaf.certPem).kind).toBe(profile);
      // The key returned is the certificate's.
      expect(publicKeyOf(leaf.privateKeyPkcs8!).equals(crypto.createPublicKey(leaf.certPem).export({ format: 'der', type: 'spki' }))).toBe(true);
    });
  }

  it('shows the EKUs, key usages and SANs each profile sets', async () => {
    const text = async (profile: CertProfile) => (await openssl(['x509', '-noout', '-text', '-in', write(`${profile}-t.pem`, (await issue(profile)).certPem)])).out;
    const host = await text('host-tls');
    expect(host).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(host).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(host).toMatch(/Subject Alternative Name:\s+DNS:gpu1\.lab\.example, IP Address:10\.20\.0\.11/);
    expect(host).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    const bundle = await text('bundle-signing');
    expect(bundle).toMatch(/Extended Key Usage:\s+(1\.3\.6\.1\.5\.5\.7\.3\.36|Document Signing)/);
    expect(bundle).toMatch(/Key Usage: critical\s+Digital Signature, Non Repudiation/);
    expect(bundle).not.toMatch(/Subject Alternative Name/);
    expect(await text('registry-token')).toMatch(new RegExp(`Extended Key Usage:\\s+${EKU.airlockRegistryToken.replace(/\./g, '\\.')}\\n`));
    expect(await text('release-signing')).toMatch(/Extended Key Usage:\s+Code Signing/);
  });

  it('reads back serial, names, EKUs, SANs and the fingerprint openssl computes', async () => {
    const leaf = await issue('host-tls', { dnsNames: ['GPU2.Lab.Example', 'gpu2'], ipAddresses: ['10.20.0.12', 'fd00::12'], commonName: 'gpu2' });
    const info = certInfo(leaf.certPem);
    const f = write('gpu2.pem', leaf.certPem);
    const serial = (await openssl(['x509', '-noout', '-serial', '-in', f])).out.trim();
    expect(serial).toBe(`serial=${info.serial.toUpperCase()}`);
    const fp = (await openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', f])).out.trim();
    expect(fp).toBe(`sha256 Fingerprint=${info.sha256}`);
    expect(certFingerprint(leaf.certPem)).toBe(info.sha256);
    expect(info).toMatchObject({
      subject: 'CN=gpu2',
      issuer: 'O=Acme Research, CN=Airlock Issuing CA',
      kind: 'host-tls',
      ekus: [EKU.serverAuth, EKU.clientAuth],
      dnsNames: ['gpu2.lab.example', 'gpu2'],
      ipAddresses: ['10.20.0.12', 'fd00::12'],
      isCa: false,
    });
    expect(info.notAfter > info.notBefore).toBe(true);
    expect(certInfo(issuing.certPem).serial).not.toBe(info.serial);
  });

  it('certifies a public key brought by the caller and returns no private key', async () => {
    const hostKey = generateP256Key(random);
    const spki = publicKeyOf(hostKey);
    hostKey.fill(0);
    const cert = await issueCertificate(issuing, { profile: 'host-tls', commonName: 'gpu3', dnsNames: ['gpu3'], validityDays: 30, now, random, publicKey: spki });
    expect(cert.privateKeyPkcs8).toBeNull();
    expect(crypto.createPublicKey(cert.certPem).export({ format: 'der', type: 'spki' }).equals(spki)).toBe(true);
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' });
    await expect(issueCertificate(issuing, { profile: 'host-tls', commonName: 'gpu3', dnsNames: ['gpu3'], validityDays: 30, now, random, publicKey: rsa })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/P-256/),
    });
  });

  it('adds a CRL distribution point when asked', async () => {
    const cert = await issueCertificate(issuing, { profile: 'host-tls', commonName: 'gpu4', dnsNames: ['gpu4'], validityDays: 30, now, random, crlDistributionPoints: ['http://airlock.lab/crl/issuing.crl'] });
    const out = (await openssl(['x509', '-noout', '-text', '-in', write('gpu4.pem', cert.certPem)])).out;
    expect(out).toMatch(/CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/airlock\.lab\/crl\/issuing\.crl/);
  });

  it('refuses a host certificate without a name, wildcards, bad addresses, bad serials and bad validity', async () => {
    const base = { profile: 'host-tls' as const, commonName: 'gpu', validityDays: 30, now, random };
    await expect(issueCertificate(issuing, base)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/at least one DNS name or IP/) });
    await expect(issueCertificate(issuing, { ...base, dnsNames: ['*.lab'] })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/no wildcards/) });
    await expect(issueCertificate(issuing, { ...base, ipAddresses: ['10.0.0.300'] })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(issueCertificate(issuing, { ...base, dnsNames: ['gpu'], serial: '80ff' })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/positive/) });
    await expect(issueCertificate(issuing, { ...base, dnsNames: ['gpu'], serial: '00ff' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(issueCertificate(issuing, { ...base, dnsNames: ['gpu'], validityDays: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(issueCertificate(issuing, { ...base, dnsNames: ['gpu'], commonName: 'a\nb' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('never lets a certificate outlive its issuer', async () => {
    const cert = await issueCertificate(issuing, { profile: 'release-signing', commonName: 'long', validityDays: 36_000, now, random });
    expect(certInfo(cert.certPem).notAfter.getTime()).toBe(certInfo(issuing.certPem).notAfter.getTime());
    expect((await openssl(['verify', '-CAfile', path.join(dir, 'chain.pem'), write('long.pem', cert.certPem)])).code).toBe(0);
  });
});

describe('internal CA: revocation', () => {
  it('a revoked certificate fails openssl verify -crl_check with its reason; a sibling still passes', async () => {
    const revoked = await issue('host-tls', { commonName: 'gpu5', dnsNames: ['gpu5'] });
    const sibling = await issue('host-tls', { commonName: 'gpu6', dnsNames: ['gpu6'] });
    const serial = certInfo(revoked.certPem).serial;
    const crl = await createCrl(issuing, [{ serial, revokedAt: now, reason: 'keyCompromise' }], {
      thisUpdate: new Date(now.getTime() - 60_000),
      nextUpdate: new Date(now.getTime() + 7 * DAY),
      crlNumber: 7,
    });
    const crlFile = write('issuing.crl.pem', crl);
    const caWithCrl = write('chain+crl.pem', issuing.certPem + root.certPem + crl);
    const r = write('gpu5.pem', revoked.certPem);
    const s = write('gpu6.pem', sibling.certPem);
    // Without the CRL both verify: revocation is what -crl_check adds.
    expect((await openssl(['verify', '-CAfile', path.join(dir, 'chain.pem'), r])).code).toBe(0);
    const bad = await openssl(['verify', '-crl_check', '-CAfile', caWithCrl, r]);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/certificate revoked/);
    const good = await openssl(['verify', '-crl_check', '-CAfile', caWithCrl, s]);
    expect(good.code).toBe(0);
    expect(good.out).toContain(': OK');
    // The CRL names the serial and the reason, carries its number and the issuer's key id, and is signed by the issuing CA.
    const text = await openssl(['crl', '-noout', '-text', '-in', crlFile]);
    expect(text.out).toContain(`Serial Number: ${serial.toUpperCase()}`);
    expect(text.out).toMatch(/CRL Reason Code:\s+Key Compromise/);
    expect(text.out).toMatch(/X509v3 CRL Number:\s+7\n/);
    expect(text.out).toMatch(/Authority Key Identifier/);
    expect((await openssl(['crl', '-noout', '-CAfile', path.join(dir, 'chain.pem'), '-in', crlFile])).out).toMatch(/verify OK/);
  });

  it('a revoked issuing CA fails every certificate below it under -crl_check_all', async () => {
    const second = await createIssuingCa(root, { commonName: 'Airlock Issuing CA 2', validityDays: 365, now, random });
    const leaf = await issueCertificate(second, { profile: 'release-signing', commonName: 'rel', validityDays: 30, now, random });
    const rootCrl = await createCrl(root, [{ serial: certInfo(second.certPem).serial, revokedAt: now, reason: 'cACompromise' }], {
      thisUpdate: new Date(now.getTime() - 60_000),
      nextUpdate: new Date(now.getTime() + DAY),
      crlNumber: 1,
    });
    const issuingCrl = await createCrl(second, [], { thisUpdate: new Date(now.getTime() - 60_000), nextUpdate: new Date(now.getTime() + DAY), crlNumber: 1 });
    const ca = write('ca2+crls.pem', second.certPem + root.certPem + rootCrl + issuingCrl);
    const out = await openssl(['verify', '-crl_check_all', '-CAfile', ca, write('rel.pem', leaf.certPem)]);
    expect(out.code).not.toBe(0);
    expect(out.out).toMatch(/certificate revoked/);
    second.privateKeyPkcs8.fill(0);
  });

  it('refuses an unknown reason, a negative CRL number and a next update before this update', async () => {
    const t = { thisUpdate: now, nextUpdate: new Date(now.getTime() + DAY), crlNumber: 1 };
    await expect(createCrl(issuing, [{ serial: '01', revokedAt: now, reason: 'bored' as never }], t)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(createCrl(issuing, [], { ...t, crlNumber: -1 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(createCrl(issuing, [], { ...t, nextUpdate: now })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});

describe('internal CA: keys, serials and renewal', () => {
  it('derives the same P-256 key from the same random bytes, and a different one from others', () => {
    const seeded = (seed: number) => (n: number) => crypto.createHash('sha512').update(`seed-${seed}`).digest().subarray(0, n);
    const a = generateP256Key(seeded(1));
    const b = generateP256Key(seeded(1));
    const c = generateP256Key(seeded(2));
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(false);
    const key = crypto.createPrivateKey({ key: a, format: 'der', type: 'pkcs8' });
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // The scalar rejection: an all-ones draw (≥ n) is skipped, the next draw is used.
    const draws = [Buffer.alloc(32, 0xff), Buffer.alloc(32, 0x11)];
    const k = generateP256Key((n) => Buffer.from(draws.shift()!.subarray(0, n)));
    expect(draws).toHaveLength(0);
    expect(crypto.createPrivateKey({ key: k, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d).toBe(Buffer.alloc(32, 0x11).toString('base64url'));
  });

  it('makes 16-byte positive serials that differ', () => {
    const serials = new Set(Array.from({ length: 200 }, () => randomSerial(random)));
    expect(serials.size).toBe(200);
    for (const s of serials) expect(s).toMatch(/^[4-7][0-9a-f]{31}$/);
  });

  it('asks for renewal inside the window and after expiry, not before', async () => {
    const cert = await issue('registry-token');
    const info = certInfo(cert.certPem);
    const end = info.notAfter.getTime();
    expect(needsRenewal(info, new Date(end - 31 * DAY), 30)).toBe(false);
    expect(needsRenewal(info, new Date(end - 29 * DAY), 30)).toBe(true);
    expect(needsRenewal(info, new Date(end + DAY), 30)).toBe(true);
    expect(needsRenewal(info, new Date(end - 1000), 0)).toBe(false);
    expect(needsRenewal(info, new Date(end), 0)).toBe(true);
    expect(() => needsRenewal(info, now, -1)).toThrow(/zero or more/);
  });
});

describe('internal CA: verifyChain (offline, the root as the only anchor)', () => {
  it('builds leaf → issuing CA → root and checks it at a given time', async () => {
    const leaf = await issue('bundle-signing');
    const ok = await verifyChain(leaf.certPem, { intermediatePems: [issuing.certPem], rootPem: root.certPem, at: now });
    expect(ok.problems).toEqual([]);
    expect(ok.ok).toBe(true);
    expect(ok.path.map((c) => c.kind)).toEqual(['bundle-signing', 'issuing-ca', 'root-ca']);
    const late = await verifyChain(leaf.certPem, { intermediatePems: [issuing.certPem], rootPem: root.certPem, at: new Date(now.getTime() + 400 * DAY) });
    expect(late.ok).toBe(false);
    expect(late.problems.join('\n')).toMatch(/was not valid at/);
    const missing = await verifyChain(leaf.certPem, { intermediatePems: [], rootPem: root.certPem, at: now });
    expect(missing.ok).toBe(false);
    expect(missing.problems.join('\n')).toMatch(/not signed by the root CA given/);
  });

  it('refuses another root, a leaf as the root, and junk', async () => {
    const leaf = await issue('host-tls');
    const otherRoot = await createRootCa({ commonName: 'Airlock Root CA', organization: 'Acme Research', validityDays: 3650, now, random });
    // Same name as our root, another key: the name alone proves nothing.
    const r = await verifyChain(leaf.certPem, { intermediatePems: [issuing.certPem], rootPem: otherRoot.certPem, at: now });
    expect(r.ok).toBe(false);
    otherRoot.privateKeyPkcs8.fill(0);
    expect((await verifyChain(leaf.certPem, { intermediatePems: [issuing.certPem], rootPem: leaf.certPem, at: now })).problems.join('\n')).toMatch(/not a self-signed CA/);
    expect((await verifyChain('junk', { intermediatePems: [], rootPem: root.certPem, at: now })).ok).toBe(false);
  });

  it('refuses a CA below the issuing CA (pathlen 0), as openssl does', async () => {
    // createIssuingCa refuses to make one, so it is made by hand, as an attacker holding the issuing key could.
    await expect(createIssuingCa(issuing, { commonName: 'Sub CA', validityDays: 30, now, random })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/not a root CA/) });
    const p256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
    const issuingKey = await crypto.webcrypto.subtle.importKey('pkcs8', issuing.privateKeyPkcs8, p256, false, ['sign']);
    const subKeys = await crypto.webcrypto.subtle.generateKey(p256, false, ['sign', 'verify']);
    const issuingCert = new x509.X509Certificate(issuing.certPem);
    const sub = await x509.X509CertificateGenerator.create({
      serialNumber: '51',
      subject: 'CN=Sub CA',
      issuer: issuingCert.subjectName,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + DAY),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      publicKey: subKeys.publicKey as never,
      signingKey: issuingKey as never,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true), await x509.AuthorityKeyIdentifierExtension.create(issuingCert.publicKey)],
    });
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '52',
      subject: 'CN=below sub',
      issuer: sub.subjectName,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + DAY),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      publicKey: subKeys.publicKey as never,
      signingKey: subKeys.privateKey as never,
      extensions: [new x509.ExtendedKeyUsageExtension([EKU.documentSigning])],
    });
    const r = await verifyChain(leaf.toString('pem'), { intermediatePems: [sub.toString('pem'), issuing.certPem], rootPem: root.certPem, at: now });
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(/allows 0 CA certificates below it; this path has 1/);
    const f = write('below-sub.pem', leaf.toString('pem'));
    const o = await openssl(['verify', '-CAfile', path.join(dir, 'root.pem'), '-untrusted', write('sub+issuing.pem', `${sub.toString('pem')}\n${issuing.certPem}`), f]);
    expect(o.code).not.toBe(0);
    expect(o.out).toMatch(/path length constraint exceeded/);
  });
});

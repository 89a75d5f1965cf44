import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certInfo, createCrl, createIssuingCa, createRootCa, issueCertificate, type CaKeyPair, type RevokedEntry } from './ca';
import { TRANSCRIPT_FORMAT, TranscriptBody, canonicalTranscriptBytes, signTranscript, verifyTranscript, type TranscriptSigner } from './transcript';

/** The real openssl or jq, no shell; `input` goes to stdin (how a private key reaches openssl here: never a file). */
function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string; stdout: Buffer }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout.toString('utf8')}${stderr.toString('utf8')}`, stdout });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

const random = (n: number) => crypto.randomBytes(n);
const now = new Date();
const ago = (minutes: number) => new Date(now.getTime() - minutes * 60_000).toISOString();

interface Hierarchy {
  root: CaKeyPair;
  issuing: CaKeyPair;
  signer: TranscriptSigner;
}

async function hierarchy(name: string): Promise<Hierarchy> {
  const root = await createRootCa({ commonName: `${name} Root CA`, validityDays: 3650, now, random });
  const issuing = await createIssuingCa(root, { commonName: `${name} Issuing CA`, validityDays: 1825, now, random });
  const bundle = await issueCertificate(issuing, { profile: 'bundle-signing', commonName: `${name} bundle signing`, validityDays: 365, now, random });
  return { root, issuing, signer: { certPem: bundle.certPem, chainPems: [issuing.certPem], privateKeyPkcs8: bundle.privateKeyPkcs8! } };
}

const body = (over: Partial<TranscriptBody> = {}): TranscriptBody => ({
  format: TRANSCRIPT_FORMAT,
  scriptVersion: 'genesis-1.0',
  ceremony: 'genesis',
  nonce: crypto.randomBytes(16).toString('hex'),
  hierarchyId: 'hier-7f3a',
  participants: [
    { name: 'Ada Administrator', role: 'administrator' },
    { name: 'Zoë Ångström', role: 'officer', sealingKeyFingerprint: 'SHA256:0f3a9c' },
    { name: '李雷', role: 'officer' },
    { name: 'Olu Officer', role: 'officer' },
    { name: 'Wanda Witness', role: 'witness' },
  ],
  quorum: { threshold: 2, shares: 3 },
  steps: [
    { n: 1, title: 'Verify the room: "no phones" \\ doors closed', acknowledgedBy: 'Wanda Witness', at: ago(50) },
    { n: 2, title: 'Officers confirm their sealing-key fingerprints', acknowledgedBy: 'Zoë Ångström', at: ago(40) },
    { n: 3, title: 'Shares issued and sealed', acknowledgedBy: 'Ada Administrator', at: ago(30) },
  ],
  contributors: [
    { name: 'Zoë Ångström', shareIndex: 1 },
    { name: '李雷', shareIndex: 2 },
  ],
  before: { rootKcv: null, keks: [], certificates: [] },
  after: {
    rootKcv: '5a1c0e',
    keks: [
      { domain: 'models', version: 1, kcv: '9b2e11' },
      { domain: 'console', version: 1, kcv: 'c40f7d' },
    ],
    certificates: [{ serial: '4f00aa', kind: 'root-ca', sha256: Array.from({ length: 32 }, () => 'AB').join(':') }],
  },
  startedAt: ago(60),
  finishedAt: ago(1),
  outcome: 'completed',
  ...over,
});

let dir: string;
let acme: Hierarchy;
let other: Hierarchy;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-transcript-'));
  acme = await hierarchy('Acme');
  other = await hierarchy('Other');
  fs.writeFileSync(path.join(dir, 'root.pem'), acme.root.certPem);
  fs.writeFileSync(path.join(dir, 'issuing.pem'), acme.issuing.certPem);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const h of [acme, other]) for (const k of [h.root.privateKeyPkcs8, h.issuing.privateKeyPkcs8, h.signer.privateKeyPkcs8]) k.fill(0);
});

/** Replaces the first `from` in the transcript part of a file (not the signature). */
const tamper = (file: string, from: string, to: string) => {
  const at = file.indexOf(from);
  expect(at).toBeGreaterThan(-1);
  expect(at).toBeLessThan(file.indexOf('"signature"'));
  return file.slice(0, at) + to + file.slice(at + from.length);
};

describe('ceremony transcripts: sign and verify', () => {
  it('verifies a signed transcript against the root CA alone', async () => {
    const t = body();
    const file = await signTranscript(t, acme.signer);
    const parsed = JSON.parse(file) as { transcript: unknown; signature: { format: string; cms: string } };
    expect(parsed.signature.format).toBe('cms-detached');
    expect(parsed.transcript).toEqual(t);
    const r = await verifyTranscript(file, acme.root.certPem);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.body).toEqual(t);
    expect(r.signer).toEqual({ subject: 'CN=Acme bundle signing', fingerprint: certInfo(acme.signer.certPem).sha256 });
    // The file never holds a share or a key: only what the schema allows, which the round trip shows.
    expect(file).not.toMatch(/PRIVATE KEY/);
  });

  it('fails when one byte of the transcript changes', async () => {
    const t = body();
    const file = await signTranscript(t, acme.signer);
    const last = t.nonce.at(-1)!;
    const flipped = tamper(file, `"nonce": "${t.nonce}"`, `"nonce": "${t.nonce.slice(0, -1)}${last === 'a' ? 'b' : 'a'}"`);
    const r = await verifyTranscript(flipped, acme.root.certPem);
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(/signature does not match/);
    const renamed = await verifyTranscript(tamper(file, '"shareIndex": 2', '"shareIndex": 3'), acme.root.certPem);
    expect(renamed.ok).toBe(false);
    // Whitespace and key order are not content: the signature covers the canonical form.
    const reformatted = JSON.stringify(JSON.parse(file));
    expect((await verifyTranscript(reformatted, acme.root.certPem)).ok).toBe(true);
  });

  it("fails against another root CA, and for a signer from another CA (even with that CA's chain embedded)", async () => {
    const file = await signTranscript(body(), acme.signer);
    const wrongRoot = await verifyTranscript(file, other.root.certPem);
    expect(wrongRoot.ok).toBe(false);
    expect(wrongRoot.problems.join('\n')).toMatch(/not signed by the root CA given \(CN=Other Root CA\)/);
    const foreign = await signTranscript(body(), other.signer);
    const r = await verifyTranscript(foreign, acme.root.certPem);
    expect(r.ok).toBe(false);
    expect(r.signer?.subject).toBe('CN=Other bundle signing');
    expect(r.problems.join('\n')).toMatch(/root CA given \(CN=Acme Root CA\)/);
    // A foreign chain that names our root's subject still does not verify with our root's key.
    const withOtherRoot = await signTranscript(body(), { ...other.signer, chainPems: [other.issuing.certPem, other.root.certPem] });
    expect((await verifyTranscript(withOtherRoot, acme.root.certPem)).ok).toBe(false);
  });

  it("swapping two transcripts' signatures fails both", async () => {
    const a = JSON.parse(await signTranscript(body(), acme.signer)) as { signature: unknown };
    const b = JSON.parse(await signTranscript(body({ ceremony: 'unseal' }), acme.signer)) as { signature: unknown };
    const swapped = JSON.stringify({ ...a, signature: b.signature });
    expect((await verifyTranscript(swapped, acme.root.certPem)).ok).toBe(false);
  });

  it('checks the signer certificate at the time the ceremony finished', async () => {
    const file = await signTranscript(body(), acme.signer);
    const end = certInfo(acme.signer.certPem).notAfter;
    const late = await verifyTranscript(file, acme.root.certPem, { at: new Date(end.getTime() + 86_400_000) });
    expect(late.ok).toBe(false);
    expect(late.problems.join('\n')).toMatch(/CN=Acme bundle signing was not valid at/);
    await expect(signTranscript(body({ finishedAt: new Date(end.getTime() + 60_000).toISOString() }), acme.signer)).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/not valid when the ceremony finished/),
    });
  });

  it('with CRLs, fails for a signer revoked for key compromise whatever the date, or revoked before the ceremony ended', async () => {
    const h = await hierarchy('Crl');
    const twin = await hierarchy('Crl'); // same names, other keys: its CRLs must not count
    const file = await signTranscript(body(), h.signer);
    const serial = certInfo(h.signer.certPem).serial;
    const window = { thisUpdate: new Date(now.getTime() - 60_000), nextUpdate: new Date(now.getTime() + 7 * 86_400_000), crlNumber: 1 };
    const rootCrl = await createCrl(h.root, [], window);
    const issuingCrl = (entries: RevokedEntry[]) => createCrl(h.issuing, entries, window);
    const later = new Date(now.getTime() + 86_400_000);
    const check = async (crlPems: string[]) => verifyTranscript(file, h.root.certPem, { crlPems });

    expect((await check([await issuingCrl([]), rootCrl])).ok).toBe(true);
    const compromised = await check([await issuingCrl([{ serial, revokedAt: later, reason: 'keyCompromise' }]), rootCrl]);
    expect(compromised.ok).toBe(false);
    expect(compromised.problems.join('\n')).toMatch(/CN=Crl bundle signing \(serial [0-9a-f]+\) was revoked on .* \(keyCompromise\)/);
    // Superseded after the ceremony: what it signed before stands. Superseded before: it does not.
    expect((await check([await issuingCrl([{ serial, revokedAt: later, reason: 'superseded' }]), rootCrl])).ok).toBe(true);
    expect((await check([await issuingCrl([{ serial, revokedAt: new Date(Date.parse(ago(30))), reason: 'superseded' }]), rootCrl])).ok).toBe(false);
    const missing = await check([rootCrl]);
    expect(missing.ok).toBe(false);
    expect(missing.problems.join('\n')).toMatch(/No CRL signed by CN=Crl Issuing CA was given/);
    const forged = await check([await createCrl(twin.issuing, [], window), rootCrl]);
    expect(forged.ok).toBe(false);
    expect(forged.problems.join('\n')).toMatch(/No CRL signed by CN=Crl Issuing CA/);
    for (const x of [h, twin]) for (const k of [x.root.privateKeyPkcs8, x.issuing.privateKeyPkcs8, x.signer.privateKeyPkcs8]) k.fill(0);
  });

  it('refuses to sign with a certificate of another profile, with a key that is not its own, or an invalid transcript', async () => {
    const release = await issueCertificate(acme.issuing, { profile: 'release-signing', commonName: 'rel', validityDays: 30, now, random });
    await expect(signTranscript(body(), { certPem: release.certPem, chainPems: [acme.issuing.certPem], privateKeyPkcs8: release.privateKeyPkcs8! })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/bundle-signing certificate; CN=rel is release-signing/),
    });
    await expect(signTranscript(body(), { ...acme.signer, privateKeyPkcs8: release.privateKeyPkcs8! })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/not the key of/),
    });
    await expect(signTranscript(body({ outcome: 'aborted' }), acme.signer)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/transcript\.reason/) });
    release.privateKeyPkcs8!.fill(0);
  });
});

describe('ceremony transcripts: what plain openssl and jq see', () => {
  it('openssl cms -verify accepts the detached CMS over the canonical bytes, and rejects other bytes', async () => {
    const t = body();
    const file = await signTranscript(t, acme.signer);
    const cms = Buffer.from((JSON.parse(file) as { signature: { cms: string } }).signature.cms, 'base64');
    fs.writeFileSync(path.join(dir, 'sig.der'), cms);
    fs.writeFileSync(path.join(dir, 'content.json'), canonicalTranscriptBytes(t));
    const verify = (content: string) =>
      run('openssl', ['cms', '-verify', '-binary', '-purpose', 'any', '-inform', 'DER', '-in', path.join(dir, 'sig.der'), '-content', content, '-CAfile', path.join(dir, 'root.pem'), '-out', path.join(dir, 'out.json')]);
    const ok = await verify(path.join(dir, 'content.json'));
    expect(ok.out).toMatch(/Verification successful/);
    expect(ok.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out.json')).equals(canonicalTranscriptBytes(t))).toBe(true);
    fs.writeFileSync(path.join(dir, 'other.json'), canonicalTranscriptBytes({ ...t, outcome: 'failed', reason: 'x' }));
    const bad = await verify(path.join(dir, 'other.json'));
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/Verification failure/);
    // The auditor's recipe (docs/keys-ca.md): at the time the ceremony finished, keeping the signer, then its EKU.
    const at = (iso: string) => String(Math.floor(Date.parse(iso) / 1000));
    const recipe = (attime: string) =>
      run('openssl', ['cms', '-verify', '-binary', '-purpose', 'any', '-inform', 'DER', '-in', path.join(dir, 'sig.der'), '-content', path.join(dir, 'content.json'), '-CAfile', path.join(dir, 'root.pem'), '-attime', attime, '-signer', path.join(dir, 'signer.pem'), '-out', path.join(dir, 'out2.json')]);
    const signers = await recipe(at(t.finishedAt));
    expect(signers.out).toMatch(/CMS Verification successful/);
    expect(signers.code).toBe(0);
    const eku = await run('openssl', ['x509', '-in', path.join(dir, 'signer.pem'), '-noout', '-subject', '-ext', 'extendedKeyUsage']);
    expect(eku.out).toMatch(/subject=CN = Acme bundle signing/);
    expect(eku.out).toMatch(/X509v3 Extended Key Usage:\s+(1\.3\.6\.1\.5\.5\.7\.3\.36|Document Signing)/);
    expect(certInfo(fs.readFileSync(path.join(dir, 'signer.pem'), 'utf8')).kind).toBe('bundle-signing');
    const afterExpiry = await recipe(at(new Date(certInfo(acme.signer.certPem).notAfter.getTime() + 86_400_000).toISOString()));
    expect(afterExpiry.code).not.toBe(0);
    expect(afterExpiry.out).toMatch(/certificate has expired/);
  });

  it('openssl checks the signer for revocation with the CRLs (the recipe in docs/keys-ca.md)', async () => {
    const h = await hierarchy('Ossl');
    const t = body();
    const cms = Buffer.from((JSON.parse(await signTranscript(t, h.signer)) as { signature: { cms: string } }).signature.cms, 'base64');
    const d = fs.mkdtempSync(path.join(dir, 'crl-'));
    const f = (name: string, data: string | Buffer) => {
      fs.writeFileSync(path.join(d, name), data);
      return path.join(d, name);
    };
    f('root.pem', h.root.certPem);
    f('sig.der', cms);
    const window = { thisUpdate: new Date(now.getTime() - 60_000), nextUpdate: new Date(now.getTime() + 86_400_000), crlNumber: 1 };
    const rootCrl = await createCrl(h.root, [], window);
    // The certificates the CMS carries, and its signer (step 3 of the recipe).
    const certs = await run('openssl', ['pkcs7', '-inform', 'DER', '-in', path.join(d, 'sig.der'), '-print_certs']);
    expect(certs.code).toBe(0);
    f('certs.pem', certs.stdout);
    f('content.json', canonicalTranscriptBytes(t));
    expect((await run('openssl', ['cms', '-verify', '-binary', '-purpose', 'any', '-inform', 'DER', '-in', path.join(d, 'sig.der'), '-content', path.join(d, 'content.json'), '-CAfile', path.join(d, 'root.pem'), '-signer', path.join(d, 'signer.pem'), '-out', path.join(d, 'o')])).code).toBe(0);
    const revocation = async (issuingCrl: string) => {
      f('crls.pem', issuingCrl + rootCrl);
      return run('openssl', ['verify', '-no_check_time', '-crl_check_all', '-purpose', 'any', '-CAfile', path.join(d, 'root.pem'), '-CRLfile', path.join(d, 'crls.pem'), '-untrusted', path.join(d, 'certs.pem'), path.join(d, 'signer.pem')]);
    };
    const clean = await revocation(await createCrl(h.issuing, [], window));
    expect(clean.out).toMatch(/: OK/);
    expect(clean.code).toBe(0);
    const serial = certInfo(h.signer.certPem).serial;
    const revoked = await revocation(await createCrl(h.issuing, [{ serial, revokedAt: now, reason: 'keyCompromise' }], window));
    expect(revoked.code).not.toBe(0);
    expect(revoked.out).toMatch(/certificate revoked/);
    for (const k of [h.root.privateKeyPkcs8, h.issuing.privateKeyPkcs8, h.signer.privateKeyPkcs8]) k.fill(0);
  });

  it('jq -j -c -S .transcript prints exactly the canonical bytes (the auditor recipe in docs/keys-ca.md)', async () => {
    const t = body();
    const f = path.join(dir, 'transcript.json');
    fs.writeFileSync(f, await signTranscript(t, acme.signer));
    const jq = await run('jq', ['-j', '-c', '-S', '.transcript', f]);
    expect(jq.code).toBe(0);
    expect(jq.stdout.equals(canonicalTranscriptBytes(t))).toBe(true);
    const cms = await run('jq', ['-r', '.signature.cms', f]);
    expect(Buffer.from(cms.stdout.toString('utf8').trim(), 'base64').length).toBeGreaterThan(400);
  });

  it('verifies a CMS that openssl made with a bundle-signing key (signed attributes and all), and names a signer of another profile', async () => {
    const t = body();
    const content = path.join(dir, 'content-ossl.json');
    fs.writeFileSync(content, canonicalTranscriptBytes(t));
    const sign = async (certPem: string, keyPkcs8: Buffer, extra: string[] = []) => {
      fs.writeFileSync(path.join(dir, 'signer-cert.pem'), certPem);
      const keyPem = crypto.createPrivateKey({ key: keyPkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
      // The key reaches openssl through a FIFO: kernel memory, never a file's contents (openssl's
      // -inkey cannot read Node's stdin, a socket, and no key may be written to disk).
      const fifo = path.join(dir, `key-${crypto.randomBytes(4).toString('hex')}.fifo`);
      expect((await run('mkfifo', ['-m', '600', fifo])).code).toBe(0);
      const handover = fs.promises.writeFile(fifo, keyPem);
      const r = await run('openssl', ['cms', '-sign', '-binary', '-md', 'sha256', '-in', content, '-signer', path.join(dir, 'signer-cert.pem'), '-inkey', fifo, '-certfile', path.join(dir, 'issuing.pem'), '-outform', 'DER', ...extra]);
      // Should openssl have stopped before opening it, the writer would wait forever: a read-write
      // open of a FIFO never blocks and gives it a reader (what it writes then is discarded).
      const unblock = await fs.promises.open(fifo, fs.constants.O_RDWR);
      await handover;
      await unblock.close();
      fs.rmSync(fifo);
      expect(r.code, r.out).toBe(0);
      return JSON.stringify({ transcript: t, signature: { format: 'cms-detached', cms: r.stdout.toString('base64') } });
    };
    const good = await verifyTranscript(await sign(acme.signer.certPem, acme.signer.privateKeyPkcs8), acme.root.certPem);
    expect(good.problems).toEqual([]);
    expect(good.ok).toBe(true);
    const rel = await issueCertificate(acme.issuing, { profile: 'release-signing', commonName: 'rel2', validityDays: 30, now, random });
    const wrongProfile = await verifyTranscript(await sign(rel.certPem, rel.privateKeyPkcs8!), acme.root.certPem);
    expect(wrongProfile.ok).toBe(false);
    expect(wrongProfile.problems.join('\n')).toMatch(/does not hold a bundle-signing certificate \(release-signing\)/);
    rel.privateKeyPkcs8!.fill(0);
    // A CMS with the content inside: what it signs is its own content, not the transcript shown.
    const attached = await verifyTranscript(await sign(acme.signer.certPem, acme.signer.privateKeyPkcs8, ['-nodetach']), acme.root.certPem);
    expect(attached.ok).toBe(false);
    expect(attached.problems.join('\n')).toMatch(/carries content of its own/);
  });
});

describe('ceremony transcripts: hostile and malformed files', () => {
  it('reports problems, never throws', async () => {
    const file = await signTranscript(body(), acme.signer);
    const good = JSON.parse(file) as { transcript: Record<string, unknown>; signature: { cms: string } };
    const cases: Array<[string, RegExp]> = [
      ['not json', /not JSON/],
      ['null', /./],
      ['[]', /./],
      ['"x"', /./],
      ['['.repeat(200_000) + ']'.repeat(200_000), /./],
      [' '.repeat(1024 * 1024 + 1), /at most/],
      [JSON.stringify({ ...good, extra: 1 }), /extra/],
      [JSON.stringify({ ...good, transcript: { ...good.transcript, shares: ['c2VjcmV0'] } }), /shares/],
      [JSON.stringify({ ...good, transcript: { ...good.transcript, format: 'v0' } }), /transcript\.format/],
      [JSON.stringify({ ...good, signature: { format: 'cms-detached', cms: '!!!' } }), /signature\.cms/],
      [JSON.stringify({ ...good, signature: { format: 'cms-detached', cms: crypto.randomBytes(300).toString('base64') } }), /could not be read as CMS/],
      [JSON.stringify({ ...good, signature: { format: 'cms-detached', cms: Buffer.from('3003020101', 'hex').toString('base64') } }), /./],
      [JSON.stringify({ ...good, transcript: { ...good.transcript, participants: [{ name: 'A\u202eB', role: 'administrator' }] } }), /invisible or control character/],
    ];
    for (const [text, why] of cases) {
      const r = await verifyTranscript(text, acme.root.certPem);
      expect(r.ok).toBe(false);
      expect(r.problems.length).toBeGreaterThan(0);
      expect(r.problems.join('\n')).toMatch(why);
    }
    // A root that is not a CA, or not a certificate at all.
    expect((await verifyTranscript(file, acme.signer.certPem)).problems.join('\n')).toMatch(/not a self-signed CA/);
    expect((await verifyTranscript(file, 'junk')).ok).toBe(false);
  });

  it('survives arbitrary JSON in every part of the file', async () => {
    const file = JSON.parse(await signTranscript(body(), acme.signer)) as Record<string, unknown>;
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom('transcript', 'signature', 'whole'), async (junk, where) => {
        const text = where === 'whole' ? JSON.stringify(junk) : JSON.stringify({ ...file, [where]: junk });
        const r = await verifyTranscript(text, acme.root.certPem);
        expect(r.ok).toBe(false);
        expect(r.problems.length).toBeGreaterThan(0);
      }),
      { numRuns: 150 },
    );
  });

  it('survives a CMS with flipped bits anywhere', async () => {
    const file = JSON.parse(await signTranscript(body(), acme.signer)) as { transcript: unknown; signature: { format: string; cms: string } };
    const der = Buffer.from(file.signature.cms, 'base64');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), async (flips) => {
        const bad = Buffer.from(der);
        for (const [at, x] of flips) bad[at]! ^= x;
        const r = await verifyTranscript(JSON.stringify({ ...file, signature: { ...file.signature, cms: bad.toString('base64') } }), acme.root.certPem);
        // A flip in an unsigned, unchecked byte (a certificate's outer length is not one) could leave it valid; a signed byte never.
        if (r.ok) expect(r.problems).toEqual([]);
        else expect(r.problems.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('holds a transcript to the ceremony rules', () => {
    const problems = (t: TranscriptBody) => {
      const r = TranscriptBody.safeParse(t);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(problems(body())).toEqual([]);
    const b = body();
    expect(problems({ ...b, participants: [...b.participants, { name: 'Olu Officer', role: 'witness' }] }).join()).toMatch(/listed twice/);
    expect(problems({ ...b, participants: b.participants.filter((p) => p.role !== 'administrator'), steps: [] }).join()).toMatch(/ceremony administrator/);
    expect(problems({ ...b, contributors: [{ name: 'Wanda Witness', shareIndex: 4 }] }).join()).toMatch(/not an officer/);
    expect(problems({ ...b, contributors: [...b.contributors, { name: 'Olu Officer', shareIndex: 1 }] }).join()).toMatch(/share 1 was counted twice/);
    expect(problems({ ...b, steps: [{ ...b.steps[0]!, n: 2 }] }).join()).toMatch(/numbered 1, 2, 3/);
    expect(problems({ ...b, steps: [{ ...b.steps[0]!, acknowledgedBy: 'Mallory' }] }).join()).toMatch(/Mallory is not a participant/);
    expect(problems({ ...b, steps: [{ ...b.steps[0]!, at: ago(-60) }] }).join()).toMatch(/between the start and the end/);
    expect(problems({ ...b, finishedAt: ago(120) }).join()).toMatch(/cannot finish before it started/);
    expect(problems({ ...b, quorum: { threshold: 4, shares: 3 } }).join()).toMatch(/threshold cannot exceed/);
    expect(problems({ ...b, outcome: 'failed' }).join()).toMatch(/failed says why/);
    expect(problems({ ...b, outcome: 'failed', reason: 'share 2 was for another nonce' })).toEqual([]);
  });
});

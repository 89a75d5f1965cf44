/**
 * Catalog versions published to the lab's real registry as OCI artifacts and pulled back: the
 * registry's manifest digest is the catalog's (the version's identity), tampered media pushes
 * nothing, a pull goes by digest and re-verifies every file, staged versions are refused, and a
 * phi version goes in with ocicrypt-encrypted layers: its storage holds no plaintext, and it
 * opens only with its data key.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../electron/core/db/db';
import { Catalog } from '../../electron/core/models/catalog';
import { publishVersion, pullVersion } from '../../electron/core/models/publish';
import { RegistryClient } from '../../electron/core/models/registry/client';
import { attachSignature, SIGNATURE_ARTIFACT, STATEMENT_FORMAT, verifySignatures, type VersionStatement } from '../../electron/core/models/signature';
import { createIssuingCa, createRootCa, issueCertificate } from '../../electron/core/keys/ca';
import { signDetachedCms } from '../../electron/core/keys/cms';
import { AirlockError } from '../../shared/domain/errors';
import { labDown, labUp, type Lab } from '../lab/lab';

let lab: Lab;
let dir: string;
let db: Db;
let catalog: Catalog;
let client: RegistryClient;
beforeAll(async () => {
  lab = await labUp({ id: 'modpub', hosts: 1, registry: true, replace: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-publish-'));
  db = openDatabase(path.join(dir, 'airlock.db'));
  catalog = new Catalog({ db, now: () => new Date() });
  client = new RegistryClient({ baseUrl: lab.registry!.url });
}, 120_000);
afterAll(async () => {
  db.close();
  await labDown({ id: 'modpub' });
  fs.rmSync(dir, { recursive: true, force: true });
});

function media(name: string, files: Record<string, Buffer>): string {
  const root = path.join(dir, name);
  for (const [p, b] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), b);
  }
  return root;
}
const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof AirlockError ? e.code : String(e)));

describe('publishing catalog versions to docker-registry 2.8.2', () => {
  it('publishes an approved version under its catalog digest, and pulls it back verified', async () => {
    catalog.addModel({ name: 'triage-small', owner: 'ml' }, 'alice');
    const src = media('usb', { 'config.json': Buffer.from('{"layers":2}'), 'weights/model.safetensors': crypto.randomBytes(3 * 1024 * 1024 + 17) });
    await catalog.importDirectory({ model: 'triage-small', version: 'v1', dir: src, classification: 'internal', license: 'apache-2.0', source: 'USB 7' }, 'alice');
    expect(await code(publishVersion({ catalog, client }, 'triage-small', 'v1', src))).toBe('CONFLICT'); // staged
    const v = catalog.setStatus('triage-small', 'v1', 'approved', 'bob');
    const seen: number[] = [];
    const out = await publishVersion({ catalog, client }, 'triage-small', 'v1', src, { chunkBytes: 1024 * 1024, onProgress: (p) => seen.push(p.versionDone) });
    expect(out).toMatchObject({ repository: 'models/triage-small', tag: 'v1', digest: v.manifestDigest });
    expect(seen.at(-1)).toBe(v.totalBytes);
    const reg = await client.getManifest('models/triage-small', 'v1');
    expect(reg?.digest).toBe(v.manifestDigest);
    expect(reg?.manifest.annotations?.['io.airlock.classification']).toBe('internal');
    // Published again: nothing new is uploaded.
    expect((await publishVersion({ catalog, client }, 'triage-small', 'v1', src)).pushedBytes).toBe(0);

    const dest = path.join(dir, 'pulled');
    expect(await pullVersion({ catalog, client }, 'triage-small', 'v1', dest)).toEqual({ files: 2, bytes: v.totalBytes });
    expect(await catalog.verify('triage-small', 'v1', dest)).toMatchObject({ ok: true });
    expect(await code(pullVersion({ catalog, client }, 'triage-small', 'v1', dest))).toBe('CONFLICT'); // not empty
  });

  it('pushes nothing from media that changed since the import', async () => {
    catalog.addModel({ name: 'triage-tampered', owner: 'ml' }, 'alice');
    const src = media('usb2', { 'w.bin': crypto.randomBytes(4096) });
    await catalog.importDirectory({ model: 'triage-tampered', version: 'v1', dir: src, classification: 'public', license: 'mit', source: 'USB 8' }, 'alice');
    catalog.setStatus('triage-tampered', 'v1', 'approved', 'bob');
    fs.writeFileSync(path.join(src, 'w.bin'), crypto.randomBytes(4096));
    expect(await code(publishVersion({ catalog, client }, 'triage-tampered', 'v1', src))).toBe('HASH_MISMATCH');
    expect(await client.tags('models/triage-tampered')).toEqual([]);

  });

  it('puts phi and confidential versions in the registry encrypted: no plaintext in its storage, opened only with the data key', async () => {
    catalog.addModel({ name: 'notes-tune', owner: 'ml' }, 'alice');
    const secretText = Buffer.from('PATIENT-RECORD-MARKER '.repeat(2000));
    const weights = Buffer.concat([crypto.randomBytes(1024 * 1024), secretText, crypto.randomBytes(512 * 1024)]);
    const c = media('usb3', { 'weights.bin': weights, 'notes.txt': secretText });
    await catalog.importDirectory({ model: 'notes-tune', version: 'v1', dir: c, classification: 'phi', license: 'internal', source: 'run 9' }, 'alice');
    const v = catalog.setStatus('notes-tune', 'v1', 'approved', 'alice', { secondPerson: 'olga' });
    // Without the key: refused, nothing pushed.
    expect(await code(publishVersion({ catalog, client }, 'notes-tune', 'v1', c))).toBe('KEY_UNAVAILABLE');
    expect(await client.tags('models/notes-tune')).toEqual([]);

    const layerKey = { id: 'model-layers/notes-tune/v1', key: crypto.randomBytes(32) };
    const work = fs.mkdtempSync(path.join(dir, 'work-'));
    const out = await publishVersion({ catalog, client, random: (n) => crypto.randomBytes(n) }, 'notes-tune', 'v1', c, { layerKey, workDir: work });
    expect(out).toMatchObject({ encrypted: true, catalogDigest: v.manifestDigest });
    expect(out.digest).not.toBe(v.manifestDigest);
    expect(fs.readdirSync(work)).toEqual([]); // no ciphertext left behind either
    const reg = await client.getManifest('models/notes-tune', 'v1');
    expect(reg!.manifest.layers.every((l) => l.mediaType.endsWith('+encrypted') && l.annotations?.['org.opencontainers.image.enc.keys.provider.airlock'])).toBe(true);

    // The registry's storage holds no plaintext of the weights or the notes.
    const needles = [secretText.subarray(0, 64), weights.subarray(4096, 4160), weights.subarray(weights.length - 100, weights.length - 36)];
    const walk = (p: string): string[] => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).flatMap((n) => walk(path.join(p, n))) : [p]);
    const stored = walk(lab.registry!.storage);
    expect(stored.length).toBeGreaterThan(3);
    for (const f of stored) {
      const b = fs.readFileSync(f);
      for (const n of needles) expect(b.includes(n), f).toBe(false);
    }

    const dest = path.join(dir, 'pulled-phi');
    expect(await code(pullVersion({ catalog, client }, 'notes-tune', 'v1', dest))).toBe('KEY_UNAVAILABLE');
    expect(await code(pullVersion({ catalog, client }, 'notes-tune', 'v1', path.join(dir, 'wrong'), { layerKey: () => crypto.randomBytes(32) }))).toBe('KEY_UNAVAILABLE');
    expect(await pullVersion({ catalog, client }, 'notes-tune', 'v1', dest, { layerKey: () => Buffer.from(layerKey.key) })).toEqual({ files: 2, bytes: v.totalBytes });
    expect(fs.readFileSync(path.join(dest, 'weights.bin')).equals(weights)).toBe(true);
  });
});

describe('signatures attached with the referrers tag-schema fallback (2.8.2 has no referrers API)', () => {
  const now = new Date();
  const random = (n: number) => crypto.randomBytes(n);
  async function authority(name: string) {
    const root = await createRootCa({ commonName: `${name} Root CA`, validityDays: 3650, now, random });
    const issuing = await createIssuingCa(root, { commonName: `${name} Issuing CA`, validityDays: 1825, now, random });
    const bundle = await issueCertificate(issuing, { profile: 'bundle-signing', commonName: `${name} bundle signing`, validityDays: 365, now, random });
    const signer = { certPem: bundle.certPem, chainPems: [issuing.certPem], privateKeyPkcs8: bundle.privateKeyPkcs8! };
    return { root, sign: (b: Buffer) => signDetachedCms(b, signer) };
  }
  const statementOf = (v: { model: string; version: string; manifestDigest: string | null; classification: VersionStatement['classification'] }, digest: string): VersionStatement => ({
    format: STATEMENT_FORMAT,
    repository: `models/${v.model}`,
    digest,
    catalogDigest: v.manifestDigest!,
    model: v.model,
    version: v.version,
    classification: v.classification,
    approvedBy: 'bob',
    approvedAt: now.toISOString(),
    signedAt: new Date().toISOString(),
  });

  it('a signature of a published version verifies offline with the root alone (Airlock and openssl cms); another CA, a claim that differs from the catalog or a forged statement do not', async () => {
    const v = catalog.version('triage-small', 'v1')!; // published by the first test
    const repo = 'models/triage-small';
    const acme = await authority('Acme');
    expect(await verifySignatures(client, repo, v.manifestDigest!, acme.root.certPem)).toMatchObject({ ok: false, problems: [expect.stringMatching(/No signature is attached/)] });

    const att = await attachSignature(client, statementOf(v, v.manifestDigest!), acme.sign);
    expect(att.tag).toBe(`sha256-${v.manifestDigest!.slice(7)}`);
    // What a standard tool sees: an OCI index at the fallback tag, listing the signature with its artifactType.
    const index = await client.getIndex(repo, att.tag);
    expect(index?.index.manifests).toEqual([expect.objectContaining({ digest: att.digest, artifactType: SIGNATURE_ARTIFACT })]);
    const good = await verifySignatures(client, repo, v.manifestDigest!, acme.root.certPem, { expect: { model: 'triage-small', version: 'v1', catalogDigest: v.manifestDigest! } });
    expect(good.ok, good.problems.join('\n')).toBe(true);
    expect(good.signatures[0]!.signer?.subject).toMatch(/Acme bundle signing/);

    // The same bytes through the real openssl: statement + CMS from the registry, only the root given.
    const sig = (await client.getManifest(repo, att.digest))!.manifest;
    const d = fs.mkdtempSync(path.join(dir, 'sig-'));
    fs.writeFileSync(path.join(d, 'statement.json'), await client.getSmallBlob(repo, sig.layers[0]!.digest));
    fs.writeFileSync(path.join(d, 'sig.der'), await client.getSmallBlob(repo, sig.layers[1]!.digest));
    fs.writeFileSync(path.join(d, 'root.pem'), acme.root.certPem);
    const ossl = spawnSync('openssl', ['cms', '-verify', '-binary', '-purpose', 'any', '-inform', 'DER', '-in', path.join(d, 'sig.der'), '-content', path.join(d, 'statement.json'), '-CAfile', path.join(d, 'root.pem'), '-out', '/dev/null'], { encoding: 'utf8' });
    expect(ossl.status, ossl.stderr).toBe(0);

    // Another organisation's root does not vouch for it.
    const other = await authority('Other');
    expect((await verifySignatures(client, repo, v.manifestDigest!, other.root.certPem)).ok).toBe(false);
    // A second signature by another CA is kept beside the first (the index grows; the first still verifies).
    await attachSignature(client, statementOf(v, v.manifestDigest!), other.sign);
    const both = await verifySignatures(client, repo, v.manifestDigest!, acme.root.certPem);
    expect(both.signatures.map((s) => s.ok)).toEqual([true, false]);
    // A statement that claims another classification than the catalog's is refused by the check.
    expect((await verifySignatures(client, repo, v.manifestDigest!, acme.root.certPem, { expect: { classification: 'public' } })).ok).toBe(false);

    // A forged statement (an attacker with push rights but no CA key) listed in the index: refused.
    const forged = statementOf(v, v.manifestDigest!);
    forged.classification = 'public';
    const real = (await client.getSmallBlob(repo, sig.layers[1]!.digest));
    await attachSignature(client, forged, async () => real); // the genuine CMS over other bytes
    const after = await verifySignatures(client, repo, v.manifestDigest!, acme.root.certPem);
    expect(after.signatures.map((s) => s.ok)).toEqual([true, false, false]);
    expect(after.signatures[2]!.problems.join('\n')).toMatch(/does not match the version statement/);
    // Signing a digest the repository does not hold is refused before anything is pushed.
    expect(await code(attachSignature(client, statementOf(v, `sha256:${'0'.repeat(64)}`), acme.sign))).toBe('NOT_FOUND');
  });
});

/**
 * The models catalog end to end from the `airlock` CLI (run in-process, each invocation its own
 * sign-in) over a real SQLite data directory, a media root on this machine and the lab's real
 * registry (Debian's docker-registry 2.8.2): datasets; imports of a directory, an OCI image layout
 * and a ModelKit tarball, every file hashed; paths outside the media root and symlinks refused;
 * classification never lowered down the lineage; a phi fine-tune's approval filed (exit 3),
 * approved by an officer and executed, the second person recorded; publish to the registry and
 * every digest verified there; verify against changed media; deprecate and revoke with reasons;
 * all of it on the audit trail.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../electron/core/models/registry/client';
import { verifySignatures } from '../../electron/core/models/signature';
import { EXIT } from '../../electron/shells/cli';
import { labDown, labUp, type Lab } from '../lab/lab';
import { asOlga, inProcessCli } from '../support/cli';
import { writeModelKit, writeOciLayout } from '../support/model-media';

const LAB_ID = 'modcat';
let lab: Lab;
let data: string;
let media: string;
let outside: string;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const cli = inProcessCli(() => data);
const airlock = (args: string[], env: Record<string, string | undefined> = {}) => cli(args, { AIRLOCK_MEDIA_ROOTS: media, ...env });
async function ok(args: string[], env: Record<string, string | undefined> = {}) {
  const r = await airlock(args, env);
  expect(r.code, `airlock ${args.join(' ')}\n${r.stderr}${r.stdout}`).toBe(EXIT.ok);
  return r;
}

type V = { model: string; version: string; status: string; classification: string; manifestDigest: string | null; files: number; totalBytes: number; statusBy: string; format: string; publications: { digest: string; registry: string }[] };
type Show = { version: V; files: { path: string; size: number; sha256: string }[]; ancestry: { model: string; version: string }[]; artifactDigest: string };

const weights = crypto.randomBytes(2 * 1024 * 1024 + 333);
const tokenizer = Buffer.from('{"vocab": 32000}');

beforeAll(async () => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-modcat-'));
  media = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-modcat-media-')));
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-modcat-outside-'));
  lab = await labUp({ id: LAB_ID, hosts: 1, registry: true, replace: true });
  await ok(['init', '--admin', 'alice']);
  await ok(['users', 'create', 'olga', '--role', 'officer', '--no-password-change'], { AIRLOCK_NEW_PASSWORD: 'olga own password' });
  await ok(['users', 'create', 'anna', '--role', 'auditor', '--no-password-change'], { AIRLOCK_NEW_PASSWORD: 'anna own password' });
  // The stick: a directory of weights, an OCI layout, a ModelKit tarball; something outside the media root.
  fs.mkdirSync(path.join(media, 'usb', 'base', 'weights'), { recursive: true });
  fs.writeFileSync(path.join(media, 'usb', 'base', 'weights', 'model.safetensors'), weights);
  fs.writeFileSync(path.join(media, 'usb', 'base', 'tokenizer.json'), tokenizer);
  writeOciLayout(path.join(media, 'usb', 'tune-oci'), [
    { title: 'adapter.safetensors', body: Buffer.from('adapter weights '.repeat(1000)) },
    { title: 'adapter_config.json', body: Buffer.from('{"r":16}') },
  ]);
  writeModelKit(path.join(media, 'usb', 'kit.tar'), outside, [
    { kind: 'model', files: { 'models/eval.gguf': Buffer.from('gguf '.repeat(2000)) } },
    { kind: 'docs', files: { 'README.md': Buffer.from('# evaluator') } },
  ]);
  fs.writeFileSync(path.join(outside, 'w.bin'), 'outside the media root');
  fs.mkdirSync(path.join(media, 'usb', 'linked'));
  fs.symlinkSync('/etc/passwd', path.join(media, 'usb', 'linked', 'w.bin'));
}, 240_000);

afterAll(async () => {
  await labDown({ id: LAB_ID });
  for (const d of [data, media, outside]) if (d) fs.rmSync(d, { recursive: true, force: true });
}, 120_000);

describe('airlock datasets and models', () => {
  it('adds datasets with classification and retention; auditors read, only admins write', async () => {
    await ok(['datasets', 'add', 'pubmed-2024', '--name', 'PubMed abstracts', '--classification', 'public', '--location', 'NAS /corpora/pubmed', '--owner', 'Library']);
    await ok(['datasets', 'add', 'ward-notes', '--name', 'Ward notes 2023', '--classification', 'phi', '--location', 'Vault 3, EHR extract 17', '--owner', 'Dr Ng', '--retention', '2031-12-31']);
    const list = await ok(['datasets', 'list'], { AIRLOCK_USER: 'anna', AIRLOCK_PASSWORD: 'anna own password' });
    expect(list.stdout).toContain('ward-notes\tphi\t2031-12-31\tWard notes 2023\tVault 3, EHR extract 17');
    const denied = await airlock(['datasets', 'add', 'x', '--name', 'X', '--classification', 'public', '--location', 'l', '--owner', 'o'], { AIRLOCK_USER: 'anna', AIRLOCK_PASSWORD: 'anna own password' });
    expect(denied.code).toBe(EXIT.failed);
    expect(denied.stderr).toMatch(/FORBIDDEN/);
    expect((await airlock(['datasets', 'add', 'pubmed-2024', '--name', 'again', '--classification', 'public', '--location', 'l', '--owner', 'o'])).stderr).toMatch(/CONFLICT: A dataset with id pubmed-2024/);
  });

  it('imports a directory, an OCI layout and a ModelKit from the media root, every file hashed', async () => {
    const base = (
      await ok(['models', 'import', 'triage-base', 'v1', path.join(media, 'usb', 'base'), '--owner', 'ML team', '--classification', 'internal', '--license', 'apache-2.0', '--source', 'Vendor X, USB 7', '--dataset', 'pubmed-2024:training', '--description', 'Triage assistant', '--json'])
    ).json<V>();
    expect(base).toMatchObject({ status: 'staged', format: 'directory', files: 2, totalBytes: weights.length + tokenizer.length, manifestDigest: null });
    const show = (await ok(['models', 'show', 'triage-base', 'v1', '--json'])).json<Show>();
    expect(show.files).toEqual([
      { path: 'tokenizer.json', size: tokenizer.length, sha256: sha(tokenizer) },
      { path: 'weights/model.safetensors', size: weights.length, sha256: sha(weights) },
    ]);

    // A fine-tune on PHI notes must itself be phi: refused as internal, naming the dataset.
    const lowered = await airlock(['models', 'import', 'triage-notes', 'v1', path.join(media, 'usb', 'tune-oci'), '--format', 'oci-layout', '--owner', 'ML team', '--classification', 'internal', '--license', 'internal', '--source', 'run 42', '--dataset', 'ward-notes:fine-tuning', '--base', 'triage-base:v1']);
    expect(lowered.code).toBe(EXIT.failed);
    expect(lowered.stderr).toMatch(/CONFLICT: Dataset ward-notes is phi/);
    const tune = (
      await ok(['models', 'import', 'triage-notes', 'v1', path.join(media, 'usb', 'tune-oci'), '--format', 'oci-layout', '--owner', 'ML team', '--classification', 'phi', '--license', 'internal', '--source', 'run 42', '--dataset', 'ward-notes:fine-tuning', '--base', 'triage-base:v1', '--json'])
    ).json<V>();
    expect(tune).toMatchObject({ format: 'oci-layout', files: 2, classification: 'phi' });
    const tuneShow = (await ok(['models', 'show', 'triage-notes', 'v1', '--json'])).json<Show>();
    expect(tuneShow.files.map((f) => f.path)).toEqual(['adapter.safetensors', 'adapter_config.json']);
    expect(tuneShow.ancestry).toMatchObject([{ model: 'triage-base', version: 'v1' }]);

    const kit = (await ok(['models', 'import', 'evaluator', '1.0', path.join(media, 'usb', 'kit.tar'), '--format', 'modelkit', '--owner', 'QA', '--classification', 'public', '--license', 'mit', '--source', 'KitOps export', '--json'])).json<V>();
    expect(kit).toMatchObject({ format: 'modelkit', files: 2 });
    const kitShow = (await ok(['models', 'show', 'evaluator', '1.0', '--json'])).json<Show>();
    expect(kitShow.files).toEqual([
      { path: 'README.md', size: 11, sha256: sha(Buffer.from('# evaluator')) },
      { path: 'models/eval.gguf', size: 10000, sha256: sha(Buffer.from('gguf '.repeat(2000))) },
    ]);
    // Nothing of the temporary trees is left in the data directory.
    expect(fs.readdirSync(path.join(data, 'models-work'))).toEqual([]);

    const human = await ok(['models', 'list']);
    expect(human.stdout).toMatch(/triage-notes v1\tphi\tstaged\t2 file\(s\)/);
  });

  it('refuses media outside the media roots, symlinks on the media, and leaves nothing behind', async () => {
    const out = await airlock(['models', 'import', 'stray', 'v1', outside, '--owner', 'o', '--classification', 'public', '--license', 'mit', '--source', 's']);
    expect(out.code).toBe(EXIT.failed);
    expect(out.stderr).toMatch(/FORBIDDEN: .* is not under a media root/);
    const link = await airlock(['models', 'import', 'stray', 'v1', path.join(media, 'usb', 'linked'), '--owner', 'o', '--classification', 'public', '--license', 'mit', '--source', 's']);
    expect(link.code).toBe(EXIT.usage);
    expect(link.stderr).toMatch(/is a symbolic link/);
    const escape = await airlock(['models', 'import', 'stray', 'v1', path.join(media, 'usb', '..', '..'), '--owner', 'o', '--classification', 'public', '--license', 'mit', '--source', 's']);
    expect(escape.stderr).toMatch(/FORBIDDEN/);
    const list = (await ok(['models', 'list', '--json'])).json<{ models: { name: string }[] }>();
    expect(list.models.map((m) => m.name)).not.toContain('stray');
  });

  it('approves a phi version only through the two-person rule, bound to its digest, with the officer recorded', async () => {
    // Its base first: a request that could never execute is not filed.
    const early = await airlock(['models', 'approve', 'triage-notes', 'v1', '--reason', 'reviewed by the ethics board']);
    expect(early.code).toBe(EXIT.failed);
    expect(early.stderr).toMatch(/CONFLICT: triage-notes v1 is built on triage-base v1, which is not approved/);
    const base = (await ok(['models', 'approve', 'triage-base', 'v1', '--json'])).json<V>();
    expect(base.status).toBe('approved');
    expect(base.manifestDigest).toBe((await ok(['models', 'show', 'triage-base', 'v1', '--json'])).json<Show>().artifactDigest);

    const direct = await airlock(['models', 'approve', 'triage-notes', 'v1']);
    expect(direct.code).toBe(EXIT.failed);
    expect(direct.stderr).toMatch(/APPROVAL_REQUIRED: Approve the phi model version triage-notes v1/);
    const { artifactDigest } = (await ok(['models', 'show', 'triage-notes', 'v1', '--json'])).json<Show>();
    const filed = await airlock(['models', 'approve', 'triage-notes', 'v1', '--digest', artifactDigest, '--reason', 'ethics board ref 2026-114', '--json']);
    expect(filed.code, filed.stderr).toBe(EXIT.pending);
    const id = (filed.json().pending as { id: number }).id;
    expect((await ok(['models', 'show', 'triage-notes', 'v1', '--json'])).json<Show>().version.status).toBe('staged');
    // Not by the requester; an officer approves; the requester executes.
    expect((await airlock(['approvals', 'approve', String(id), '--reason', 'mine'])).stderr).toMatch(/FORBIDDEN/);
    await ok(['approvals', 'approve', String(id), '--reason', 'checked the lineage'], asOlga);
    const run = await ok(['approvals', 'execute', String(id), '--json']);
    expect(run.code).toBe(EXIT.ok);
    const v = (await ok(['models', 'show', 'triage-notes', 'v1', '--json'])).json<Show>().version;
    expect(v).toMatchObject({ status: 'approved', statusBy: 'alice with olga', manifestDigest: artifactDigest });

    // The request is for exactly that version as it was: one revoked meanwhile is not approved by it.
    await ok(['models', 'import', 'triage-notes', 'v2', path.join(media, 'usb', 'tune-oci'), '--format', 'oci-layout', '--owner', 'ML team', '--classification', 'phi', '--license', 'internal', '--source', 'run 43', '--dataset', 'ward-notes:fine-tuning', '--base', 'triage-base:v1']);
    const second = await airlock(['models', 'approve', 'triage-notes', 'v2', '--reason', 'ethics board ref 2026-115', '--json']);
    expect(second.code).toBe(EXIT.pending);
    const id2 = (second.json().pending as { id: number }).id;
    await ok(['models', 'revoke', 'triage-notes', 'v2', '--reason', 'wrong training run']);
    const stale = await airlock(['approvals', 'approve', String(id2), '--reason', 'looks fine'], asOlga);
    expect(stale.code).toBe(EXIT.failed);
    expect(stale.stderr).toMatch(/triage-notes:v2 is no longer the one filed/);
    // A digest that is not the version's is refused even when approved.
    expect((await airlock(['models', 'approve', 'evaluator', '1.0', '--digest', `sha256:${'0'.repeat(64)}`])).stderr).toMatch(/CONFLICT: evaluator 1.0 is now sha256:/);
  });

  it('publishes approved versions to the lab registry; the registry holds exactly the catalog digests', async () => {
    expect((await airlock(['models', 'publish', 'triage-base', 'v1'])).stderr).toMatch(/NOT_FOUND: No registry is set/);
    await ok(['models', 'set-registry', lab.registry!.url]);
    expect((await airlock(['models', 'publish', 'evaluator', '1.0'])).stderr).toMatch(/CONFLICT: evaluator 1.0 is staged/);
    const pub = (await ok(['models', 'publish', 'triage-base', 'v1', '--json'])).json<{ digest: string; catalogDigest: string; repository: string; encrypted: boolean }>();
    const v = (await ok(['models', 'show', 'triage-base', 'v1', '--json'])).json<Show>();
    expect(pub).toMatchObject({ repository: 'models/triage-base', digest: v.version.manifestDigest, catalogDigest: v.version.manifestDigest, encrypted: false });
    expect(v.version.publications).toMatchObject([{ registry: lab.registry!.url, digest: v.version.manifestDigest, signature: null }]); // no CA yet: unsigned

    // Read back from the registry by digest: every layer is a file of the catalog, each blob hashes to it.
    const client = new RegistryClient({ baseUrl: lab.registry!.url });
    const m = await client.getManifest('models/triage-base', v.version.manifestDigest!);
    expect(m?.digest).toBe(v.version.manifestDigest);
    const byTitle = new Map(m!.manifest.layers.map((l) => [l.annotations?.['org.opencontainers.image.title'], l]));
    const tmp = fs.mkdtempSync(path.join(outside, 'pull-'));
    for (const f of v.files) {
      const l = byTitle.get(f.path);
      expect(l, f.path).toMatchObject({ digest: `sha256:${f.sha256}`, size: f.size });
      const dest = path.join(tmp, f.sha256);
      await client.pullBlob('models/triage-base', l!.digest, dest, { size: f.size });
      expect(sha(fs.readFileSync(dest))).toBe(f.sha256);
    }

    // A phi version goes in encrypted only: with no key hierarchy here, nothing is pushed.
    const phi = await airlock(['models', 'publish', 'triage-notes', 'v1']);
    expect(phi.code).toBe(EXIT.failed);
    expect(phi.stderr).toMatch(/KEY_UNAVAILABLE: triage-notes v1 goes into the registry encrypted/);
    expect(await client.tags('models/triage-notes')).toEqual([]);

    // With the officers' shares, it goes in encrypted: the registry's storage holds none of its plaintext.
    const g = await ok(['keys', 'genesis', '--threshold', '2', '--shares', '3', '--share-dir', path.join(outside, 'shares'), '--json']);
    const shares = g.json<{ shareFiles: string[] }>().shareFiles.map((f) => path.resolve(f));
    expect((await airlock(['models', 'publish', 'triage-notes', 'v1'])).stderr).toMatch(/KEY_UNAVAILABLE: .*unsealed first/);
    const enc = (await ok(['models', 'publish', 'triage-notes', 'v1', '--share', shares[0]!, '--share', shares[2]!, '--json'])).json<{ digest: string; catalogDigest: string; encrypted: boolean }>();
    const notes = (await ok(['models', 'show', 'triage-notes', 'v1', '--json'])).json<Show>();
    expect(enc).toMatchObject({ encrypted: true, catalogDigest: notes.version.manifestDigest });
    expect(enc.digest).not.toBe(notes.version.manifestDigest);
    const em = await client.getManifest('models/triage-notes', 'v1');
    expect(em?.digest).toBe(enc.digest);
    expect(em!.manifest.annotations?.['io.airlock.plain-manifest']).toBe(notes.version.manifestDigest);
    expect(em!.manifest.layers.every((l) => l.mediaType.endsWith('+encrypted'))).toBe(true);
    const needle = Buffer.from('adapter weights adapter weights');
    const walk = (p: string): string[] => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).flatMap((n) => walk(path.join(p, n))) : [p]);
    const stored = walk(lab.registry!.storage);
    expect(stored.length).toBeGreaterThan(3);
    for (const f of stored) expect(fs.readFileSync(f).includes(needle), f).toBe(false);
    expect(fs.readdirSync(path.join(data, 'models-work'))).toEqual([]);

    // Published after genesis, the version is signed by the console CA beside it in the registry
    // (referrers tag sha256-<hex>), verifiable with the root certificate alone.
    const signature = (notes.version.publications as unknown as { signature: string | null }[])[0]!.signature;
    expect(signature).toMatch(/^sha256:[0-9a-f]{64}$/);
    const root = (await ok(['keys', 'ca-certificate', '--json'])).json<{ pem: string }>().pem;
    const sigs = await verifySignatures(client, 'models/triage-notes', enc.digest, root, { expect: { model: 'triage-notes', version: 'v1', classification: 'phi', catalogDigest: notes.version.manifestDigest! } });
    expect(sigs.ok, sigs.problems.join('\n')).toBe(true);
    expect(sigs.signatures.map((x) => x.manifest)).toEqual([signature]);

    // On the trail: who published what where.
    const events = (await ok(['audit', 'list', '--limit', '400', '--json'])).json<{ events: { channel: string; phase: string; outcome: string; target: string | null }[] }>().events;
    expect(events.filter((e) => e.channel === 'models:publish' && e.phase === 'outcome').map((e) => [e.target, e.outcome])).toEqual(
      expect.arrayContaining([
        ['triage-base:v1', 'ok'],
        ['triage-notes:v1', 'error'],
        ['triage-notes:v1', 'ok'],
      ]),
    );
  }, 120_000);

  it('verifies media against the catalog, then deprecates and revokes with a reason', async () => {
    await ok(['models', 'verify', 'triage-base', 'v1']);
    fs.appendFileSync(path.join(media, 'usb', 'base', 'tokenizer.json'), ' ');
    fs.writeFileSync(path.join(media, 'usb', 'base', 'extra.bin'), 'x');
    const bad = await airlock(['models', 'verify', 'triage-base', 'v1']);
    expect(bad.code).toBe(EXIT.failed);
    expect(bad.stdout).toContain('  extra    extra.bin\n  changed  tokenizer.json\n');
    // Changed media is not published again.
    expect((await airlock(['models', 'publish', 'triage-base', 'v1'])).stderr).toMatch(/HASH_MISMATCH/);
    await ok(['models', 'verify', 'triage-notes', 'v1']);

    expect((await airlock(['models', 'deprecate', 'triage-base', 'v1'])).code).toBe(EXIT.usage);
    expect((await ok(['models', 'deprecate', 'triage-base', 'v1', '--reason', 'superseded by v2'])).stdout).toMatch(/triage-base v1 is deprecated .*: superseded by v2/);
    await ok(['models', 'revoke', 'triage-base', 'v1', '--reason', 'licence withdrawn']);
    expect((await airlock(['models', 'revoke', 'triage-base', 'v1', '--reason', 'again'])).stderr).toMatch(/CONFLICT: .*revocation is final/);
    expect((await airlock(['models', 'revoke', 'evaluator', '1.0', '--reason', 'x'])).code).toBe(EXIT.usage); // too short a reason
    const ds = (await ok(['datasets', 'show', 'ward-notes', '--json'])).json<{ usedBy: { model: string; status: string }[] }>();
    expect(ds.usedBy).toEqual([
      { model: 'triage-notes', version: 'v1', role: 'fine-tuning', status: 'approved' },
      { model: 'triage-notes', version: 'v2', role: 'fine-tuning', status: 'revoked' },
    ]);
  });
});

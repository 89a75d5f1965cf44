/**
 * Airlock's Registry HTTP API V2 client against the lab's real registry (Debian's docker-registry
 * 2.8.2 in a lab host of its own): chunked upload that is stopped and resumed from the registry's
 * own offset, manifests by tag and digest, tag lists, the referrers tag-schema fallback, pulls
 * verified against their digests — and a blob corrupted in the registry's storage refused.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, sha256, type UploadSession } from '../../electron/core/models/registry/client';
import { EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST, referrersTag } from '../../electron/core/models/registry/oci';
import { AirlockError } from '../../shared/domain/errors';
import { labDown, labUp, type Lab } from '../lab/lab';

let lab: Lab;
let work: string;
beforeAll(async () => {
  lab = await labUp({ id: 'regcli', hosts: 1, registry: true, replace: true });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-registry-'));
}, 120_000);
afterAll(async () => {
  await labDown({ id: 'regcli' });
  fs.rmSync(work, { recursive: true, force: true });
});

const blobFile = (storage: string, digest: string) => path.join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');

describe('registry client against docker-registry 2.8.2', () => {
  it('listens only on its lab address', () => {
    expect(lab.registry).toBeDefined();
    const root = execFileSync('ss', ['-Hltn'], { encoding: 'utf8' });
    expect(root.split('\n').some((l) => /:5000\s/.test(l))).toBe(false); // nothing on this machine's own namespace
    const inside = execFileSync('ip', ['netns', 'exec', lab.hosts.find((h) => h.name === 'registry')!.netns!, 'ss', '-Hltn'], { encoding: 'utf8' });
    expect(inside).toContain(`${lab.registry!.address}:5000`);
  });

  it('uploads in chunks, stops, resumes from the registry offset, and pulls back verified', async () => {
    const c = new RegistryClient({ baseUrl: lab.registry!.url });
    expect((await c.ping()).ok).toBe(true);
    const file = path.join(work, 'weights.bin');
    fs.writeFileSync(file, crypto.randomBytes(5 * 1024 * 1024 + 12345));
    const want = `sha256:${execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]}`;

    let session: UploadSession | null = null;
    const stop = new AbortController();
    const first = c.pushBlob('models/llama-med', file, {
      chunkBytes: 1024 * 1024,
      onSession: (s) => (session = s),
      onProgress: (p) => {
        if (p.done >= 2 * 1024 * 1024) stop.abort();
      },
      signal: stop.signal,
    });
    await expect(first).rejects.toThrow(/stopped/);
    expect(session).not.toBeNull();
    const progress: number[] = [];
    const done = await c.pushBlob('models/llama-med', file, { chunkBytes: 1024 * 1024, resume: session!, onProgress: (p) => progress.push(p.done) });
    expect(done.digest).toBe(want);
    expect(progress[0]).toBeGreaterThanOrEqual(2 * 1024 * 1024); // resumed, not restarted
    expect(done.uploaded).toBeLessThan(done.size);
    expect(await c.blobSize('models/llama-med', want)).toBe(done.size);
    // The registry's own file is the same bytes (checked with the real sha256sum).
    expect(execFileSync('sha256sum', [blobFile(lab.registry!.storage, want)], { encoding: 'utf8' }).split(' ')[0]).toBe(want.slice(7));
    // A second push of the same blob uploads nothing.
    expect((await c.pushBlob('models/llama-med', file)).uploaded).toBe(0);

    const out = path.join(work, 'pulled.bin');
    await c.pullBlob('models/llama-med', want, out, { size: done.size });
    expect(sha256(fs.readFileSync(out))).toBe(want);
  });

  it('puts and gets manifests by tag and digest, lists tags, attaches by the sha256-<hex> tag', async () => {
    const c = new RegistryClient({ baseUrl: lab.registry!.url });
    const layer = await c.pushSmallBlob('models/tiny', Buffer.from('tokenizer: tiny\n'));
    const config = await c.pushSmallBlob('models/tiny', EMPTY_JSON);
    const manifest = {
      schemaVersion: 2 as const,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.airlock.model.v1',
      config: { mediaType: OCI_EMPTY, digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/octet-stream', digest: layer.digest, size: layer.size, annotations: { 'org.opencontainers.image.title': 'tokenizer.yaml' } }],
      annotations: { 'io.airlock.classification': 'internal' },
    };
    const put = await c.putManifest('models/tiny', 'v1', manifest);
    const byTag = await c.getManifest('models/tiny', 'v1');
    expect(byTag?.digest).toBe(put.digest);
    expect(byTag?.manifest.annotations).toEqual({ 'io.airlock.classification': 'internal' });
    expect((await c.getManifest('models/tiny', put.digest))?.digest).toBe(put.digest);
    expect(await c.getManifest('models/tiny', 'v9')).toBeNull();

    const sig = await c.pushSmallBlob('models/tiny', Buffer.from('{"signature":"for the test"}'));
    await c.putManifest('models/tiny', referrersTag(put.digest), {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.airlock.signature.v1',
      config: { mediaType: OCI_EMPTY, digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/json', digest: sig.digest, size: sig.size }],
      subject: { mediaType: OCI_MANIFEST, digest: put.digest, size: byTag!.bytes.length },
    });
    expect((await c.tags('models/tiny')).sort()).toEqual([referrersTag(put.digest), 'v1'].sort());
    expect(await c.tags('models/none-such')).toEqual([]);
  });

  it('refuses a blob that the registry storage corrupted, and keeps no partial file', async () => {
    const c = new RegistryClient({ baseUrl: lab.registry!.url });
    const b = await c.pushSmallBlob('models/bad', crypto.randomBytes(4096));
    const stored = blobFile(lab.registry!.storage, b.digest);
    const bytes = fs.readFileSync(stored);
    bytes[100] = bytes[100]! ^ 0xff;
    fs.writeFileSync(stored, bytes);
    const out = path.join(work, 'bad.bin');
    const e = await c.pullBlob('models/bad', b.digest, out).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AirlockError);
    expect((e as AirlockError).code).toBe('HASH_MISMATCH');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(work).filter((f) => f.includes('bad.bin'))).toEqual([]);
  });
});

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Header } from 'tar';

/**
 * Model media as it arrives on a stick, for tests: an OCI image layout and a ModelKit tarball
 * (KitOps: a tar of the ModelKit's OCI layout, its config the Kitfile, each layer a tar of files).
 */

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

export type TarEntry = { path: string; type?: string; body?: Buffer; linkpath?: string };

/** A tar archive built block by block (so tests can also write hostile entries). */
export function tarOf(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const file = !e.type || e.type === 'File';
    const h = new Header({ path: e.path, type: (e.type ?? 'File') as 'File', size: file ? body.length : 0, mode: 0o644, mtime: new Date(0), ...(e.linkpath ? { linkpath: e.linkpath } : {}) });
    const block = Buffer.alloc(512);
    h.encode(block);
    parts.push(block);
    if (file && body.length) parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Writes an OCI image layout with one manifest over `layers` into `root`; returns the manifest. */
export function writeOciLayout(root: string, layers: { title?: string; body: Buffer; mediaType?: string }[], o: { config?: Buffer; configType?: string } = {}) {
  fs.mkdirSync(path.join(root, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    fs.writeFileSync(path.join(root, 'blobs', 'sha256', d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const config = o.config ?? Buffer.from('{}');
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: o.configType ?? 'application/vnd.oci.empty.v1+json', ...put(config) },
    layers: layers.map((l) => ({ mediaType: l.mediaType ?? 'application/octet-stream', ...put(l.body), ...(l.title ? { annotations: { 'org.opencontainers.image.title': l.title } } : {}) })),
  };
  const m = put(Buffer.from(JSON.stringify(manifest)));
  fs.writeFileSync(path.join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(root, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }] }));
  return manifest;
}

/** Every file of a directory as tar entries, in name order. */
export function tarDir(root: string): Buffer {
  const entries: TarEntry[] = [];
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      if (fs.statSync(path.join(root, p)).isDirectory()) walk(p);
      else entries.push({ path: p, body: fs.readFileSync(path.join(root, p)) });
    }
  };
  walk('');
  return tarOf(entries);
}

/** A ModelKit tarball at `file`: one layer per `{ kind, files }` (model, dataset, code, docs, prompts). */
export function writeModelKit(file: string, work: string, layers: { kind: string; files: Record<string, Buffer> }[], kitfile: Record<string, unknown> = { manifestVersion: '1.0.0', package: { name: 'kit' } }) {
  const root = fs.mkdtempSync(path.join(work, 'kit-layout-'));
  writeOciLayout(
    root,
    layers.map((l) => ({ body: tarOf(Object.entries(l.files).map(([p, body]) => ({ path: p, body }))), mediaType: `application/vnd.kitops.modelkit.${l.kind}.v1.tar` })),
    { config: Buffer.from(JSON.stringify(kitfile)), configType: 'application/vnd.kitops.modelkit.config.v1+json' },
  );
  fs.writeFileSync(file, tarDir(root));
  fs.rmSync(root, { recursive: true, force: true });
}

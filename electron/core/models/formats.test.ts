/**
 * The media readers with hostile inputs: OCI layouts with bad digests, sizes, strays, symlinks and
 * traversing titles; ModelKit tarballs with traversal names, links, devices, duplicates, a
 * truncated archive, too many entries, zstd layers and a config that is not a Kitfile.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Header } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { hashTree } from './catalog';
import { KITOPS_CONFIG, MAX_ENTRIES, openOciLayout, readModelKit, readOciLayout, resolveMediaPath, safeRelPath } from './formats';

let dir: string;
beforeEach(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-formats-')));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof AirlockError ? `${e.code}: ${e.message}` : `thrown: ${String(e)}`));

type TarEntry = { path: string; type?: string; body?: Buffer; linkpath?: string };
/** A tar archive built block by block, so hostile entries (links, '..', devices) can be written. */
function tarOf(entries: TarEntry[], o: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? Buffer.alloc(0);
    const h = new Header({ path: e.path, type: (e.type ?? 'File') as 'File', size: e.type && e.type !== 'File' ? 0 : body.length, mode: 0o644, mtime: new Date(0), ...(e.linkpath ? { linkpath: e.linkpath } : {}) });
    const block = Buffer.alloc(512);
    h.encode(block);
    parts.push(block);
    if (body.length && (!e.type || e.type === 'File')) parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (o.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** An OCI layout in `root`: one manifest over `layers`, config `config`. Returns the blob paths by digest. */
function layout(root: string, layers: { title?: string; body: Buffer; mediaType?: string }[], o: { config?: Buffer; configType?: string } = {}) {
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
    annotations: { 'org.opencontainers.image.title': 'triage' },
  };
  const m = put(Buffer.from(JSON.stringify(manifest)));
  fs.writeFileSync(path.join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(root, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }] }));
  return manifest;
}

/** A layout directory as the tar a ModelKit is carried in. */
function tarDir(root: string): Buffer {
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

const KITFILE = Buffer.from(JSON.stringify({ manifestVersion: '1.0.0', package: { name: 'triage', description: 'Triage notes', license: 'Apache-2.0', authors: ['ML team'] } }));

function modelKit(name: string, layers: { kind: string; tar: Buffer; gzip?: boolean; zstd?: boolean }[], o: { configType?: string } = {}): string {
  const root = path.join(dir, `${name}-layout`);
  layout(
    root,
    layers.map((l) => ({ body: l.gzip ? zlib.gzipSync(l.tar) : l.tar, mediaType: `application/vnd.kitops.modelkit.${l.kind}.v1.tar${l.gzip ? '+gzip' : l.zstd ? '+zstd' : ''}` })),
    { config: KITFILE, configType: o.configType ?? KITOPS_CONFIG },
  );
  const file = path.join(dir, `${name}.tar`);
  fs.writeFileSync(file, tarDir(root));
  return file;
}

async function readKit(file: string, o: { maxInflateRatio?: number; inflateFloorBytes?: number } = {}) {
  const work = fs.mkdtempSync(path.join(dir, 'work-'));
  const out = fs.mkdtempSync(path.join(dir, 'out-'));
  const r = await readModelKit(file, work, out, undefined, o);
  return { ...r, out, tree: await hashTree(out) };
}

describe('OCI image layouts', () => {
  it('reads layers as files by their title, each hashed', async () => {
    const w = crypto.randomBytes(70_000);
    const root = path.join(dir, 'oci');
    layout(root, [{ title: 'weights/model.safetensors', body: w }, { title: 'config.json', body: Buffer.from('{"a":1}') }]);
    const out = fs.mkdtempSync(path.join(dir, 'out-'));
    expect(await readOciLayout(root, out)).toMatchObject({ files: 2, annotations: { 'org.opencontainers.image.title': 'triage' } });
    expect(await hashTree(out)).toEqual([
      { path: 'config.json', size: 7, sha256: sha(Buffer.from('{"a":1}')) },
      { path: 'weights/model.safetensors', size: w.length, sha256: sha(w) },
    ]);
  });

  it('refuses a blob that does not hash to its name, even one no manifest uses', async () => {
    const root = path.join(dir, 'bad');
    layout(root, [{ title: 'w.bin', body: Buffer.from('weights') }]);
    fs.writeFileSync(path.join(root, 'blobs', 'sha256', 'f'.repeat(64)), 'not f');
    expect(await code(openOciLayout(root))).toMatch(/^HASH_MISMATCH: The blob blobs\/sha256\/f{64} does not hash/);
    const root2 = path.join(dir, 'bad2');
    const m = layout(root2, [{ title: 'w.bin', body: Buffer.from('weights') }]);
    fs.writeFileSync(path.join(root2, 'blobs', 'sha256', m.layers[0]!.digest.slice(7)), 'weightz');
    expect(await code(openOciLayout(root2))).toMatch(/^HASH_MISMATCH/);
  });

  it('refuses a descriptor whose size is not the blob, a missing blob, strays, symlinks and more than one manifest', async () => {
    const a = path.join(dir, 'size');
    const m = layout(a, [{ title: 'w.bin', body: Buffer.from('weights') }]);
    // A manifest that lies about a layer's size (rewritten, so its own digest is right).
    const lie = Buffer.from(JSON.stringify({ ...m, layers: [{ ...m.layers[0]!, size: 3 }] }));
    fs.writeFileSync(path.join(a, 'blobs', 'sha256', sha(lie)), lie);
    fs.writeFileSync(path.join(a, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(lie)}`, size: lie.length }] }));
    expect(await code(openOciLayout(a))).toMatch(/^HASH_MISMATCH: The layer sha256:\w+ is 7 bytes, its descriptor says 3/);

    const b = path.join(dir, 'missing');
    const mb = layout(b, [{ title: 'w.bin', body: Buffer.from('weights') }]);
    fs.rmSync(path.join(b, 'blobs', 'sha256', mb.layers[0]!.digest.slice(7)));
    expect(await code(openOciLayout(b))).toMatch(/^INVALID_INPUT: The layer sha256:\w+ is not in blobs/);

    const c = path.join(dir, 'stray');
    layout(c, [{ title: 'w.bin', body: Buffer.from('weights') }]);
    fs.writeFileSync(path.join(c, 'README'), 'hi');
    expect(await code(openOciLayout(c))).toMatch(/README does not belong in an OCI image layout/);

    const d = path.join(dir, 'link');
    const md = layout(d, [{ title: 'w.bin', body: Buffer.from('weights') }]);
    const blob = path.join(d, 'blobs', 'sha256', md.layers[0]!.digest.slice(7));
    fs.rmSync(blob);
    fs.symlinkSync('/etc/passwd', blob);
    expect(await code(openOciLayout(d))).toMatch(/is a symbolic link/);

    const e = path.join(dir, 'two');
    layout(e, [{ title: 'w.bin', body: Buffer.from('weights') }]);
    const idx = JSON.parse(fs.readFileSync(path.join(e, 'index.json'), 'utf8')) as { manifests: unknown[] };
    fs.writeFileSync(path.join(e, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [idx.manifests[0], idx.manifests[0]] }));
    expect(await code(openOciLayout(e))).toMatch(/names 2 manifests/);
  });

  it('refuses titles that leave the tree, are missing, or collide', async () => {
    for (const [title, re] of [
      ['../../etc/cron.d/x', /not a safe relative path/],
      ['/etc/passwd', /not a safe relative path/],
      ['a/./b', /not a safe relative path/],
      ['a\\b', /not a safe relative path/],
      ['a\nb', /not a safe relative path/],
      [undefined, /has no org.opencontainers.image.title/],
    ] as const) {
      const root = fs.mkdtempSync(path.join(dir, 't-'));
      layout(root, [{ ...(title ? { title } : {}), body: Buffer.from(`w${String(title)}`) }]);
      const out = fs.mkdtempSync(path.join(dir, 'out-'));
      expect(await code(readOciLayout(root, out)), String(title)).toMatch(re);
      expect(fs.readdirSync(out)).toEqual([]);
    }
    const root = path.join(dir, 'dup');
    layout(root, [{ title: 'a', body: Buffer.from('1') }, { title: 'a/b', body: Buffer.from('2') }]);
    expect(await code(readOciLayout(root, fs.mkdtempSync(path.join(dir, 'out-'))))).toMatch(/Two layers are titled/);
  });
});

describe('ModelKit tarballs', () => {
  it('reads the Kitfile and every file of every layer (tar and tar+gzip)', async () => {
    const w = crypto.randomBytes(40_000);
    const file = modelKit('kit', [
      { kind: 'model', tar: tarOf([{ path: 'models', type: 'Directory' }, { path: 'models/triage.safetensors', body: w }]) },
      { kind: 'dataset', tar: tarOf([{ path: 'data/eval.csv', body: Buffer.from('a,b\n') }]), gzip: true },
      { kind: 'docs', tar: tarOf([{ path: 'README.md', body: Buffer.from('# triage') }]) },
    ]);
    const r = await readKit(file);
    expect(r.kitfile).toEqual({ name: 'triage', description: 'Triage notes', license: 'Apache-2.0', authors: ['ML team'] });
    expect(r.tree.map((f) => [f.path, f.size, f.sha256])).toEqual([
      ['README.md', 8, sha(Buffer.from('# triage'))],
      ['data/eval.csv', 4, sha(Buffer.from('a,b\n'))],
      ['models/triage.safetensors', w.length, sha(w)],
    ]);
  });

  it('refuses traversal names, links, devices and duplicates inside a layer, writing nothing outside', async () => {
    const cases: [TarEntry[], RegExp][] = [
      [[{ path: '../escape.txt', body: Buffer.from('x') }], /not a safe relative path/],
      [[{ path: '/tmp/abs.txt', body: Buffer.from('x') }], /not a safe relative path/],
      [[{ path: 'ok/../../escape', body: Buffer.from('x') }], /not a safe relative path/],
      [[{ path: 'w.bin', type: 'SymbolicLink', linkpath: '/etc/shadow' }], /is a link/],
      [[{ path: 'w.bin', type: 'Link', linkpath: 'other' }], /is a link/],
      [[{ path: 'tty', type: 'CharacterDevice' }], /CharacterDevice entry/],
      [[{ path: 'fifo', type: 'FIFO' }], /FIFO entry/],
      [[{ path: 'w.bin', body: Buffer.from('1') }, { path: 'w.bin', body: Buffer.from('2') }], /appears twice/],
      [[{ path: 'w.bin', body: Buffer.from('1') }, { path: 'w.bin/inner', body: Buffer.from('2') }], /appears twice \(or inside a file of the same name\)/],
    ];
    for (const [entries, re] of cases) {
      const file = modelKit(`k${crypto.randomBytes(3).toString('hex')}`, [{ kind: 'model', tar: tarOf(entries) }]);
      expect(await code(readKit(file)), entries[0]!.path).toMatch(re);
    }
    expect(fs.existsSync(path.join(dir, 'escape.txt'))).toBe(false);
    expect(fs.existsSync('/tmp/abs.txt')).toBe(false);
  });

  it('refuses hostile outer archives: traversal, a link, a truncated tar, too many entries', async () => {
    const write = (name: string, b: Buffer) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, b);
      return f;
    };
    expect(await code(readKit(write('o1.tar', tarOf([{ path: '../../oci-layout', body: Buffer.from('{}') }]))))).toMatch(/not a safe relative path/);
    expect(await code(readKit(write('o2.tar', tarOf([{ path: 'index.json', type: 'SymbolicLink', linkpath: '/etc/passwd' }]))))).toMatch(/is a link/);
    const good = fs.readFileSync(modelKit('whole', [{ kind: 'model', tar: tarOf([{ path: 'w.bin', body: crypto.randomBytes(5000) }]) }]));
    // Cut inside the last entry's body: the archive ends before the entry does.
    const cut = write('cut.tar', good.subarray(0, good.length - 1024 - 700));
    expect(await code(readKit(cut))).toMatch(/^INVALID_INPUT: The ModelKit cut.tar is truncated/);
    expect(await code(readKit(write("cut2.tar", good.subarray(0, 1000))))).toMatch(/^INVALID_INPUT: The ModelKit cut2.tar (is truncated|is not a valid tar archive \(TAR_BAD_ARCHIVE: Truncated)/);
    const many = Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => ({ path: `d${i}`, type: 'Directory' }));
    expect(await code(readKit(write('many.tar', tarOf(many))))).toMatch(new RegExp(`more than ${MAX_ENTRIES} entries`));
  }, 60_000);

  it('refuses a gzip layer that inflates far past its size (a decompression bomb)', async () => {
    const bomb = tarOf([{ path: 'zeros.bin', body: Buffer.alloc(8 * 1024 * 1024) }]);
    const file = modelKit('bomb', [{ kind: 'model', tar: bomb, gzip: true }]);
    expect(await code(readKit(file, { maxInflateRatio: 64, inflateFloorBytes: 1024 * 1024 }))).toMatch(/^INVALID_INPUT: The ModelKit model layer inflates to more than \d+ bytes/);
    // The same layer within the default bound is read.
    expect((await readKit(file)).tree.map((f) => f.size)).toEqual([8 * 1024 * 1024]);
  });

  it('refuses a truncated layer, a zstd layer, a layer that is not a ModelKit type and a config that is not a Kitfile', async () => {
    const inner = tarOf([{ path: 'w.bin', body: crypto.randomBytes(3000) }]);
    const truncated = modelKit('trunc', [{ kind: 'model', tar: inner.subarray(0, 1536) }]);
    expect(await code(readKit(truncated))).toMatch(/^INVALID_INPUT: The ModelKit model layer is not a valid tar archive/);
    expect(await code(readKit(modelKit('zstd', [{ kind: 'model', tar: inner, zstd: true }])))).toMatch(/zstd-compressed/);
    expect(await code(readKit(modelKit('img', [{ kind: 'model', tar: inner }], { configType: 'application/vnd.oci.image.config.v1+json' })))).toMatch(/not a Kitfile/);
    const root = path.join(dir, 'odd-layout');
    layout(root, [{ body: inner, mediaType: 'application/vnd.oci.image.layer.v1.tar' }], { config: KITFILE, configType: KITOPS_CONFIG });
    const odd = path.join(dir, 'odd.tar');
    fs.writeFileSync(odd, tarDir(root));
    expect(await code(readKit(odd))).toMatch(/which is not a ModelKit layer/);
  });
});

describe('media paths', () => {
  it('accepts paths under a media root only, and refuses a link named as the path', async () => {
    const root = path.join(dir, 'media');
    fs.mkdirSync(path.join(root, 'usb'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usb', 'kit.tar'), 'x');
    expect(await resolveMediaPath(path.join(root, 'usb'), [root], 'directory')).toBe(path.join(root, 'usb'));
    expect(await resolveMediaPath(path.join(root, 'usb', 'kit.tar'), [root], 'file')).toBe(path.join(root, 'usb', 'kit.tar'));
    expect(await code(resolveMediaPath(path.join(root, 'usb', 'kit.tar'), [root], 'directory'))).toMatch(/^INVALID_INPUT/);
    expect(await code(resolveMediaPath(dir, [root], 'directory'))).toMatch(/^FORBIDDEN: .* is not under a media root/);
    expect(await code(resolveMediaPath(path.join(root, 'usb', '..', '..'), [root], 'directory'))).toMatch(/^FORBIDDEN/);
    fs.symlinkSync(path.join(root, 'usb'), path.join(root, 'link'));
    expect(await code(resolveMediaPath(path.join(root, 'link'), [root], 'directory'))).toMatch(/symbolic link/);
    fs.symlinkSync('/etc', path.join(root, 'out'));
    expect(await code(resolveMediaPath(path.join(root, 'out'), [root], 'directory'))).toMatch(/^FORBIDDEN/);
    expect(await code(resolveMediaPath(path.join(root, 'nothing'), [root], 'directory'))).toMatch(/^NOT_FOUND/);
  });

  it('safeRelPath normalises ./ prefixes and trailing slashes only', () => {
    expect(safeRelPath('./a/b/', 'x')).toBe('a/b');
    expect(() => safeRelPath('', 'x')).toThrow(/not a safe relative path/);
  });
});

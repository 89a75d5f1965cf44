import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/db';
import { compareDebVersions, OfflineStore, parseSums } from './store';

const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

/** A real .deb built with dpkg-deb. */
function buildDeb(dir: string, name: string, version: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'deb-'));
  fs.mkdirSync(path.join(root, 'DEBIAN'));
  fs.mkdirSync(path.join(root, 'usr/share', name), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/share', name, 'hello.txt'), `hello from ${name} ${version}\n`);
  fs.writeFileSync(path.join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Airlock Test <t@example.invalid>\nDescription: test package\n`);
  const file = path.join(dir, `${name}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, file], { stdio: 'ignore' });
  fs.rmSync(root, { recursive: true, force: true });
  return file;
}

function writeSums(dir: string, files: string[]) {
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), files.map((f) => `${sha(fs.readFileSync(path.join(dir, f)))}  ${f}\n`).join(''));
}

describe('offline store', () => {
  let tmp: string;
  let media: string;
  let store: OfflineStore;
  let db: ReturnType<typeof openDatabase>;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-store-'));
    media = path.join(tmp, 'media');
    fs.mkdirSync(media);
    db = openDatabase(path.join(tmp, 'a.db'));
    store = new OfflineStore({ db, dataDir: tmp, mediaRoots: [media], now: () => '2026-11-25T00:00:00.000Z' });
  });
  afterEach(() => {
    db.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('imports .deb files checked against SHA256SUMS, content-addressed, and picks the newest version', async () => {
    const usb = path.join(media, 'usb1');
    fs.mkdirSync(usb);
    buildDeb(usb, 'airlock-node-tools', '1.0');
    buildDeb(usb, 'airlock-node-tools', '1.0~rc1');
    writeSums(usb, fs.readdirSync(usb));
    const r = await store.importDebs(usb, 'alice');
    expect(r.imported.map((d) => d.version).sort()).toEqual(['1.0', '1.0~rc1']);
    expect(store.deb('airlock-node-tools', 'amd64').version).toBe('1.0'); // ~ sorts before the release
    const d = store.deb('airlock-node-tools', 'amd64', '1.0');
    expect(sha(fs.readFileSync(store.objectPath(d.sha256)))).toBe(d.sha256);
    // Importing the same media again changes nothing.
    expect(await store.importDebs(usb, 'alice')).toEqual({ imported: [], already: 2 });
  });

  it('refuses a file whose digest differs from SHA256SUMS and keeps nothing', async () => {
    const usb = path.join(media, 'bad');
    fs.mkdirSync(usb);
    const f = buildDeb(usb, 'airlock-node-tools', '2.0');
    writeSums(usb, [path.basename(f)]);
    fs.appendFileSync(f, 'tampered');
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/SHA-256 is .* but SHA256SUMS says/);
    expect(store.listDebs()).toEqual([]);
    expect(fs.readdirSync(store.objectsDir)).toEqual([]);
  });

  it('refuses unlisted files, files that are not packages, and directories outside the media roots', async () => {
    const usb = path.join(media, 'odd');
    fs.mkdirSync(usb);
    buildDeb(usb, 'one', '1');
    fs.writeFileSync(path.join(usb, 'SHA256SUMS'), '');
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/Not listed in SHA256SUMS/);
    fs.writeFileSync(path.join(usb, 'fake_1_all.deb'), 'not an ar archive at all........................................................................');
    writeSums(usb, fs.readdirSync(usb).filter((f) => f.endsWith('.deb')));
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/not a Debian package/);
    await expect(store.importDebs(tmp, 'alice')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // A symlink inside the media root pointing out of it is resolved and refused too.
    fs.symlinkSync(tmp, path.join(media, 'escape'));
    await expect(store.importDebs(path.join(media, 'escape'), 'alice')).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('imports a model version with subdirectories; versions are immutable', async () => {
    const m = path.join(media, 'model');
    fs.mkdirSync(path.join(m, 'tokenizer'), { recursive: true });
    fs.writeFileSync(path.join(m, 'model.safetensors'), crypto.randomBytes(100_000));
    fs.writeFileSync(path.join(m, 'tokenizer/tokenizer.json'), '{"v":1}');
    writeSums(m, ['model.safetensors', 'tokenizer/tokenizer.json']);
    const r = await store.importModel(m, 'tiny', '1', 'alice');
    expect(r.files.map((f) => f.path)).toEqual(['model.safetensors', 'tokenizer/tokenizer.json']);
    expect(r.size).toBe(100_000 + 7);
    await expect(store.importModel(m, 'tiny', '1', 'alice')).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('parses sha256sum output strictly', () => {
    const h = 'a'.repeat(64);
    expect([...parseSums(`${h}  x.deb\n${h} *./sub/y.bin\n`)]).toEqual([
      ['x.deb', h],
      ['sub/y.bin', h],
    ]);
    expect(() => parseSums(`${h}  ../etc/passwd\n`)).toThrow(/outside/);
    expect(() => parseSums(`${h}  /etc/passwd\n`)).toThrow(/outside/);
    expect(() => parseSums('nonsense\n')).toThrow(/line 1/);
    expect(() => parseSums(`${h}  a\n${h}  a\n`)).toThrow(/twice/);
  });

  it('orders Debian versions like dpkg', () => {
    const cases: Array<[string, string, number]> = [
      ['1.0', '1.0~rc1', 1],
      ['1:0.9', '2.0', 1],
      ['1.0-2', '1.0-10', -1],
      ['1.0a', '1.0', 1],
      ['1.10', '1.9', 1],
      ['2.0', '2.0', 0],
    ];
    for (const [a, b, s] of cases) {
      expect(Math.sign(compareDebVersions(a, b)), `${a} vs ${b}`).toBe(s);
      const dpkg = (op: string) => {
        try {
          execFileSync('dpkg', ['--compare-versions', a, op, b]);
          return true;
        } catch {
          return false;
        }
      };
      expect(dpkg(s > 0 ? 'gt' : s < 0 ? 'lt' : 'eq'), `dpkg agrees on ${a} vs ${b}`).toBe(true);
    }
  });
});

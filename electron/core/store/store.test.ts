import crypto from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/db';
import { listMedia, openMediaFile } from './media';
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

/**
 * Hostile removable media (issue 9, point 7), built for real in temp dirs: symlinks to /dev/zero
 * and out of the media, FIFOs, a huge sparse SHA256SUMS, unlisted files, files swapped after
 * listing, and an import cancelled mid-copy. Real filesystem, real SQLite.
 */
describe('hostile removable media', () => {
  let tmp: string;
  let media: string;
  let outside: string;
  let store: OfflineStore;
  let db: ReturnType<typeof openDatabase>;
  const children: ChildProcess[] = [];
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-hostile-'));
    media = path.join(tmp, 'media');
    outside = path.join(tmp, 'outside');
    fs.mkdirSync(media);
    fs.mkdirSync(outside);
    db = openDatabase(path.join(tmp, 'a.db'));
    store = new OfflineStore({ db, dataDir: tmp, mediaRoots: [media], now: () => '2026-11-25T00:00:00.000Z' });
  });
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    db.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const stick = (name: string) => {
    const d = path.join(media, name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };
  /** Nothing in the store: no object, no temporary file, no row. */
  const storeIsEmpty = () => {
    expect(fs.existsSync(store.objectsDir) ? fs.readdirSync(store.objectsDir) : []).toEqual([]);
    expect(store.listDebs()).toEqual([]);
    expect(store.listModels()).toEqual([]);
  };
  const rss = () => process.memoryUsage().rss;
  /**
   * A writer blocked opening the FIFO until a reader opens it: if the import ever opened the FIFO,
   * the writer would finish (and a blocking reader would get EOF instead of hanging the test).
   */
  const fifoWriter = (fifo: string, text: string) => {
    const c = spawn('/bin/sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', text, fifo], { stdio: 'ignore' });
    children.push(c);
    let done = false;
    c.on('exit', () => (done = true));
    return { finished: () => done };
  };
  /** How many event-loop turns happen while `p` is pending (a synchronous import allows none). */
  async function turnsWhilePending<T>(start: () => Promise<T>): Promise<{ turns: number; result: PromiseSettledResult<T> }> {
    let turns = 0;
    let settled = false;
    const spin = () => {
      if (settled) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const [result] = await Promise.allSettled([start()]);
    settled = true;
    return { turns, result: result! };
  }

  it('a SHA256SUMS that is a symlink to /dev/zero is refused, naming it, and memory stays flat', async () => {
    const usb = stick('zero');
    buildDeb(usb, 'tool', '1');
    fs.symlinkSync('/dev/zero', path.join(usb, 'SHA256SUMS'));
    const before = rss();
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/SHA256SUMS is a symbolic link/);
    await expect(store.importModel(usb, 'm', '1', 'alice')).rejects.toThrow(/SHA256SUMS is a symbolic link/);
    // Today's code read /dev/zero to the end: the process grew by gigabytes.
    expect(rss() - before).toBeLessThan(64 * 1024 * 1024);
    storeIsEmpty();
  });

  it('a huge sparse SHA256SUMS is refused by its size, without reading it', async () => {
    const usb = stick('sparse');
    buildDeb(usb, 'tool', '1');
    fs.writeFileSync(path.join(usb, 'SHA256SUMS'), '');
    fs.truncateSync(path.join(usb, 'SHA256SUMS'), 16 * 1024 * 1024 * 1024);
    const before = rss();
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/SHA256SUMS is 17179869184 bytes; at most 1048576 are accepted/);
    expect(rss() - before).toBeLessThan(64 * 1024 * 1024);
    // Just over the bound is refused too (4 MiB was accepted before).
    fs.truncateSync(path.join(usb, 'SHA256SUMS'), 1024 * 1024 + 1);
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/at most 1048576/);
    storeIsEmpty();
  });

  it('a FIFO named SHA256SUMS is refused without being opened, and the event loop keeps turning', async () => {
    const usb = stick('fifo-sums');
    buildDeb(usb, 'tool', '1');
    execFileSync('mkfifo', [path.join(usb, 'SHA256SUMS')]);
    const writer = fifoWriter(path.join(usb, 'SHA256SUMS'), 'garbage\n');
    const { turns, result } = await turnsWhilePending(() => store.importDebs(usb, 'alice'));
    expect(result.status).toBe('rejected');
    expect(String((result as PromiseRejectedResult).reason)).toMatch(/SHA256SUMS is not a regular file \(a FIFO, socket or device\)/);
    // Today's readFileSync blocked the whole process inside the call: not one turn of the loop.
    expect(turns).toBeGreaterThan(0);
    expect(writer.finished()).toBe(false);
    storeIsEmpty();
  });

  it('a FIFO named like a package is refused without being opened, and the event loop keeps turning', async () => {
    for (const name of ['tool_1_all.deb', 'x.deb']) {
      const usb = stick(`fifo-deb-${name}`);
      const fifo = path.join(usb, name);
      execFileSync('mkfifo', [fifo]);
      fs.writeFileSync(path.join(usb, 'SHA256SUMS'), `${sha('')}  ${name}\n`);
      const writer = fifoWriter(fifo, '!<arch>\ndebian-binary   ');
      for (const run of [(): Promise<unknown> => store.importDebs(usb, 'alice'), (): Promise<unknown> => store.importModel(usb, 'm', '1', 'alice')]) {
        const { turns, result } = await turnsWhilePending(run);
        expect(result.status).toBe('rejected');
        expect(String((result as PromiseRejectedResult).reason)).toContain(`${name} is not a regular file (a FIFO, socket or device)`);
        expect(turns).toBeGreaterThan(0);
      }
      expect(writer.finished()).toBe(false);
    }
    storeIsEmpty();
  });

  it('a .deb that is a symlink to a package outside the media is refused, naming it', async () => {
    const usb = stick('link');
    const real = buildDeb(outside, 'tool', '1');
    fs.symlinkSync(real, path.join(usb, 'tool_1_all.deb'));
    fs.writeFileSync(path.join(usb, 'SHA256SUMS'), `${sha(fs.readFileSync(real))}  tool_1_all.deb\n`);
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/tool_1_all\.deb is a symbolic link: media must hold only regular files and directories/);
    // A link that stays inside the media directory is refused as well: no link is followed.
    fs.rmSync(path.join(usb, 'tool_1_all.deb'));
    buildDeb(usb, 'tool', '1');
    fs.renameSync(path.join(usb, 'tool_1_all.deb'), path.join(usb, 'real.bin'));
    fs.symlinkSync('real.bin', path.join(usb, 'tool_1_all.deb'));
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/tool_1_all\.deb is a symbolic link/);
    storeIsEmpty();
  });

  it('a symlinked subdirectory is refused, whether it escapes the media or not', async () => {
    const m = stick('model-link');
    fs.writeFileSync(path.join(m, 'config.json'), '{}');
    fs.mkdirSync(path.join(outside, 'weights'));
    fs.writeFileSync(path.join(outside, 'weights', 'w.bin'), 'secret');
    fs.symlinkSync(path.join(outside, 'weights'), path.join(m, 'weights'));
    fs.writeFileSync(path.join(m, 'SHA256SUMS'), `${sha('{}')}  config.json\n${sha('secret')}  weights/w.bin\n`);
    await expect(store.importModel(m, 'm', '1', 'alice')).rejects.toThrow(/weights is a symbolic link/);
    fs.rmSync(path.join(m, 'weights'));
    fs.mkdirSync(path.join(m, 'real'));
    fs.writeFileSync(path.join(m, 'real', 'w.bin'), 'secret');
    fs.symlinkSync('real', path.join(m, 'weights'));
    await expect(store.importModel(m, 'm', '1', 'alice')).rejects.toThrow(/weights is a symbolic link/);
    storeIsEmpty();
  });

  it('a file on the media that SHA256SUMS does not list refuses the import, naming it; so does a listed file that is missing', async () => {
    const m = stick('model-extra');
    fs.writeFileSync(path.join(m, 'model-00001-of-00002.safetensors'), 'one');
    fs.mkdirSync(path.join(m, 'shards'));
    fs.writeFileSync(path.join(m, 'shards', 'model-00002-of-00002.safetensors'), 'two');
    fs.writeFileSync(path.join(m, 'SHA256SUMS'), `${sha('one')}  model-00001-of-00002.safetensors\n`);
    // A detached signature of SHA256SUMS need not be listed.
    fs.writeFileSync(path.join(m, 'SHA256SUMS.asc'), '-----BEGIN PGP SIGNATURE-----\n');
    await expect(store.importModel(m, 'm', '1', 'alice')).rejects.toThrow(/Not listed in SHA256SUMS: shards\/model-00002-of-00002\.safetensors\. Every file on the media must be listed/);
    fs.appendFileSync(path.join(m, 'SHA256SUMS'), `${sha('two')}  shards/model-00002-of-00002.safetensors\n${sha('three')}  tokenizer.json\n`);
    await expect(store.importModel(m, 'm', '1', 'alice')).rejects.toThrow(/Listed in SHA256SUMS but not on the media: tokenizer\.json/);
    storeIsEmpty();
    fs.writeFileSync(path.join(m, 'tokenizer.json'), 'three');
    expect((await store.importModel(m, 'm', '1', 'alice')).files.map((f) => f.path)).toEqual([
      'model-00001-of-00002.safetensors',
      'shards/model-00002-of-00002.safetensors',
      'tokenizer.json',
    ]);

    // Packages: an unlisted README is refused too, and so is a listed file that is not a package.
    const usb = stick('debs-extra');
    const deb = buildDeb(usb, 'tool', '1');
    fs.writeFileSync(path.join(usb, 'README'), 'hello');
    writeSums(usb, [path.basename(deb)]);
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/Not listed in SHA256SUMS: README/);
    writeSums(usb, [path.basename(deb), 'README']);
    await expect(store.importDebs(usb, 'alice')).rejects.toThrow(/README is not named package_version_arch\.deb/);
    expect(store.listDebs()).toEqual([]);
  });

  it('names from the media are quoted harmlessly in errors', async () => {
    const m = stick('names');
    fs.writeFileSync(path.join(m, 'SHA256SUMS'), '');
    fs.writeFileSync(path.join(m, 'evil\u001b]0;pwned\u0007\nname'), 'x');
    const err = await store.importModel(m, 'm', '1', 'alice').catch((e: Error) => e);
    expect(String(err)).toContain('"evil\\u{1b}]0;pwned\\u{7}\\u{a}name"');
    expect(String(err)).not.toMatch(/[\u0000-\u001f]/);
  });

  it('a file or a directory swapped after listing is refused on the opened descriptor', async () => {
    const m = stick('swap');
    fs.mkdirSync(path.join(m, 'sub'));
    fs.writeFileSync(path.join(m, 'w.bin'), 'weights');
    fs.writeFileSync(path.join(m, 'sub', 'x.bin'), 'x');
    const root = fs.realpathSync(m);
    const listed = await listMedia(root);
    const w = listed.find((f) => f.rel === 'w.bin')!;
    const x = listed.find((f) => f.rel === 'sub/x.bin')!;
    // The file replaced by a symlink: O_NOFOLLOW refuses to open it.
    fs.renameSync(path.join(m, 'w.bin'), path.join(outside, 'w.bin'));
    fs.symlinkSync(path.join(outside, 'w.bin'), path.join(m, 'w.bin'));
    await expect(openMediaFile(root, w)).rejects.toThrow(/w\.bin became a symbolic link while being imported/);
    // The file replaced by another regular file: not the inode that was listed.
    fs.rmSync(path.join(m, 'w.bin'));
    fs.writeFileSync(path.join(m, 'w.bin'), 'other');
    await expect(openMediaFile(root, w)).rejects.toThrow(/w\.bin was replaced while being imported/);
    // The parent directory moved off the media and replaced by a link to it: same inode, but the
    // descriptor's own path (/proc/self/fd) shows where it really was opened.
    fs.renameSync(path.join(m, 'sub'), path.join(outside, 'sub'));
    fs.symlinkSync(path.join(outside, 'sub'), path.join(m, 'sub'));
    await expect(openMediaFile(root, x)).rejects.toThrow(/sub\/x\.bin was opened outside the media directory/);
  });

  it('an import cancelled while it copies a big file stops, and leaves nothing in the store', async () => {
    const m = stick('big');
    const size = 320 * 1024 * 1024;
    const big = path.join(m, 'weights.bin');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, size); // sparse: zeros, with its real digest listed
    fs.writeFileSync(path.join(m, 'SHA256SUMS'), `${zerosDigest(size)}  weights.bin\n`);
    const ctl = new AbortController();
    const p = store.importModel(m, 'big', '1', 'alice', ctl.signal);
    let settled = false;
    void p.catch(() => {}).finally(() => (settled = true));
    // Wait until the copy is under way (its temporary object exists), then cancel.
    while (!(fs.existsSync(store.objectsDir) && fs.readdirSync(store.objectsDir).some((f) => f.startsWith('.import-')))) {
      await new Promise((r) => setTimeout(r, 5));
    }
    // The store answers other calls meanwhile.
    expect(store.listModels()).toEqual([]);
    expect(settled).toBe(false);
    ctl.abort();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
    storeIsEmpty();
  });

  it('temporary objects left by a killed import process are removed by the next import', async () => {
    const m = stick('after-kill');
    fs.writeFileSync(path.join(m, 'a.bin'), 'a');
    fs.writeFileSync(path.join(m, 'SHA256SUMS'), `${sha('a')}  a.bin\n`);
    fs.mkdirSync(store.objectsDir, { recursive: true });
    // A pid that cannot be running (above the kernel's pid_max).
    fs.writeFileSync(path.join(store.objectsDir, '.import-99999999-0123456789ab'), 'half');
    await store.importModel(m, 'm', '1', 'alice');
    expect(fs.readdirSync(store.objectsDir)).toEqual([sha('a')]);
  });
});

/** SHA-256 of `size` zero bytes, hashed in pieces. */
function zerosDigest(size: number): string {
  const h = crypto.createHash('sha256');
  const z = Buffer.alloc(8 << 20);
  for (let left = size; left > 0; left -= z.length) h.update(left >= z.length ? z : z.subarray(0, left));
  return h.digest('hex');
}

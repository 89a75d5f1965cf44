/**
 * Attack test: hostile removable media (issue 9, point 7) through the real core and the real
 * `airlock` CLI (a second process): a FIFO named SHA256SUMS (which froze the whole console: the
 * read was synchronous and never returned), and a big import cancelled through the channel
 * (ops:cancel), by the client going away, and by Ctrl-C in the CLI, leaving nothing in the store.
 * The unit tests beside the store (electron/core/store/store.test.ts) cover the other
 * hostile shapes (symlinks to /dev/zero and out of the media, sparse files, unlisted files, swaps).
 */
import crypto from 'node:crypto';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, testCore, type TestCore } from '../support/core';

const root = path.resolve(__dirname, '../..');
const SIZE = 320 * 1024 * 1024;
let media: string;
let bigDir: string;
const children: ChildProcess[] = [];

/** SHA-256 of `size` zero bytes (the sparse file's content), hashed in pieces. */
function zerosDigest(size: number): string {
  const h = crypto.createHash('sha256');
  const z = Buffer.alloc(8 << 20);
  for (let left = size; left > 0; left -= z.length) h.update(left >= z.length ? z : z.subarray(0, left));
  return h.digest('hex');
}

/** Resolves once an import's temporary object exists in `objects` (the copy is under way); throws if the import ended first. */
async function copying(objects: string, ended: () => boolean): Promise<void> {
  while (!(fs.existsSync(objects) && fs.readdirSync(objects).some((f) => f.startsWith('.import-')))) {
    if (ended()) throw new Error('the import ended before its copy began');
    await new Promise((r) => setTimeout(r, 5));
  }
}

beforeAll(() => {
  media = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-hmedia-'));
  bigDir = path.join(media, 'big');
  fs.mkdirSync(bigDir);
  const big = path.join(bigDir, 'weights.bin');
  fs.writeFileSync(big, '');
  fs.truncateSync(big, SIZE); // sparse; its real digest is listed
  fs.writeFileSync(path.join(bigDir, 'SHA256SUMS'), `${zerosDigest(SIZE)}  weights.bin\n`);
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  if (media) fs.rmSync(media, { recursive: true, force: true });
});

describe('hostile media through the core', () => {
  let t: TestCore;
  beforeAll(async () => {
    t = await testCore({ mediaRoots: [media] });
    await t.client().ok('session:setup', ADMIN);
  });
  afterAll(async () => {
    await t?.close();
  });
  const objects = () => path.join(t.dir, 'store', 'objects');
  const signIn = async () => {
    const c = t.client();
    await c.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    return c;
  };

  it('a FIFO named SHA256SUMS: a clear refusal, and the console answers other calls meanwhile', async () => {
    const dir = path.join(media, 'fifo');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'tool_1_all.deb'), '!<arch>\n');
    execFileSync('mkfifo', [path.join(dir, 'SHA256SUMS')]);
    // A writer blocked until someone opens the FIFO for reading: it ends today's blocking read
    // (so this test fails instead of hanging), and it stays blocked if the core never opens it.
    const writer = spawn('/bin/sh', ['-c', 'printf "garbage\\n" > "$1"', 'sh', path.join(dir, 'SHA256SUMS')], { stdio: 'ignore' });
    children.push(writer);
    const c = await signIn();
    const other = await signIn();
    const importing = c.call('store:importDebs', { dir });
    // Another session's call is served while the import is in flight (a synchronous read of the
    // FIFO blocked the whole process inside the call, so this never ran).
    const listed = await other.call('store:list', {});
    expect(listed.ok).toBe(true);
    const r = await importing;
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('SHA256SUMS is not a regular file (a FIFO, socket or device)') });
    expect(writer.exitCode, 'the core opened the FIFO').toBeNull();
  });

  it('ops:cancel stops an import mid-copy; other calls are served while it hashes; nothing is left in the store', async () => {
    const c = await signIn();
    const other = await signIn();
    const requestId = 'import-big-1';
    let settled = false;
    const importing = c.call('store:importModel', { dir: bigDir, name: 'big', version: '1', requestId }).finally(() => (settled = true));
    await copying(objects(), () => settled);
    const listed = await other.ok('store:list', {});
    expect(listed.models).toEqual([]);
    expect(settled).toBe(false);
    expect(await c.ok('ops:cancel', { requestId })).toEqual({ cancelled: true });
    const r = await importing;
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe('CANCELLED');
    expect(fs.readdirSync(objects())).toEqual([]);
    expect((await other.ok('store:list', {})).models).toEqual([]);
  });

  it('a client that goes away mid-import (window closed, socket dropped) cancels it too', async () => {
    const c = await signIn();
    let settled = false;
    const importing = c.call('store:importModel', { dir: bigDir, name: 'big', version: '1', requestId: 'import-big-2' }).finally(() => (settled = true));
    await copying(objects(), () => settled);
    await t.core.closeClient(c.ctx);
    const r = await importing;
    expect(!r.ok && r.error.code).toBe('CANCELLED');
    expect(fs.readdirSync(objects())).toEqual([]);
  });
});

describe('hostile media through the airlock CLI (a second process)', () => {
  let data: string;
  const env = () => ({ ...process.env, AIRLOCK_USER: ADMIN.admin, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_MEDIA_ROOTS: media, AIRLOCK_TOTP_POLICY: 'off' });
  const airlock = (args: string[]) => {
    // The timeout only ends a hang (today's code never returned from a FIFO): nothing is timed.
    const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', data], { encoding: 'utf8', env: env(), input: '', timeout: 60_000 });
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(() => {
    expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-hmedia-cli-'));
    expect(airlock(['init', '--admin', ADMIN.admin]).code).toBe(0);
  }, 120_000);
  afterAll(() => {
    if (data) fs.rmSync(data, { recursive: true, force: true });
  });

  it('a FIFO named SHA256SUMS or x.deb ends with a clear error instead of hanging the process', () => {
    for (const name of ['SHA256SUMS', 'tool_1_all.deb']) {
      const dir = path.join(media, `cli-fifo-${name}`);
      fs.mkdirSync(dir);
      execFileSync('mkfifo', [path.join(dir, name)]);
      if (name !== 'SHA256SUMS') fs.writeFileSync(path.join(dir, 'SHA256SUMS'), `${'0'.repeat(64)}  ${name}\n`);
      const r = airlock(['store', 'import-debs', dir]);
      expect(r.signal, `the CLI hung on ${name}`).toBeNull();
      expect(r.code).toBe(2); // INVALID_INPUT: media the operator named cannot be used
      expect(r.stderr).toContain(`${name} is not a regular file (a FIFO, socket or device)`);
    }
  });

  it('Ctrl-C during an import cancels it: the CLI exits with CANCELLED and the store keeps nothing', async () => {
    const objects = path.join(data, 'store', 'objects');
    const child = spawn(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'store', 'import-model', bigDir, '--name', 'big', '--version', '1', '--data', data], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let ended = false;
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => ((ended = true), resolve(code))));
    await copying(objects, () => ended);
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(stderr).toContain('CANCELLED');
    expect(fs.readdirSync(objects)).toEqual([]);
    const list = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'store', 'list', '--json', '--data', data], { encoding: 'utf8', env: env(), input: '' });
    expect(JSON.parse(list.stdout)).toMatchObject({ models: [], debs: [] });
  });
});

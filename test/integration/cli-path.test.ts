/**
 * `airlock` from outside the repository, put on PATH the way README.md says: a symbolic link to
 * bin/airlock.mjs in a directory on PATH, run by name from an unrelated working directory.
 * bin/airlock.mjs finds dist/ beside itself (Node resolves the link), never from the cwd.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const PASSWORD = 'a long password for the path test';
let tmp: string;
let binDir: string;
let cwd: string;

function airlock(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('airlock', args, {
    cwd,
    encoding: 'utf8',
    // Only the link's directory and node's: nothing of the repository on PATH.
    env: { ...process.env, PATH: [binDir, path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter), ...env },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error };
}

beforeAll(() => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-path-'));
  binDir = path.join(tmp, 'bin');
  cwd = path.join(tmp, 'elsewhere');
  fs.mkdirSync(binDir);
  fs.mkdirSync(cwd);
  fs.symlinkSync(path.join(root, 'bin', 'airlock.mjs'), path.join(binDir, 'airlock'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('airlock on PATH through a symbolic link, run from another directory', () => {
  it('prints its help', () => {
    const r = airlock(['--help']);
    expect(r.error).toBeUndefined();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^airlock <area> <command>/);
    expect(r.stdout).toContain('init --admin NAME');
  });

  it('initialises a data directory given with --data, and signs in to it', () => {
    const data = path.join(tmp, 'data');
    const init = airlock(['init', '--admin', 'admin', '--data', data, '--json'], { AIRLOCK_NEW_PASSWORD: PASSWORD, AIRLOCK_TOTP_POLICY: 'off' });
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ user: { name: 'admin', roles: ['admin'] }, identity: { publicKey: expect.stringMatching(/^ssh-ed25519 AAAA/) } });
    expect(fs.existsSync(path.join(data, 'airlock.db'))).toBe(true);
    expect(fs.readdirSync(cwd)).toEqual([]); // nothing written where it was run from

    const list = airlock(['hosts', 'list', '--data', data, '--json'], { AIRLOCK_USER: 'admin', AIRLOCK_PASSWORD: PASSWORD, AIRLOCK_TOTP_POLICY: 'off' });
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });
});

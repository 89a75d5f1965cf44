import Database from 'better-sqlite3';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../electron/core/app';
import { ADMIN, testCore, type TestCore } from '../support/core';

/**
 * Fail-closed, for real: the data directory sits on a 4 MiB tmpfs that is filled with dd until
 * the disk is full, then remounted read-only; and a read-only database file is tried as an
 * unprivileged user (root ignores file modes). Each time the action is refused with a clear
 * error, nothing else changes, and once the disk is writable again the chain continues without a gap.
 */
const root = path.resolve(__dirname, '../..');
const isRoot = process.getuid?.() === 0;
let mnt = '';
let mounted = false;

function airlock(args: string[], opts: { data: string; uid?: number } ) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', opts.data], {
    encoding: 'utf8',
    env: { ...process.env, AIRLOCK_USER: ADMIN.admin, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_NEW_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off', HOME: os.tmpdir() },
    input: '',
    timeout: 60_000,
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * What the database holds, read with a connection of its own (reading through the core is itself
 * audited). Not a read-only connection: that would leave root-owned -wal/-shm files behind.
 */
function snapshot(dir: string) {
  const db = new Database(path.join(dir, DB_FILE), { fileMustExist: true });
  try {
    return {
      users: db.prepare('SELECT name FROM users ORDER BY name').pluck().all(),
      hosts: db.prepare('SELECT name FROM hosts ORDER BY name').pluck().all(),
      events: db.prepare('SELECT count(*) FROM audit_events').pluck().get() as number,
      head: db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

beforeAll(() => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  if (!isRoot) return;
  mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', mnt]);
  mounted = true;
});
afterAll(() => {
  if (mounted) {
    // Lazy unmount: it succeeds even if something still holds a file there after a failure.
    spawnSync('umount', ['-l', mnt]);
  }
  if (mnt) fs.rmSync(mnt, { recursive: true, force: true });
});

describe.skipIf(!isRoot)('fail-closed audit on a real small disk (tmpfs, root)', () => {
  let t: TestCore;
  const data = () => path.join(mnt, 'data');
  const filler = () => path.join(mnt, 'filler');

  it('refuses a mutating call with AUDIT_UNAVAILABLE when the disk is full, and changes nothing', async () => {
    t = await testCore({ dataDir: data() });
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await c.ok('hosts:importSshConfig', { text: 'Host before\n  HostName 10.9.9.1\n' });
    // The write-ahead log would otherwise have room left over from earlier commits.
    const raw = new Database(path.join(data(), DB_FILE));
    raw.pragma('wal_checkpoint(TRUNCATE)');
    raw.close();
    const dd = spawnSync('dd', ['if=/dev/zero', `of=${filler()}`, 'bs=64k'], { encoding: 'utf8' });
    expect(dd.stderr).toMatch(/No space left on device/);
    expect(fs.statfsSync(mnt).bavail).toBe(0);
    const before = snapshot(data());

    const r1 = await c.call('users:create', { name: 'bob', password: 'a long enough password', roles: ['auditor'] });
    expect(r1).toMatchObject({ ok: false, error: { code: 'AUDIT_UNAVAILABLE', message: expect.stringMatching(/disk is full.*not performed/) } });
    const r2 = await c.call('hosts:importSshConfig', { text: 'Host during\n  HostName 10.9.9.2\n' });
    expect(r2).toMatchObject({ ok: false, error: { code: 'AUDIT_UNAVAILABLE' } });
    // Reading is audited too: while nothing can be recorded, nothing is shown.
    expect(await c.call('audit:list', { limit: 5 })).toMatchObject({ ok: false, error: { code: 'AUDIT_UNAVAILABLE' } });
    // Another process (the CLI) is refused as clearly.
    const cli = airlock(['users', 'list'], { data: data() });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/AUDIT_UNAVAILABLE: The audit trail could not be written \(database or disk is full\)/);

    expect(snapshot(data())).toEqual(before);
  });

  it('continues without a gap in the chain once space returns', async () => {
    fs.rmSync(filler());
    const c = t.client();
    await c.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    await c.ok('users:create', { name: 'bob', password: 'a long enough password', roles: ['auditor'], mustChangePassword: false });
    await c.ok('hosts:importSshConfig', { text: 'Host after\n  HostName 10.9.9.3\n' });
    const s = snapshot(data());
    expect(s.users).toEqual(['alice', 'bob']);
    expect(s.hosts).toEqual(['after', 'before']);
    expect(s.events).toBe(s.head); // 1..head, no gap
    expect(await c.ok('audit:verify', {})).toMatchObject({ ok: true, checked: s.head + 1, firstBad: null });
    await t.close();
    const cli = airlock(['audit', 'verify', '--json'], { data: data() });
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, firstBad: null });
  });

  it('refuses clearly on a read-only file system, and changes nothing', async () => {
    const before = snapshot(data());
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    try {
      await expect(testCore({ dataDir: data() })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringMatching(/read-only.*refuses to run without a writable audit trail/) });
      const cli = airlock(['hosts', 'import-ssh-config', '/dev/null'], { data: data() });
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/AUDIT_UNAVAILABLE: The audit trail cannot be written: .*airlock\.db is read-only/);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
    }
    expect(snapshot(data())).toEqual(before);
    const again = await testCore({ dataDir: data() });
    try {
      const c = again.client();
      await c.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
      expect(await c.ok('audit:verify', {})).toMatchObject({ ok: true });
    } finally {
      await again.close();
    }
  });
});

describe.skipIf(!isRoot)('fail-closed audit with a read-only database file (chmod, as an unprivileged user)', () => {
  it('refuses clearly and changes nothing; works again once writable', () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ro-'));
    const data = path.join(base, 'data');
    try {
      fs.chmodSync(base, 0o777);
      const nobody = 65534;
      const init = airlock(['init', '--admin', ADMIN.admin], { data, uid: nobody });
      expect(init.code, init.stderr).toBe(0);
      const cfg = path.join(base, 'ssh_config');
      fs.writeFileSync(cfg, 'Host ro\n  HostName 10.9.9.4\n');
      fs.chmodSync(cfg, 0o644);
      const before = snapshot(data);
      fs.chmodSync(path.join(data, DB_FILE), 0o444);
      fs.chmodSync(data, 0o555);
      const r = airlock(['hosts', 'import-ssh-config', cfg], { data, uid: nobody });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/AUDIT_UNAVAILABLE: The audit trail cannot be written/);
      expect(snapshot(data)).toEqual(before);
      fs.chmodSync(data, 0o700);
      fs.chmodSync(path.join(data, DB_FILE), 0o600);
      const ok = airlock(['hosts', 'import-ssh-config', cfg], { data, uid: nobody });
      expect(ok.code, ok.stderr).toBe(0);
      const v = airlock(['audit', 'verify', '--json'], { data, uid: nobody });
      expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

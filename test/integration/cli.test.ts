import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, labDown, labUp, type Lab } from '../lab/lab';

/** The real `airlock` command, as an operator or a script runs it. */
const root = path.resolve(__dirname, '../..');
const PASSWORD = 'correct horse battery staple';
let data: string;
let lab: Lab;

function airlock(args: string[], env: Record<string, string> = {}, dir = data) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', dir], {
    encoding: 'utf8',
    env: { ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: PASSWORD, ...env },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

beforeAll(async () => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-cli-'));
  lab = await labUp({ id: 'icli', hosts: 2 });
});
afterAll(async () => {
  await labDown({ id: 'icli' });
  fs.rmSync(data, { recursive: true, force: true });
});

describe('airlock CLI', () => {
  it('exits 2 on usage errors', () => {
    expect(airlock([]).code).toBe(2);
    expect(airlock(['frobnicate', 'now']).code).toBe(2);
    expect(airlock(['hosts', 'list', '--no-such-flag']).code).toBe(2);
    expect(airlock(['help']).code).toBe(0);
  });

  it('init creates the first admin and prints the SSH public key; a second init is refused', () => {
    const r = airlock(['init', '--admin', 'alice', '--json']);
    expect(r.code).toBe(0);
    expect(r.json().identity.publicKey).toMatch(/^ssh-ed25519 AAAA/);
    const again = airlock(['init', '--admin', 'bob', '--json']);
    expect(again.code).toBe(1);
    expect(again.json()).toMatchObject({ ok: false, error: { code: 'SETUP_DONE' } });
  });

  it('identity show prints an authorized_keys line', () => {
    const r = airlock(['identity', 'show']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ airlock@alice\n$/);
  });

  it('refuses a wrong password with exit 1', () => {
    const r = airlock(['hosts', 'list'], { AIRLOCK_PASSWORD: 'not the password' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('BAD_CREDENTIALS');
  });

  it('hosts add under --json without --fingerprint refuses and shows the fingerprint to compare', async () => {
    await authorizeKey(lab, airlock(['identity', 'show']).stdout.trim());
    const host = lab.hosts[0]!;
    const r = airlock(['hosts', 'add', 'gpu1', '--address', host.address, '--port', String(host.port), '--json']);
    expect(r.code).toBe(1);
    expect(r.json().error.code).toBe('HOST_KEY_UNCONFIRMED');
    expect(r.json().error.message).toContain(host.fingerprint);
    expect(airlock(['hosts', 'list', '--json']).json()).toEqual([]);
  });

  it('adds with --fingerprint, scans, lists', () => {
    for (const [i, host] of lab.hosts.entries()) {
      const r = airlock(['hosts', 'add', `gpu${i + 1}`, '--address', host.address, '--port', String(host.port), '--user', host.user, '--fingerprint', host.fingerprint]);
      expect(r.code, r.stderr).toBe(0);
    }
    const scan = airlock(['hosts', 'scan', '--json']);
    expect(scan.code, scan.stdout).toBe(0);
    expect(scan.json().map((s: { ok: boolean }) => s.ok)).toEqual([true, true]);
    const list = airlock(['hosts', 'list']);
    expect(list.stdout).toMatch(/gpu1\t.*reachable\t.*8x NVIDIA A100-SXM4-80GB/);
  });

  it('hosts add exits 1 with a clear error when the host is unreachable', () => {
    const r = airlock(['hosts', 'add', 'ghost', '--address', lab.hosts[0]!.address, '--port', '1', '--fingerprint', lab.hosts[0]!.fingerprint]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/HOST_UNREACHABLE|TIMEOUT/);
  });

  it('imports known_hosts and ssh_config files', () => {
    const kh = path.join(data, 'known_hosts');
    fs.writeFileSync(kh, `[${lab.hosts[1]!.address}]:${lab.hosts[1]!.port} ssh-ed25519 AAAA-not-base64\n`);
    const r = airlock(['hosts', 'import-known-hosts', kh, '--json']);
    expect(r.code).toBe(0);
    expect(r.json().skipped.length).toBe(1);
    const cfg = path.join(data, 'ssh_config');
    fs.writeFileSync(cfg, 'Host spare\n  HostName 10.254.254.254\n  Port 2222\n');
    const c = airlock(['hosts', 'import-ssh-config', cfg]);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/added\tspare\t10\.254\.254\.254:2222\tunconfirmed/);
  });

  it('hosts add without --fingerprint pins the key a hashed known_hosts (ssh-keyscan -H) holds for the address', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-cli-kh-'));
    try {
      const run = (args: string[]) => airlock(args, {}, dir);
      expect(run(['init', '--admin', 'alice']).code).toBe(0);
      await authorizeKey(lab, run(['identity', 'show']).stdout.trim());
      const host = lab.hosts[1]!;
      const kh = path.join(dir, 'known_hosts');
      fs.writeFileSync(kh, execFileSync('ssh-keyscan', ['-T', '5', '-H', '-p', String(host.port), host.address], { encoding: 'utf8' }) + '@cert-authority * ssh-ed25519 AAAA\n');
      const imp = run(['hosts', 'import-known-hosts', kh]);
      expect(imp.code, imp.stderr).toBe(0);
      expect(imp.stdout).toMatch(/^kept\tline 1: hashed\tssh-ed25519 SHA256:/m);
      expect(imp.stdout).toMatch(/^skipped\tline 2: @cert-authority.*not supported/m);
      // --json and no terminal: before, this refused with HOST_KEY_UNCONFIRMED.
      const add = run(['hosts', 'add', 'hashed', '--address', host.address, '--port', String(host.port), '--user', host.user, '--json']);
      expect(add.code, add.stdout + add.stderr).toBe(0);
      expect(add.json()).toMatchObject({ name: 'hashed', fingerprint: host.fingerprint });
      expect(run(['hosts', 'scan', 'hashed', '--json']).json()[0]).toMatchObject({ ok: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('audit verify checks the chain (exit 0) and names the first bad event when tampered (exit 1)', async () => {
    const ok = airlock(['audit', 'verify', '--json']);
    expect(ok.code).toBe(0);
    expect(ok.json()).toMatchObject({ ok: true, firstBad: null });
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path.join(data, 'airlock.db'));
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit_events SET body = replace(body, 'gpu1', 'gpuX') WHERE seq = (SELECT min(seq) FROM audit_events WHERE body LIKE '%gpu1%')").run();
    const bad = (db.prepare("SELECT min(seq) AS s FROM audit_events WHERE body LIKE '%gpuX%'").get() as { s: number }).s;
    db.close();
    const r = airlock(['audit', 'verify']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`BROKEN at event ${bad}`);
  });
});

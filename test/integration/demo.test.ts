import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labIdFor, labStatus, labUp } from '../lab/lab';

/**
 * `npm run demo` end to end (issue 11, "a newcomer's first hour"): the real command through npm,
 * a real lab, a .deb built by dpkg-deb, SHA256SUMS by sha256sum; then the operator's path with the
 * CLI on the demo's installation (plan → apply lab-gpu-node → attestation exported and verified),
 * the console served and fetched, a second `up` while one is up, `down`, and failed steps.
 */
const root = path.resolve(__dirname, '../..');
const ID = 'idemo';
const FAULT_ID = 'idemofault';

interface Demo {
  url: string | null;
  dataDir: string;
  mediaDir: string;
  admin: string;
  password: string;
  totpPolicy: string;
  lab: string;
  hosts: Array<{ name: string; address: string; port: number; fingerprint: string }>;
  playbook: string;
  siteFile: string;
  envFile: string;
  reused: boolean;
  consolePid?: number;
}

/** `npm run -s demo -- …`, as the README says to run it for machine-readable output. */
function demo(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync('npm', ['run', '-s', 'demo', '--', ...args], { cwd: root, encoding: 'utf8', env, input: '', timeout: 170_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) as Demo };
}

let made: Demo;
function airlock(args: string[]) {
  const env = { ...process.env, AIRLOCK_USER: made.admin, AIRLOCK_PASSWORD: made.password, AIRLOCK_MEDIA_ROOTS: made.mediaDir, AIRLOCK_TOTP_POLICY: made.totpPolicy };
  const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', made.dataDir], { encoding: 'utf8', env, input: '', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

beforeAll(() => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
});

afterAll(async () => {
  demo(['down', '--id', ID]);
  await labDown({ id: FAULT_ID });
}, 120_000);

describe('npm run demo', () => {
  it('down when nothing is up says so and exits 0', () => {
    const r = demo(['down', '--id', ID]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^No demo is up with id idemo: nothing to remove\./);
  });

  it('up --json --no-serve: a lab, the media with their SHA256SUMS, an installation with the hosts pinned, scanned and the media imported', async () => {
    const r = demo(['--id', ID, '--json', '--no-serve']);
    expect(r.code, r.stderr).toBe(0);
    made = r.json(); // stdout is the JSON object alone
    expect(made).toMatchObject({ url: null, admin: 'admin', totpPolicy: 'off', playbook: 'lab-gpu-node', lab: labIdFor(ID), reused: false });
    expect(made.password.length).toBeGreaterThanOrEqual(16);
    // Every directory is a fresh one of its own, not a fixed name.
    expect(path.dirname(made.dataDir)).toBe(os.tmpdir());
    expect(path.basename(made.dataDir)).toMatch(/^airlock-demo-data-.{6}$/);
    expect(path.basename(made.mediaDir)).toMatch(/^airlock-demo-media-.{6}$/);
    expect(r.stderr).toContain('[7/7] import the media into the store');

    // The media: each directory with its own SHA256SUMS, which sha256sum itself accepts.
    const debs = path.join(made.mediaDir, 'debs');
    const model = path.join(made.mediaDir, 'models', 'tiny-llm-1');
    for (const d of [debs, model]) {
      const check = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: d, encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
    }
    expect(fs.readFileSync(path.join(debs, 'SHA256SUMS'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}airlock-node-tools_1\.0_all\.deb\n$/);
    const fields = spawnSync('dpkg-deb', ['-f', path.join(debs, 'airlock-node-tools_1.0_all.deb'), 'Package', 'Version'], { encoding: 'utf8' });
    expect(fields.stdout).toBe('Package: airlock-node-tools\nVersion: 1.0\n');

    // The lab, and the hosts pinned with the lab's own fingerprints, scanned.
    const lab = await labStatus(ID);
    expect(lab?.hosts.map((h) => h.name)).toEqual(['host1', 'host2', 'host3']);
    const hosts = airlock(['hosts', 'list', '--json']).json() as Array<{ name: string; fingerprint: string; status: string; inventory: unknown }>;
    expect(hosts.map((h) => [h.name, h.fingerprint, h.status])).toEqual(lab!.hosts.map((h) => [h.name, h.fingerprint, 'reachable']));
    expect(hosts.every((h) => h.inventory !== null)).toBe(true);
    const store = airlock(['store', 'list', '--json']).json();
    expect(store.debs).toEqual([expect.objectContaining({ package: 'airlock-node-tools', version: '1.0' })]);
    expect(store.models).toEqual([expect.objectContaining({ name: 'tiny-llm', version: '1' })]);
    expect(fs.statSync(made.envFile).mode & 0o077).toBe(0); // it holds the demo password
  });

  it('a second up while one is up reuses it', () => {
    const r = demo(['--id', ID, '--json', '--no-serve']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ reused: true, dataDir: made.dataDir, mediaDir: made.mediaDir, password: made.password });
    expect(r.stderr).toContain('the demo is already up');
  });

  it('serves the console (one-time URL); another up meanwhile says the console is open; Ctrl+C stops the console and leaves the lab', async () => {
    // A process group of its own, as a terminal gives a command: Ctrl+C is SIGINT to the group.
    // The script itself (npm, on Ctrl+C, ends by its own SIGINT whatever the script did).
    const child = spawn(process.execPath, [path.join(root, 'scripts/demo.mjs'), '--id', ID, '--json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).once('line', resolve);
      void exited.then(() => reject(new Error(`the demo exited before serving:\n${err}`)));
    });
    const served = JSON.parse(line) as Demo;
    expect(served).toMatchObject({ reused: true, dataDir: made.dataDir });
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]+$/);
    const page = await fetch(served.url!.replace(/#.*/, ''));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');

    const busy = demo(['--id', ID, '--json', '--no-serve']);
    expect(busy.code, busy.stderr).toBe(0);
    expect(busy.stderr).toMatch(/already up, and its console is open \(pid \d+\)/);
    expect(busy.json()).toMatchObject({ reused: true, url: null, consolePid: expect.any(Number) });

    process.kill(-child.pid!, 'SIGINT'); // Ctrl+C
    expect(await exited).toBe(0);
    expect(err).toContain('The console stopped. The demo is still up');
    expect(await labStatus(ID)).not.toBeNull();
    expect(fs.existsSync(made.dataDir)).toBe(true);
  });

  it('the operator path on the demo: plan and apply lab-gpu-node on host1, export and verify its attestation', () => {
    const params = ['--playbook', 'lab-gpu-node', '--hosts', 'host1', '--params', made.siteFile];
    const plan = airlock(['provision', 'plan', ...params, '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.json().hosts[0].steps.map((s: { stepId: string; status: string }) => [s.stepId, s.status])).toEqual([
      ['gpu', 'ok'],
      ['packages', 'would-change'],
      ['model', 'would-change'],
      ['inference', 'would-change'],
      ['egress', 'would-change'],
      ['sshd', 'would-change'],
    ]);
    const apply = airlock(['provision', 'apply', ...params, '--json']);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.json()).toMatchObject({ status: 'succeeded' });
    const file = path.join(made.mediaDir, 'host1-attestation.json');
    expect(airlock(['attest', 'show', '--host', 'host1', '--out', file]).code).toBe(0);
    const ok = airlock(['attest', 'verify', file]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^OK: attestation for host1 signed by SHA256:/);
  });

  it('down removes the lab, the data directory and the media', async () => {
    const r = demo(['down', '--id', ID]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Demo removed: lab \S+; the data directory \S+; the media \S+\.\n$/);
    expect(await labStatus(ID)).toBeNull();
    expect(fs.existsSync(made.dataDir)).toBe(false);
    expect(fs.existsSync(made.mediaDir)).toBe(false);
    expect(fs.existsSync(made.envFile)).toBe(false);
    expect(demo(['down', '--id', ID]).stdout).toMatch(/^No demo is up/);
  });

  it('a failed step says which, and removes what the demo made, never what it did not', async () => {
    // A lab of that name that the demo did not make: "start the lab" fails after media and data were made.
    await labUp({ id: FAULT_ID, hosts: 1 });
    const r = demo(['--id', FAULT_ID, '--json', '--no-serve']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/demo: step "start the lab" failed: a lab "\S+" is already up and npm run demo did not make it/);
    const removed = /removed what it had made \((.*)\)\./.exec(r.stderr)?.[1] ?? '';
    const dirs = [...removed.matchAll(/(\/\S+?)(?:,|$)/g)].map((m) => m[1]!);
    expect(dirs.map((d) => path.basename(d))).toEqual([expect.stringMatching(/^airlock-demo-data-/), expect.stringMatching(/^airlock-demo-media-/)]);
    for (const d of dirs) expect(fs.existsSync(d)).toBe(false);
    expect(removed).not.toContain('lab');
    expect(await labStatus(FAULT_ID)).not.toBeNull(); // not the demo's to take down
    expect(demo(['down', '--id', FAULT_ID]).stdout).toMatch(/^No demo is up with id idemofault: nothing to remove\. \(A lab "\S+" is up, but npm run demo did not make it/);
    await labDown({ id: FAULT_ID });

    // dpkg-deb missing: the first step says so, before anything is made.
    const emptyPath = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-empty-path-'));
    const noTools = spawnSync(process.execPath, [path.join(root, 'scripts/demo.mjs'), '--id', FAULT_ID, '--no-serve'], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: emptyPath } });
    fs.rmSync(emptyPath, { recursive: true });
    expect(noTools.status).toBe(1);
    expect(noTools.stderr).toMatch(/demo: step "check the tools" failed: dpkg-deb is not on PATH \(Debian: apt-get install dpkg\)/);
    expect(demo(['status', '--id', FAULT_ID]).stdout).toMatch(/^No demo is up/);
  });
});

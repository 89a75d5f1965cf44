import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, killSshd, labDown, labUp, runOnHost, startSshd, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

/**
 * Connections kept between operations, against real sshd hosts: what the host sees (its
 * established SSH connections, counted with `ss` in its own network namespace), not Airlock's
 * own bookkeeping.
 */
const LAB = 'ipool';
let lab: Lab;

const playbook = {
  format: 'airlock.playbook/v1',
  name: 'pool-check',
  version: '1',
  steps: [
    { id: 'gpu', type: 'gpu-driver-check', params: { minCount: 0 } },
    { id: 'sshd', type: 'ssh-hardening', params: {} },
  ],
};

/** Established connections to the host's sshd, as the host sees them. */
async function sshConnections(host: string): Promise<number> {
  const r = await runOnHost(lab, host, ['ss', '-tnH', 'state', 'established', '( sport = :22 )']);
  expect(r.code).toBe(0);
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

async function until(what: () => Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function setup(t: TestCore): Promise<TestClient> {
  const c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  await c.ok('provision:importPlaybook', { text: JSON.stringify(playbook) });
  return c;
}

beforeAll(async () => {
  lab = await labUp({ id: LAB, hosts: 2, gpuProfiles: ['a100'] });
}, 120_000);

afterAll(async () => {
  await labDown({ id: LAB });
}, 60_000);

describe('SSH connection pool', () => {
  it('scan, then two plans: the host sees one connection, kept while idle and closed at exit', async () => {
    const t = await testCore({ sshTimeoutMs: 15_000, sshPoolIdleMs: 60_000, stepUpMinutes: 600 });
    try {
      const c = await setup(t);
      const h = lab.hosts[0]!.name;
      expect(await sshConnections(h)).toBe(0);
      const scan = await c.ok('hosts:scan', { names: [h] });
      expect(scan[0]!.ok).toBe(true);
      expect(await sshConnections(h)).toBe(1);
      for (let i = 0; i < 2; i++) {
        const r = await c.ok('provision:plan', { playbook: 'pool-check', hosts: [h], params: {} });
        expect(r.status).toBe('succeeded');
        expect(await sshConnections(h)).toBe(1);
      }
      // A scan is the health check: a new connection each time (the idle one stays too).
      await c.ok('hosts:scan', { names: [h] });
      expect(await sshConnections(h)).toBe(2);
    } finally {
      await t.close();
    }
    await until(async () => (await sshConnections(lab.hosts[0]!.name)) === 0);
  }, 120_000);

  it('a kept connection the host dropped is not reused: the next plan connects again', async () => {
    const t = await testCore({ sshTimeoutMs: 15_000, sshPoolIdleMs: 60_000, stepUpMinutes: 600 });
    try {
      const c = await setup(t);
      const h = lab.hosts[1]!.name;
      expect((await c.ok('provision:plan', { playbook: 'pool-check', hosts: [h], params: {} })).status).toBe('succeeded');
      expect(await sshConnections(h)).toBe(1);
      await killSshd(lab, h, { sessions: true });
      await startSshd(lab, h);
      await until(async () => (await sshConnections(h)) === 0);
      const r = await c.ok('provision:plan', { playbook: 'pool-check', hosts: [h], params: {} });
      expect(r.status).toBe('succeeded');
      expect(await sshConnections(h)).toBe(1);
    } finally {
      await t.close();
    }
  }, 120_000);

  it('idle connections close after the idle time; removing a host closes its kept connection', async () => {
    const t = await testCore({ sshTimeoutMs: 15_000, sshPoolIdleMs: 1_500, stepUpMinutes: 600 });
    try {
      const c = await setup(t);
      const [a, b] = lab.hosts.map((x) => x.name) as [string, string];
      await c.ok('hosts:scan', { names: [a] });
      expect(await sshConnections(a)).toBe(1);
      await until(async () => (await sshConnections(a)) === 0, 15_000);

      const t2 = await testCore({ sshTimeoutMs: 15_000, sshPoolIdleMs: 60_000, stepUpMinutes: 600 });
      try {
        const c2 = await setup(t2);
        await c2.ok('hosts:scan', { names: [b] });
        expect(await sshConnections(b)).toBe(1);
        await c2.ok('hosts:remove', { name: b });
        await until(async () => (await sshConnections(b)) === 0);
      } finally {
        await t2.close();
      }
    } finally {
      await t.close();
    }
  }, 120_000);
});

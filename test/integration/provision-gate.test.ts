/**
 * The inference-gate provisioning step on a real lab host: plan shows what it would install, apply
 * installs the gate with the console's pinned policy key and its current signed policy and proves
 * it enforces that version, a second plan finds nothing to do; a later policy change (a host moved
 * into a PHI enclave) reaches the installed gate through `policy:push`, and the gate is the only
 * door: a request without a credential is 401.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../shared/contract/provision';
import { authorizeKey, labDown, labUp, runOnHost, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

const LAB = 'pgate';
const PORT = 8443;
let lab: Lab;
let t: TestCore;
let c: TestClient;

beforeAll(async () => {
  lab = await labUp({ id: LAB, hosts: 1, replace: true });
  t = await testCore({ sshTimeoutMs: 10_000, stepUpMinutes: 600 });
  c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  const h = lab.hosts[0]!;
  await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  await c.ok('provision:importPlaybook', {
    text: JSON.stringify({ format: 'airlock.playbook/v1', name: 'gate-only', version: '1', steps: [{ id: 'gate', type: 'inference-gate', params: { port: PORT } }] }),
  });
}, 180_000);

afterAll(async () => {
  await t?.close();
  await labDown({ id: LAB });
}, 120_000);

const step = (r: Run) => r.hosts[0]!.steps[0]!;

describe('the inference-gate step', () => {
  it('plans, installs the gate enforcing the console policy, and plans clean afterwards', async () => {
    const plan = await c.ok('provision:plan', { playbook: 'gate-only', hosts: ['host1'], params: {} });
    expect(step(plan).status).toBe('would-change');
    expect(step(plan).changes.map((x) => x.target)).toEqual(expect.arrayContaining(['/usr/local/lib/airlock-gate/airlock-gate.py', '/etc/airlock/gate/gate.json', 'airlock-gate.service']));

    const run = await c.ok('provision:apply', { playbook: 'gate-only', hosts: ['host1'], params: {} });
    expect(run.status, JSON.stringify(run.hosts[0])).toBe('succeeded');
    const st = await c.ok('policy:status', { check: true });
    expect(st.hosts).toMatchObject([{ host: 'host1', enforcingVersion: st.version }]);
    // The pinned key on the host is the console's policy key.
    const pinned = await fetchPinned();
    expect(pinned.trim()).toBe(st.publicKey!.trim());

    // Through the gate only, and only with a credential.
    const h = lab.hosts[0]!;
    const noCred = await fetch(`http://${h.address}:${PORT}/v1/completions`, { method: 'POST', body: '{"model":"x","prompt":"hi"}', headers: { 'content-type': 'application/json' } });
    expect(noCred.status).toBe(401);
    const bogus = await fetch(`http://${h.address}:${PORT}/v1/completions`, { method: 'POST', body: '{"model":"x","prompt":"hi"}', headers: { authorization: 'Bearer alk_not-a-credential' } });
    expect(bogus.status).toBe(401);

    const again = await c.ok('provision:plan', { playbook: 'gate-only', hosts: ['host1'], params: {} });
    expect(step(again).status, JSON.stringify(step(again).changes)).toBe('ok');
  }, 240_000);

  it('a later policy change reaches the installed gate (policy:push), and the step still verifies', async () => {
    const before = (await c.ok('policy:status', {})).version!;
    await c.ok('enclaves:create', { name: 'ward-a', phi: true });
    const moved = await c.ok('enclaves:assign', { host: 'host1', enclave: 'ward-a' });
    expect(moved.policy.version).toBe(before + 1);
    // The push waits for the gate's own report of the version (status.json).
    const deadline = Date.now() + 60_000;
    let enforcing: number | null = null;
    while (Date.now() < deadline) {
      enforcing = (await c.ok('policy:status', { check: true })).hosts[0]!.enforcingVersion;
      if (enforcing === before + 1) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(enforcing).toBe(before + 1);
    const again = await c.ok('provision:plan', { playbook: 'gate-only', hosts: ['host1'], params: {} });
    expect(step(again).status).toBe('ok');
  }, 180_000);
});

/** The pinned key file on the host, read through the lab (the same file the gate reads). */
async function fetchPinned(): Promise<string> {
  return (await runOnHost(lab, 'host1', ['cat', '/etc/airlock/gate/policy-signing.pem'])).stdout;
}

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, labDown, labUp, replaceHostKey, type Lab, type LabHost } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

/**
 * Host management (issue 11): accepting a changed host key (hosts:repin) and editing a host's
 * address, port and SSH user (hosts:update), against the lab's real sshd hosts and a real SQLite
 * file: roles, audit with before/after, hostile input, and the key rules.
 */
const LAB_ID = 'ihmanage';
let lab: Lab;
let t: TestCore;
let admin: TestClient;
let officer: TestClient;
let auditor: TestClient;
let h: LabHost[];

async function user(name: string, roles: Array<'admin' | 'officer' | 'auditor'>): Promise<TestClient> {
  const password = `${name} own password`;
  await admin.ok('users:create', { name, password, roles, mustChangePassword: false });
  const c = t.client();
  await c.ok('session:login', { name, password });
  return c;
}

/** The outcome event of the last call on `channel` (its detail holds before/after). */
async function lastOutcome(channel: string) {
  const { events } = await admin.ok('audit:list', { limit: 1000, channel, outcome: 'ok' });
  // Newest first.
  return events.find((e) => e.phase === 'outcome')!;
}

beforeAll(async () => {
  t = await testCore({ sshTimeoutMs: 4000 });
  admin = t.client();
  await admin.ok('session:setup', ADMIN);
  officer = await user('olga', ['officer']);
  auditor = await user('audrey', ['auditor']);
  const id = await admin.ok('identity:show', {});
  lab = await labUp({ id: LAB_ID, hosts: 2 });
  await authorizeKey(lab, id.publicKey);
  h = lab.hosts;
  for (const host of h) await admin.ok('hosts:add', { name: host.name, address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint });
});

afterAll(async () => {
  await t?.close();
  await labDown({ id: LAB_ID });
});

describe('hosts:repin — accept a changed host key', () => {
  it('is refused to officers and auditors, and the refusal is audited', async () => {
    const host = h[0]!;
    for (const c of [officer, auditor]) {
      const r = await c.call('hosts:repin', { name: host.name, pinned: host.fingerprint, fingerprint: h[1]!.fingerprint });
      expect(r).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
    const { events } = await admin.ok('audit:list', { limit: 1000 });
    expect(events.filter((e) => e.channel === 'hosts:repin' && e.outcome !== 'ok').length).toBeGreaterThanOrEqual(2);
  });

  it('refuses hostile input at the schema', async () => {
    const host = h[0]!;
    for (const input of [
      { name: host.name, pinned: host.fingerprint },
      { name: host.name, pinned: host.fingerprint, fingerprint: 'SHA256:short' },
      { name: host.name, pinned: host.fingerprint, fingerprint: `${host.fingerprint}\n` },
      { name: '../etc', pinned: host.fingerprint, fingerprint: host.fingerprint },
      { name: host.name, pinned: host.fingerprint, fingerprint: host.fingerprint, address: '10.0.0.1' },
      { name: host.name, pinned: 42, fingerprint: host.fingerprint },
    ]) {
      expect(await admin.call('hosts:repin', input)).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    }
  });

  it('pins the new key only when the person compared both, and records both in the audit trail', async () => {
    const host = h[0]!;
    const fresh = await replaceHostKey(lab, host.name);
    const [scan] = await admin.ok('hosts:scan', { names: [host.name] });
    expect(scan).toMatchObject({ ok: false, status: 'key-changed' });

    // Nothing to replace when the "new" key is the pinned one.
    expect(await admin.call('hosts:repin', { name: host.name, pinned: host.fingerprint, fingerprint: host.fingerprint })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    // A key the host does not present (what an interceptor would have shown at probe time) is refused; the pin stays.
    const wrong = await admin.call('hosts:repin', { name: host.name, pinned: host.fingerprint, fingerprint: h[1]!.fingerprint });
    expect(wrong).toMatchObject({ ok: false, error: { code: 'HOST_KEY_MISMATCH' } });
    if (!wrong.ok) expect(wrong.error.message).toContain(fresh);
    // The person compared against a pinned key that is not the one pinned: refused.
    expect(await admin.call('hosts:repin', { name: host.name, pinned: h[1]!.fingerprint, fingerprint: fresh })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    expect((await admin.ok('hosts:list', {})).find((x) => x.name === host.name)!.fingerprint).toBe(host.fingerprint);

    const probe = await admin.ok('hosts:probe', { address: host.address, port: host.port });
    expect(probe.fingerprint).toBe(fresh);
    expect(probe.pinned).toEqual({ host: host.name, fingerprint: host.fingerprint });
    const pinned = await admin.ok('hosts:repin', { name: host.name, pinned: host.fingerprint, fingerprint: probe.fingerprint });
    expect(pinned).toMatchObject({ fingerprint: fresh, status: 'unknown', lastError: null });

    const outcome = await lastOutcome('hosts:repin');
    expect(outcome).toMatchObject({ target: host.name, actor: ADMIN.admin, outcome: 'ok' });
    expect((outcome.params as { detail: unknown }).detail).toEqual({
      before: { fingerprint: host.fingerprint, keyType: 'ssh-ed25519' },
      after: { fingerprint: fresh, keyType: 'ssh-ed25519' },
    });
    const [again] = await admin.ok('hosts:scan', { names: [host.name] });
    expect(again).toMatchObject({ ok: true, status: 'reachable' });
    host.fingerprint = fresh;
  });

  it('refuses when the host presents yet another key than the one compared', async () => {
    const host = h[0]!;
    const compared = await replaceHostKey(lab, host.name);
    // Between the probe the person compared and the confirmation, the key changes again.
    const third = await replaceHostKey(lab, host.name);
    const r = await admin.call('hosts:repin', { name: host.name, pinned: host.fingerprint, fingerprint: compared });
    expect(r).toMatchObject({ ok: false, error: { code: 'HOST_KEY_MISMATCH' } });
    if (!r.ok) expect(r.error.message).toContain(third);
    expect((await admin.ok('hosts:list', {})).find((x) => x.name === host.name)!.fingerprint).toBe(host.fingerprint);
    await admin.ok('hosts:repin', { name: host.name, pinned: host.fingerprint, fingerprint: third });
    host.fingerprint = third;
  });
});

describe('hosts:update — edit address, port and SSH user', () => {
  it('is refused to officers and auditors', async () => {
    for (const c of [officer, auditor]) {
      expect(await c.call('hosts:update', { name: h[1]!.name, user: 'nobody' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
  });

  it('refuses hostile and empty input', async () => {
    const name = h[1]!.name;
    for (const input of [
      { name },
      { name, port: 0 },
      { name, port: 70000 },
      { name, port: '22' },
      { name, address: 'a b' },
      { name, address: '-oProxyCommand=sh' },
      { name, user: 'root;reboot' },
      { name, user: '-l' },
      { name, fingerprint: h[0]!.fingerprint },
    ]) {
      expect(await admin.call('hosts:update', input), JSON.stringify(input)).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    }
    expect(await admin.call('hosts:update', { name: 'nope', user: 'root' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    // Another host's address:port is taken.
    expect(await admin.call('hosts:update', { name, address: h[0]!.address, port: h[0]!.port })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
  });

  it('changes the user and the address, keeps the pinned key, audits before/after; the next connection must present the pinned key', async () => {
    const a = h[0]!;
    const b = h[1]!;
    const edited = await admin.ok('hosts:update', { name: b.name, user: 'nobody' });
    expect(edited).toMatchObject({ user: 'nobody', address: b.address, fingerprint: b.fingerprint });
    expect((await lastOutcome('hosts:update')).params).toMatchObject({
      detail: { before: { address: b.address, port: b.port, user: b.user }, after: { address: b.address, port: b.port, user: 'nobody' } },
    });
    const [auth] = await admin.ok('hosts:scan', { names: [b.name] });
    expect(auth).toMatchObject({ ok: false, status: 'auth-failed' });
    await admin.ok('hosts:update', { name: b.name, user: b.user });
    expect((await admin.ok('hosts:scan', { names: [b.name] }))[0]).toMatchObject({ ok: true });

    // Point b's entry at a's address: the pinned key (b's) stays, so a, presenting its own key, is refused.
    await admin.ok('hosts:update', { name: a.name, address: '127.0.0.1', port: 9 });
    const moved = await admin.call('hosts:update', { name: b.name, address: a.address, port: a.port });
    expect(moved).toMatchObject({ ok: true, value: { address: a.address, fingerprint: b.fingerprint, status: 'unknown', lastError: null } });
    const [scan] = await admin.ok('hosts:scan', { names: [b.name] });
    expect(scan).toMatchObject({ ok: false, status: 'key-changed', error: { code: 'HOST_KEY_CHANGED' } });
    // And back: the pinned key is presented again.
    await admin.ok('hosts:update', { name: b.name, address: b.address, port: b.port });
    expect((await admin.ok('hosts:scan', { names: [b.name] }))[0]).toMatchObject({ ok: true, status: 'reachable' });
    await admin.ok('hosts:update', { name: a.name, address: a.address, port: a.port });
    expect((await admin.ok('audit:verify', {})).ok).toBe(true);
  });
});

describe('the CLI words: hosts edit, hosts repin', () => {
  const root = path.resolve(__dirname, '../..');
  const PASSWORD = 'correct horse battery staple';
  let data: string;
  const airlock = (args: string[]) => {
    const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', data], {
      encoding: 'utf8',
      env: { ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: PASSWORD },
      input: '',
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
  };
  beforeAll(() => {
    expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-hmanage-'));
  });
  afterAll(() => fs.rmSync(data, { recursive: true, force: true }));

  it('edits a host and accepts its changed key only with the compared fingerprint', async () => {
    const host = h[1]!;
    const init = airlock(['init', '--admin', 'alice', '--json']);
    expect(init.code, init.stderr).toBe(0);
    await authorizeKey(lab, init.json().identity.publicKey);
    expect(airlock(['hosts', 'add', 'gpu', '--address', host.address, '--port', String(host.port), '--user', host.user, '--fingerprint', host.fingerprint]).code).toBe(0);

    expect(airlock(['hosts', 'edit', 'gpu']).code).toBe(2);
    const edited = airlock(['hosts', 'edit', 'gpu', '--user', 'nobody', '--json']);
    expect(edited.code, edited.stderr).toBe(0);
    expect(edited.json()).toMatchObject({ name: 'gpu', user: 'nobody', fingerprint: host.fingerprint });
    expect(airlock(['hosts', 'edit', 'gpu', '--user', host.user]).stdout).toContain(`${host.address}:${host.port}\t${host.user}`);

    const fresh = await replaceHostKey(lab, host.name);
    // A script is shown both keys and refused until it names the one compared.
    const asked = airlock(['hosts', 'repin', 'gpu', '--json']);
    expect(asked.code).toBe(1);
    expect(asked.json().error.message).toContain(host.fingerprint);
    expect(asked.json().error.message).toContain(fresh);
    const wrong = airlock(['hosts', 'repin', 'gpu', '--fingerprint', h[0]!.fingerprint, '--json']);
    expect(wrong.json()).toMatchObject({ ok: false, error: { code: 'HOST_KEY_MISMATCH' } });
    const ok = airlock(['hosts', 'repin', 'gpu', '--fingerprint', fresh]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`replacing ${host.fingerprint}`);
    expect(airlock(['hosts', 'scan', 'gpu']).code).toBe(0);
  });
});

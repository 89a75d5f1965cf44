/**
 * Grants compiled into the signed gate policy and pushed to real lab hosts (issue 13): three hosts
 * in parallel with one cut off (unreachable, then delivered once it is back), the signature
 * checked ON THE HOST with its stock `openssl pkeyutl -verify -pubin -rawin`, a tampered and a
 * replayed policy file found by the console's own read-back and put right by the next push, a
 * different pinned key refused until re-pinned by name, audit rows for every change and push, and
 * no credential anywhere in the database file. Then the CLI: principals, grants (a phi grant
 * filed for approval, exit 3), policy status.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../electron/core/db/db';
import { Catalog } from '../../electron/core/models/catalog';
import { EXIT } from '../../electron/shells/cli';
import { connect, type SshConnection } from '../../electron/core/ssh/connection';
import { shellQuote } from '../../electron/core/ssh/quote';
import { authorizeKey, cutLink, labDown, labUp, restoreLink, type Lab } from '../lab/lab';
import { inProcessCli } from '../support/cli';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

const LAB = 'iaccess';
const GATE = '/etc/airlock/gate';
let lab: Lab;
let t: TestCore;
let c: TestClient;
let work: string;
let sshKey: string;
let credential: string;
const conns = new Map<string, SshConnection>();

/** Runs a script on a host with the test's own key (an outsider's look, not Airlock's connection). */
async function onHost(name: string, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let conn = conns.get(name);
  if (!conn) {
    const h = lab.hosts.find((x) => x.name === name)!;
    conn = await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: sshKey }, { timeoutMs: 10_000, signal: new AbortController().signal });
    conns.set(name, conn);
  }
  return conn.exec(`/bin/sh -c ${shellQuote(script)}`, { timeoutMs: 20_000 });
}

/** The stock openssl on the host verifies policy.json against the pinned key, as the gate does. */
const VERIFY_ON_HOST = `set -e; t=$(mktemp); base64 -d ${GATE}/policy.json.sig > "$t"; openssl pkeyutl -verify -pubin -inkey ${GATE}/policy-signing.pem -rawin -in ${GATE}/policy.json -sigfile "$t"; rm -f "$t"`;

async function hostVersion(name: string): Promise<number> {
  const r = await onHost(name, `cat ${GATE}/policy.json`);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { version: number }).version;
}

function dbBytes(dir: string): Buffer {
  return Buffer.concat(
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('airlock.db'))
      .map((f) => fs.readFileSync(path.join(dir, f))),
  );
}

/** Catalog records through a second connection to the console's file (the catalog's own channels are another area's). */
async function approvedVersion(dataDir: string, model: string, version: string, classification: 'internal' | 'phi') {
  const db = openDatabase(path.join(dataDir, 'airlock.db'));
  try {
    const cat = new Catalog({ db, now: () => new Date() });
    if (!cat.models().some((m) => m.name === model)) cat.addModel({ name: model, owner: 'ml' }, 'alice');
    const src = fs.mkdtempSync(path.join(work, 'media-'));
    fs.writeFileSync(path.join(src, 'weights.bin'), `${model} ${version} weights`);
    await cat.importDirectory({ model, version, dir: src, classification, license: 'apache-2.0', source: 'usb 7' }, 'alice');
    cat.setStatus(model, version, 'approved', 'alice', classification === 'phi' ? { secondPerson: 'olga' } : {});
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  lab = await labUp({ id: LAB, hosts: 3 });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-access-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'access-test', '-f', path.join(work, 'id')]);
  sshKey = fs.readFileSync(path.join(work, 'id'), 'utf8');
  await authorizeKey(lab, fs.readFileSync(path.join(work, 'id.pub'), 'utf8').trim());
  // No pooled connections: a host cut off and restored is reached afresh.
  t = await testCore({ sshTimeoutMs: 4000, sshPoolIdleMs: 0, stepUpMinutes: 600 });
  c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  await approvedVersion(t.dir, 'triage', '1.2.0', 'internal');
}, 240_000);

afterAll(async () => {
  for (const conn of conns.values()) conn.close();
  await t?.close();
  await labDown({ id: LAB });
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the signed policy on lab hosts', () => {
  let grantId: string;
  let firstVersion: number;

  it('pushes to every host in parallel; a host cut off is unreachable, the others verify the signature with their own openssl', async () => {
    const made = await c.ok('principals:create', { kind: 'application', name: 'triage-bot' });
    credential = made.credentials[0]!.credential;
    await c.ok('enclaves:create', { name: 'ward-a', phi: true });
    await cutLink(lab, 'host3');
    const r = await c.ok('grants:add', { principal: 'app:triage-bot', model: 'triage', version: 'latest-approved', actions: ['invoke', 'pull'], expiresAt: null, requestsPerMinute: 60 });
    grantId = r.grant.id;
    firstVersion = r.policy.version!;
    const byHost = Object.fromEntries(r.policy.hosts.map((h) => [h.host, h]));
    expect(byHost.host1).toMatchObject({ state: 'ok', deliveredVersion: firstVersion, enforcingVersion: null, lastError: null });
    expect(byHost.host2).toMatchObject({ state: 'ok', deliveredVersion: firstVersion });
    // host3 still holds the policy of the application's creation (delivered before the cut).
    expect(byHost.host3).toMatchObject({ state: 'unreachable', deliveredVersion: firstVersion - 1, since: expect.any(String) });
    expect(r.policy.summary).toMatch(new RegExp(`^policy v${firstVersion} on 2/3 hosts; host3 unreachable since \\d{4}-`));
    for (const h of ['host1', 'host2']) {
      const v = await onHost(h, VERIFY_ON_HOST);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      expect(v.stdout).toContain('Signature Verified Successfully');
      // The pinned key is the console's, the policy carries the grant, the credential's hash and never the credential.
      const pem = (await onHost(h, `cat ${GATE}/policy-signing.pem`)).stdout;
      expect(pem.trim()).toBe((await c.ok('policy:status', {})).publicKey!.trim());
      const body = (await onHost(h, `cat ${GATE}/policy.json`)).stdout;
      const doc = JSON.parse(body) as { format: string; hosts: Record<string, unknown>; principals: Array<{ id: string }>; grants: Array<{ id: string; version: string; actions: string[] }> };
      expect(doc.format).toBe('airlock.gate-policy/v1');
      expect(doc.hosts).toEqual({ host1: { enclave: 'general', phi: false }, host2: { enclave: 'general', phi: false }, host3: { enclave: 'general', phi: false } });
      expect(doc.grants).toMatchObject([{ id: grantId, version: '1.2.0', actions: ['invoke', 'pull'] }]);
      expect(body).not.toContain(credential);
      // No temporary file is left behind; the files are world-readable, root-owned.
      const ls = await onHost(h, `ls -A ${GATE}; stat -c '%U %a' ${GATE}/policy.json`);
      expect(ls.stdout).not.toContain('airlock-tmp');
      expect(ls.stdout.trim().split('\n').at(-1)).toBe('root 644');
    }
    // The signature does not verify for changed bytes (the same stock openssl check).
    const bad = await onHost('host1', `set -e; cp ${GATE}/policy.json /tmp/p.json; sed -i 's/1.2.0/1.2.1/' /tmp/p.json; base64 -d ${GATE}/policy.json.sig > /tmp/s; openssl pkeyutl -verify -pubin -inkey ${GATE}/policy-signing.pem -rawin -in /tmp/p.json -sigfile /tmp/s`);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain('Signature Verification Failure');
  });

  it('shows the host unreachable since the first failure, and delivers to it at the next push once it is back', async () => {
    const before = await c.ok('policy:status', {});
    const h3 = before.hosts.find((h) => h.host === 'host3')!;
    expect(h3.state).toBe('unreachable');
    const since = h3.since;
    // Still cut: a second push keeps the original "since".
    const again = await c.ok('policy:push', {});
    expect(again.changed).toBe(false);
    expect(again.hosts.find((h) => h.host === 'host3')).toMatchObject({ state: 'unreachable', since });
    await restoreLink(lab, 'host3');
    const p = await c.ok('policy:push', {});
    expect(p.hosts.map((h) => [h.host, h.state, h.deliveredVersion])).toEqual([
      ['host1', 'ok', firstVersion],
      ['host2', 'ok', firstVersion],
      ['host3', 'ok', firstVersion],
    ]);
    expect(p.summary).toBe(`policy v${firstVersion} on 3/3 hosts`);
    const v = await onHost('host3', VERIFY_ON_HOST);
    expect(v.stdout).toContain('Signature Verified Successfully');
  });

  it('finds a tampered policy file and a replayed older one by its own read-back, and the next push puts them right', async () => {
    // Keep host1's current files, then move on to a newer version (host2 into the PHI enclave).
    expect((await onHost('host1', `cp ${GATE}/policy.json /tmp/old.json; cp ${GATE}/policy.json.sig /tmp/old.sig`)).code).toBe(0);
    const moved = await c.ok('enclaves:assign', { host: 'host2', enclave: 'ward-a' });
    expect(moved.policy.changed).toBe(true);
    const newer = moved.policy.version!;
    expect(newer).toBe(firstVersion + 1);
    expect(await hostVersion('host1')).toBe(newer);
    // host1: the old, validly signed policy put back (a replay); host2: one byte of the policy changed.
    expect((await onHost('host1', `cp /tmp/old.json ${GATE}/policy.json; cp /tmp/old.sig ${GATE}/policy.json.sig`)).code).toBe(0);
    expect((await onHost('host2', `sed -i 's/"invoke","pull"/"invoke","pull","push"/' ${GATE}/policy.json`)).code).toBe(0);
    const st = await c.ok('policy:status', { check: true });
    const byHost = Object.fromEntries(st.hosts.map((h) => [h.host, h]));
    // "delivered" is what this console last delivered there; the error names what the host holds.
    expect(byHost.host1).toMatchObject({ state: 'rejected', deliveredVersion: newer, lastError: `the host holds policy v${firstVersion}, older than the v${newer} delivered to it (replayed)` });
    expect(byHost.host2).toMatchObject({ state: 'rejected', enclave: 'ward-a', phi: true, lastError: expect.stringContaining('is not a policy this console issued') });
    expect(byHost.host3).toMatchObject({ state: 'ok', deliveredVersion: newer });
    const fixed = await c.ok('policy:push', {});
    expect(fixed.changed).toBe(false);
    expect(fixed.hosts.every((h) => h.state === 'ok' && h.deliveredVersion === newer)).toBe(true);
    for (const h of ['host1', 'host2']) {
      expect(await hostVersion(h)).toBe(newer);
      expect((await onHost(h, VERIFY_ON_HOST)).stdout).toContain('Signature Verified Successfully');
    }
  });

  it('refuses a host that pins another signing key, until the push re-pins it by name', async () => {
    const other = path.join(work, 'other.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path.join(work, 'other.key')]);
    execFileSync('openssl', ['pkey', '-in', path.join(work, 'other.key'), '-pubout', '-out', other]);
    const pem = fs.readFileSync(other, 'utf8');
    expect((await onHost('host3', `printf '%s' ${Buffer.from(pem).toString('base64')} | base64 -d > ${GATE}/policy-signing.pem`)).code).toBe(0);
    const revoked = await c.ok('grants:revoke', { id: grantId, reason: 'triage moves to a new bot' });
    const v = revoked.policy.version!;
    const h3 = revoked.policy.hosts.find((h) => h.host === 'host3')!;
    expect(h3).toMatchObject({ state: 'rejected', lastError: expect.stringContaining('pins another policy signing key') });
    expect(h3.lastError).toContain('--repin host3');
    // Nothing was written there: it still holds the previous version under the foreign key.
    expect(await hostVersion('host3')).toBe(v - 1);
    expect((await c.call('policy:push', { repin: ['nohost'] })).ok).toBe(false);
    const repinned = await c.ok('policy:push', { repin: ['host3'] });
    expect(repinned.hosts.find((h) => h.host === 'host3')).toMatchObject({ state: 'ok', deliveredVersion: v });
    expect((await onHost('host3', VERIFY_ON_HOST)).stdout).toContain('Signature Verified Successfully');
    // The revoked grant is gone from every host's policy.
    for (const h of ['host1', 'host2', 'host3']) expect((await onHost(h, `cat ${GATE}/policy.json`)).stdout).not.toContain(grantId);
  });

  it('treats what a host says about its gate as untrusted: a hostile gate.pid is never run, an oversized or malformed status.json is not believed', async () => {
    // A gate.pid that is a command, and a status.json claiming the current version but far too large.
    const st = await c.ok('policy:status', {});
    const head = JSON.stringify({ policyVersion: st.version, policySha256: st.sha256, loadedAt: 'x', lastRejected: null }).slice(0, -1);
    const setup = await onHost(
      'host1',
      `set -e; mkdir -p /run/airlock-gate; printf '%s' '1; touch /tmp/pwned' > /run/airlock-gate/gate.pid; s=/run/airlock-gate/status.json; printf '%s,"pad":"' '${head}' > $s; head -c 200000 /dev/zero | tr '\\0' A >> $s; printf '"}' >> $s; rm -f /tmp/pwned`,
    );
    expect(setup.code, setup.stderr).toBe(0);
    // A new version (host1 moves enclave), pushed to a host whose "gate" never reports it.
    const r = await c.ok('enclaves:assign', { host: 'host1', enclave: 'ward-a' });
    const h1 = r.policy.hosts.find((h) => h.host === 'host1')!;
    expect(h1).toMatchObject({ state: 'pending', deliveredVersion: r.policy.version, enforcingVersion: null, lastError: 'delivered; the gate has not reported a status' });
    expect((await onHost('host1', 'test -e /tmp/pwned && echo yes || echo no')).stdout.trim()).toBe('no');
    // Malformed JSON with a lie in it is no better.
    await onHost('host1', `printf '%s' '{"policyVersion": ${r.policy.version}, "policySha256": "${r.policy.sha256}"' > /run/airlock-gate/status.json`);
    const checked = await c.ok('policy:status', { check: true });
    expect(checked.hosts.find((h) => h.host === 'host1')).toMatchObject({ state: 'pending', enforcingVersion: null });
    // No gate there after all: the files go, and the host is ok again.
    await onHost('host1', 'rm -rf /run/airlock-gate');
    expect((await c.ok('policy:status', { check: true })).hosts.find((h) => h.host === 'host1')).toMatchObject({ state: 'ok', deliveredVersion: r.policy.version });
  });

  it('audits every change and push with each host’s result, and keeps no credential in the database', async () => {
    const events = await c.ok('audit:list', { limit: 500 });
    const text = JSON.stringify(events);
    expect(text).not.toContain(credential);
    const outcomes = events.events.filter((e) => e.phase === 'outcome' && ['grants:add', 'grants:revoke', 'enclaves:assign', 'policy:push'].includes(e.channel));
    expect(outcomes.length).toBeGreaterThanOrEqual(6);
    const revoke = outcomes.find((e) => e.channel === 'grants:revoke')!;
    expect(JSON.stringify(revoke.params)).toMatch(/"host":"host3","state":"rejected"/);
    const repin = outcomes.find((e) => e.channel === 'policy:push' && JSON.stringify(e.params).includes('"repinned":true'));
    expect(repin).toBeDefined();
    expect(JSON.stringify(events.events.find((e) => e.channel === 'principals:create' && e.phase === 'outcome')!.params)).toContain('"credentialsIssued":["app:triage-bot"]');
    const bytes = dbBytes(t.dir);
    expect(bytes.includes(Buffer.from(credential))).toBe(false);
    expect(bytes.includes(Buffer.from(credential.slice(4)))).toBe(false);
  });
});

describe('the background retry', () => {
  it('delivers the policy to a host that comes back, without anyone pushing, and audits it as policy:retry', async () => {
    const lab2 = await labUp({ id: 'iaccretry', hosts: 2 });
    const t2 = await testCore({ sshTimeoutMs: 3000, sshPoolIdleMs: 0, stepUpMinutes: 600, policyRetryMs: 300 });
    try {
      const c2 = t2.client();
      await c2.ok('session:setup', ADMIN);
      await authorizeKey(lab2, (await c2.ok('identity:show', {})).publicKey);
      for (const h of lab2.hosts) await c2.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
      await approvedVersion(t2.dir, 'triage', '1.0.0', 'internal');
      await c2.ok('principals:create', { kind: 'application', name: 'bot' });
      await cutLink(lab2, 'host2');
      const r = await c2.ok('grants:add', { principal: 'app:bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: null });
      expect(r.policy.hosts.map((h) => h.state)).toEqual(['ok', 'unreachable']);
      await restoreLink(lab2, 'host2');
      // Wait (no time asserted) until the retry has delivered it.
      let state = '';
      for (let i = 0; i < 200 && state !== 'ok'; i++) {
        await new Promise((res) => setTimeout(res, 200));
        state = (await c2.ok('policy:status', {})).hosts.find((h) => h.host === 'host2')!.state;
      }
      expect(state).toBe('ok');
      const events = (await c2.ok('audit:list', { channel: 'policy:retry', limit: 50 })).events;
      expect(events.some((e) => JSON.stringify(e.params).includes('"host":"host2","state":"ok"'))).toBe(true);
      expect(events.every((e) => e.actor === 'alice')).toBe(true);
    } finally {
      await t2.close();
      await labDown({ id: 'iaccretry' });
    }
  }, 120_000);
});

describe('airlock principals / grants / policy (CLI)', () => {
  let data: string;
  const airlock = inProcessCli(() => data);

  it('creates an application (credential printed once), grants, files a phi grant for approval (exit 3), shows the policy', async () => {
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-access-cli-'));
    try {
      expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
      await approvedVersion(data, 'triage', '1.0.0', 'internal');
      await approvedVersion(data, 'ward-notes', '2.0', 'phi');
      const made = await airlock(['principals', 'create', 'notes-bot', '--description', 'discharge notes']);
      expect(made.code, made.stderr).toBe(EXIT.ok);
      const cred = /Credential for app:notes-bot: (alk_[A-Za-z0-9_-]{43})/.exec(made.stdout)?.[1];
      expect(cred).toBeDefined();
      expect(made.stdout).toContain('shown this once');
      const list = await airlock(['principals', 'list', '--json']);
      expect(list.json<Array<{ id: string }>>().map((p) => p.id)).toEqual(['app:notes-bot']);
      expect(list.stdout).not.toContain('alk_');

      const g = await airlock(['grants', 'add', '--principal', 'app:notes-bot', '--model', 'triage', '--latest-approved', '--action', 'invoke', '--expires', '2030-01-01T00:00:00Z', '--json']);
      expect(g.code, g.stderr).toBe(EXIT.ok);
      expect(g.json<{ grant: { status: string }; policy: { version: number } }>()).toMatchObject({ grant: { status: 'active' }, policy: { version: 2 } }); // v1 was the application's creation

      const phi = ['grants', 'add', '--principal', 'app:notes-bot', '--model', 'ward-notes', '--model-version', '2.0', '--action', 'invoke'];
      const refused = await airlock(phi);
      expect(refused.code).toBe(EXIT.failed);
      expect(refused.stderr).toContain('classified phi');
      const filed = await airlock([...phi, '--reason', 'ward A discharge notes']);
      expect(filed.code, filed.stderr + filed.stdout).toBe(EXIT.pending);
      const both = await airlock(['grants', 'add', '--principal', 'app:notes-bot', '--model', 'triage', '--action', 'invoke']);
      expect(both.code).toBe(EXIT.usage);

      const st = await airlock(['policy', 'status', '--json']);
      expect(st.json()).toMatchObject({ version: 2, grants: 1, principals: 1, hosts: [] });
      const grants = await airlock(['grants', 'list']);
      expect(grants.stdout).toMatch(/gr-[0-9a-f]{16}\tapp:notes-bot\ttriage latest-approved → 1\.0\.0 \(internal\)\tinvoke\tactive expires 2030-01-01T00:00:00\.000Z/);
      expect(dbBytes(data).includes(Buffer.from(cred!))).toBe(false);
    } finally {
      fs.rmSync(data, { recursive: true, force: true });
    }
  });
});

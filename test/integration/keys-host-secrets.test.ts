/**
 * Host secrets on a real lab host (issue 12, docs/keys.md "Host secrets"): the inference API key
 * made on the host while there is no key hierarchy (and the plan saying so); after genesis, a
 * `host-secrets` data key Airlock makes and delivers over SSH — the host's key file is the key a
 * second key service opens from the database with the officers' shares, and the inference
 * simulator accepts it (and nothing else); a changed key file is drift that apply replaces; a
 * rotation of the host-secrets KEK keeps the key openable and re-deliverable; a sealed hierarchy
 * makes the step fail closed until the officers unseal it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run, StepRecord } from '../../shared/contract/provision';
import { openDatabase } from '../../electron/core/db/db';
import { apiKeyText, inferenceKeyId, NO_HIERARCHY_NOTE } from '../../electron/core/keys/host-secrets';
import { KeyService } from '../../electron/core/keys/service';
import { shellQuote as q } from '../../electron/core/ssh/quote';
import { EXIT, runCli } from '../../electron/shells/cli';
import { authorizeKey, labDown, labUp, runOnHost, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

const LAB = 'ihsec';
const HOST = 'host1';
const KEY_FILE = '/etc/airlock/inference.key';
const UNIT = 'airlock-inference';
const ID = inferenceKeyId(HOST, UNIT);
let lab: Lab;
let t: TestCore;
let c: TestClient;
let media: string;
let shares: string[] = [];

const PLAYBOOK = {
  format: 'airlock.playbook/v1',
  name: 'hsec-inference',
  version: '1',
  steps: [
    { id: 'model', type: 'model-weights', params: { model: 'tiny-llm', version: '1', dest: '/srv/models', connections: 1 } },
    { id: 'inference', type: 'inference-service', params: { model: 'tiny-llm', version: '1', command: '/usr/local/bin/airlock-inference-sim', bind: '127.0.0.1', port: 8000 } },
  ],
};

const step = (r: Run, id: string): StepRecord => r.hosts.find((h) => h.host === HOST)!.steps.find((s) => s.stepId === id)!;
const sh = async (script: string) => runOnHost(lab, HOST, ['/bin/sh', '-c', script]);
const keyFile = async () => {
  const r = await sh(`stat -c %a ${KEY_FILE} && cat ${KEY_FILE}`);
  expect(r.code, r.stderr).toBe(0);
  const [mode, ...rest] = r.stdout.split('\n');
  return { mode, text: rest.join('\n') };
};

/** The status /v1/models answers on the host with `key` as the bearer, once the server answers at all (it may be restarting). */
async function modelsStatus(key: string): Promise<string> {
  const script = `for i in $(seq 1 60); do s=$(curl -s -o /dev/null -w '%{http_code}' -H ${q(`Authorization: Bearer ${key}`)} http://127.0.0.1:8000/v1/models); [ "$s" != 000 ] && { echo "$s"; exit 0; }; sleep 0.25; done; echo 000`;
  return (await sh(script)).stdout.trim();
}

/** The sealed key as a second key service opens it from the console's database with two officers' shares (nothing of the running console's memory). */
async function sealedKeyFromDb(): Promise<{ text: string; version: number }> {
  const db = openDatabase(path.join(t.dir, 'airlock.db'));
  try {
    const keys = new KeyService({ db, random: (n) => crypto.randomBytes(n), now: () => new Date() });
    for (const s of shares.slice(0, 2)) await keys.addShare(s);
    const raw = keys.openDataKey('host-secrets', ID);
    try {
      const version = (db.prepare("SELECT version FROM data_keys WHERE domain = 'host-secrets' AND id = ?").get(ID) as { version: number }).version;
      return { text: apiKeyText(raw), version };
    } finally {
      raw.fill(0);
      keys.seal();
    }
  } finally {
    db.close();
  }
}

async function genesis() {
  let cer = await c.ok('keys:begin', { kind: 'genesis', officers: ['Ann', 'Ben', 'Cy'], witnesses: ['Wanda'], threshold: 2 });
  cer = await c.ok('keys:acknowledge', { ceremony: cer.id, step: 1, by: 'alice' });
  cer = await c.ok('keys:acknowledge', { ceremony: cer.id, step: 2, by: 'Wanda' });
  await c.ok('keys:genesis', { ceremony: cer.id });
  shares = [];
  for (const [k, o] of ['Ann', 'Ben', 'Cy'].entries()) {
    await c.ok('keys:acknowledge', { ceremony: cer.id, step: 4 + k, by: o });
    shares.push((await c.ok('keys:issueShare', { ceremony: cer.id, officer: o })).armored);
  }
  await c.ok('keys:acknowledge', { ceremony: cer.id, step: 7, by: 'Wanda' });
}

beforeAll(async () => {
  lab = await labUp({ id: LAB, hosts: 1 });
  media = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-hsec-media-'));
  t = await testCore({ mediaRoots: [media], sshTimeoutMs: 10_000, stepUpMinutes: 600 });
  c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  const h = lab.hosts[0]!;
  await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  const dir = path.join(media, 'tiny');
  fs.mkdirSync(dir);
  const files: Record<string, Buffer> = { 'model.safetensors': crypto.randomBytes(64 * 1024), 'config.json': Buffer.from('{"max_position_embeddings":8192}\n') };
  for (const [f, b] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), b);
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), Object.entries(files).map(([f, b]) => `${crypto.createHash('sha256').update(b).digest('hex')}  ${f}\n`).join(''));
  await c.ok('store:importModel', { dir, name: 'tiny-llm', version: '1' });
  await c.ok('provision:importPlaybook', { text: JSON.stringify(PLAYBOOK) });
}, 240_000);

afterAll(async () => {
  await t?.close();
  await labDown({ id: LAB });
  if (media) fs.rmSync(media, { recursive: true, force: true });
});

describe('the inference API key as a host secret', () => {
  it('without a key hierarchy the host makes its own key, and the plan says so', async () => {
    const plan = await c.ok('provision:plan', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(step(plan, 'inference')).toMatchObject({ status: 'would-change', message: NO_HIERARCHY_NOTE });
    expect(step(plan, 'inference').changes.find((x) => x.target === KEY_FILE)?.to).toMatch(/made on the host/);
    const r = await c.ok('provision:apply', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(r.status, JSON.stringify(r.hosts[0]!.steps.map((s) => [s.stepId, s.status, s.message]))).toBe('succeeded');
    const f = await keyFile();
    expect(f.mode).toBe('600');
    expect(f.text.length).toBeGreaterThan(20);
    expect(await modelsStatus(f.text)).toBe('200');
    expect(await c.ok('keys:hostSecrets', {})).toEqual([]);
    const facts = (await c.ok('attest:show', { host: HOST })).attestation.facts as Record<string, { facts: Record<string, unknown> }>;
    expect(facts.inference!.facts).toMatchObject({ apiKey: 'made-on-host' });
  });

  it('after genesis the host-made key is replaced by a sealed one: the host file is the key the database opens, and the server accepts only it', async () => {
    const before = (await keyFile()).text;
    await genesis();
    const plan = await c.ok('provision:plan', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(step(plan, 'inference').status).toBe('would-change');
    expect(step(plan, 'inference').changes.find((x) => x.target === KEY_FILE)).toMatchObject({ from: 'a key Airlock did not seal (replaced)', to: 'a new API key sealed under the host-secrets KEK (0600)' });

    const r = await c.ok('provision:apply', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(r.status, JSON.stringify(r.hosts[0]!.steps.map((s) => [s.stepId, s.status, s.message]))).toBe('succeeded');
    const listed = await c.ok('keys:hostSecrets', {});
    expect(listed).toEqual([{ host: HOST, unit: UNIT, id: ID, kind: 'inference-api-key', kekVersion: 1, createdAt: expect.any(String) }]);

    const sealed = await sealedKeyFromDb();
    const f = await keyFile();
    expect(f).toEqual({ mode: '600', text: sealed.text });
    expect(sealed.text).not.toBe(before);
    expect(await modelsStatus(sealed.text)).toBe('200');
    expect(await modelsStatus(before)).toBe('401');
    expect(await modelsStatus(`${sealed.text.slice(0, -1)}x`)).toBe('401');
    const facts = (await c.ok('attest:show', { host: HOST })).attestation.facts as Record<string, { facts: Record<string, unknown> }>;
    expect(facts.inference!.facts).toMatchObject({ apiKey: 'host-secrets' });
    // Neither the audit trail nor the run's logs carry the key.
    const trail = JSON.stringify(await c.ok('audit:list', { limit: 1000 }));
    expect(trail).not.toContain(sealed.text);
    expect(JSON.stringify(await c.ok('provision:status', { runId: r.id }))).not.toContain(sealed.text);

    const again = await c.ok('provision:plan', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(step(again, 'inference')).toMatchObject({ status: 'ok', changes: [] });
  });

  it('a key file changed on the host is drift: the plan shows it and apply puts the sealed key back', async () => {
    const w = await sh(`printf %s not-the-key > ${KEY_FILE}`);
    expect(w.code, w.stderr).toBe(0);
    const plan = await c.ok('provision:plan', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(step(plan, 'inference').changes.find((x) => x.target === KEY_FILE)).toMatchObject({ from: 'another key, or a mode other than 0600 (drift)', to: 'the API key sealed under the host-secrets KEK (0600)' });
    const r = await c.ok('provision:apply', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(r.status).toBe('succeeded');
    expect(await keyFile()).toEqual({ mode: '600', text: (await sealedKeyFromDb()).text });
  });

  it('a rotation of the host-secrets KEK rewraps the key: still the same key, openable, and re-deliverable', async () => {
    const key = (await sealedKeyFromDb()).text;
    let cer = await c.ok('keys:begin', { kind: 'rotate-kek', witnesses: ['Wanda'], domain: 'host-secrets' });
    cer = await c.ok('keys:acknowledge', { ceremony: cer.id, step: 1, by: 'alice' });
    expect(await c.ok('keys:rotateKek', { ceremony: cer.id })).toMatchObject({ domain: 'host-secrets', version: 2, rewrapped: 1 });
    await c.ok('keys:acknowledge', { ceremony: cer.id, step: 3, by: 'Wanda' });
    expect((await c.ok('keys:hostSecrets', { host: HOST })).map((s) => s.kekVersion)).toEqual([2]);
    expect(await sealedKeyFromDb()).toEqual({ text: key, version: 2 });

    // Already there: nothing written, nothing restarted.
    expect(await c.ok('keys:redeliverHostSecret', { host: HOST, id: ID })).toMatchObject({ outcome: 'already', restarted: false, kekVersion: 2, path: KEY_FILE });
    // Lost on the host: delivered again and the server restarted to read it.
    expect((await sh(`rm -f ${KEY_FILE}`)).code).toBe(0);
    expect(await c.ok('keys:redeliverHostSecret', { host: HOST, id: ID })).toMatchObject({ outcome: 'delivered', restarted: true, kekVersion: 2, path: KEY_FILE });
    expect(await keyFile()).toEqual({ mode: '600', text: key });
    expect(await modelsStatus(key)).toBe('200');
    expect(step(await c.ok('provision:plan', { playbook: PLAYBOOK.name, hosts: [HOST] }), 'inference')).toMatchObject({ status: 'ok' });
  });

  it('a sealed hierarchy fails the step closed with KEY_UNAVAILABLE; unsealed by the officers, the run goes through', async () => {
    await c.ok('keys:seal', {});
    const plan = await c.ok('provision:plan', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(step(plan, 'inference')).toMatchObject({ status: 'failed', errorCode: 'KEY_UNAVAILABLE', message: expect.stringMatching(/^The host-secrets key is sealed: unseal the hierarchy \(2 officers\) and run again\./) });
    const apply = await c.ok('provision:apply', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(step(apply, 'inference')).toMatchObject({ status: 'failed', errorCode: 'KEY_UNAVAILABLE' });
    expect(await c.call('keys:redeliverHostSecret', { host: HOST, id: ID })).toMatchObject({ ok: false, error: { code: 'KEY_UNAVAILABLE' } });
    // The key on the host was not touched.
    expect((await keyFile()).text).toBe((await sealedKeyFromDb()).text);

    let un = await c.ok('keys:begin', { kind: 'unseal' });
    un = await c.ok('keys:acknowledge', { ceremony: un.id, step: 1, by: 'alice' });
    await c.ok('keys:addShare', { ceremony: un.id, share: shares[0]! });
    expect(await c.ok('keys:addShare', { ceremony: un.id, share: shares[2]! })).toMatchObject({ done: true });
    const r = await c.ok('provision:apply', { playbook: PLAYBOOK.name, hosts: [HOST] });
    expect(r.status, JSON.stringify(r.hosts[0]!.steps.map((s) => [s.stepId, s.status, s.message]))).toBe('succeeded');
  });

  it('from the CLI: host-secrets lists without the value; redeliver-host-secret unseals with the shares given and delivers', async () => {
    async function airlock(args: string[]) {
      let stdout = '';
      let stderr = '';
      const code = await runCli([...args, '--data', t.dir], {
        stdout: (x) => (stdout += x),
        stderr: (x) => (stderr += x),
        env: { AIRLOCK_USER: ADMIN.admin, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' },
        prompt: null,
        rendererDir: t.dir,
        version: 'test',
      });
      return { code, stdout, stderr };
    }
    const key = (await sealedKeyFromDb()).text;
    const list = await airlock(['keys', 'host-secrets', '--json']);
    expect(list.code, list.stderr).toBe(EXIT.ok);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ host: HOST, unit: UNIT, id: ID, kekVersion: 2 })]);
    expect(list.stdout).not.toContain(key);
    const human = await airlock(['keys', 'host-secrets']);
    expect(human.stdout).toMatch(new RegExp(`^${HOST}\\t${UNIT}\\t${ID}\\tKEK v2\\t`, 'm'));

    const files = shares.slice(1).map((armored, k) => {
      const f = path.join(media, `share-${k}.txt`);
      fs.writeFileSync(f, armored, { mode: 0o600 });
      return f;
    });
    // Each CLI invocation is its own console process: sealed, so the shares are needed.
    const sealed = await airlock(['keys', 'redeliver-host-secret', HOST, ID]);
    expect(sealed.code).toBe(EXIT.failed);
    expect(sealed.stderr).toMatch(/KEY_UNAVAILABLE: The host-secrets key is sealed: unseal the hierarchy \(2 officers\) and run again\./);
    expect((await sh(`rm -f ${KEY_FILE}`)).code).toBe(0);
    const r = await airlock(['keys', 'redeliver-host-secret', HOST, ID, ...files.flatMap((f) => ['--share', f]), '--json']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(JSON.parse(r.stdout)).toMatchObject({ host: HOST, id: ID, outcome: 'delivered', restarted: true, path: KEY_FILE });
    expect(r.stdout).not.toContain(key);
    expect(await keyFile()).toEqual({ mode: '600', text: key });
    expect(await modelsStatus(key)).toBe('200');
  });
});

/**
 * The console's access policy enforced by the real gate, end to end (issue 13). One lab: a GPU host
 * running the inference simulator on its loopback and the registry host (Debian's docker-registry
 * 2.8.2). A console (testCore, a real data dir) enrols both, imports a model from a media root,
 * approves it and publishes it to the registry with its own registry token; the gate is installed
 * over SSH (install.ts) on the GPU host (invoke, upstream = the simulator serving
 * `<model>:<version>`) and on the registry host (pull: the registry's token realm), pinning the
 * console's own `policy.signing` public key (policy:status). From then on ONLY the console's
 * channels do policy work — no test signer:
 *
 * - an application created, no grant at all → known to the gates, granted nothing: 403 from the gate,
 *   an empty token from the realm, no pull; a credential the console never issued → 401;
 * - granted another model only → the gate answers 403 `not_granted` and the registry refuses the pull
 *   (the realm's token carries no access);
 * - a grant (invoke + pull) → served (JSON and SSE) and pulled;
 * - the grant revoked → once policy:status reads the new version enforced on the hosts, 403 and a
 *   new token no longer pulls;
 * - a new grant, then `models:revoke` of that version → the catalog channel itself pushes the
 *   policy and the gate refuses the request;
 * - enclaves: a phi version granted (two-person rule) → 403 `phi_enclave` on a host of a non-PHI
 *   enclave; `enclaves:assign` to a PHI enclave pushes the hosts map and the same request is served;
 * - the access logs on both hosts and the console's SQLite file hold none of the prompts and never
 *   the credential.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import { createIssuingCa, createRootCa, issueCertificate } from '../../electron/core/keys/ca';
import { GATE_PATHS, installGate, writeGateFiles } from '../../electron/core/models/gate/install';
import { RegistryClient } from '../../electron/core/models/registry/client';
import type { TokenSigner } from '../../electron/core/models/registry/token';
import { connect, type SshConnection } from '../../electron/core/ssh/connection';
import { AirlockError } from '../../shared/domain/errors';
import { authorizeKey, configureRegistry, labDown, labUp, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

const LAB_ID = 'accgate';
const SERVICE = 'airlock-lab-registry';
const ISSUER = 'airlock';
const GATE_PORT = 8443;
const METRICS_PORT = 9464;
const REALM_PORT = 5001;
const MODEL = 'triage';
const VERSION = '1.2.0';
const random = (n: number) => crypto.randomBytes(n);

let lab: Lab;
let t: TestCore;
let c: TestClient;
let media: string;
let gpu: SshConnection;
let reg: SshConnection;
let gateUrl: string;
let realmUrl: string;
let manifestDigest = '';
let app: { id: string; cred: string };
/** Every prompt sent through the gate: none may appear in a log or in the console's database. */
const prompts: string[] = [];
const prompt = () => {
  const p = `discharge summary ${crypto.randomBytes(6).toString('hex')} mentions fever since ${crypto.randomBytes(4).toString('hex')}`;
  prompts.push(p);
  return p;
};

async function sh(conn: SshConnection, cmd: string): Promise<string> {
  const r = await conn.exec(cmd, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function invoke(body: unknown, cred: string | null = app.cred) {
  return fetch(`${gateUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cred ? { authorization: `Bearer ${cred}` } : {}) },
    body: JSON.stringify(body),
  });
}
/** A completion's status and the gate's error code (when it refused). */
async function complete(model = `${MODEL}:${VERSION}`): Promise<{ status: number; code: string | null }> {
  const r = await invoke({ model, prompt: prompt(), max_tokens: 4 });
  const text = await r.text();
  let code: string | null = null;
  if (r.status !== 200) code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
  return { status: r.status, code };
}

/** The docker token flow against the gate's realm: HTTP Basic with the principal id and its credential. */
async function realmToken(scope: string): Promise<{ status: number; token?: string; access?: unknown }> {
  const r = await fetch(`${realmUrl}/token?service=${encodeURIComponent(SERVICE)}&scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: `Basic ${Buffer.from(`${app.id}:${app.cred}`).toString('base64')}` },
  });
  const text = await r.text();
  if (r.status !== 200) return { status: r.status };
  const token = (JSON.parse(text) as { token: string }).token;
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: unknown };
  return { status: 200, token, access: claims.access };
}
/** Pulls the version's manifest by digest as the application does: a fresh token from the realm each time. */
async function pull(): Promise<string> {
  const client = new RegistryClient({
    baseUrl: lab.registry!.url,
    token: async (req) => {
      const tk = await realmToken(req.scope ?? '');
      if (!tk.token) throw new AirlockError('BAD_CREDENTIALS', `realm answered ${tk.status}`);
      return tk.token;
    },
  });
  return client.getManifest(`models/${MODEL}`, manifestDigest).then(
    (m) => (m?.digest === manifestDigest ? 'ok' : 'missing'),
    (e: unknown) => (e instanceof AirlockError ? e.code : String(e)),
  );
}

/** Polls the console's policy:status (it reads each gate's status.json) until both hosts enforce `version`. No time is asserted. */
async function enforced(version: number): Promise<void> {
  let hosts: Array<{ host: string; state: string; enforcingVersion: number | null }> = [];
  for (let i = 0; i < 100; i++) {
    hosts = (await c.ok('policy:status', { check: true })).hosts;
    if (hosts.length === 2 && hosts.every((h) => h.state === 'ok' && h.enforcingVersion === version)) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  expect(hosts.map((h) => [h.host, h.state, h.enforcingVersion])).toEqual([
    ['host1', 'ok', version],
    ['registry', 'ok', version],
  ]);
}

function dbBytes(dir: string): Buffer {
  return Buffer.concat(
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('airlock.db'))
      .map((f) => fs.readFileSync(path.join(dir, f))),
  );
}

beforeAll(async () => {
  lab = await labUp({ id: LAB_ID, hosts: 1, registry: true, replace: true });
  const h1 = lab.hosts.find((h) => h.name === 'host1')!;
  const rh = lab.hosts.find((h) => h.name === 'registry')!;
  gateUrl = `http://${h1.address}:${GATE_PORT}`;
  realmUrl = `http://${rh.address}:${REALM_PORT}`;

  // Airlock's CA material: the realm's delegated token certificate and the console's own (for publishing).
  const now = new Date();
  const root = await createRootCa({ commonName: 'Airlock Root', validityDays: 30, now, random });
  const issuing = await createIssuingCa(root, { commonName: 'Airlock Issuing', validityDays: 20, now, random });
  const realmLeaf = await issueCertificate(issuing, { profile: 'registry-token', commonName: 'registry tokens (realm)', validityDays: 10, now, random });
  const consoleLeaf = await issueCertificate(issuing, { profile: 'registry-token', commonName: 'registry tokens (console)', validityDays: 10, now, random });
  const signer: TokenSigner = { certPem: consoleLeaf.certPem, chainPems: [issuing.certPem], privateKeyPkcs8: consoleLeaf.privateKeyPkcs8! };
  const realmKeyPem = crypto.createPrivateKey({ key: realmLeaf.privateKeyPkcs8!, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  await configureRegistry(lab, { auth: { realm: `${realmUrl}/token`, service: SERVICE, issuer: ISSUER, rootCertBundlePem: `${realmLeaf.certPem.trim()}\n${consoleLeaf.certPem.trim()}\n` } });

  // The console, on a real data dir, with a media root holding the model's files.
  media = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-accgate-media-')));
  fs.mkdirSync(path.join(media, 'triage'));
  fs.writeFileSync(path.join(media, 'triage', 'model.safetensors'), crypto.randomBytes(64 * 1024));
  t = await testCore({ mediaRoots: [media], modelsRegistryTokens: { signer, issuer: ISSUER, service: SERVICE }, stepUpMinutes: 600 });
  c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });

  // Imported from the media root, approved, published to the lab registry (the console's own push token).
  await c.ok('models:setRegistry', { url: lab.registry!.url });
  await c.ok('models:import', { format: 'directory', path: path.join(media, 'triage'), name: MODEL, version: VERSION, owner: 'ML', classification: 'internal', license: 'apache-2.0', source: 'usb 7' });
  const approved = await c.ok('models:approve', { name: MODEL, version: VERSION });
  const published = await c.ok('models:publish', { name: MODEL, version: VERSION });
  expect(published.digest).toBe(approved.manifestDigest);
  manifestDigest = published.digest;

  // A second model, approved, that the application will be granted instead of triage.
  fs.mkdirSync(path.join(media, 'summarize'));
  fs.writeFileSync(path.join(media, 'summarize', 'model.safetensors'), crypto.randomBytes(16 * 1024));
  await c.ok('models:import', { format: 'directory', path: path.join(media, 'summarize'), name: 'summarize', version: '0.9.0', owner: 'ML', classification: 'internal', license: 'apache-2.0', source: 'usb 7' });
  await c.ok('models:approve', { name: 'summarize', version: '0.9.0' });

  // The application: its credential shown once. The first policy (no grant yet) signed and pushed by the console.
  const made = await c.ok('principals:create', { kind: 'application', name: 'triage-bot' });
  app = { id: made.principal.id, cred: made.credentials[0]!.credential };
  const pushed = await c.ok('policy:push', {});
  expect(pushed.version).toBe(1);
  const st = await c.ok('policy:status', {});
  expect(st.publicKey).toMatch(/BEGIN PUBLIC KEY/);

  // The gate on both hosts, pinning the console's policy.signing key, over the test's own SSH key.
  const me = generateIdentity('airlock-accgate-test');
  await authorizeKey(lab, me.publicKey);
  gpu = await connect({ address: h1.address, port: h1.port, user: h1.user, fingerprint: h1.fingerprint, hostName: h1.name }, { privateKey: me.privateKey }, { timeoutMs: 30_000 });
  reg = await connect({ address: rh.address, port: rh.port, user: rh.user, fingerprint: rh.fingerprint, hostName: rh.name }, { privateKey: me.privateKey }, { timeoutMs: 30_000 });
  await sh(gpu, `mkdir -p /srv/models/${MODEL}/${VERSION} && echo weights > /srv/models/${MODEL}/${VERSION}/model.safetensors`);
  await writeGateFiles(gpu, [
    {
      path: '/etc/systemd/system/inference-triage.service',
      data: `[Service]\nExecStart=/usr/local/bin/airlock-inference-sim --model /srv/models/${MODEL}/${VERSION} --served-model-name ${MODEL}:${VERSION} --host 127.0.0.1 --port 8000\n`,
      mode: 0o644,
    },
  ]);
  await sh(gpu, 'systemctl daemon-reload && systemctl start inference-triage.service');
  const onGpu = await installGate(gpu, {
    config: { host: 'host1', roles: ['invoke'], listen: `${h1.address}:${GATE_PORT}`, upstream: '127.0.0.1:8000', metricsListen: `${h1.address}:${METRICS_PORT}` },
    policySigningKeyPem: st.publicKey!,
  });
  const onReg = await installGate(reg, {
    config: {
      host: 'registry',
      roles: ['pull'],
      listen: `${rh.address}:${REALM_PORT}`,
      metricsListen: `${rh.address}:${METRICS_PORT}`,
      registry: { service: SERVICE, issuer: ISSUER, keyFile: GATE_PATHS.tokenKey, chainFile: GATE_PATHS.tokenChain, ttlSeconds: 120 },
    },
    policySigningKeyPem: st.publicKey!,
    tokenKeyPem: realmKeyPem,
    tokenChainPem: `${realmLeaf.certPem.trim()}\n${issuing.certPem.trim()}\n`,
  });
  // Both gates took the console's policy already on the host: its signature and shape pass the gate's strict check.
  for (const s of [onGpu, onReg]) expect(s).toMatchObject({ policyVersion: 1, policySha256: pushed.sha256, lastRejected: null });
}, 300_000);

afterAll(async () => {
  gpu?.close();
  reg?.close();
  await t?.close();
  await labDown({ id: LAB_ID });
  if (media) fs.rmSync(media, { recursive: true, force: true });
}, 120_000);

describe('the console’s policy enforced by the gate on lab hosts', () => {
  let grantId = '';

  it('without any grant the application is known and granted nothing: 403 from the gate, an empty token, no pull', async () => {
    await enforced(1);
    expect(await complete()).toEqual({ status: 403, code: 'not_granted' });
    expect(await realmToken(`repository:models/${MODEL}:pull`)).toMatchObject({ status: 200, access: [] });
    expect(await pull()).toBe('BAD_CREDENTIALS');
    expect((await invoke({ model: `${MODEL}:${VERSION}`, prompt: prompt() }, `alk_${crypto.randomBytes(32).toString('base64url')}`)).status).toBe(401);
  });

  it('granted another model only: the gate answers 403 for triage and the registry refuses its pull', async () => {
    const g = await c.ok('grants:add', { principal: app.id, model: 'summarize', version: { exact: '0.9.0' }, actions: ['invoke'], expiresAt: null });
    expect(g.policy.version).toBe(2);
    await enforced(2);
    expect(await complete()).toEqual({ status: 403, code: 'not_granted' });
    expect((await invoke({ model: `${MODEL}:${VERSION}`, prompt: prompt() }, `alk_${crypto.randomBytes(32).toString('base64url')}`)).status).toBe(401);
    // The realm knows the credential but it carries no pull grant: a token with empty access, and the registry says no.
    const tk = await realmToken(`repository:models/${MODEL}:pull`);
    expect(tk).toMatchObject({ status: 200, access: [] });
    expect(await pull()).toBe('BAD_CREDENTIALS');
  });

  it('with a grant (invoke + pull): the policy is pushed, the request is served (also streamed) and the pull works', async () => {
    const g = await c.ok('grants:add', { principal: app.id, model: MODEL, version: { exact: VERSION }, actions: ['invoke', 'pull'], expiresAt: null });
    grantId = g.grant.id;
    expect(g.policy.version).toBe(3);
    // The push waits for running gates: both report v2 enforced.
    expect(g.policy.hosts.map((h) => [h.host, h.state, h.enforcingVersion])).toEqual([
      ['host1', 'ok', 3],
      ['registry', 'ok', 3],
    ]);
    expect(g.policy.summary).toBe('policy v3 on 2/2 hosts');

    const r = await invoke({ model: `${MODEL}:${VERSION}`, prompt: prompt(), max_tokens: 5 });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ model: `${MODEL}:${VERSION}`, usage: { completion_tokens: 5 } });
    expect((await complete(MODEL)).status).toBe(200); // the bare name: the one version granted

    const s = await invoke({ model: MODEL, prompt: prompt(), max_tokens: 3, stream: true, stream_options: { include_usage: true } });
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toContain('text/event-stream');
    const events = (await s.text()).split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.length).toBe(5); // three tokens, the usage chunk, [DONE]
    expect(events.at(-1)).toBe('data: [DONE]');

    const tk = await realmToken(`repository:models/${MODEL}:pull,push`);
    expect(tk.access).toEqual([{ type: 'repository', name: `models/${MODEL}`, actions: ['pull'] }]);
    expect(await pull()).toBe('ok');
  });

  it('after grants:revoke: once the hosts enforce the new version, 403 and a new token no longer pulls', async () => {
    const r = await c.ok('grants:revoke', { id: grantId, reason: 'triage-bot retired' });
    expect(r.policy.version).toBe(4);
    await enforced(4);
    expect(await complete()).toEqual({ status: 403, code: 'not_granted' });
    expect((await realmToken(`repository:models/${MODEL}:pull`)).access).toEqual([]);
    expect(await pull()).toBe('BAD_CREDENTIALS');
  });

  it('models:revoke of a version with a live grant pushes the policy itself, and the gate refuses it', async () => {
    const g = await c.ok('grants:add', { principal: app.id, model: MODEL, version: { exact: VERSION }, actions: ['invoke', 'pull'], expiresAt: null });
    expect(g.policy.version).toBe(5);
    await enforced(5);
    expect((await complete()).status).toBe(200);
    expect(await pull()).toBe('ok');

    await c.ok('models:revoke', { name: MODEL, version: VERSION, reason: 'found a labelling error in its training set' });
    // No grants:* or policy:* call in between: the catalog channel pushed v6.
    const st = await c.ok('policy:status', {});
    expect(st.version).toBe(6);
    const outcome = (await c.ok('audit:list', { channel: 'models:revoke', limit: 5 })).events.find((e) => e.phase === 'outcome')!;
    expect(JSON.stringify(outcome.params)).toMatch(/"policy":\{[^}]*"version":6/);
    await enforced(6);
    expect(await complete()).toEqual({ status: 403, code: 'not_granted' });
    expect(await pull()).toBe('BAD_CREDENTIALS');
    const onHost = JSON.parse(await sh(gpu, `cat ${GATE_PATHS.policy}`)) as { version: number; grants: unknown[] };
    expect(onHost).toMatchObject({ version: 6, grants: [expect.objectContaining({ model: 'summarize' })] });
  });

  it('enclaves: a phi version granted to the application is refused on a host outside a PHI enclave, served once enclaves:assign puts it in one', async () => {
    // A second person for the two-person rule (phi approval, phi grant).
    await c.ok('users:create', { name: 'olga', password: 'olga own password', roles: ['officer'], mustChangePassword: false });
    const olga = t.client();
    await olga.ok('session:login', { name: 'olga', password: 'olga own password' });
    const twoPerson = async (channel: 'models:approve' | 'grants:add', input: Record<string, unknown>, reason: string) => {
      expect(await c.call(channel, input as never)).toMatchObject({ ok: false, error: { code: 'APPROVAL_REQUIRED' } });
      const q = await c.ok('approvals:request', { channel, input, reason });
      await olga.ok('approvals:approve', { id: q.id, reason: 'checked with the ward' });
      return c.ok('approvals:execute', { id: q.id });
    };
    fs.mkdirSync(path.join(media, 'notes'));
    fs.writeFileSync(path.join(media, 'notes', 'model.safetensors'), crypto.randomBytes(16 * 1024));
    await c.ok('models:import', { format: 'directory', path: path.join(media, 'notes'), name: 'notes', version: '1.0.0', owner: 'ML', classification: 'phi', license: 'internal', source: 'run 9' });
    await twoPerson('models:approve', { name: 'notes', version: '1.0.0' }, 'ward A discharge notes model');
    await twoPerson('grants:add', { principal: app.id, model: 'notes', version: { exact: '1.0.0' }, actions: ['invoke'], expiresAt: null }, 'triage-bot drafts ward A discharge notes');
    const granted = await c.ok('policy:status', {});
    expect(granted.version).toBe(7);
    await enforced(7);

    // host1's inference server now serves the phi version (the general one was revoked above).
    await writeGateFiles(gpu, [
      {
        path: '/etc/systemd/system/inference-triage.service',
        data: '[Service]\nExecStart=/usr/local/bin/airlock-inference-sim --model /srv/models/triage/1.2.0 --served-model-name notes:1.0.0 --host 127.0.0.1 --port 8000\n',
        mode: 0o644,
      },
    ]);
    await sh(gpu, 'systemctl daemon-reload && systemctl restart inference-triage.service');

    // host1 is in the general enclave: the grant is in its policy, the gate refuses the phi version there.
    expect(await complete('notes:1.0.0')).toEqual({ status: 403, code: 'phi_enclave' });
    await c.ok('enclaves:create', { name: 'ward-a', phi: true });
    const moved = await c.ok('enclaves:assign', { host: 'host1', enclave: 'ward-a' });
    expect(moved.policy.version).toBe(8);
    await enforced(8);
    const doc = JSON.parse(await sh(gpu, `cat ${GATE_PATHS.policy}`)) as { hosts: Record<string, unknown> };
    expect(doc.hosts).toEqual({ host1: { enclave: 'ward-a', phi: true }, registry: { enclave: 'general', phi: false } });
    let served = await complete('notes:1.0.0');
    // The simulator may still be starting after its restart: wait until it answers (no time asserted).
    for (let i = 0; i < 50 && served.status === 502; i++) {
      await new Promise((res) => setTimeout(res, 200));
      served = await complete('notes:1.0.0');
    }
    expect(served).toEqual({ status: 200, code: null });
  });

  it('the hosts’ logs and the console’s SQLite file hold none of the prompts and never the credential', async () => {
    const access = await sh(gpu, `cat ${GATE_PATHS.accessLog}`);
    const logs = [access, await sh(gpu, `cat ${GATE_PATHS.gateLog}`), await sh(reg, `cat ${GATE_PATHS.accessLog} ${GATE_PATHS.gateLog}`)].join('\n');
    const db = dbBytes(t.dir);
    expect(prompts.length).toBeGreaterThan(5);
    for (const p of prompts) {
      expect(logs).not.toContain(p);
      expect(db.includes(Buffer.from(p))).toBe(false);
      for (const word of p.split(' ').filter((w) => /\d/.test(w))) {
        expect(logs).not.toContain(word);
        expect(db.includes(Buffer.from(word))).toBe(false);
      }
    }
    for (const needle of [app.cred, app.cred.slice(4)]) {
      expect(logs).not.toContain(needle);
      expect(db.includes(Buffer.from(needle))).toBe(false);
    }
    // The access log has the decisions, by principal: served and refused.
    const lines = access.trim().split('\n').map((l) => JSON.parse(l) as { principal: string | null; status: number; role: string });
    expect(lines.some((l) => l.principal === app.id && l.status === 200 && l.role === 'invoke')).toBe(true);
    expect(lines.some((l) => l.principal === app.id && l.status === 403)).toBe(true);
  });
});

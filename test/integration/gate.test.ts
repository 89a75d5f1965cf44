/**
 * The gate (electron/core/models/gate/airlock-gate.py) on real lab hosts, installed over SSH by
 * install.ts, run by the host's /usr/bin/python3 and openssl:
 *
 * - invoke, on a GPU host, in front of the inference simulator bound to the host's loopback;
 * - pull, on the registry host, as the token realm of Debian's docker-registry 2.8.2.
 *
 * Policies are signed in the test exactly per docs/gate.md (test/support/gate-policy.ts). Shown:
 * no policy → 503 (both roles); no grant → 403 and the registry refuses the pull; a grant → served
 * (streamed too) and a docker-style pull with the realm's token works; revocation → 403 and a new
 * token no longer pulls; a PHI version on a non-PHI host → 403; rate limit → 429; tampered,
 * unsigned, foreign-key, malformed and older (replayed, also across a restart) policies refused,
 * logged, the last good one kept; hostile requests → 4xx and the gate lives; the access log, the
 * gate log and the metrics hold none of the prompts.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuingCa, createRootCa, issueCertificate } from '../../electron/core/keys/ca';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import { installGate, pushGatePolicy, readGateStatus, waitForGatePolicy, writeGateFiles, GATE_PATHS, type GateStatus } from '../../electron/core/models/gate/install';
import { RegistryClient } from '../../electron/core/models/registry/client';
import { signRegistryToken, parseScope, type TokenSigner } from '../../electron/core/models/registry/token';
import { connect, type SshConnection } from '../../electron/core/ssh/connection';
import { AirlockError } from '../../shared/domain/errors';
import { authorizeKey, configureRegistry, labDown, labUp, runOnHost, type Lab } from '../lab/lab';
import { newCredential, TestPolicySigner, type TestGrant, type TestPolicy } from '../support/gate-policy';

const LAB_ID = 'gate';
const SERVICE = 'airlock-lab-registry';
const ISSUER = 'airlock-gate';
const GATE_PORT = 8443;
const METRICS_PORT = 9464;
const REALM_PORT = 5001;
const random = (n: number) => crypto.randomBytes(n);

let lab: Lab;
let gpu: SshConnection;
let reg: SshConnection;
let gateUrl: string;
let metricsUrl: string;
let realmUrl: string;
let consoleSigner: TokenSigner;
const signer = new TestPolicySigner();
const stranger = new TestPolicySigner();
const bot = { id: 'app:triage-bot', cred: newCredential() };
const other = { id: 'app:other', cred: newCredential() };
const limited = { id: 'app:limited', cred: newCredential() };
const principals = { [bot.id]: bot.cred, [other.id]: other.cred, [limited.id]: limited.cred };
/** Every prompt sent to the gate: none may appear in its logs or metrics. */
const prompts: string[] = [];
const prompt = () => {
  const p = `patient note ${crypto.randomBytes(6).toString('hex')} reports chest pain after ${crypto.randomBytes(4).toString('hex')}`;
  prompts.push(p);
  return p;
};

const grant = (g: Partial<TestGrant> & Pick<TestGrant, 'id' | 'principal'>): TestGrant => ({ model: 'triage', version: '1.2.0', actions: ['invoke', 'pull'], ...g });
const HOSTS = { 'host1': { enclave: 'general', phi: false } };
let version = 0;
/** A policy with the next version, signed with the pinned key. */
function next(grants: TestGrant[], o: Partial<TestPolicy> = {}) {
  version += 1;
  return { version, ...signer.policy({ version, hosts: HOSTS, principals, grants, ...o }) };
}
const BASE_GRANTS = [
  grant({ id: 'g-bot', principal: bot.id }),
  grant({ id: 'g-bot-phi', principal: bot.id, model: 'notes', version: '1.0.0', classification: 'phi', actions: ['invoke'] }),
  grant({ id: 'g-bot-old', principal: bot.id, model: 'summarize', version: '0.9.0', actions: ['invoke'], expiresAt: '2020-01-01T00:00:00.000Z' }),
  grant({ id: 'g-limited', principal: limited.id, actions: ['invoke'], rateLimit: { requestsPerMinute: 2 } }),
];

async function sh(conn: SshConnection, cmd: string): Promise<string> {
  const r = await conn.exec(cmd, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function invoke(body: unknown, cred: string | null = bot.cred, raw?: string) {
  return fetch(`${gateUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cred ? { authorization: `Bearer ${cred}` } : {}) },
    body: raw ?? JSON.stringify(body),
  });
}
const status = async (p: Promise<Response>) => {
  const r = await p;
  await r.arrayBuffer();
  return r.status;
};
const complete = (model = 'triage:1.2.0', cred: string | null = bot.cred) => status(invoke({ model, prompt: prompt(), max_tokens: 4 }, cred));

/** The docker token flow against the realm: HTTP Basic, principal id and credential. */
async function realmToken(who: { id: string; cred: string }, scope: string): Promise<{ status: number; token?: string; access?: unknown }> {
  const r = await fetch(`${realmUrl}/token?service=${encodeURIComponent(SERVICE)}&scope=${encodeURIComponent(scope)}`, { headers: { authorization: `Basic ${Buffer.from(`${who.id}:${who.cred}`).toString('base64')}` } });
  const text = await r.text();
  if (r.status !== 200) return { status: r.status };
  const token = (JSON.parse(text) as { token: string }).token;
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: unknown; exp: number; iat: number; aud: unknown };
  expect(typeof claims.aud).toBe('string');
  expect(claims.exp - claims.iat).toBeLessThanOrEqual(300);
  return { status: 200, token, access: claims.access };
}
/** Airlock's registry client pulling as an application does: tokens from the gate's realm. */
const puller = (who: { id: string; cred: string }) =>
  new RegistryClient({
    baseUrl: lab.registry!.url,
    token: async (req) => {
      const t = await realmToken(who, req.scope ?? '');
      if (!t.token) throw new AirlockError('BAD_CREDENTIALS', `realm answered ${t.status}`);
      return t.token;
    },
  });
const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof AirlockError ? e.code : String(e)));

/** The first policy in force: replayed later, byte for byte, with its valid signature. */
let first: { version: number; bytes: Buffer; sig: string };
let manifestDigest = '';
let layerDigest = '';

async function gateLog(): Promise<string> {
  return sh(gpu, `cat ${GATE_PATHS.gateLog}`);
}

beforeAll(async () => {
  lab = await labUp({ id: LAB_ID, hosts: 1, registry: true, replace: true });
  const me = generateIdentity('airlock-gate-test');
  await authorizeKey(lab, me.publicKey);
  const h1 = lab.hosts.find((h) => h.name === 'host1')!;
  const rh = lab.hosts.find((h) => h.name === 'registry')!;
  gpu = await connect({ address: h1.address, port: h1.port, user: h1.user, fingerprint: h1.fingerprint, hostName: h1.name }, { privateKey: me.privateKey }, { timeoutMs: 30_000 });
  reg = await connect({ address: rh.address, port: rh.port, user: rh.user, fingerprint: rh.fingerprint, hostName: rh.name }, { privateKey: me.privateKey }, { timeoutMs: 30_000 });
  gateUrl = `http://${h1.address}:${GATE_PORT}`;
  metricsUrl = `http://${h1.address}:${METRICS_PORT}/metrics`;
  realmUrl = `http://${rh.address}:${REALM_PORT}`;

  // The inference server, bound to the host's loopback only, serving the version as <model>:<version>.
  await sh(gpu, 'mkdir -p /srv/models/triage/1.2.0 && echo weights > /srv/models/triage/1.2.0/model.safetensors');
  await writeGateFiles(gpu, [
    {
      path: '/etc/systemd/system/inference-triage.service',
      data: '[Service]\nExecStart=/usr/local/bin/airlock-inference-sim --model /srv/models/triage/1.2.0 --served-model-name triage:1.2.0 --host 127.0.0.1 --port 8000\n',
      mode: 0o644,
    },
  ]);
  await sh(gpu, 'systemctl daemon-reload && systemctl start inference-triage.service');

  // The registry's token realm: the gate on the registry host, with a registry-token certificate of the CA.
  const now = new Date();
  const root = await createRootCa({ commonName: 'Gate test Root', validityDays: 30, now, random });
  const issuing = await createIssuingCa(root, { commonName: 'Gate test Issuing', validityDays: 20, now, random });
  const leaf = await issueCertificate(issuing, { profile: 'registry-token', commonName: 'registry tokens (realm)', validityDays: 10, now, random });
  const keyPem = crypto.createPrivateKey({ key: leaf.privateKeyPkcs8!, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
  const console_ = await issueCertificate(issuing, { profile: 'registry-token', commonName: 'registry tokens (console)', validityDays: 10, now, random });
  consoleSigner = { certPem: console_.certPem, chainPems: [issuing.certPem], privateKeyPkcs8: console_.privateKeyPkcs8! };

  const noPolicy: GateStatus[] = [];
  noPolicy.push(
    await installGate(gpu, {
      config: { host: 'host1', roles: ['invoke'], listen: `${h1.address}:${GATE_PORT}`, upstream: '127.0.0.1:8000', metricsListen: `${h1.address}:${METRICS_PORT}` },
      policySigningKeyPem: signer.publicPem,
    }),
  );
  noPolicy.push(
    await installGate(reg, {
      config: {
        host: 'registry',
        roles: ['pull'],
        listen: `${rh.address}:${REALM_PORT}`,
        metricsListen: `${rh.address}:${METRICS_PORT}`,
        registry: { service: SERVICE, issuer: ISSUER, keyFile: GATE_PATHS.tokenKey, chainFile: GATE_PATHS.tokenChain, ttlSeconds: 120 },
      },
      policySigningKeyPem: signer.publicPem,
      tokenKeyPem: keyPem,
      tokenChainPem: `${leaf.certPem.trim()}\n${issuing.certPem.trim()}\n`,
    }),
  );
  for (const s of noPolicy) expect(s).toMatchObject({ policyVersion: null, policySha256: null, lastRejected: { reason: 'unreadable' } });
  await configureRegistry(lab, { auth: { realm: `${realmUrl}/token`, service: SERVICE, issuer: ISSUER, rootCertBundlePem: `${leaf.certPem.trim()}\n${console_.certPem.trim()}\n` } });

  // The console publishes an artifact with its own push token (what publish.ts does).
  const pusher = new RegistryClient({
    baseUrl: lab.registry!.url,
    token: async (req) => signRegistryToken({ signer: consoleSigner, issuer: ISSUER, service: SERVICE, subject: 'airlock-console', access: parseScope(req.scope ?? ''), now: new Date(), random }).token,
  });
  const config = await pusher.pushSmallBlob('models/triage', Buffer.from('{}'));
  const layer = await pusher.pushSmallBlob('models/triage', Buffer.from('the weights of triage 1.2.0'));
  layerDigest = layer.digest;
  manifestDigest = (
    await pusher.putManifest('models/triage', '1.2.0', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/octet-stream', digest: layer.digest, size: layer.size }],
    })
  ).digest;
}, 240_000);

afterAll(async () => {
  gpu?.close();
  reg?.close();
  await labDown({ id: LAB_ID });
}, 120_000);

async function pushBoth(p: { version: number; bytes: Buffer; sig: string }) {
  await Promise.all([pushGatePolicy(gpu, p), pushGatePolicy(reg, p)]);
  const st = await Promise.all([waitForGatePolicy(gpu, p.version), waitForGatePolicy(reg, p.version)]);
  return st;
}

describe('the gate on lab hosts', () => {
  it('fails closed without a policy: 503 for invoke and for registry tokens', async () => {
    expect(await complete()).toBe(503);
    expect(await status(fetch(`${gateUrl}/health`))).toBe(503);
    expect((await realmToken(bot, 'repository:models/triage:pull')).status).toBe(503);
    // The upstream itself is not reachable from outside the host: it binds loopback only.
    const direct = await fetch(`http://${lab.hosts[0]!.address}:8000/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.status, () => 'refused');
    expect(direct).toBe('refused');
  });

  it('with a grant: served (JSON and SSE), pulled with the realm token; without one: 401/403 and the registry refuses', async () => {
    first = next(BASE_GRANTS);
    const st = await pushBoth(first);
    for (const s of st) expect(s).toMatchObject({ policyVersion: version, lastRejected: null });

    // invoke: exact version and the bare model name (the one version granted)
    const r = await invoke({ model: 'triage:1.2.0', prompt: prompt(), max_tokens: 5 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { model: string; usage: { completion_tokens: number } };
    expect(body).toMatchObject({ model: 'triage:1.2.0', usage: { completion_tokens: 5 } });
    expect(await complete('triage')).toBe(200);

    // streaming: several SSE events arrive, the stream ends with [DONE]
    const s = await invoke({ model: 'triage', prompt: prompt(), max_tokens: 6, stream: true, stream_options: { include_usage: true } });
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toContain('text/event-stream');
    const reader = s.body!.getReader();
    let text = '';
    let reads = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      reads++;
      text += Buffer.from(value).toString();
    }
    const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.length).toBe(8); // six tokens, the usage chunk, [DONE]
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(reads).toBeGreaterThan(0);

    // the model list: only what the principal may invoke
    const list = async (cred: string) => ((await (await fetch(`${gateUrl}/v1/models`, { headers: { authorization: `Bearer ${cred}` } })).json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(await list(bot.cred)).toEqual(['triage:1.2.0']);
    expect(await list(other.cred)).toEqual([]);

    // denials
    expect(await complete('triage:1.2.0', null)).toBe(401);
    expect(await complete('triage:1.2.0', newCredential())).toBe(401);
    expect(await complete('triage:1.2.0', other.cred)).toBe(403);
    const denied = await invoke({ model: 'triage:9.9.9', prompt: prompt() });
    expect(denied.status).toBe(403);
    expect(JSON.stringify(await denied.json())).toMatch(/not_granted/);
    expect(await complete('summarize:0.9.0')).toBe(403); // expired grant

    // pull: the grant's principal pulls by digest with the realm's token; another gets a token with no access
    const t = await realmToken(bot, 'repository:models/triage:pull,push');
    expect(t.access).toEqual([{ type: 'repository', name: 'models/triage', actions: ['pull'] }]);
    const m = await puller(bot).getManifest('models/triage', manifestDigest);
    expect(m?.digest).toBe(manifestDigest);
    expect(await puller(bot).blobSize('models/triage', layerDigest)).toBeGreaterThan(0);
    expect(await codeOf(puller(bot).pushSmallBlob('models/triage', Buffer.from('not allowed')))).toBe('BAD_CREDENTIALS');
    const none = await realmToken(other, 'repository:models/triage:pull');
    expect(none).toMatchObject({ status: 200, access: [] });
    expect(await codeOf(puller(other).getManifest('models/triage', manifestDigest))).toBe('BAD_CREDENTIALS');
    expect((await realmToken({ id: bot.id, cred: newCredential() }, 'repository:models/triage:pull')).status).toBe(401);
    expect((await realmToken({ id: other.id, cred: bot.cred }, 'repository:models/triage:pull')).status).toBe(401); // someone else's credential
  });

  it('refuses a PHI version on a host that is not in a PHI enclave', async () => {
    const r = await invoke({ model: 'notes:1.0.0', prompt: prompt() });
    expect(r.status).toBe(403);
    expect(JSON.stringify(await r.json())).toMatch(/phi_enclave/);
  });

  it('rate-limits per grant: 429 with Retry-After', async () => {
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(await complete('triage:1.2.0', limited.cred));
    expect(codes).toEqual([200, 200, 429]);
    const r = await invoke({ model: 'triage:1.2.0', prompt: prompt() }, limited.cred);
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await r.arrayBuffer();
    // Counted per principal (the counters live in the gate's memory: a restart starts them again, as Prometheus expects).
    expect(await (await fetch(metricsUrl)).text()).toMatch(/airlock_gate_requests_total\{principal="app:limited",model="triage",version="1.2.0",status="429"\} 2\n/);
  });

  it('refuses tampered, unsigned, foreign, malformed and older policies, logs each, keeps the last good one', async () => {
    await pushBoth(next(BASE_GRANTS));
    const good = (await readGateStatus(gpu))!;
    const inForce = good.policyVersion!;
    expect(inForce).toBeGreaterThan(first.version);
    const cases: { name: string; files: { bytes: Buffer | string; sig: string }; reason: string }[] = [];
    const p = next(BASE_GRANTS);
    // tampered: a grant added to the signed bytes
    const tampered = Buffer.from(p.bytes.toString().replace('"grants":[', `"grants":[{"actions":["invoke"],"classification":"internal","digest":"sha256:${'0'.repeat(64)}","expiresAt":null,"id":"a-evil","model":"triage","principal":"app:other","rateLimit":null,"version":"1.2.0"},`));
    cases.push({ name: 'tampered', files: { bytes: tampered, sig: p.sig }, reason: 'signature' });
    cases.push({ name: 'unsigned', files: { bytes: p.bytes, sig: '' }, reason: 'signature' });
    cases.push({ name: 'foreign key', files: stranger.policy({ version: version + 1, hosts: HOSTS, principals, grants: [] }), reason: 'signature' });
    cases.push({ name: 'malformed', files: signer.sign({ ...signer.document({ version: version + 2, principals, grants: [] }), format: 'something/v0' }), reason: 'malformed' });
    cases.push({ name: 'older (a replay of the first policy, validly signed)', files: first, reason: 'older' });
    for (const c of cases) {
      await pushGatePolicy(gpu, { bytes: Buffer.from(c.files.bytes), sig: c.files.sig });
      const deadline = Date.now() + 10_000;
      let st = await readGateStatus(gpu);
      while ((!st?.lastRejected || st.lastRejected.reason !== c.reason || st.lastRejected.at <= good.loadedAt!) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        st = await readGateStatus(gpu);
      }
      expect({ case: c.name, reason: st!.lastRejected?.reason, inForce: st!.policyVersion }).toEqual({ case: c.name, reason: c.reason, inForce });
      expect(await complete()).toBe(200); // the last good policy still serves
      expect(await complete('triage:1.2.0', other.cred)).toBe(403); // and the tampered grant is not in it
      good.loadedAt = st!.lastRejected!.at;
    }
    const log = (await gateLog()).trim().split('\n').map((l) => JSON.parse(l) as { event: string; reason?: string });
    const rejected = log.filter((l) => l.event === 'policy-rejected').map((l) => l.reason);
    expect(rejected).toEqual(expect.arrayContaining(['signature', 'malformed', 'older']));
    expect(rejected.filter((r) => r === 'signature').length).toBeGreaterThanOrEqual(3);
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/airlock_gate_policy_rejections_total\{reason="signature"\} [3-9]/);
    expect(metrics).toContain(`airlock_gate_policy_version ${inForce}`);

    // Replay across a restart: with only an older policy on disk, the restarted gate takes nothing (503).
    await sh(gpu, 'systemctl restart airlock-gate.service');
    let after = await readGateStatus(gpu);
    for (let i = 0; i < 100 && after?.policyVersion !== null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await readGateStatus(gpu);
    }
    expect(after).toMatchObject({ policyVersion: null, lastRejected: { reason: 'older', version: first.version } });
    expect(await complete()).toBe(503);
    // The good one pushed again: in force again.
    const again = next(BASE_GRANTS);
    await pushBoth(again);
    expect(await complete()).toBe(200);
  });

  it('revocation: a newer policy without the grant → 403 within the poll, and a new token no longer pulls', async () => {
    expect(await complete()).toBe(200);
    const oldToken = await realmToken(bot, 'repository:models/triage:pull');
    expect(oldToken.access).toHaveLength(1);
    const p = next(BASE_GRANTS.filter((g) => g.id !== 'g-bot'));
    const t0 = Date.now();
    await Promise.all([pushGatePolicy(gpu, p), pushGatePolicy(reg, p)]);
    let code = 200;
    while (code !== 403 && Date.now() - t0 < 10_000) code = await complete(); // the poll is 500 ms; the bound is slack for a loaded machine
    expect(code).toBe(403);
    await waitForGatePolicy(reg, p.version);
    expect(await realmToken(bot, 'repository:models/triage:pull')).toMatchObject({ status: 200, access: [] });
    expect(await codeOf(puller(bot).getManifest('models/triage', manifestDigest))).toBe('BAD_CREDENTIALS');
    // SIGHUP reloads at once, too (the poll is the fallback).
    const back = next(BASE_GRANTS);
    await pushGatePolicy(gpu, back);
    await sh(gpu, 'systemctl reload airlock-gate.service');
    await waitForGatePolicy(gpu, back.version);
    expect(await complete()).toBe(200);
  });

  it('hostile requests get 4xx and the gate lives on', async () => {
    const pid = await sh(gpu, 'systemctl show -p MainPID --value airlock-gate.service');
    expect(Number(pid)).toBeGreaterThan(1);
    expect(await status(invoke(null, bot.cred, '{"model": "triage:1.2.0", "prompt": '))).toBe(400);
    expect(await status(invoke(null, bot.cred, '[1,2,3]'))).toBe(400);
    expect(await status(invoke(null, bot.cred, '\xff\xfe not json'))).toBe(400);
    expect(await status(invoke(null, bot.cred, '['.repeat(100_000)))).toBe(400);
    expect(await status(invoke({ prompt: 'no model' }))).toBe(400);
    expect(await status(invoke({ model: { $ne: 1 }, prompt: 'x' }))).toBe(400);
    for (const auth of ['Bearer', 'Bearer  ', 'Basic Zm9vOmJhcg==', `Bearer ${'x'.repeat(10_000)}`, 'Bearer alk_\u00e9']) {
      const r = await fetch(`${gateUrl}/v1/completions`, { method: 'POST', headers: { authorization: auth }, body: '{}' }).then((x) => x.status, (e: unknown) => String(e));
      expect([401, 431]).toContain(r);
    }
    const huge = await invoke(null, bot.cred, `{"model":"triage:1.2.0","prompt":"${'a'.repeat(9 * 1024 * 1024)}"}`).then((r) => r.status, (e: unknown) => String(e));
    expect(huge).toBe(413);
    // Raw bytes: a broken request line, oversized headers, a body shorter than announced.
    const raw = (data: Buffer | string) =>
      new Promise<string>((resolve) => {
        const s = net.connect(GATE_PORT, lab.hosts[0]!.address);
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('error', () => resolve(got));
        s.on('close', () => resolve(got));
        s.write(data, () => s.end());
        setTimeout(() => s.destroy(), 5000);
      });
    expect(await raw('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(`GET / HTTP/1.1\r\n${'X-A: b\r\n'.repeat(10_000)}\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    expect(await raw('POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"a"')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toMatch(/^HTTP\/1\.1 411/);
    expect(await raw('POST /v1/completions HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('GET /token?scope=%ff%fe HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 /);
    // The realm too
    expect((await fetch(`${realmUrl}/token?scope=${'repository:x:pull%20'.repeat(3000)}`, { headers: { authorization: 'Basic !!!' } })).status).toBeGreaterThanOrEqual(400);
    expect(await status(fetch(`${realmUrl}/token?scope=registry:catalog:*`, { headers: { authorization: `Basic ${Buffer.from(`${bot.id}:${bot.cred}`).toString('base64')}` } }))).toBe(400);
    // Still serving, same process.
    expect(await complete()).toBe(200);
    expect(await sh(gpu, 'systemctl show -p MainPID --value airlock-gate.service')).toBe(pid);
  });

  it('the access log and metrics are metadata only: none of the prompts, tokens and SimHash per request', async () => {
    const access = await sh(gpu, `cat ${GATE_PATHS.accessLog}`);
    const logs = [access, await gateLog(), await sh(reg, `cat ${GATE_PATHS.accessLog} ${GATE_PATHS.gateLog}`), await (await fetch(metricsUrl)).text()].join('\n');
    expect(prompts.length).toBeGreaterThan(10);
    for (const p of prompts) {
      expect(logs).not.toContain(p);
      for (const word of p.split(' ').filter((w) => /\d/.test(w))) expect(logs).not.toContain(word); // the random words of each prompt
    }
    for (const c of [bot.cred, other.cred, limited.cred]) expect(logs).not.toContain(c);
    const lines = access.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const served = lines.filter((l) => l.status === 200 && l.role === 'invoke' && l.model === 'triage');
    expect(served.length).toBeGreaterThan(5);
    for (const l of served) {
      expect(Object.keys(l).sort()).toEqual(['completionTokens', 'latencyMs', 'model', 'policyVersion', 'principal', 'promptTokens', 'role', 'simhash', 'status', 'time', 'version']);
      expect(l.simhash).toMatch(/^[0-9a-f]{16}$/);
      expect(l.promptTokens).toBeGreaterThan(0);
    }
    // The streamed request's tokens came from its last SSE chunk.
    expect(served.some((l) => l.completionTokens === 6)).toBe(true);
    const tokens = (await sh(reg, `cat ${GATE_PATHS.accessLog}`)).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.status === 200);
    expect(tokens.length).toBeGreaterThan(0);
    for (const t of tokens) expect(t).toMatchObject({ role: 'pull', principal: expect.any(String), scope: expect.any(String), expiresAt: expect.stringMatching(/Z$/) });
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/airlock_gate_requests_total\{principal="app:triage-bot",model="triage",version="1.2.0",status="200"\} \d+/);
    expect(metrics).toMatch(/airlock_gate_prompt_tokens_total\{principal="app:triage-bot",model="triage",version="1.2.0"\} [1-9]\d*/);
    expect(metrics).toMatch(/airlock_gate_completion_tokens_total\{principal="app:triage-bot",model="triage",version="1.2.0"\} [1-9]\d*/);
    // Names an attacker sends never become label values.
    expect(metrics).not.toContain('9.9.9');
    // The same prompt gives the same sketch as the gate's own --simhash (host-computed, comparable).
    const same = 'the quick brown fox jumps over the lazy dog';
    const r = await runOnHost(lab, 'host1', ['/usr/bin/python3', '-I', '-S', GATE_PATHS.program, '--simhash', same]);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{16}$/);
  });
});

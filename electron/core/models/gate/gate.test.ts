/**
 * The gate program run here, on loopback, by the stock interpreter (/usr/bin/python3) with the
 * machine's openssl, in a temporary directory: the parts the lab test (test/integration/gate.test.ts)
 * does not look at closely — the policy's strict shape, a push in flight (signature renamed before the
 * policy) that must not be logged as an attack, the SimHash's locality, the ES256 token verified by
 * Node against the certificate in its x5c, a token capped at its grant's expiry, keep-alive and
 * `Expect: 100-continue` — plus install.ts's pure parts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCredential, TestPolicySigner, type TestGrant } from '../../../../test/support/gate-policy';
import { createIssuingCa, createRootCa, issueCertificate } from '../../keys/ca';
import type { HostExec } from '../../keys/fscrypt';
import { GateConfig, GateStatus, gateProgram, gateUnit, writeGateFiles } from './install';

/** The stock interpreter; AIRLOCK_GATE_PYTHON runs the same tests under another (docs/gate.md: 3.8 and later). */
const PY = process.env.AIRLOCK_GATE_PYTHON ?? '/usr/bin/python3';
const PROGRAM = fileURLToPath(new URL('./airlock-gate.py', import.meta.url));
const random = (n: number) => crypto.randomBytes(n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

interface Running {
  dir: string;
  proc: ChildProcess;
  url: string;
  status(): Record<string, unknown> | null;
  gateLog(): Record<string, unknown>[];
  push(p: { bytes: Buffer; sig: string }, gapMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the gate with `config` (listen/metrics ports filled in) in a fresh directory. */
async function startGate(config: Record<string, unknown> | ((etc: string) => Record<string, unknown>), signer: TestPolicySigner, files: Record<string, string> = {}): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-gate-unit-'));
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(etc);
  const port = await freePort();
  fs.writeFileSync(path.join(etc, 'gate.json'), JSON.stringify({ listen: `127.0.0.1:${port}`, metricsListen: `127.0.0.1:${await freePort()}`, ...(typeof config === 'function' ? config(etc) : config) }));
  fs.writeFileSync(path.join(etc, 'policy-signing.pem'), signer.publicPem);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(etc, name), text);
  const proc = spawn(PY, ['-I', '-S', PROGRAM, '--config', path.join(etc, 'gate.json'), '--state-dir', path.join(dir, 'state'), '--run-dir', path.join(dir, 'run'), '--log-dir', path.join(dir, 'log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; !out.includes('airlock-gate: serving'); i++) {
    if (i > 200 || proc.exitCode !== null) throw new Error(`the gate did not start: ${out}`);
    await sleep(25);
  }
  const read = (p: string) => {
    try {
      return fs.readFileSync(path.join(dir, p), 'utf8');
    } catch {
      return null;
    }
  };
  return {
    dir,
    proc,
    url: `http://127.0.0.1:${port}`,
    status: () => JSON.parse(read('run/status.json') ?? 'null') as Record<string, unknown> | null,
    gateLog: () => (read('log/gate.log') ?? '').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    async push(p, gapMs = 0) {
      // As the console does: both under temp names, then the signature renamed, then the policy.
      fs.writeFileSync(path.join(etc, 'policy.json.sig.tmp'), p.sig);
      fs.writeFileSync(path.join(etc, 'policy.json.tmp'), p.bytes);
      fs.renameSync(path.join(etc, 'policy.json.sig.tmp'), path.join(etc, 'policy.json.sig'));
      if (gapMs) await sleep(gapMs);
      fs.renameSync(path.join(etc, 'policy.json.tmp'), path.join(etc, 'policy.json'));
    },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function until<T>(f: () => T, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (ok(v) || Date.now() > deadline) return v;
    await sleep(50);
  }
}

const simhash = (text: string) => {
  const r = spawn(PY, ['-I', '-S', PROGRAM, '--simhash', text]);
  return new Promise<string>((resolve) => {
    let out = '';
    r.stdout.on('data', (d: Buffer) => (out += d.toString()));
    r.on('exit', () => resolve(out.trim()));
  });
};
const hamming = (a: string, b: string) => [...(BigInt(`0x${a}`) ^ BigInt(`0x${b}`)).toString(2)].filter((c) => c === '1').length;

const signer = new TestPolicySigner();
const app = { id: 'app:triage-bot', cred: newCredential() };
const grant = (g: Partial<TestGrant>): TestGrant => ({ id: 'g1', principal: app.id, model: 'triage', version: '1.2.0', actions: ['invoke', 'pull'], ...g });

describe('install.ts', () => {
  it('ships the program and describes a confined unit', () => {
    expect(gateProgram().toString()).toMatch(/^#!\/usr\/bin\/python3/);
    const unit = gateUnit();
    expect(unit).toContain('ExecStart=/usr/bin/python3 -I -S /usr/local/lib/airlock-gate/airlock-gate.py --config /etc/airlock/gate/gate.json');
    expect(unit).toMatch(/NoNewPrivileges=yes[\s\S]*ProtectSystem=strict[\s\S]*RuntimeDirectory=airlock-gate/);
  });

  it('writes files atomically with their modes, read back and checked, through a real shell and python3 here', async () => {
    // This machine as the "host": the same command line install.ts sends over SSH, run by sh.
    const local: HostExec = {
      exec: (cmd, o) =>
        new Promise((resolve) => {
          const c = spawn('/bin/sh', ['-c', cmd.replace(/^'\/usr\/bin\/python3'/, `'${PY}'`)]);
          let stdout = '';
          let stderr = '';
          c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          c.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr, truncated: false }));
          c.stdin.end(typeof o.stdin === 'string' ? o.stdin : '');
        }),
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-gate-write-'));
    try {
      await writeGateFiles(local, [
        { path: `${dir}/etc/policy.json.sig`, data: 'c2lnCg==\n', mode: 0o644 },
        { path: `${dir}/etc/token-key.pem`, data: Buffer.from('secret key'), mode: 0o600 },
      ]);
      expect(fs.readFileSync(`${dir}/etc/policy.json.sig`, 'utf8')).toBe('c2lnCg==\n');
      expect(fs.statSync(`${dir}/etc/token-key.pem`).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(`${dir}/etc`).sort()).toEqual(['policy.json.sig', 'token-key.pem']); // no .tmp left
      await expect(writeGateFiles(local, [{ path: `${dir}/../etc/x`, data: 'x', mode: 0o644 }])).rejects.toThrow(/not a host path/);
      await expect(writeGateFiles(local, [{ path: 'relative/x', data: 'x', mode: 0o644 }])).rejects.toThrow(/not a host path/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks gate.json and parses status.json strictly', () => {
    const base = { host: 'gpu-01', roles: ['invoke'], listen: '10.0.0.1:8443', upstream: '127.0.0.1:8000', metricsListen: '10.0.0.1:9464' };
    expect(GateConfig.safeParse(base).success).toBe(true);
    expect(GateConfig.safeParse({ ...base, upstream: undefined }).success).toBe(false);
    expect(GateConfig.safeParse({ ...base, roles: ['invoke', 'invoke'] }).success).toBe(false);
    expect(GateConfig.safeParse({ ...base, roles: ['pull'] }).success).toBe(false);
    expect(GateConfig.safeParse({ ...base, listen: 'anywhere' }).success).toBe(false);
    expect(GateConfig.safeParse({ ...base, extra: 1 }).success).toBe(false);
    const st = { policyVersion: 3, policySha256: 'a'.repeat(64), loadedAt: '2026-12-08T00:00:00.000Z', lastRejected: { at: '2026-12-08T00:00:01.000Z', reason: 'older', version: 2 } };
    expect(GateStatus.parse(st)).toEqual(st);
    expect(GateStatus.safeParse({ ...st, lastRejected: { ...st.lastRejected, reason: 'because' } }).success).toBe(false);
    expect(GateStatus.safeParse({ ...st, injected: '\u001b[2J' }).success).toBe(false);
  });
});

describe('the gate program (local, loopback)', () => {
  let upstream: http.Server;
  let upstreamPort = 0;
  let gate: Running;
  const seen: string[] = [];

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push(`${req.headers.authorization ?? '-'} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, usage: { prompt_tokens: 3, completion_tokens: 2 } }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as net.AddressInfo).port;
    gate = await startGate({ host: 'gpu-01', roles: ['invoke'], upstream: `127.0.0.1:${upstreamPort}` }, signer);
  });
  afterAll(async () => {
    await gate?.stop();
    upstream?.close();
  });

  it('refuses a policy whose shape is off by one field, naming no reason but "malformed"', async () => {
    const bad = [
      { ...signer.document({ version: 1, principals: { [app.id]: app.cred }, grants: [grant({})] }), extra: true },
      signer.document({ version: 1, principals: { [app.id]: app.cred }, grants: [grant({ principal: 'app:nobody' })] }),
      signer.document({ version: 1, principals: { [app.id]: app.cred }, grants: [grant({ actions: ['invoke', 'admin' as 'pull'] })] }),
      signer.document({ version: 1, principals: { [app.id]: app.cred }, grants: [grant({ expiresAt: 'tomorrow' })] }),
      signer.document({ version: 1.5, principals: {}, grants: [] }),
      // a trailing newline after a hash (a regex with $ would let it through)
      (() => {
        const d = signer.document({ version: 1, principals: { [app.id]: app.cred }, grants: [grant({})] }) as { principals: { credentialSha256: string }[] };
        d.principals[0]!.credentialSha256 += '\n';
        return d;
      })(),
    ];
    for (const doc of bad) {
      const before = gate.gateLog().length;
      await gate.push(signer.sign(doc));
      const log = await until(() => gate.gateLog(), (l) => l.length > before);
      expect(log.at(-1)).toMatchObject({ event: 'policy-rejected', reason: 'malformed' });
    }
    expect(gate.status()).toMatchObject({ policyVersion: null });
    expect((await fetch(`${gate.url}/v1/completions`, { method: 'POST', body: '{}' })).status).toBe(503);
  });

  it('takes a push whose signature lands well before its policy without logging a rejection', async () => {
    const before = gate.gateLog().filter((l) => l.event === 'policy-rejected').length;
    await gate.push(signer.policy({ version: 5, principals: { [app.id]: app.cred }, grants: [grant({})] }), 200);
    const st = await until(() => gate.status(), (s) => s?.policyVersion === 5);
    expect(st).toMatchObject({ policyVersion: 5, lastRejected: null });
    expect(gate.gateLog().filter((l) => l.event === 'policy-rejected').length).toBe(before);
  });

  it('forwards without the credential, keeps connections alive, answers Expect: 100-continue', async () => {
    const body = JSON.stringify({ model: 'triage', prompt: 'x '.repeat(1000) });
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(Number(new URL(gate.url).port), '127.0.0.1');
      let got = '';
      const req = (extra: string) => `POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${app.cred}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`;
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('100 Continue') && !got.includes('sent')) {
          got += '(sent)';
          s.write(body);
        }
        if ((got.match(/HTTP\/1\.1 200/g) ?? []).length === 2) s.end();
      });
      s.on('close', () => resolve(got));
      s.write(req('') + body);
      s.write(req('Expect: 100-continue\r\n'));
      setTimeout(() => s.destroy(), 5000);
    });
    expect((raw.match(/HTTP\/1\.1 200/g) ?? []).length).toBe(2);
    expect(raw).toContain('HTTP/1.1 100 Continue');
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (const s of seen) {
      expect(s).not.toContain(app.cred);
      expect(s).toContain('"model": "triage:1.2.0"'); // the bare name resolved to the granted version
    }
  });

  it('answers any bytes with an HTTP status or a close, never an exception, and serves on', async () => {
    const port = Number(new URL(gate.url).port);
    const send = (data: Buffer) =>
      new Promise<string>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        s.on('error', () => resolve(got));
        s.on('close', () => resolve(got));
        s.end(data);
        setTimeout(() => s.destroy(), 3000);
      });
    const line = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.constantFrom('Content-Length: 5', 'Content-Length: -1', 'Content-Length: 99999999999', 'Transfer-Encoding: chunked', `Authorization: Bearer ${app.cred}`, 'Authorization: Basic ::', 'Expect: 100-continue', 'Host: a', 'Host: b', ': empty', 'A B: c'),
    );
    const request = fc.tuple(
      fc.oneof(fc.constantFrom('POST /v1/completions HTTP/1.1', 'GET /v1/models HTTP/1.1', 'GET /token HTTP/1.0', 'POST / HTTP/2', 'BREW /pot HTTP/1.1'), fc.string({ maxLength: 60 })),
      fc.array(line, { maxLength: 8 }),
      fc.oneof(fc.constant(''), fc.json(), fc.string({ maxLength: 200 })),
    );
    await fc.assert(
      fc.asyncProperty(fc.oneof(request.map(([l, h, b]) => Buffer.from(`${[l, ...h].join('\r\n')}\r\n\r\n${b}`)), fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a))), async (data) => {
        const got = await send(data);
        expect(got === '' || /^HTTP\/1\.1 \d{3} /.test(got)).toBe(true);
      }),
      { numRuns: 150 },
    );
    expect(gate.gateLog().filter((l) => l.event === 'connection-error')).toEqual([]);
    expect(gate.proc.exitCode).toBe(null);
    const ok = await fetch(`${gate.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${app.cred}` }, body: JSON.stringify({ model: 'triage', prompt: 'still here' }) });
    expect(ok.status).toBe(200);
  });

  it('SIGHUP (logrotate\'s postrotate) reopens the logs: the next line goes to a new access.log', async () => {
    const log = path.join(gate.dir, 'log', 'access.log');
    fs.renameSync(log, `${log}.1`);
    gate.proc.kill('SIGHUP');
    await until(() => gate.gateLog().some((l) => l.trigger === 'sighup') || fs.existsSync(log), (v) => v);
    await (await fetch(`${gate.url}/v1/completions`, { method: 'POST', body: '{}' })).arrayBuffer();
    const fresh = await until(() => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''), (t) => t.length > 0);
    expect(JSON.parse(fresh.trim().split('\n').at(-1)!)).toMatchObject({ role: 'invoke', status: 401 });
    expect(fs.readFileSync(`${log}.1`, 'utf8').length).toBeGreaterThan(0);
  });

  it('sketches prompts with a SimHash: deterministic, near for near-duplicates, far for unrelated text', async () => {
    const a = 'Patient is a 54 year old male presenting with chest pain radiating to the left arm since this morning';
    const b = 'Patient is a 54 year old male presenting with chest pain radiating to the left arm since yesterday';
    const c = 'Summarise the quarterly revenue report for the board and list three risks for next year';
    const [ha, ha2, hb, hc, empty] = await Promise.all([simhash(a), simhash(a), simhash(b), simhash(c), simhash('  ... ')]);
    expect(ha).toMatch(/^[0-9a-f]{16}$/);
    expect(ha2).toBe(ha);
    expect(hamming(ha, hb)).toBeLessThan(hamming(ha, hc));
    expect(hamming(ha, hb)).toBeLessThanOrEqual(12);
    expect(empty).toBe('None');
  });
});

describe('the token realm (local)', () => {
  let gate: Running;
  let leafPem = '';
  beforeAll(async () => {
    const now = new Date();
    const root = await createRootCa({ commonName: 'Unit Root', validityDays: 5, now, random });
    const issuing = await createIssuingCa(root, { commonName: 'Unit Issuing', validityDays: 4, now, random });
    const leaf = await issueCertificate(issuing, { profile: 'registry-token', commonName: 'tokens', validityDays: 3, now, random });
    leafPem = leaf.certPem;
    const keyPem = crypto.createPrivateKey({ key: leaf.privateKeyPkcs8!, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
    gate = await startGateWith({ 'token-key.pem': keyPem, 'token-chain.pem': `${leaf.certPem}${issuing.certPem}` });
  });
  /** The pull role, its key and chain beside gate.json. */
  const startGateWith = (files: Record<string, string>) =>
    startGate((etc) => ({ host: 'registry', roles: ['pull'], registry: { service: 'svc', issuer: 'iss', keyFile: path.join(etc, 'token-key.pem'), chainFile: path.join(etc, 'token-chain.pem'), ttlSeconds: 300 } }), signer, files);
  afterAll(async () => {
    await gate?.stop();
  });

  const basic = (id: string, cred: string) => `Basic ${Buffer.from(`${id}:${cred}`).toString('base64')}`;

  it('issues ES256 tokens that verify against the certificate in x5c, never outliving the grant', async () => {
    const soon = new Date(Date.now() + 40_000).toISOString();
    await gate.push(signer.policy({ version: 1, principals: { [app.id]: app.cred }, grants: [grant({ id: 'g1', expiresAt: soon }), grant({ id: 'g2', model: 'other', expiresAt: null })] }));
    await until(() => gate.status(), (s) => s?.policyVersion === 1);
    const r = await fetch(`${gate.url}/token?service=svc&scope=repository:models/triage:pull,push&scope=repository:models/other:pull&scope=repository:models/secret:pull`, { headers: { authorization: basic(app.id, app.cred) } });
    expect(r.status).toBe(200);
    const { token, expires_in } = (await r.json()) as { token: string; expires_in: number };
    const [h, p, s] = token.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg: string; x5c: string[] };
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { aud: unknown; exp: number; iat: number; access: unknown; sub: string; iss: string };
    expect(header.alg).toBe('ES256');
    const cert = new crypto.X509Certificate(Buffer.from(header.x5c[0]!, 'base64'));
    expect(cert.toString().trim()).toBe(new crypto.X509Certificate(leafPem).toString().trim());
    expect(crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).toBe(true);
    expect(claims).toMatchObject({ aud: 'svc', iss: 'iss', sub: app.id });
    expect(claims.access).toEqual([
      { type: 'repository', name: 'models/triage', actions: ['pull'] },
      { type: 'repository', name: 'models/other', actions: ['pull'] },
    ]);
    // capped at g1's expiry (40 s), not the realm's 300 s
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(41);
    expect(expires_in).toBe(claims.exp - claims.iat);
  });

  it('401 for a wrong or missing credential, 400 for another service', async () => {
    expect((await fetch(`${gate.url}/token?service=svc&scope=repository:models/triage:pull`)).status).toBe(401);
    expect((await fetch(`${gate.url}/token?service=svc`, { headers: { authorization: basic(app.id, newCredential()) } })).status).toBe(401);
    expect((await fetch(`${gate.url}/token?service=svc`, { headers: { authorization: basic('app:someone-else', app.cred) } })).status).toBe(401);
    expect((await fetch(`${gate.url}/token?service=evil`, { headers: { authorization: basic(app.id, app.cred) } })).status).toBe(400);
  });
});

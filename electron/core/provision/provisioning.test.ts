import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../db/db';
import { verifyAttestationText } from '../attest/attest';
import { diffJson } from './drift';
import { Playbooks, stepParams, validatePlaybook } from './playbooks';
import { checkHostPath, hostPathProblem, q } from './remote';
import { STEPS } from './steps/index';
import { minimalCidrs, parseCidr, renderRuleset } from './steps/egress';
import { egressLockdown } from './steps/egress';
import { canonical } from '../audit/canonical';

const base = { format: 'airlock.playbook/v1', name: 'p', version: '1', steps: [{ id: 'gpu', type: 'gpu-driver-check', params: {} }] };

describe('playbooks', () => {
  it('ships built-in playbooks that validate against the catalogue', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-'));
    const db = openDatabase(path.join(dir, 'a.db'));
    const pbs = new Playbooks({ db, now: () => 'now' });
    const names = pbs.all().map((p) => p.playbook.name);
    expect(names).toEqual(expect.arrayContaining(['gpu-inference-node', 'lab-gpu-node']));
    for (const p of pbs.all()) expect(pbs.info(p).steps.map((s) => s.type)).toEqual(p.playbook.steps.map((s) => s.type));
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses unknown step types, bad parameters, duplicate ids and anything that is not data', () => {
    expect(() => validatePlaybook({ ...base, steps: [{ id: 'x', type: 'run-shell', params: { cmd: 'rm -rf /' } }] })).toThrow(/unknown type "run-shell"/);
    expect(() => validatePlaybook({ ...base, steps: [{ id: 'gpu', type: 'gpu-driver-check', params: { minCount: -1 } }] })).toThrow(/minCount/);
    expect(() => validatePlaybook({ ...base, steps: [{ id: 'gpu', type: 'gpu-driver-check', params: { shell: 'x' } }] })).toThrow(/gpu/);
    expect(() => validatePlaybook({ ...base, steps: [base.steps[0], base.steps[0]] })).toThrow(/twice/);
    expect(() => validatePlaybook({ ...base, format: 'ansible' })).toThrow(/Not a valid playbook/);
    expect(() => validatePlaybook({ ...base, extra: 1 })).toThrow(/Not a valid playbook/);
  });

  it('applies run overrides on top of the playbook, validated by the step schema', () => {
    const pb = validatePlaybook({ ...base, steps: [{ id: 'egress', type: 'egress-lockdown', params: { allowCidrs: ['10.0.0.0/8'] } }] });
    expect(stepParams(pb, 'egress', { egress: { deadManSeconds: 9 } })).toMatchObject({ allowCidrs: ['10.0.0.0/8'], deadManSeconds: 9 });
    expect(() => stepParams(pb, 'egress', { egress: { allowCidrs: ['not-an-ip'] } })).toThrow(/allowCidrs/);
    expect(() => stepParams(pb, 'nope', {})).toThrow(/no step "nope"/);
  });
});

/**
 * Issue 9, point 11: every path parameter of every step is validated when the playbook is
 * imported, by the same rule plan applies (hostPathProblem), and the refusal names the step and
 * the parameter.
 */
describe('path parameters of imported playbooks', () => {
  /** Minimal valid parameters per step type: a new step type must be added here (and so gets its paths checked). */
  const MINIMAL: Record<string, Record<string, unknown>> = {
    'gpu-driver-check': {},
    'offline-packages': { packages: [{ name: 'airlock-node-tools' }] },
    'model-weights': { model: 'm', version: '1' },
    'inference-service': { model: 'm', version: '1' },
    'inference-gate': {},
    'egress-lockdown': {},
    'ssh-hardening': {},
  };
  const HOSTILE = ['/srv/../etc', '/srv/./models', '$(id)', '/srv/$(id)', '/srv/`id`', '/srv/a;b', 'a;b', '/srv/a b', '/srv/a\nb', '/srv/a\u0000b', '/srv/a\u001b[31m', '/srv/\u202emodels', 'srv/models', './models', '../etc', '', '/', '//srv', '/srv//models', '/srv/models/', '/srv/*', "/srv/'x'", '/srv/"x"', '/srv/a|b', '/srv/a&b', '/srv/a>b', '/srv/~x', `/${'a'.repeat(1100)}`, `/${'a'.repeat(256)}`];

  /** Every parameter of every step whose default is a path on the host. */
  const pathParams = () => {
    const out: Array<{ type: string; param: string; value: string }> = [];
    for (const [type, impl] of STEPS) {
      const defaults = impl.params.parse(MINIMAL[type]) as Record<string, unknown>;
      for (const [param, value] of Object.entries(defaults)) if (typeof value === 'string' && value.startsWith('/')) out.push({ type, param, value });
    }
    return out;
  };

  it('knows every step type, and finds their path parameters', () => {
    expect([...STEPS.keys()].sort()).toEqual(Object.keys(MINIMAL).sort());
    expect(pathParams().map((x) => `${x.type}.${x.param}`).sort()).toEqual([
      'inference-gate.python',
      'inference-service.apiKeyFile',
      'inference-service.command',
      'inference-service.dest',
      'model-weights.dest',
      'offline-packages.cacheDir',
      'ssh-hardening.dropIn',
    ]);
  });

  it('refuses the import of a hostile value in any path parameter, naming the step and the parameter; nothing is stored', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-paths-'));
    const db = openDatabase(path.join(dir, 'a.db'));
    const pbs = new Playbooks({ db, now: () => 'now' });
    try {
      for (const { type, param } of pathParams()) {
        for (const bad of HOSTILE) {
          const doc = { ...base, name: 'site', steps: [{ id: 'target-step', type, params: { ...MINIMAL[type], [param]: bad } }] };
          let err: unknown = null;
          try {
            pbs.import(JSON.stringify(doc), 'alice');
          } catch (e) {
            err = e;
          }
          expect(err, `${type}.${param} = ${JSON.stringify(bad)} was imported`).toMatchObject({ code: 'INVALID_INPUT' });
          expect(String((err as Error).message)).toContain(`Step "target-step" (${type}): parameter ${param}: `);
          // The message quotes the value harmlessly.
          expect((err as Error).message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
        }
      }
      expect(db.prepare('SELECT COUNT(*) AS n FROM playbooks').get()).toEqual({ n: 0 });
      // The defaults and ordinary paths still import.
      for (const [type, params] of Object.entries(MINIMAL)) pbs.import(JSON.stringify({ ...base, name: `ok-${type}`, steps: [{ id: 's', type, params }] }), 'alice');
      pbs.import(JSON.stringify({ ...base, name: 'ok-paths', steps: [{ id: 'm', type: 'model-weights', params: { model: 'm', version: '1', dest: '/data/models-2024.v1/site_A+b@c:d' } }] }), 'alice');
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the one rule: what import refuses, plan refuses (overrides and the path check at use)', () => {
    const pb = validatePlaybook({ ...base, steps: [{ id: 'model', type: 'model-weights', params: { model: 'm', version: '1' } }] });
    for (const bad of HOSTILE) {
      expect(hostPathProblem(bad), JSON.stringify(bad)).not.toBeNull();
      expect(() => checkHostPath(bad, 'dest')).toThrow(/^dest (must|may)/);
      expect(() => stepParams(pb, 'model', { model: { dest: bad } })).toThrow(/Step "model" \(model-weights\): parameter dest: /);
    }
    expect(hostPathProblem('/srv/models')).toBeNull();
    expect(stepParams(pb, 'model', { model: { dest: '/data/m' } })).toMatchObject({ dest: '/data/m' });
  });

  it('an imported playbook stored before the stricter check is left out of the list, and using it says why', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-old-'));
    const db = openDatabase(path.join(dir, 'a.db'));
    const pbs = new Playbooks({ db, now: () => 'now' });
    try {
      const old = { ...base, name: 'old', steps: [{ id: 'model', type: 'model-weights', params: { model: 'm', version: '1', dest: '/srv/../etc' } }] };
      db.prepare('INSERT INTO playbooks (name, version, body, digest, imported_at, imported_by) VALUES (?, ?, ?, ?, ?, ?)').run('old', '1', JSON.stringify(old), 'a'.repeat(64), 'then', 'bob');
      expect(pbs.all().map((p) => p.playbook.name)).not.toContain('old');
      expect(() => pbs.get('old')).toThrow(/The imported playbook "old" no longer passes validation: Step "model" \(model-weights\): parameter dest: must not contain a \. or \.\. segment/);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('egress lockdown ruleset', () => {
  it('normalises CIDRs to their network address', () => {
    expect(parseCidr('10.213.5.77/25')).toBe('10.213.5.0/25');
    expect(parseCidr('10.213.5.200/25')).toBe('10.213.5.128/25');
    expect(parseCidr('10.0.0.1')).toBe('10.0.0.1');
    expect(parseCidr('10.0.0.1/33')).toBeNull();
    expect(parseCidr('10.0.0.256')).toBeNull();
    expect(parseCidr('::1')).toBeNull();
  });

  it('renders a ruleset nft itself accepts (nft -c), replacing only Airlock\'s table', () => {
    const p = egressLockdown.params.parse({ allowCidrs: ['10.213.5.0/25'], managementCidrs: ['10.213.5.1'] });
    const text = renderRuleset(p, '10.213.5.1');
    expect(text).toContain('policy drop;');
    // Airlock's address lies inside the allowed /25: nft refuses overlapping interval elements.
    expect(text).toContain('elements = { 10.213.5.0/25 }');
    expect(minimalCidrs(['10.0.0.0/8', '10.1.0.0/16', '192.168.1.1', '192.168.1.1', '10.0.0.0/8'])).toEqual(['10.0.0.0/8', '192.168.1.1']);
    expect(text).toMatch(/^table inet airlock_egress\ndelete table inet airlock_egress\n/m);
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nft-')), 'r.nft');
    fs.writeFileSync(f, text);
    // -c: parse and check only, nothing is loaded on this machine.
    execFileSync('nft', ['-c', '-f', f]);
  });
});

describe('attestation verification (offline)', () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const body = {
    format: 'airlock.attestation/v1',
    id: 'att-0123456789abcdef',
    host: { name: 'gpu1', address: '10.0.0.1', port: 22, hostKey: { fingerprint: `SHA256:${'A'.repeat(43)}`, type: 'ssh-ed25519' } },
    playbook: { name: 'p', version: '1', digest: 'a'.repeat(64) },
    run: 'run-0123456789abcdef',
    operator: 'alice',
    createdAt: '2026-11-25T00:00:00.000Z',
    facts: { gpu: { type: 'gpu-driver-check', facts: { count: 8 } } },
  };
  const sign = (b: unknown, key = privateKey) => ({
    attestation: b,
    signature: {
      alg: 'Ed25519',
      publicKey: crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }).toString('base64'),
      keyFingerprint: '',
      value: crypto.sign(null, Buffer.from(canonical(b)), key).toString('base64'),
    },
  });
  const withFp = (doc: ReturnType<typeof sign>) => {
    const v = verifyAttestationText(JSON.stringify(doc), null);
    doc.signature.keyFingerprint = v.keyFingerprint!;
    return JSON.stringify(doc, null, 2);
  };

  it('accepts an intact attestation signed by the trusted key', () => {
    const v = verifyAttestationText(withFp(sign(body)), pem);
    expect(v).toMatchObject({ ok: true, signatureValid: true, trustedKey: true, host: 'gpu1', problems: [] });
  });

  it('names an edited field, a foreign key, and garbage', () => {
    const doc = JSON.parse(withFp(sign(body)));
    doc.attestation.facts.gpu.facts.count = 7;
    const edited = verifyAttestationText(JSON.stringify(doc), pem);
    expect(edited.ok).toBe(false);
    expect(edited.problems.join(' ')).toMatch(/signature does not match/);
    const other = crypto.generateKeyPairSync('ed25519').privateKey;
    const foreign = verifyAttestationText(withFp(sign(body, other)), pem);
    expect(foreign).toMatchObject({ ok: false, signatureValid: true, trustedKey: false });
    expect(foreign.problems.join(' ')).toMatch(/not by this console's attestation key/);
    expect(verifyAttestationText('{nope', pem).problems).toEqual(['not JSON']);
    expect(verifyAttestationText('{"attestation":{}}', pem).ok).toBe(false);
  });
});

describe('helpers', () => {
  it('quotes for the shell and refuses newlines', () => {
    expect(q("it's")).toBe(`'it'\\''s'`);
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${q("a'b $(x) \`y\`")}`]).toString()).toBe("a'b $(x) `y`");
    expect(() => q('a\nb')).toThrow(/newline/);
  });

  it('diffs JSON facts by path', () => {
    expect(diffJson({ a: 1, b: [1, 2], c: { d: 'x' } }, { a: 1, b: [1, 3], c: { d: 'y' }, e: true }, '')).toEqual([
      { path: 'b[1]', attested: 2, now: 3 },
      { path: 'c.d', attested: 'x', now: 'y' },
      { path: 'e', attested: null, now: true },
    ]);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, testCore, type TestClient, type TestCore } from '../../../test/support/core';
import { openDatabase } from '../db/db';
import { generateIdentity } from '../identity/ssh-key';
import { Catalog } from './catalog';
import { deployViolations, type DeployRuleDeps } from './deploy-rules';

const catalogOf = (rows: Record<string, { classification: 'public' | 'internal' | 'confidential' | 'phi'; status: 'staged' | 'approved' | 'deprecated' | 'revoked' }>): DeployRuleDeps['version'] =>
  (m, v) => rows[`${m}:${v}`] ?? null;

describe('deployment rules (pure)', () => {
  const enclaves: Record<string, { name: string; phi: boolean }> = { 'gpu-phi': { name: 'ward-a', phi: true }, 'gpu-gen': { name: 'general', phi: false } };
  const d: DeployRuleDeps = {
    version: catalogOf({
      'triage:1': { classification: 'internal', status: 'approved' },
      'onco:2': { classification: 'phi', status: 'approved' },
      'draft:1': { classification: 'public', status: 'staged' },
      'old:1': { classification: 'public', status: 'revoked' },
    }),
    enclaveOf: (h) => enclaves[h] ?? null,
  };
  const dep = (model: string, version: string) => [{ step: 'model', model, version }];

  it('an approved general version goes to general hosts and hosts in no enclave', () => {
    expect(deployViolations(d, ['gpu-gen', 'gpu-none'], dep('triage', '1'))).toEqual([]);
  });

  it('a phi version only to a PHI enclave: the others are named, with the rule', () => {
    const v = deployViolations(d, ['gpu-phi', 'gpu-gen', 'gpu-none'], dep('onco', '2'));
    expect(v.map((x) => [x.host, x.rule])).toEqual([
      ['gpu-gen', 'phi-outside-phi-enclave'],
      ['gpu-none', 'phi-outside-phi-enclave'],
    ]);
    expect(v[0]!.message).toMatch(/onco 2 is classified phi and gpu-gen is in enclave general, which is not a PHI enclave/);
    expect(v[1]!.message).toMatch(/gpu-none is in no enclave/);
  });

  it('a PHI enclave serves only phi versions (catalogued or not)', () => {
    expect(deployViolations(d, ['gpu-phi'], dep('triage', '1')).map((x) => x.rule)).toEqual(['general-in-phi-enclave']);
    expect(deployViolations(d, ['gpu-phi'], dep('loose', '9'))[0]!.message).toMatch(/loose 9 is not in the catalog/);
    expect(deployViolations(d, ['gpu-gen'], dep('loose', '9'))).toEqual([]);
  });

  it('staged and revoked versions are never deployed', () => {
    expect(deployViolations(d, ['gpu-gen'], dep('draft', '1'))[0]).toMatchObject({ rule: 'not-approved', message: expect.stringMatching(/draft 1 is staged in the catalog/) });
    expect(deployViolations(d, ['gpu-gen'], dep('old', '1'))[0]).toMatchObject({ rule: 'not-approved' });
  });
});

describe('provisioning refuses a plan that breaks them, before any host is touched', () => {
  let t: TestCore;
  let c: TestClient;
  let media: string;
  beforeAll(async () => {
    t = await testCore({ stepUpMinutes: 600 });
    c = t.client();
    await c.ok('session:setup', ADMIN);
    media = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-deploy-rules-'));
    fs.writeFileSync(path.join(media, 'weights.bin'), 'not really weights');
    // The catalog through its own connection to the same file (its channels are not needed here).
    const db = openDatabase(path.join(t.dir, 'airlock.db'));
    try {
      const catalog = new Catalog({ db, now: () => new Date() });
      catalog.addModel({ name: 'onco', owner: 'oncology' }, 'alice');
      await catalog.importDirectory({ model: 'onco', version: '2', dir: media, classification: 'phi', license: 'internal', source: 'test' }, 'alice');
      catalog.setStatus('onco', '2', 'approved', 'alice', { secondPerson: 'olga' });
    } finally {
      db.close();
    }
    // Pinned from a known_hosts line (nothing is contacted: the plan is refused first).
    const added = await c.ok('hosts:importKnownHosts', { text: `gpu-01 ${generateIdentity('gpu-01').publicKey.split(' ').slice(0, 2).join(' ')}\n` });
    expect(added.added.map((h) => h.name)).toEqual(['gpu-01']);
    await c.ok('provision:importPlaybook', {
      text: JSON.stringify({ format: 'airlock.playbook/v1', name: 'onco-deploy', version: '1', steps: [{ id: 'weights', type: 'model-weights', params: { model: 'onco', version: '2' } }] }),
    });
  });
  afterAll(async () => {
    await t.close();
    fs.rmSync(media, { recursive: true, force: true });
  });

  it('a phi version to a host outside a PHI enclave: FORBIDDEN, naming host, version and rule; no run recorded', async () => {
    const r = await c.call('provision:plan', { playbook: 'onco-deploy', hosts: ['gpu-01'], params: {} });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('FORBIDDEN');
    expect(r.error.message).toMatch(/onco 2 is classified phi and gpu-01 is in enclave general, which is not a PHI enclave: phi versions are deployed only to hosts in a PHI enclave \(step weights\)/);
    expect(await c.ok('provision:runs', {})).toHaveLength(0);
  });
});

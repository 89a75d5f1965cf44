/**
 * models:publish against the lab's real registry with token authentication on (distribution's
 * `auth.token`, its bundle pinning Airlock's registry-token certificate): Airlock issues itself a
 * token for exactly the version's repository, the push goes through, and the token is on the audit
 * trail (principal, scope, expiry), never the token itself. Without a signer the push is refused
 * with a sentence saying why, and the registry holds nothing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuingCa, createRootCa, issueCertificate } from '../../electron/core/keys/ca';
import { RegistryClient } from '../../electron/core/models/registry/client';
import { signRegistryToken, type TokenSigner } from '../../electron/core/models/registry/token';
import { configureRegistry, labDown, labUp, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestCore } from '../support/core';

const SERVICE = 'airlock-lab-registry';
const ISSUER = 'airlock';
const random = (n: number) => crypto.randomBytes(n);
let lab: Lab;
let signer: TokenSigner;
let media: string;

beforeAll(async () => {
  lab = await labUp({ id: 'modtok', hosts: 1, registry: true, replace: true });
  const now = new Date();
  const root = await createRootCa({ commonName: 'Airlock Root', validityDays: 30, now, random });
  const issuing = await createIssuingCa(root, { commonName: 'Airlock Issuing', validityDays: 20, now, random });
  const leaf = await issueCertificate(issuing, { profile: 'registry-token', commonName: 'Airlock registry tokens', validityDays: 10, now, random });
  signer = { certPem: leaf.certPem, chainPems: [issuing.certPem], privateKeyPkcs8: leaf.privateKeyPkcs8! };
  await configureRegistry(lab, { auth: { realm: `http://${lab.registry!.address}:1/token`, service: SERVICE, issuer: ISSUER, rootCertBundlePem: signer.certPem } });
  media = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-modtok-media-')));
  fs.mkdirSync(path.join(media, 'm'));
  fs.writeFileSync(path.join(media, 'm', 'w.bin'), crypto.randomBytes(100_000));
}, 180_000);
afterAll(async () => {
  await labDown({ id: 'modtok' });
  fs.rmSync(media, { recursive: true, force: true });
});

async function consoleWith(tokens: boolean): Promise<TestCore> {
  return testCore({ mediaRoots: [media], ...(tokens ? { modelsRegistryTokens: { signer, issuer: ISSUER, service: SERVICE } } : {}) });
}

describe('publishing to a registry that asks for tokens', () => {
  it('is refused without a registry-token signer, and pushes with one, its token audited by principal, scope and expiry', async () => {
    const readToken = () => signRegistryToken({ signer, issuer: ISSUER, service: SERVICE, subject: 'test', access: [{ type: 'repository', name: 'models/triage', actions: ['pull'] }], now: new Date(), random }).token;
    const client = new RegistryClient({ baseUrl: lab.registry!.url, token: async () => readToken() });

    const bare = await consoleWith(false);
    try {
      const c = bare.client();
      await c.ok('session:setup', ADMIN);
      await c.ok('models:setRegistry', { url: lab.registry!.url });
      await c.ok('models:import', { format: 'directory', path: path.join(media, 'm'), name: 'triage', version: 'v1', owner: 'ML', classification: 'internal', license: 'mit', source: 'usb' });
      await c.ok('models:approve', { name: 'triage', version: 'v1' });
      const r = await c.call('models:publish', { name: 'triage', version: 'v1' });
      expect(r).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED', message: expect.stringContaining('no registry-token certificate') } });
      expect(await client.tags('models/triage')).toEqual([]);
    } finally {
      await bare.close();
    }

    const t = await consoleWith(true);
    try {
      const c = t.client();
      await c.ok('session:setup', ADMIN);
      await c.ok('models:setRegistry', { url: lab.registry!.url });
      await c.ok('models:import', { format: 'directory', path: path.join(media, 'm'), name: 'triage', version: 'v1', owner: 'ML', classification: 'internal', license: 'mit', source: 'usb' });
      const v = await c.ok('models:approve', { name: 'triage', version: 'v1' });
      const p = await c.ok('models:publish', { name: 'triage', version: 'v1' });
      expect(p.digest).toBe(v.manifestDigest);
      expect((await client.getManifest('models/triage', 'v1'))?.digest).toBe(v.manifestDigest);

      const { events } = await c.ok('audit:list', { channel: 'models:publish', limit: 10 });
      const outcome = events.find((e) => e.phase === 'outcome' && e.outcome === 'ok')!;
      const detail = (outcome.params as { detail: { registry: string; tokens: { principal: string; scope: string; expiresAt: string; jti: string }[] } }).detail;
      expect(detail.registry).toBe(lab.registry!.url);
      expect(detail.tokens.length).toBeGreaterThan(0);
      for (const tok of detail.tokens) {
        expect(tok.principal).toBe('airlock-console:alice');
        expect(tok.scope).toMatch(/^repository:models\/triage:(pull|push|pull,push|push,pull)$/);
        expect(Date.parse(tok.expiresAt)).toBeGreaterThan(0);
      }
      // The token itself is nowhere on the trail.
      expect(JSON.stringify(events)).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\./);
    } finally {
      await t.close();
    }
  }, 120_000);
});

/**
 * The access channels through the real core (dispatcher, audit, approvals) on a real SQLite file,
 * with no hosts enrolled (pushing reaches none; the lab tests in test/integration/access.test.ts
 * push to real hosts): credentials returned once and never in the database or the audit trail,
 * phi grants filed for a second person and bound to the principal and the version they name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN, testCore, type TestClient, type TestCore } from '../../../../test/support/core';
import { openDatabase } from '../../db/db';
import { Catalog } from '../catalog';

let t: TestCore;
let admin: TestClient;
let olga: TestClient;

/** Catalog records through a second connection to the same file (the catalog's channels are another helper's). */
async function catalog(fn: (cat: Catalog) => Promise<void> | void) {
  const db = openDatabase(path.join(t.dir, 'airlock.db'));
  try {
    await fn(new Catalog({ db, now: () => new Date() }));
  } finally {
    db.close();
  }
}

async function version(cat: Catalog, model: string, v: string, classification: 'internal' | 'phi') {
  const src = fs.mkdtempSync(path.join(t.dir, 'media-'));
  fs.writeFileSync(path.join(src, 'w.bin'), `${model}/${v}`);
  await cat.importDirectory({ model, version: v, dir: src, classification, license: 'mit', source: 'usb' }, 'alice');
  cat.setStatus(model, v, 'approved', 'alice', classification === 'phi' ? { secondPerson: 'olga' } : {});
}

beforeEach(async () => {
  t = await testCore({ stepUpMinutes: 600 });
  admin = t.client();
  await admin.ok('session:setup', ADMIN);
  await admin.ok('users:create', { name: 'olga', password: 'officer password 1', roles: ['officer'], mustChangePassword: false });
  olga = t.client();
  await olga.ok('session:login', { name: 'olga', password: 'officer password 1' });
  await catalog(async (cat) => {
    cat.addModel({ name: 'triage', owner: 'ml' }, 'alice');
    cat.addModel({ name: 'ward-notes', owner: 'ml' }, 'alice');
    await version(cat, 'triage', '1.0.0', 'internal');
    await version(cat, 'ward-notes', '2.0', 'phi');
  });
});

afterEach(async () => {
  await t.close();
});

function dbBytes(): string {
  return Buffer.concat(
    fs
      .readdirSync(t.dir)
      .filter((f) => f.startsWith('airlock.db'))
      .map((f) => fs.readFileSync(path.join(t.dir, f))),
  ).toString('latin1');
}

describe('access channels', () => {
  it('returns a credential once; neither the database nor the audit trail ever holds it', async () => {
    const made = await admin.ok('principals:create', { kind: 'application', name: 'triage-bot', description: 'triage assistant' });
    const cred = made.credentials[0]!.credential;
    const rotated = await admin.ok('principals:rotateCredential', { id: 'app:triage-bot' });
    expect(rotated.credential.credential).not.toBe(cred);
    const listed = await admin.ok('principals:list', {});
    expect(JSON.stringify(listed)).not.toContain('alk_');
    const g = await admin.ok('grants:add', { principal: 'app:triage-bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: new Date(Date.now() + 10 * 86_400_000).toISOString() });
    expect(g.grant).toMatchObject({ status: 'active', resolved: { version: '1.0.0', classification: 'internal' }, phiApproved: false });
    expect(g.grant.expiresInDays).toBe(9);
    // The creation issued v1 (the application known, no grants), the rotation v2 (its new credential hash), the grant v3.
    expect(rotated.policy).toMatchObject({ version: 2, changed: true });
    expect(g.policy).toMatchObject({ version: 3, changed: true, hosts: [], summary: 'policy v3 on 0/0 hosts' });
    const audit = await admin.ok('audit:list', { limit: 200 });
    const text = JSON.stringify(audit);
    expect(text).toContain('principals:create');
    expect(text).toContain('"credentialsIssued":["app:triage-bot"]');
    expect(text).toContain('"credentialGeneration":2');
    const bytes = dbBytes();
    for (const c of [cred, rotated.credential.credential]) {
      expect(text).not.toContain(c);
      expect(bytes).not.toContain(c);
      expect(bytes).not.toContain(c.slice(4));
    }
    const st = await admin.ok('policy:status', {});
    expect(st).toMatchObject({ version: 3, principals: 1, grants: 1, issuer: expect.stringMatching(/^SHA256:/), publicKey: expect.stringContaining('BEGIN PUBLIC KEY') });
    // The policy signing key is one of Airlock's own keys now.
    expect((await admin.ok('keys:status', {})).ownKeys.map((k) => k.purpose)).toContain('policy.signing');
  });

  it('files a phi grant for a second person; the approved grant is active; an approval does not carry over to another principal', async () => {
    await admin.ok('principals:create', { kind: 'application', name: 'notes-bot' });
    const input = { principal: 'app:notes-bot', model: 'ward-notes', version: { exact: '2.0' }, actions: ['invoke'], expiresAt: null };
    expect(await admin.call('grants:add', input)).toMatchObject({ ok: false, error: { code: 'APPROVAL_REQUIRED', message: expect.stringContaining('classified phi') } });
    expect(await admin.ok('grants:list', {})).toEqual([]);
    const req = await admin.ok('approvals:request', { channel: 'grants:add', input, reason: 'ward A discharge notes' });
    expect(req).toMatchObject({ operation: 'models:grantPhi', status: 'pending' });
    expect(await admin.call('approvals:approve', { id: req.id, reason: 'mine' })).toMatchObject({ ok: false });
    await olga.ok('approvals:approve', { id: req.id, reason: 'checked with the ward' });
    const ran = await admin.ok('approvals:execute', { id: req.id });
    expect(JSON.stringify(ran)).toContain('"phiApproved":true');
    const [grant] = await admin.ok('grants:list', { model: 'ward-notes' });
    expect(grant).toMatchObject({ status: 'active', phiApproved: true, approval: req.id, resolved: { classification: 'phi' } });

    // Filed for one principal, which is then disabled: the approval no longer holds.
    await admin.ok('principals:create', { kind: 'application', name: 'other-bot' });
    const other = { ...input, principal: 'app:other-bot' };
    const req2 = await admin.ok('approvals:request', { channel: 'grants:add', input: other, reason: 'second bot' });
    await admin.ok('principals:disable', { id: 'app:other-bot', reason: 'retired' });
    expect(await olga.call('approvals:approve', { id: req2.id, reason: 'looks fine' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN', message: expect.stringContaining('no longer the one it was filed for') } });
    // A non-phi grant needs nobody else.
    expect(await admin.call('approvals:request', { channel: 'grants:add', input: { ...input, model: 'triage', version: { exact: '1.0.0' } }, reason: 'not needed' })).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
  });

  it('refuses bad input with a sentence a person can act on', async () => {
    expect(await admin.call('grants:add', { principal: 'app:ghost', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: null })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND', message: expect.stringContaining('create it first') },
    });
    await admin.ok('principals:create', { kind: 'application', name: 'bot' });
    expect(await admin.call('grants:add', { principal: 'app:bot', model: 'triage', version: { exact: '9.9' }, actions: ['invoke'], expiresAt: null })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(await admin.call('grants:add', { principal: 'app:bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: '2020-01-01T00:00:00Z' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_INPUT', message: expect.stringContaining('in the past') },
    });
    expect(await admin.call('grants:revoke', { id: 'gr-0000000000000000', reason: 'nothing' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(await admin.call('enclaves:assign', { host: 'nohost', enclave: 'general' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(await admin.call('principals:create', { kind: 'team', name: 'ward', members: [] })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    // An auditor reads but never changes.
    await admin.ok('users:create', { name: 'aud', password: 'auditor password 1', roles: ['auditor'], mustChangePassword: false });
    const aud = t.client();
    await aud.ok('session:login', { name: 'aud', password: 'auditor password 1' });
    expect(await aud.ok('grants:list', {})).toEqual([]);
    // The application created above is already in a policy (known to the gates, granted nothing).
    expect(await aud.ok('policy:status', {})).toMatchObject({ version: 1, summary: 'policy v1 on 0/0 hosts' });
    expect(await aud.call('policy:status', { check: true })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await aud.call('grants:add', { principal: 'app:bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: null })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});

/**
 * The access records and the policy compiler on a real SQLite file: canonical, deterministic
 * bytes; selectors (exact, latest approved) resolved against the catalog; revoked, expired,
 * disabled and non-approved left out; teams expanded; a new version only when the content
 * changed; credentials never stored and never returned twice; phi grants only with approval.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonical } from '../../audit/canonical';
import { openDatabase, type Db } from '../../db/db';
import { keyFingerprint } from '../../keys/ed25519';
import { KeyRegistry } from '../../keys/registry';
import { Vault } from '../../vault/vault';
import { Catalog } from '../catalog';
import { catalogVersions, compile, compileInputFrom, needsPhiApproval, PolicyIssuer, POLICY_FORMAT, type PolicyDocument } from './policy';
import { parseGateStatus, summarize, verifies } from './propagate';
import { AccessStore, credentialSha256 } from './store';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
let dir: string;
let db: Db;
let clock: number;
let cat: Catalog;
let store: AccessStore;
let issuer: PolicyIssuer;
const vaultKey = crypto.randomBytes(32);
const now = () => new Date(clock);

async function version(model: string, v: string, classification: 'internal' | 'phi', approve = true) {
  const src = fs.mkdtempSync(path.join(dir, 'media-'));
  fs.writeFileSync(path.join(src, 'weights.bin'), `${model}-${v}-${crypto.randomBytes(8).toString('hex')}`);
  await cat.importDirectory({ model, version: v, dir: src, classification, license: 'apache-2.0', source: 'usb' }, 'alice');
  clock += 1000;
  if (approve) cat.setStatus(model, v, 'approved', 'alice', classification === 'phi' ? { secondPerson: 'bob' } : {});
  clock += 1000;
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-access-'));
  db = openDatabase(path.join(dir, 'airlock.db'));
  clock = Date.UTC(2026, 11, 8);
  cat = new Catalog({ db, now });
  store = new AccessStore({ db, now, random: crypto.randomBytes });
  const vault = new Vault({ db, kdf: KDF, random: crypto.randomBytes, now: () => now().toISOString() });
  issuer = new PolicyIssuer({
    db,
    registry: new KeyRegistry({ db, vault, random: crypto.randomBytes, now }),
    now,
    input: compileInputFrom(db, { principals: () => store.rows(), members: () => store.members(), grants: () => store.grants(), hosts: () => store.hostEnclaves().filter((h) => h.confirmed) }),
  });
  cat.addModel({ name: 'triage', owner: 'ml' }, 'alice');
  cat.addModel({ name: 'ward-notes', owner: 'ml' }, 'alice');
  await version('triage', '1.0.0', 'internal');
  await version('triage', '1.2.0', 'internal');
  await version('ward-notes', '2.0', 'phi');
});

afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const doc = (body: string) => JSON.parse(body) as PolicyDocument;

describe('principals and credentials', () => {
  it('returns an application credential once, stores only its SHA-256, and never lists it', () => {
    const r = store.createApplication('triage-bot', 'the triage assistant', 'alice');
    expect(r.credentials).toHaveLength(1);
    const cred = r.credentials[0]!.credential;
    expect(cred).toMatch(/^alk_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(cred.slice(4), 'base64url')).toHaveLength(32);
    expect(store.row('app:triage-bot')!.credential_sha256).toBe(credentialSha256(cred));
    expect(JSON.stringify(store.principals())).not.toContain(cred);
    expect(JSON.stringify(store.principal('app:triage-bot'))).not.toContain(credentialSha256(cred));
    const rotated = store.rotateCredential('app:triage-bot');
    expect(rotated.credential).not.toBe(cred);
    expect(rotated.principal.credentialGeneration).toBe(2);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = Buffer.concat(fs.readdirSync(dir).filter((f) => f.startsWith('airlock.db')).map((f) => fs.readFileSync(path.join(dir, f))));
    for (const c of [cred, rotated.credential]) {
      expect(bytes.includes(Buffer.from(c))).toBe(false);
      expect(bytes.includes(Buffer.from(c.slice(4)))).toBe(false);
    }
    expect(() => store.createApplication('triage-bot', '', 'alice')).toThrow(/already/);
  });

  it('gives each new team member a credential of their own, and only once', () => {
    const a = store.createTeam('ward-a', ['carol', 'dave', 'carol'], '', 'alice');
    expect(a.principal.members).toEqual(['user:carol', 'user:dave']);
    expect(a.credentials.map((c) => c.principal)).toEqual(['user:carol', 'user:dave']);
    const b = store.createTeam('ward-b', ['dave', 'erin'], '', 'alice');
    expect(b.credentials.map((c) => c.principal)).toEqual(['user:erin']);
    expect(store.principal('user:dave')!.teams).toEqual(['team:ward-a', 'team:ward-b']);
    expect(() => store.rotateCredential('team:ward-a')).toThrow(/team has no credential/);
  });
});

describe('the policy compiler', () => {
  it('resolves exact and latest-approved selectors, leaves out revoked, expired, disabled and non-approved, sorts, and hashes credentials', () => {
    const bot = store.createApplication('triage-bot', '', 'alice').credentials[0]!.credential;
    const old = store.createApplication('old-bot', '', 'alice').credentials[0]!.credential;
    const g1 = store.addGrant({ principal: 'app:triage-bot', model: 'triage', version: 'latest-approved', actions: ['pull', 'invoke', 'pull'], expiresAt: null, requestsPerMinute: 60 }, 'alice', { phiAllowed: false, approvalId: null });
    const g2 = store.addGrant({ principal: 'app:triage-bot', model: 'triage', version: { exact: '1.0.0' }, actions: ['invoke'], expiresAt: new Date(clock + 3_600_000).toISOString() }, 'alice', { phiAllowed: false, approvalId: null });
    const g3 = store.addGrant({ principal: 'app:old-bot', model: 'triage', version: { exact: '1.0.0' }, actions: ['invoke'], expiresAt: null }, 'alice', { phiAllowed: false, approvalId: null });
    store.revokeGrant(g3.id, 'retired', 'alice');
    const { policy } = issuer.ensure(vaultKey, 'alice');
    const d = doc(policy.body);
    expect(d.format).toBe(POLICY_FORMAT);
    expect(d.version).toBe(1);
    // Both applications are known (old-bot's grant is revoked, so it is known and granted nothing: 403, not 401).
    expect(d.principals).toEqual([
      { id: 'app:old-bot', kind: 'application', credentialSha256: credentialSha256(old) },
      { id: 'app:triage-bot', kind: 'application', credentialSha256: credentialSha256(bot) },
    ]);
    const digest = (v: string) => cat.version('triage', v)!.manifestDigest;
    expect(d.grants).toEqual(
      [
        { id: g1.id, principal: 'app:triage-bot', model: 'triage', version: '1.2.0', digest: digest('1.2.0'), classification: 'internal', actions: ['invoke', 'pull'], expiresAt: null, rateLimit: { requestsPerMinute: 60 } },
        { id: g2.id, principal: 'app:triage-bot', model: 'triage', version: '1.0.0', digest: digest('1.0.0'), classification: 'internal', actions: ['invoke'], expiresAt: g2.expires_at, rateLimit: null },
      ].sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
    // The bytes are RFC 8785 canonical JSON, and the signature verifies with the pinned key.
    expect(policy.body).toBe(canonical(JSON.parse(policy.body)));
    expect(crypto.createHash('sha256').update(policy.body).digest('hex')).toBe(policy.sha256);
    const pem = issuer.publicKey()!;
    expect(verifies(pem, Buffer.from(policy.body), Buffer.from(`${policy.signature}\n`))).toBe(true);
    expect(d.issuer).toBe(keyFingerprint(pem));
    expect(verifies(pem, Buffer.from(policy.body.replace('1.2.0', '1.2.1')), Buffer.from(policy.signature))).toBe(false);

    // An hour later g2 has expired: it leaves the policy, and that is a new version.
    clock += 3_600_000;
    const later = issuer.ensure(vaultKey, 'alice');
    expect(later.changed).toBe(true);
    expect(doc(later.policy.body).grants.map((g) => g.id)).toEqual([g1.id]);
    // Deprecating 1.2.0: latest-approved now resolves to 1.0.0.
    cat.setStatus('triage', '1.2.0', 'deprecated', 'alice', { reason: 'superseded' });
    expect(doc(issuer.ensure(vaultKey, 'alice').policy.body).grants[0]).toMatchObject({ id: g1.id, version: '1.0.0' });
    // The principal disabled: nothing of it stays.
    store.disable('app:triage-bot', 'compromised', 'alice');
    const off = doc(issuer.ensure(vaultKey, 'alice').policy.body);
    expect(off.grants).toEqual([]);
    expect(off.principals.map((p) => p.id)).toEqual(['app:old-bot']);
  });

  it('is deterministic: the same records give the same bytes, and the version bumps only when the content changes', () => {
    store.createApplication('triage-bot', '', 'alice');
    store.addGrant({ principal: 'app:triage-bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: null }, 'alice', { phiAllowed: false, approvalId: null });
    const input = compileInputFrom(db, { principals: () => store.rows(), members: () => store.members(), grants: () => store.grants(), hosts: () => [] })('SHA256:x', now());
    const shuffled = { ...input, grants: [...input.grants].reverse(), principals: [...input.principals].reverse() };
    expect(canonical(compile(input))).toBe(canonical(compile(shuffled)));
    const a = issuer.ensure(vaultKey, 'alice');
    clock += 60_000;
    const b = issuer.ensure(vaultKey, 'bob');
    expect(a.changed).toBe(true);
    expect(b).toEqual({ policy: a.policy, changed: false });
    // A rotated credential changes the content.
    store.rotateCredential('app:triage-bot');
    const c = issuer.ensure(vaultKey, 'alice');
    expect(c.changed).toBe(true);
    expect(c.policy.version).toBe(2);
    // A new application is known to the gates at once (401 → 403 for it), even before a grant.
    store.createApplication('idle', '', 'alice');
    const d = issuer.ensure(vaultKey, 'alice');
    expect(d.changed).toBe(true);
    expect(doc(d.policy.body).principals.map((p) => p.id)).toContain('app:idle');
    // Nothing changed since: no new version.
    expect(issuer.ensure(vaultKey, 'alice').changed).toBe(false);
  });

  it('expands a team to its members who are not disabled', () => {
    store.createTeam('ward-a', ['carol', 'dave'], '', 'alice');
    const g = store.addGrant({ principal: 'team:ward-a', model: 'triage', version: { exact: '1.0.0' }, actions: ['pull'], expiresAt: null }, 'alice', { phiAllowed: false, approvalId: null });
    store.disable('user:dave', 'left', 'alice');
    const d = doc(issuer.ensure(vaultKey, 'alice').policy.body);
    expect(d.principals.map((p) => [p.id, p.kind])).toEqual([['user:carol', 'user']]);
    expect(d.grants.map((x) => [x.id, x.principal])).toEqual([[`${g.id}:user:carol`, 'user:carol']]);
  });

  it('leaves out a phi version unless the grant passed the two-person rule, and never widens latest-approved to phi by itself', async () => {
    store.createApplication('notes-bot', '', 'alice');
    const versions = catalogVersions(db);
    expect(needsPhiApproval(versions, 'ward-notes', { exact: '2.0' })).toBe(true);
    expect(needsPhiApproval(versions, 'triage', 'latest-approved')).toBe(false);
    const unapproved = store.addGrant({ principal: 'app:notes-bot', model: 'ward-notes', version: { exact: '2.0' }, actions: ['invoke'], expiresAt: null }, 'alice', { phiAllowed: false, approvalId: null });
    const approved = store.addGrant({ principal: 'app:notes-bot', model: 'ward-notes', version: { exact: '2.0' }, actions: ['invoke'], expiresAt: null }, 'alice', { phiAllowed: true, approvalId: 7 });
    const latest = store.addGrant({ principal: 'app:notes-bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: null }, 'alice', { phiAllowed: false, approvalId: null });
    let d = doc(issuer.ensure(vaultKey, 'alice').policy.body);
    expect(d.grants.map((g) => g.id).sort()).toEqual([approved.id, latest.id].sort());
    expect(d.grants.find((g) => g.id === approved.id)).toMatchObject({ classification: 'phi', version: '2.0' });
    expect(d.grants.map((g) => g.id)).not.toContain(unapproved.id);
    // A phi version of triage approved later: the latest-approved grant made without approval drops out instead of widening.
    await version('triage', '3.0-phi', 'phi');
    d = doc(issuer.ensure(vaultKey, 'alice').policy.body);
    expect(d.grants.map((g) => g.id)).toEqual([approved.id]);
  });

  it('lists hosts with their enclave and PHI flag (unassigned: general)', () => {
    const T = now().toISOString();
    for (const [n, a] of [['gpu-01', '10.0.0.1'], ['gpu-07', '10.0.0.7'], ['new', '10.0.0.9']] as const) {
      db.prepare('INSERT INTO hosts (name, address, port, user, fingerprint, added_at) VALUES (?, ?, 22, ?, ?, ?)').run(n, a, 'root', n === 'new' ? null : `SHA256:${'A'.repeat(43)}`, T);
    }
    store.createEnclave('ward-a', true, '', 'alice');
    store.assign('gpu-07', 'ward-a', 'alice');
    expect(() => store.assign('gpu-07', 'nope', 'alice')).toThrow(/no enclave nope/);
    expect(doc(issuer.ensure(vaultKey, 'alice').policy.body).hosts).toEqual({ 'gpu-01': { enclave: 'general', phi: false }, 'gpu-07': { enclave: 'ward-a', phi: true } });
    expect(store.enclaves().map((e) => [e.name, e.phi, e.hosts])).toEqual([
      ['general', false, ['gpu-01', 'new']],
      ['ward-a', true, ['gpu-07']],
    ]);
  });
});

describe('what hosts say, parsed defensively', () => {
  it('takes only well-typed fields of status.json, and refuses what is not JSON or too large', () => {
    const sha = 'a'.repeat(64);
    expect(parseGateStatus(Buffer.from(JSON.stringify({ policyVersion: 4, policySha256: sha, loadedAt: '2026-12-08T00:00:00Z', lastRejected: { at: 'x', reason: 'older', version: 3 } })))).toEqual({
      policyVersion: 4,
      policySha256: sha,
      loadedAt: '2026-12-08T00:00:00Z',
      lastRejected: { at: 'x', reason: 'older', version: 3 },
    });
    expect(parseGateStatus(Buffer.from(JSON.stringify({ policyVersion: -1, policySha256: 'zz', loadedAt: 'x'.repeat(100), lastRejected: { reason: 'rm -rf' } })))).toEqual({ policyVersion: null, policySha256: null, loadedAt: null, lastRejected: null });
    expect(parseGateStatus(Buffer.from('{not json'))).toBeNull();
    expect(parseGateStatus(Buffer.from('[]'))).toBeNull();
    expect(parseGateStatus(Buffer.alloc(70_000, 0x20))).toBeNull();
    expect(parseGateStatus(null)).toBeNull();
  });

  it('summarizes propagation in words', () => {
    const h = (host: string, state: 'ok' | 'unreachable', since: string | null = null) => ({ host, enclave: 'general', phi: false, state, deliveredVersion: 1, enforcingVersion: null, since, lastError: null, checkedAt: null });
    expect(summarize(42, [h('gpu-01', 'ok'), h('gpu-07', 'unreachable', '2026-12-08T10:42:00.000Z')])).toBe('policy v42 on 1/2 hosts; gpu-07 unreachable since 2026-12-08T10:42:00.000Z');
    expect(summarize(null, [])).toBe('no policy issued yet');
  });
});

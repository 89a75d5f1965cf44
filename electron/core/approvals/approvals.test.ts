import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApprovalOperations } from '../../../shared/contract/approvals';
import type { ChannelDef } from '../../../shared/contract/channel';
import { channels, type ChannelName } from '../../../shared/contract/index';
import { Users } from '../users/users';
import { openDatabase, type Db } from '../db/db';
import { Vault } from '../vault/vault';
import { Approvals, SEALED } from './approvals';
import { GUARDS, channelsByOperation } from './guards';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function setup() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-approvals-'));
  dirs.push(d);
  const db: Db = openDatabase(path.join(d, 'airlock.db'));
  const clock = { now: Date.UTC(2026, 0, 1) };
  const now = () => new Date(clock.now);
  const random = (n: number) => crypto.randomBytes(n);
  const vault = new Vault({ db, kdf: KDF, random, now: () => now().toISOString() });
  const users = new Users({ db, vault, kdf: KDF, now: () => now().toISOString() });
  const alice = await users.createFirst('alice', 'alice long password', () => {});
  await users.create(alice, 'olga', 'olga long password', ['officer'], alice.vaultKey, { mustChangePassword: false });
  const olga = users.row('olga');
  const approvals = new Approvals({ db, vault, users, now });
  const a = { id: alice.id, uid: alice.uid, name: 'alice', roles: alice.roles, vaultKey: alice.vaultKey };
  const o = { id: olga.id, uid: olga.uid, name: 'olga', roles: ['officer' as const] };
  return { db, clock, users, approvals, a, o, key: alice.vaultKey };
}

describe('the two-person guards', () => {
  it('match the contract: every twoPerson channel has a guard for that operation, and every guard a twoPerson channel', () => {
    for (const [name, def] of Object.entries(channels) as Array<[ChannelName, ChannelDef]>) {
      if (def.twoPerson) expect(GUARDS[name]?.operation, name).toBe(def.twoPerson);
      else expect(GUARDS[name], name).toBeUndefined();
      if (def.twoPerson) expect(ApprovalOperations as readonly string[]).toContain(def.twoPerson);
    }
    const byOp = channelsByOperation();
    expect(byOp.get('users:grantAdmin')?.sort()).toEqual(['users:create', 'users:enable', 'users:setRoles']);
    expect(byOp.get('approvals:setPolicy')).toEqual(['approvals:setPolicy']);
  });

  it('each declare the object their call acts on, so a request binds its identity (no approval executes on a namesake)', () => {
    const examples: Partial<Record<ChannelName, Record<string, unknown>>> = {
      'users:create': { name: 'bob' },
      'users:setRoles': { name: 'bob' },
      'users:enable': { name: 'bob' },
      'provision:disableEgressLockdown': { host: 'gpu1' },
      'approvals:setPolicy': { operation: 'keys:rotateRoot' },
      'keys:beginReshare': { officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 2 },
      'keys:beginRotateRoot': { officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 2 },
      'models:approve': { name: 'triage', version: 'v1' },
      'grants:add': { principal: 'app:bot', model: 'notes', version: { exact: '2.0' }, actions: ['invoke'], expiresAt: null },
    };
    for (const [name, guard] of Object.entries(GUARDS) as Array<[ChannelName, NonNullable<(typeof GUARDS)[ChannelName]>]>) {
      expect(examples[name], `${name}: add an example above`).toBeDefined();
      expect(guard.target?.(examples[name]!), name).toMatchObject({ name: expect.any(String) });
    }
  });

  it('guard users:create only with the admin role, and setRoles only when it adds admin', async () => {
    const { approvals, key } = await setup();
    expect(approvals.gate('users:create', { name: 'x', password: 'p', roles: ['officer'] }, key, undefined)).toBeNull();
    expect(approvals.gate('users:create', { name: 'x', password: 'p', roles: ['officer', 'admin'] }, key, undefined)).toMatchObject({
      code: 'APPROVAL_REQUIRED',
    });
    expect(approvals.gate('users:setRoles', { name: 'olga', roles: ['officer', 'admin'] }, key, undefined)).toMatchObject({ code: 'APPROVAL_REQUIRED' });
    expect(approvals.gate('users:setRoles', { name: 'olga', roles: ['auditor'] }, key, undefined)).toBeNull();
    expect(approvals.gate('users:setRoles', { name: 'alice', roles: ['admin', 'officer'] }, key, undefined)).toBeNull(); // already admin
  });
});

describe('approval requests', () => {
  const input = { name: 'bob', password: 'bob initial password', roles: ['admin'], mustChangePassword: true };

  it('seal the input: the password is nowhere in the clear, the approver sees [sealed]', async () => {
    const { db, approvals, a, o } = await setup();
    const q = approvals.file(a, 'users:create', input, 'second admin for on-call');
    expect(q).toMatchObject({ status: 'pending', operation: 'users:grantAdmin', input: { name: 'bob', password: SEALED }, requestedBy: 'alice' });
    const raw = JSON.stringify(db.prepare('SELECT * FROM approval_requests').all(), (_k, v: unknown) =>
      Buffer.isBuffer(v) ? v.toString('latin1') : v,
    );
    expect(raw).not.toContain('bob initial password');
    expect(approvals.get(o, q.id)).toMatchObject({ canApprove: true, input: { password: SEALED } });
  });

  it('run exactly the approved input: a changed input, another channel, or a tampered seal is refused', async () => {
    const { db, approvals, a, o, key } = await setup();
    const q = approvals.file(a, 'users:create', input, 'second admin for on-call');
    approvals.approve(o, q.id, 'checked with alice in person');
    const claim = approvals.claim(a, q.id);
    expect(claim.input).toEqual(input);
    const approved = { id: claim.id, channel: claim.channel, digest: claim.digest, target: claim.target };
    expect(approvals.gate('users:create', claim.input, key, approved)).toBeNull();
    expect(approvals.gate('users:create', { ...input, name: 'mallory' }, key, approved)).toMatchObject({ code: 'CONFLICT' });
    expect(approvals.gate('users:create', { ...input, password: 'another password here' }, key, approved)).toMatchObject({ code: 'CONFLICT' });
    expect(approvals.gate('users:setRoles', { name: 'olga', roles: ['admin'] }, key, approved)).toMatchObject({ code: 'CONFLICT' });
    approvals.release(q.id);
    // A sealed input from another request (or edited bytes) does not open under this request's id.
    const other = approvals.file(a, 'users:create', { ...input, name: 'carol' }, 'a third admin');
    const sealedOther = (db.prepare('SELECT input_sealed FROM approval_requests WHERE id = ?').get(other.id) as { input_sealed: Buffer }).input_sealed;
    db.prepare('UPDATE approval_requests SET input_sealed = ? WHERE id = ?').run(sealedOther, q.id);
    expect(() => approvals.claim(a, q.id)).toThrow(/altered/);
  });

  it('claim once: a second claim of the same request is refused', async () => {
    const { approvals, a, o } = await setup();
    const q = approvals.file(a, 'users:create', input, 'second admin for on-call');
    approvals.approve(o, q.id, 'ok');
    approvals.claim(a, q.id);
    expect(() => approvals.claim(a, q.id)).toThrow(/executing/);
    approvals.finish(q.id, null);
    expect(() => approvals.claim(a, q.id)).toThrow(/executed/);
  });

  it('expire after the policy time, pending or approved', async () => {
    const { approvals, a, o, clock } = await setup();
    const q1 = approvals.file(a, 'users:create', input, 'one');
    const q2 = approvals.file(a, 'users:create', { ...input, name: 'carol' }, 'two');
    approvals.approve(o, q2.id, 'ok');
    clock.now += 24 * 60 * 60_000;
    expect(approvals.get(o, q1.id)).toMatchObject({ status: 'expired', canApprove: false });
    expect(() => approvals.approve(o, q1.id, 'late')).toThrow(/expired/);
    expect(() => approvals.claim(a, q2.id)).toThrow(/expired/);
  });

  it('refuse requests that could never run, or that need nobody', async () => {
    const { approvals, a } = await setup();
    expect(() => approvals.file(a, 'users:create', { ...input, name: 'olga' }, 'dup')).toThrow(/already exists/);
    expect(() => approvals.file(a, 'users:create', { ...input, password: 'password1234' }, 'weak')).toThrow(/common/);
    expect(() => approvals.file(a, 'users:create', { ...input, roles: ['auditor'] }, 'no admin')).toThrow(/does not need a second person/);
    expect(() => approvals.file(a, 'hosts:remove', { name: 'gpu1' }, 'nope')).toThrow(/This operation does not need a second person/);
    expect(() => approvals.file(a, 'no:such', {}, 'nope')).toThrow(/No channel/);
    expect(() => approvals.file(a, 'users:create', { name: 'BAD NAME' }, 'bad')).toThrow(/Not accepted — name: /);
    expect(() => approvals.file({ ...a, roles: ['auditor'] }, 'users:create', input, 'not mine')).toThrow(/Only an administrator can do this; you are signed in as an auditor/);
  });

  it('keep the policy for the policy itself on', async () => {
    const { approvals } = await setup();
    expect(() => approvals.setPolicy({ name: 'x' }, { operation: 'approvals:setPolicy', approverRoles: ['officer'], expiryMinutes: 60, required: false })).toThrow(
      /cannot be turned off/,
    );
    const p = approvals.setPolicy({ name: 'x' }, { operation: 'keys:rotateRoot', approverRoles: ['officer', 'officer'], expiryMinutes: 60, required: true });
    expect(p).toMatchObject({ approverRoles: ['officer'], expiryMinutes: 60, implemented: true, channels: ['keys:beginRotateRoot'], updatedBy: 'x' });
  });
});

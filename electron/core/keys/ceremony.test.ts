import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/db';
import { ownerId } from '../jobs/owner';
import { HostsService } from '../hosts/service';
import { Vault } from '../vault/vault';
import { createKeysArea } from './area';
import { verifyTranscript } from './transcript';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A real database file, vault and keys area (no worker pool: rewrap in-process). */
function setup(owner?: string) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ceremony-'));
  dirs.push(d);
  const db = openDatabase(path.join(d, 'airlock.db'));
  const random = (n: number) => crypto.randomBytes(n);
  const vault = new Vault({ db, kdf: KDF, random, now: () => new Date().toISOString() });
  const vaultKey = vault.newVaultKey();
  const hosts = new HostsService({ db, now: () => new Date(), timeoutMs: 5000, concurrency: 4, poolIdleMs: 1000 });
  const area = createKeysArea({ db, vault, random, now: () => new Date(), kdf: KDF, hosts, workers: false, ...(owner ? { owner } : {}) });
  return { db, vault, vaultKey, area, hosts, dir: d };
}

const OFFICERS = ['Ann', 'Ben', 'Cy', 'Dee', 'Eve'];

async function genesis(s: ReturnType<typeof setup>) {
  const { area, vaultKey } = s;
  const c = area.ceremonies;
  let cer = c.begin({ kind: 'genesis', officers: OFFICERS, witnesses: ['Wanda'], threshold: 3 }, 'alice');
  cer = await c.acknowledge(cer.id, 1, 'alice', 'alice', vaultKey);
  cer = await c.acknowledge(cer.id, 2, 'Wanda', 'alice', vaultKey);
  const g = await c.genesis(cer.id, { Cy: 'a passphrase for cy only' }, vaultKey);
  const shares: string[] = [];
  for (const [k, o] of OFFICERS.entries()) {
    await c.acknowledge(cer.id, 4 + k, o, 'alice', vaultKey);
    shares.push(c.issueShare(cer.id, o).armored);
  }
  const done = await c.acknowledge(cer.id, 9, 'Wanda', 'alice', vaultKey);
  return { g, shares, done };
}

describe('key ceremonies', () => {
  it('run their script in order, each step by the right person; shares only after the officer checked the fingerprint; a signed transcript at the end', async () => {
    const s = setup();
    const c = s.area.ceremonies;
    const cer = c.begin({ kind: 'genesis', officers: OFFICERS, witnesses: ['Wanda'], threshold: 3 }, 'alice');
    expect(cer.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(cer.steps.map((x) => x.by)).toEqual(['administrator', 'witness', 'administrator', 'officer', 'officer', 'officer', 'officer', 'officer', 'witness']);
    // Out of order, wrong person, not a participant, Airlock's own step: refused, nothing recorded.
    await expect(c.acknowledge(cer.id, 2, 'Wanda', 'alice', s.vaultKey)).rejects.toMatchObject({ code: 'CONFLICT', message: /Step 1 comes first/ });
    await expect(c.acknowledge(cer.id, 1, 'Wanda', 'alice', s.vaultKey)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(c.acknowledge(cer.id, 1, 'mallory', 'alice', s.vaultKey)).rejects.toMatchObject({ code: 'FORBIDDEN', message: /not a participant/ });
    await expect(c.genesis(cer.id, {}, s.vaultKey)).rejects.toMatchObject({ code: 'CONFLICT', message: /Step 1 must be acknowledged first/ });
    await c.acknowledge(cer.id, 1, 'alice', 'alice', s.vaultKey);
    await expect(c.acknowledge(cer.id, 3, 'alice', 'alice', s.vaultKey)).rejects.toMatchObject({ code: 'CONFLICT' });
    await c.acknowledge(cer.id, 2, 'wanda', 'alice', s.vaultKey); // names match without regard to case
    await expect(c.genesis(cer.id, { Mallory: 'x'.repeat(20) }, s.vaultKey)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const g = await c.genesis(cer.id, {}, s.vaultKey);
    expect(g.shares).toHaveLength(5);
    expect(JSON.stringify(g)).not.toContain('BEGIN AIRLOCK ROOT KEY SHARE');
    await expect(c.genesis(cer.id, {}, s.vaultKey)).rejects.toMatchObject({ code: 'CONFLICT', message: /already been done/ });
    // While it is open, the ceremony shows each share's fingerprint again (a screen left and reopened), never a share.
    const open = c.get(cer.id);
    expect(open.shares).toEqual([...g.shares].sort((a, b) => a.index - b.index));
    expect(open.shares!.map((x) => x.officer).sort()).toEqual([...OFFICERS].sort());
    expect(JSON.stringify(open)).not.toContain('BEGIN AIRLOCK ROOT KEY SHARE');
    expect(c.list().find((x) => x.id === cer.id)!.shares).toEqual(open.shares);
    // Ann's share is withheld until Ann acknowledged her own step; Ben cannot acknowledge Ann's.
    expect(() => c.issueShare(cer.id, 'Ann')).toThrow(/must first check the fingerprint/);
    await expect(c.acknowledge(cer.id, 4, 'Ben', 'alice', s.vaultKey)).rejects.toMatchObject({ code: 'FORBIDDEN', message: /Ann's own/ });
    await c.acknowledge(cer.id, 4, 'Ann', 'alice', s.vaultKey);
    expect(c.issueShare(cer.id, 'Ann').armored).toMatch(/^-----BEGIN AIRLOCK ROOT KEY SHARE-----/);
    for (const [k, o] of OFFICERS.slice(1).entries()) await c.acknowledge(cer.id, 5 + k, o, 'alice', s.vaultKey);
    const done = await c.acknowledge(cer.id, 9, 'Wanda', 'alice', s.vaultKey);
    expect(done.status).toBe('completed');
    expect(() => c.issueShare(cer.id, 'Ann')).toThrow(/completed/); // shares leave memory with the ceremony
    expect(done.shares).toBeUndefined(); // and their fingerprints leave the ceremony's view

    const text = c.transcript(cer.id);
    const root = s.area.ca.root()!.certPem;
    const v = await verifyTranscript(text, root);
    expect(v.problems).toEqual([]);
    expect(v.body).toMatchObject({ ceremony: 'genesis', nonce: cer.nonce, quorum: { threshold: 3, shares: 5 } });
    expect(v.body!.contributors.map((x) => x.name)).toEqual(OFFICERS);
    expect(v.body!.after.rootKcv).toBe(g.rootKcv);
    expect(v.body!.before.rootKcv).toBeNull();
    expect(text).not.toContain('BEGIN AIRLOCK ROOT KEY SHARE');
    // The step record says who acknowledged and who entered it.
    expect(c.get(cer.id).steps[3]).toMatchObject({ acknowledgedBy: 'Ann', recordedBy: 'alice' });
  });

  it('unseal collects shares, refuses a duplicate or tampered one without losing the count, and opens the hierarchy', async () => {
    const s = setup();
    const { shares } = await genesis(s);
    s.area.service.seal();
    const c = s.area.ceremonies;
    let cer = c.begin({ kind: 'unseal', officers: [], witnesses: [] }, 'alice');
    cer = await c.acknowledge(cer.id, 1, 'alice', 'alice', s.vaultKey);
    const p1 = await c.addShare(cer.id, shares[0]!, undefined);
    expect(p1).toMatchObject({ collected: 1, threshold: 3, done: false });
    await expect(c.addShare(cer.id, shares[0]!, undefined)).rejects.toMatchObject({ code: 'CONFLICT' });
    const tampered = shares[1]!.replace(/\n([A-Za-z0-9+/]{10})([A-Za-z0-9+/])/, (_m, a: string, b: string) => `\n${a}${b === 'A' ? 'B' : 'A'}`);
    await expect(c.addShare(cer.id, tampered, undefined)).rejects.toMatchObject({ code: expect.stringMatching(/PARSE_ERROR|INVALID_INPUT/) });
    // Cy's share is sealed to a passphrase: without it, or with a wrong one, refused.
    await expect(c.addShare(cer.id, shares[2]!, undefined)).rejects.toBeDefined();
    await expect(c.addShare(cer.id, shares[2]!, 'not the passphrase')).rejects.toMatchObject({ code: 'BAD_CREDENTIALS' });
    expect(s.area.service.status().unsealing).toMatchObject({ collected: 1 });
    await c.addShare(cer.id, shares[2]!, 'a passphrase for cy only');
    const p3 = await c.addShare(cer.id, shares[4]!, undefined);
    expect(p3).toMatchObject({ collected: 3, done: true });
    expect(s.area.service.status().sealed).toBe(false);
    const done = await c.acknowledge(cer.id, 3, 'alice', 'alice', s.vaultKey);
    const v = await verifyTranscript(c.transcript(done.id), s.area.ca.root()!.certPem);
    expect(v.ok).toBe(true);
    expect(v.body!.contributors.map((x) => x.name).sort()).toEqual(['Ann', 'Cy', 'Eve']);
  });

  it('allows one open ceremony at a time; a ceremony left by a dead process is failed, one of a live process is left alone', async () => {
    const s = setup();
    const c = s.area.ceremonies;
    const first = c.begin({ kind: 'genesis', officers: OFFICERS, witnesses: ['Wanda'], threshold: 3 }, 'alice');
    expect(() => c.begin({ kind: 'genesis', officers: OFFICERS, witnesses: ['Wanda'], threshold: 3 }, 'alice')).toThrow(/still open/);
    // Held by another console process that is alive (here: pid 1, with its real start time): left alone, and nobody else goes on with it.
    s.db.prepare('UPDATE key_ceremonies SET owner = ? WHERE id = ?').run(ownerId(1), first.id);
    const other = createKeysArea({ db: s.db, vault: s.vault, random: crypto.randomBytes, now: () => new Date(), kdf: KDF, hosts: s.hosts, workers: false });
    expect(other.ceremonies.get(first.id).status).toBe('open');
    await expect(other.ceremonies.acknowledge(first.id, 1, 'alice', 'alice', s.vaultKey)).rejects.toMatchObject({ code: 'CONFLICT', message: /another console process/ });
    // Its owner gone (a pid that is not running): swept as failed.
    s.db.prepare('UPDATE key_ceremonies SET owner = ? WHERE id = ?').run('999999999:1:dead', first.id);
    expect(other.ceremonies.sweep()).toBe(1);
    expect(c.get(first.id)).toMatchObject({ status: 'failed', message: /console stopped/ });
    const again = c.begin({ kind: 'genesis', officers: OFFICERS, witnesses: ['Wanda'], threshold: 3 }, 'alice');
    expect(c.cancel(again.id, 'drill over').status).toBe('cancelled');
  });

  it('refuses ceremonies that cannot run: genesis twice, a threshold above the officers, no witness, KEK rotation while sealed', async () => {
    const s = setup();
    const c = s.area.ceremonies;
    expect(() => c.begin({ kind: 'genesis', officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 3 }, 'alice')).toThrow(/needs at least 3 officers/);
    expect(() => c.begin({ kind: 'genesis', officers: ['Ann', 'Ben'], witnesses: [], threshold: 2 }, 'alice')).toThrow(/witness/);
    expect(() => c.begin({ kind: 'genesis', officers: ['Ann', 'Ann'], witnesses: ['Wanda'], threshold: 2 }, 'alice')).toThrow(/distinct/);
    expect(() => c.begin({ kind: 'unseal', officers: [], witnesses: [] }, 'alice')).toThrow(/genesis ceremony first/);
    await genesis(s);
    expect(() => c.begin({ kind: 'genesis', officers: OFFICERS, witnesses: ['Wanda'], threshold: 3 }, 'alice')).toThrow(/genesis happens once/);
    s.area.service.seal();
    expect(() => c.begin({ kind: 'rotate-kek', officers: [], witnesses: [], domain: 'models' }, 'alice')).toThrow(/sealed/);
  });

  it('rotates a KEK and rewraps its data keys; the transcript records the versions before and after', async () => {
    const s = setup();
    await genesis(s);
    for (let i = 0; i < 50; i++) s.area.service.putDataKey('models', `m${i}`);
    const before = s.area.service.openDataKey('models', 'm7');
    const c = s.area.ceremonies;
    let cer = c.begin({ kind: 'rotate-kek', officers: [], witnesses: ['Wanda'], domain: 'models' }, 'alice');
    cer = await c.acknowledge(cer.id, 1, 'alice', 'alice', s.vaultKey);
    const r = await c.rotateKek(cer.id, s.vaultKey);
    expect(r).toMatchObject({ domain: 'models', version: 2, rewrapped: 50 });
    await c.acknowledge(cer.id, 3, 'Wanda', 'alice', s.vaultKey);
    expect(s.area.service.openDataKey('models', 'm7').equals(before)).toBe(true);
    const v = await verifyTranscript(c.transcript(cer.id), s.area.ca.root()!.certPem);
    expect(v.ok).toBe(true);
    const models = (x: { keks: { domain: string; version: number }[] }) => x.keks.filter((k) => k.domain === 'models').map((k) => k.version);
    expect(models(v.body!.before)).toEqual([1]);
    expect(models(v.body!.after)).toEqual([1, 2]);
  });
});

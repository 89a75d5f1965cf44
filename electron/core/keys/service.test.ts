import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { combine } from 'shamir-secret-sharing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { openDatabase, type Db } from '../db/db';
import { WorkerPool } from '../workers/pool';
import { KEY_DOMAINS } from './hierarchy';
import { workerRewrap } from './rewrap';
import { KeyService, type KeyServiceDeps, type OfficerInput } from './service';
import { armorShare, dearmorShare, unsealShare } from './shares';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const random = (n: number) => crypto.randomBytes(n);
const dirs: string[] = [];
const dbs: Db[] = [];
const pool = new WorkerPool({ size: 2 });
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
afterAll(() => pool.close());

function setup(extra: Partial<KeyServiceDeps> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-keys-'));
  dirs.push(dir);
  const file = path.join(dir, 'airlock.db');
  const db = openDatabase(file);
  dbs.push(db);
  const make = () => new KeyService({ db, random, now: () => new Date(), kdf: KDF, ...extra });
  return { db, file, keys: make(), restart: make };
}
const OFFICERS: OfficerInput[] = [
  { name: 'alice', passphrase: 'alice passphrase 1' },
  { name: 'bob', passphrase: 'bob passphrase 22' },
  { name: 'carol' },
  { name: 'dave', passphrase: 'dave passphrase 333' },
  { name: 'erin' },
];
const pass = (name: string) => OFFICERS.find((o) => o.name === name)?.passphrase;

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<AirlockError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    return e as AirlockError;
  }
  throw new Error('expected a refusal');
}

describe('KeyService', () => {
  it('genesis 3-of-5: shares issued (sealed ones with fingerprints), v1 KEKs for every domain, unsealed; status holds no secret; a second genesis is refused', async () => {
    const { keys } = setup();
    const g = await keys.genesis({ threshold: 3, officers: OFFICERS });
    expect(g.shares.map((s) => [s.index, s.officer])).toEqual(OFFICERS.map((o, i) => [i + 1, o.name]));
    for (const s of g.shares) {
      expect(s.fingerprint === null).toBe(pass(s.officer) === undefined);
      expect(s.armored).toContain(`Officer: ${s.officer}`);
      if (s.fingerprint) expect(s.armored).toContain(s.fingerprint);
    }
    expect(keys.isSealed()).toBe(false);
    const st = keys.status();
    expect(st).toMatchObject({ initialised: true, sealed: false, hierarchyId: g.hierarchyId, threshold: 3, count: 5, rootKcv: g.rootKcv, unsealing: null, unsealedBy: ['genesis ceremony'] });
    expect(st.officers.map((o) => [o.index, o.name, o.fingerprint])).toEqual(g.shares.map((s) => [s.index, s.officer, s.fingerprint]));
    expect(st.domains.map((d) => [d.domain, d.currentVersion, d.minDecryptionVersion, d.versions.length])).toEqual([...KEY_DOMAINS].sort().map((d) => [d, 1, 1, 1]));
    const plain = await unsealShare(dearmorShare(g.shares[2]!.armored));
    expect(JSON.stringify(st)).not.toContain(plain.share.toString('base64'));
    expect((await refusal(keys.genesis({ threshold: 3, officers: OFFICERS }))).code).toBe('CONFLICT');
  });

  it('fingerprint confirmation: shares are sealed to exactly the key each officer confirmed, or genesis is refused', async () => {
    const { keys } = setup();
    const a = await keys.prepareSealing('alice', 'alice passphrase 1');
    const b = await keys.prepareSealing('bob', 'bob passphrase 22');
    expect(a.fingerprint).toMatch(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/);
    // The same passphrase with another salt gives another fingerprint: what was confirmed is one key.
    expect((await keys.prepareSealing('alice', 'alice passphrase 1')).fingerprint).not.toBe(a.fingerprint);
    // A passphrase swapped after confirmation (or a fingerprint the officer never saw) is refused, and nothing is created.
    const swapped = await refusal(
      keys.genesis({ threshold: 2, officers: [{ name: 'alice', passphrase: 'mallory passphrase', confirmed: a }, { name: 'bob', passphrase: 'bob passphrase 22', confirmed: b }] }),
    );
    expect(swapped.code).toBe('INVALID_INPUT');
    expect(swapped.message).toContain(`not ${a.fingerprint}, which the officer confirmed`);
    expect(keys.status().initialised).toBe(false);
    expect((await refusal(keys.genesis({ threshold: 2, officers: [{ name: 'alice', confirmed: a }, { name: 'bob' }] }))).message).toContain('needs the passphrase');
    const g = await keys.genesis({
      threshold: 2,
      officers: [{ name: 'alice', passphrase: 'alice passphrase 1', confirmed: a }, { name: 'bob', passphrase: 'bob passphrase 22', confirmed: b }, { name: 'carol' }],
    });
    expect(g.shares.map((s) => s.fingerprint)).toEqual([a.fingerprint, b.fingerprint, null]);
    expect(g.shares[0]!.armored).toContain(`fingerprint ${a.fingerprint}`);
    expect(keys.status().officers.map((o) => o.fingerprint)).toEqual([a.fingerprint, b.fingerprint, null]);
    keys.seal();
    await keys.addShare(g.shares[0]!.armored, { passphrase: 'alice passphrase 1' });
    expect((await keys.addShare(g.shares[1]!.armored, { passphrase: 'bob passphrase 22' })).done).toBe(true);
  });

  it('genesis refuses a bad shape with a clear message and leaves nothing behind', async () => {
    const { keys } = setup();
    for (const [input, text] of [
      [{ threshold: 1, officers: OFFICERS }, 'at least 2'],
      [{ threshold: 6, officers: OFFICERS }, 'cannot exceed'],
      [{ threshold: 2, officers: [{ name: 'a' }, { name: 'a' }] }, 'named twice'],
      [{ threshold: 2, officers: [{ name: 'a', passphrase: 'short' }, { name: 'b' }] }, 'at least 12'],
    ] as const) {
      const e = await refusal(keys.genesis(input));
      expect(e.code).toBe('INVALID_INPUT');
      expect(e.message).toContain(text);
    }
    expect(keys.status().initialised).toBe(false);
    expect((await refusal(() => keys.beginUnseal())).message).toContain('genesis');
  });

  it('sealed: data keys are unavailable with what is missing; unseal refuses wrong passphrase, duplicate, stale and foreign shares without losing progress', async () => {
    const { keys, restart } = setup();
    const g = await keys.genesis({ threshold: 3, officers: OFFICERS });
    keys.putDataKey('models', 'gpu-1', { bytes: 64 });
    const fscrypt = keys.openDataKey('models', 'gpu-1');
    expect(fscrypt).toHaveLength(64);
    keys.seal();
    expect(keys.isSealed()).toBe(true);
    const sealed = await refusal(() => keys.openDataKey('models', 'gpu-1'));
    expect(sealed.code).toBe('KEY_UNAVAILABLE');
    expect(sealed.message).toBe("The key hierarchy is sealed: 3 more officers' shares are needed (unseal with `airlock keys unseal`).");
    // A new process starts sealed.
    const again = restart();
    expect(again.status()).toMatchObject({ initialised: true, sealed: true, unsealing: null });
    expect((await refusal(() => again.putDataKey('datasets', 'x'))).code).toBe('KEY_UNAVAILABLE');

    const { nonce } = again.beginUnseal();
    expect(again.beginUnseal().nonce).toBe(nonce);
    expect(await again.addShare(g.shares[0]!.armored, { passphrase: pass('alice'), by: 'alice' })).toEqual({ collected: 1, threshold: 3, done: false, contributors: ['alice'] });
    const wrong = await refusal(again.addShare(g.shares[1]!.armored, { passphrase: 'not bobs passphrase' }));
    expect(wrong.code).toBe('BAD_CREDENTIALS');
    expect((await refusal(again.addShare(g.shares[0]!.armored, { passphrase: pass('alice') }))).code).toBe('CONFLICT');
    // A share from another installation.
    const other = setup();
    const og = await other.keys.genesis({ threshold: 2, officers: [{ name: 'x' }, { name: 'y' }] });
    expect((await refusal(again.addShare(og.shares[0]!.armored))).message).toContain('another key hierarchy');
    expect((await refusal(again.addShare('not a share'))).code).toBe('PARSE_ERROR');
    expect(again.status().unsealing).toEqual({ nonce, collected: 1, threshold: 3, contributors: ['alice'] });
    expect((await refusal(() => again.openDataKey('models', 'gpu-1'))).message).toContain("2 more officers' shares are needed");

    expect((await again.addShare(g.shares[2]!.armored, { by: 'carol' })).done).toBe(false);
    const done = await again.addShare(g.shares[3]!.armored, { passphrase: pass('dave'), by: 'dave' });
    expect(done).toEqual({ collected: 3, threshold: 3, done: true, contributors: ['alice', 'carol', 'dave'] });
    expect(again.status()).toMatchObject({ sealed: false, unsealing: null, unsealedBy: ['alice', 'carol', 'dave'] });
    expect(again.openDataKey('models', 'gpu-1').equals(fscrypt)).toBe(true);
    expect((await refusal(again.addShare(g.shares[4]!.armored))).code).toBe('CONFLICT');
  });

  it('verify-shares while sealed: each share is checked and whether the valid ones combine, without unsealing', async () => {
    const { keys } = setup();
    const g = await keys.genesis({ threshold: 3, officers: OFFICERS });
    keys.seal();
    const texts = g.shares.map((s) => s.armored);
    const all = await keys.verifyShares(texts, OFFICERS.map((o) => o.passphrase));
    expect(all.combines).toBe(true);
    expect(all.shares.every((s) => s.ok)).toBe(true);
    expect(keys.isSealed()).toBe(true);
    // One altered (its share bytes changed, re-armored consistently), one with a wrong passphrase, one given twice.
    const p = dearmorShare(texts[2]!);
    const bytes = Buffer.from(p.share, 'base64');
    bytes[0]! ^= 1;
    const altered = armorShare({ ...p, share: bytes.toString('base64') });
    const r = await keys.verifyShares([texts[0]!, texts[1]!, altered, texts[4]!, texts[4]!], [pass('alice'), 'wrong wrong wrong', undefined, undefined, undefined]);
    expect(r.shares.map((s) => [s.index, s.officer, s.ok])).toEqual([[1, 'alice', true], [2, 'bob', false], [3, 'carol', false], [5, 'erin', true], [5, 'erin', false]]);
    expect(r.shares[1]!.problem).toContain('passphrase');
    expect(r.shares[2]!.problem).toContain('altered');
    expect(r.shares[4]!.problem).toContain('twice');
    expect(r.combines).toBeNull(); // 2 valid of 3 needed
    expect(keys.isSealed()).toBe(true);
  });

  it('KEK rotation rewraps every data key in worker threads; an interrupted rewrap is finished by rewrap(); min_decryption_version refuses to strand a key', async () => {
    let fail = true;
    const inWorkers = workerRewrap(pool);
    const { keys } = setup({
      rewrap: async (req) => {
        if (fail) throw new Error('crash in the middle of the rewrap');
        return inWorkers(req);
      },
    });
    await keys.genesis({ threshold: 2, officers: [{ name: 'a' }, { name: 'b' }] });
    const plain = new Map<string, Buffer>();
    for (let i = 0; i < 300; i++) {
      const id = `ds-${i}`;
      keys.putDataKey('datasets', id);
      plain.set(id, keys.openDataKey('datasets', id));
    }
    keys.putDataKey('models', 'm-1');
    await expect(keys.rotateKek('datasets')).rejects.toThrow('crash in the middle');
    // The new version is committed and current; every key is still at v1 and opens.
    expect(keys.status().domains.find((d) => d.domain === 'datasets')!.versions.map((v) => [v.version, v.dataKeys])).toEqual([[1, 300], [2, 0]]);
    expect(keys.openDataKey('datasets', 'ds-7').equals(plain.get('ds-7')!)).toBe(true);
    const refused = await refusal(() => keys.setMinDecryptionVersion('datasets', 2));
    expect(refused.code).toBe('CONFLICT');
    expect(refused.message).toContain('300 datasets data key(s) are still wrapped by version 1');
    fail = false;
    expect(await keys.rewrap('datasets')).toEqual({ domain: 'datasets', version: 2, rewrapped: 300 });
    expect((await refusal(() => keys.setMinDecryptionVersion('datasets', 2, { stillNeeded: [1] }))).message).toContain('has not finished its rotation');
    expect(keys.setMinDecryptionVersion('datasets', 2)).toEqual({ domain: 'datasets', minDecryptionVersion: 2 });
    expect(await keys.rotateKek('datasets')).toEqual({ domain: 'datasets', version: 3, rewrapped: 300 });
    for (const [id, key] of plain) expect(keys.openDataKey('datasets', id).equals(key)).toBe(true);
    const ds = keys.status().domains.find((d) => d.domain === 'datasets')!;
    expect(ds).toMatchObject({ currentVersion: 3, minDecryptionVersion: 2 });
    expect(ds.versions.map((v) => [v.version, v.dataKeys, v.retiredAt !== null])).toEqual([[1, 0, true], [2, 0, false], [3, 300, false]]);
    expect(new Set(ds.versions.map((v) => v.kcv)).size).toBe(3);
    // Other domains are untouched.
    expect(keys.status().domains.find((d) => d.domain === 'models')!.currentVersion).toBe(1);
    expect((await refusal(() => keys.setMinDecryptionVersion('datasets', 4))).code).toBe('INVALID_INPUT');
    keys.deleteDataKey('datasets', 'ds-0');
    expect((await refusal(() => keys.openDataKey('datasets', 'ds-0'))).code).toBe('NOT_FOUND');
    expect((await refusal(() => keys.putDataKey('datasets', 'ds-1'))).code).toBe('CONFLICT');
    expect((await refusal(() => keys.putDataKey('weights' as never, 'x'))).code).toBe('INVALID_INPUT');
    keys.seal();
    expect((await refusal(keys.rotateKek('datasets'))).code).toBe('KEY_UNAVAILABLE');
  });

  it('a rewrap in small pages, failing on a middle page, keeps every key at one stored version; rewrap() finishes it', async () => {
    let calls = 0;
    const inWorkers = workerRewrap(pool);
    const { keys, db } = setup({
      rewrapPageSize: 7,
      rewrap: async (req) => {
        if (++calls === 4) throw new Error('worker lost');
        return inWorkers(req);
      },
    });
    await keys.genesis({ threshold: 2, officers: [{ name: 'a' }, { name: 'b' }] });
    const plain = new Map<string, Buffer>();
    for (let i = 0; i < 50; i++) {
      keys.putDataKey('models', `m${String(i).padStart(2, '0')}`, { bytes: 64 });
      plain.set(`m${String(i).padStart(2, '0')}`, keys.openDataKey('models', `m${String(i).padStart(2, '0')}`));
    }
    await expect(keys.rotateKek('models')).rejects.toThrow('worker lost');
    const at = db.prepare("SELECT version, count(*) AS n FROM data_keys WHERE domain = 'models' GROUP BY version ORDER BY version").all() as Array<{ version: number; n: number }>;
    expect(at).toEqual([{ version: 1, n: 29 }, { version: 2, n: 21 }]); // pages 1-3 written, page 4 failed
    for (const [id, key] of plain) expect(keys.openDataKey('models', id).equals(key)).toBe(true);
    expect(await keys.rewrap('models')).toEqual({ domain: 'models', version: 2, rewrapped: 29 });
    for (const [id, key] of plain) expect(keys.openDataKey('models', id).equals(key)).toBe(true);
    expect(keys.setMinDecryptionVersion('models', 2).minDecryptionVersion).toBe(2);
  });

  it("binds the shares to the ceremony's own nonce, and an unseal to its ceremony's nonce", async () => {
    const { keys } = setup();
    expect((await refusal(keys.genesis({ threshold: 2, officers: [{ name: 'a' }, { name: 'b' }], nonce: 'not-a-nonce' }))).code).toBe('INVALID_INPUT');
    const n1 = 'a'.repeat(32);
    const g = await keys.genesis({ threshold: 2, officers: [{ name: 'a' }, { name: 'b' }, { name: 'c' }], nonce: n1 });
    expect(g.nonce).toBe(n1);
    for (const s of g.shares) expect(dearmorShare(s.armored).nonce).toBe(n1);
    const n2 = 'b'.repeat(32);
    const r = await keys.reshare({ threshold: 2, officers: [{ name: 'a' }, { name: 'b' }], nonce: n2 });
    for (const s of r.shares) expect(dearmorShare(s.armored).nonce).toBe(n2);
    keys.seal();
    // An unseal ceremony names its collection; a new ceremony's nonce drops what an abandoned one collected.
    expect(keys.beginUnseal('c'.repeat(32)).nonce).toBe('c'.repeat(32));
    await keys.addShare(r.shares[0]!.armored);
    expect(keys.status().unsealing).toMatchObject({ nonce: 'c'.repeat(32), collected: 1 });
    expect(keys.beginUnseal('d'.repeat(32)).nonce).toBe('d'.repeat(32));
    expect(keys.status().unsealing).toMatchObject({ nonce: 'd'.repeat(32), collected: 0 });
    await keys.addShare(r.shares[0]!.armored);
    expect((await keys.addShare(r.shares[1]!.armored)).done).toBe(true);
  });

  it('reshare gives new shares for the same root (old ones stale); root rotation gives a new root and new shares, and every data key still opens', async () => {
    const { keys, file, db } = setup();
    const g = await keys.genesis({ threshold: 3, officers: OFFICERS });
    keys.putDataKey('host-secrets', 'gpu-1/tls.key');
    const secret = keys.openDataKey('host-secrets', 'gpu-1/tls.key');
    const officers2 = [{ name: 'frank' }, { name: 'grace', passphrase: 'grace passphrase 4' }, { name: 'heidi' }];
    const r = await keys.reshare({ threshold: 2, officers: officers2 });
    expect(r.rootKcv).toBe(g.rootKcv);
    expect(r.nonce).not.toBe(g.nonce);
    expect(keys.status()).toMatchObject({ threshold: 2, count: 3, rootKcv: g.rootKcv });
    expect(keys.status().officers.map((o) => o.name)).toEqual(['frank', 'grace', 'heidi']);
    keys.seal();
    expect((await refusal(keys.addShare(g.shares[2]!.armored))).message).toContain('earlier ceremony');
    await keys.addShare(r.shares[0]!.armored);
    expect((await keys.addShare(r.shares[1]!.armored, { passphrase: 'grace passphrase 4' })).done).toBe(true);
    expect(keys.openDataKey('host-secrets', 'gpu-1/tls.key').equals(secret)).toBe(true);

    const rr = await keys.rotateRoot({ threshold: 2, officers: [{ name: 'ivan' }, { name: 'judy' }] });
    expect(rr.previousRootKcv).toBe(g.rootKcv);
    expect(rr.rootKcv).not.toBe(g.rootKcv);
    expect(keys.status().rootKcv).toBe(rr.rootKcv);
    expect(db.prepare('SELECT epoch FROM key_hierarchy').get()).toEqual({ epoch: 2 });
    keys.seal();
    expect((await refusal(keys.addShare(r.shares[0]!.armored))).message).toContain('earlier ceremony');
    await keys.addShare(rr.shares[1]!.armored);
    expect((await keys.addShare(rr.shares[0]!.armored)).done).toBe(true);
    expect(keys.openDataKey('host-secrets', 'gpu-1/tls.key').equals(secret)).toBe(true);
    keys.seal();
    expect((await refusal(keys.reshare({ threshold: 2, officers: officers2 }))).code).toBe('KEY_UNAVAILABLE');

    // Nothing secret in the database file: not the roots (combined here from the shares), not a data key.
    const root1 = Buffer.from(await combine(await Promise.all([2, 4].map(async (i) => new Uint8Array((await unsealShare(dearmorShare(g.shares[i]!.armored))).share)))));
    const root2 = Buffer.from(await combine(await Promise.all([0, 1].map(async (i) => new Uint8Array((await unsealShare(dearmorShare(rr.shares[i]!.armored))).share)))));
    expect(root1.equals(root2)).toBe(false);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = Buffer.concat([file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
    for (const s of [root1, root2, secret]) {
      expect(bytes.includes(s)).toBe(false);
      expect(bytes.includes(Buffer.from(s.toString('base64')))).toBe(false);
      expect(bytes.includes(Buffer.from(s.toString('hex')))).toBe(false);
    }
  });
});

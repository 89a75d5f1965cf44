import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../db/db';
import { keyCheckValue, rootCanary, wrapDataKey, wrapKek } from './hierarchy';
import { splitRoot } from './shares';
import { KeyStore } from './store';

const random = (n: number) => crypto.randomBytes(n);
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function fileDb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-keystore-'));
  dirs.push(dir);
  const file = path.join(dir, 'airlock.db');
  const db = openDatabase(file);
  dbs.push(db);
  return { db, file, store: new KeyStore(db) };
}
/** Every byte SQLite wrote for this database: the file and its WAL. */
const bytesOf = (file: string) => Buffer.concat([file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));

describe('KeyStore (real SQLite file)', () => {
  it('keeps the hierarchy, holders, KEK versions and data keys; the file never holds a plaintext key or share', async () => {
    const { db, file, store } = fileDb();
    const H = random(16).toString('hex');
    const root = random(32);
    const kek = random(32);
    const dataKey = random(64);
    const { record, shares } = await splitRoot(root, { hierarchyId: H, nonce: random(16).toString('hex'), threshold: 2, officers: ['alice', 'bob', 'carol'], random });
    store.transaction(() => {
      store.createHierarchy({ hierarchyId: H, threshold: 2, count: 3, record, rootCanary: rootCanary(root, H, random), rootKcv: keyCheckValue(root), createdAt: new Date().toISOString() });
      store.setHolders(shares.map((s) => ({ index: s.index, officer: s.officer, fingerprint: null, issuedAt: new Date().toISOString() })));
      store.createDomain('models', { wrapped: wrapKek(root, kek, { hierarchyId: H, domain: 'models', version: 1 }, random), kcv: keyCheckValue(kek), createdAt: new Date().toISOString() });
      store.putDataKey({ domain: 'models', id: 'gpu-1', version: 1, wrapped: wrapDataKey(kek, dataKey, { hierarchyId: H, domain: 'models', version: 1, id: 'gpu-1' }, random), createdAt: new Date().toISOString() });
    });
    const h = store.hierarchy()!;
    expect(h).toMatchObject({ hierarchyId: H, threshold: 2, count: 3, rootKcv: keyCheckValue(root), epoch: 1 });
    expect(h.record).toEqual(record);
    expect(store.holders().map((x) => [x.index, x.officer])).toEqual([[1, 'alice'], [2, 'bob'], [3, 'carol']]);
    expect(store.domains()).toEqual([{ domain: 'models', currentVersion: 1, minDecryptionVersion: 1 }]);
    expect(store.kekVersions('models')).toHaveLength(1);
    expect(store.dataKey('models', 'gpu-1')).toMatchObject({ version: 1 });
    expect(store.dataKeyCounts()).toEqual([{ domain: 'models', version: 1, n: 1 }]);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = bytesOf(file);
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.includes(Buffer.from(record.commitments[0]!))).toBe(true); // the grep does see what is stored
    for (const secret of [root, kek, dataKey, ...shares.map((s) => s.share)]) {
      expect(bytes.includes(secret)).toBe(false);
      expect(bytes.includes(Buffer.from(secret.toString('hex')))).toBe(false);
      expect(bytes.includes(Buffer.from(secret.toString('base64')))).toBe(false);
    }
  });

  it('pages keys to rewrap, updates only rows still at the version read, and retires versions below the minimum', () => {
    const { store } = fileDb();
    const now = new Date().toISOString();
    store.createDomain('datasets', { wrapped: Buffer.from('w1'), kcv: 'k1', createdAt: now });
    store.addKekVersion({ domain: 'datasets', version: 2, wrapped: Buffer.from('w2'), kcv: 'k2', createdAt: now });
    store.setCurrentVersion('datasets', 2);
    for (let i = 0; i < 5; i++) store.putDataKey({ domain: 'datasets', id: `d${i}`, version: 1, wrapped: Buffer.from(`old${i}`), createdAt: now });
    const page = store.dataKeysNotAt('datasets', 2, '', 3);
    expect(page.map((p) => p.id)).toEqual(['d0', 'd1', 'd2']);
    expect(store.dataKeysNotAt('datasets', 2, 'd2', 3).map((p) => p.id)).toEqual(['d3', 'd4']);
    store.deleteDataKey('datasets', 'd1');
    const n = store.updateWraps('datasets', page.map((p) => ({ id: p.id, version: 2, wrapped: Buffer.from(`new-${p.id}`) })), new Map(page.map((p) => [p.id, p.version])));
    expect(n).toBe(2); // d1 was deleted meanwhile: not resurrected
    expect(store.dataKey('datasets', 'd1')).toBeNull();
    expect(store.lowestVersionInUse('datasets')).toBe(1);
    store.updateWraps('datasets', ['d3', 'd4'].map((id) => ({ id, version: 2, wrapped: Buffer.from('x') })), new Map([['d3', 1], ['d4', 1]]));
    expect(store.lowestVersionInUse('datasets')).toBe(2);
    store.setMinDecryptionVersion('datasets', 2, now);
    expect(store.kekVersions('datasets').map((v) => [v.version, v.retiredAt !== null])).toEqual([[1, true], [2, false]]);
    expect(store.domain('datasets')).toEqual({ domain: 'datasets', currentVersion: 2, minDecryptionVersion: 2 });
  });
});

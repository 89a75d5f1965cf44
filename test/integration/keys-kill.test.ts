/**
 * KEK rotation cannot lose a key: a console process rotating the `models` KEK is SIGKILLed at
 * every step boundary of the rotation (before the new version, after it is committed, after each
 * slice of rewrapped keys is written), on a copy of the same database each time; a new process
 * then unseals, finishes what was interrupted, and every data key of every domain opens to the
 * bytes it was stored with. Real SQLite file, real process kill.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../electron/core/db/db';
import { KEY_DOMAINS } from '../../electron/core/keys/hierarchy';
import { KeyService } from '../../electron/core/keys/service';

const KEYS = 1_200;
const PAGE = 200;
let dir: string;
let pristine: string;
let sharesFile: string;
const originals = new Map<string, Buffer>();

const child = path.join(__dirname, 'fixtures', 'keys-rotate-child.ts');
const run = (dbFile: string, killAt: number) =>
  spawnSync(process.execPath, ['--import', 'tsx', child, dbFile, sharesFile, 'models', String(killAt), String(PAGE)], { encoding: 'utf8', timeout: 120_000 });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-keys-kill-'));
  pristine = path.join(dir, 'pristine.db');
  const db = openDatabase(pristine);
  const service = new KeyService({ db, random: (n) => crypto.randomBytes(n), now: () => new Date() });
  const g = await service.genesis({ threshold: 2, officers: [{ name: 'Ann' }, { name: 'Ben' }, { name: 'Cy' }] });
  for (let i = 0; i < KEYS; i++) {
    const key = crypto.randomBytes(i % 3 === 0 ? 64 : 32);
    const domain = i % 4 === 0 ? 'datasets' : 'models';
    originals.set(`${domain}/k${i}`, Buffer.from(key));
    service.putDataKey(domain, `k${i}`, { key });
  }
  service.seal();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  sharesFile = path.join(dir, 'shares.json');
  fs.writeFileSync(sharesFile, JSON.stringify([g.shares[0]!.armored, g.shares[2]!.armored]), { mode: 0o600 });
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function recoverAndCheck(dbFile: string) {
  const db = openDatabase(dbFile);
  try {
    const service = new KeyService({ db, random: (n) => crypto.randomBytes(n), now: () => new Date() });
    const shares = JSON.parse(fs.readFileSync(sharesFile, 'utf8')) as string[];
    service.beginUnseal();
    for (const s of shares) await service.addShare(s);
    const pending = service.pendingRewraps();
    await service.finishRewraps();
    expect(service.pendingRewraps()).toEqual([]);
    let opened = 0;
    for (const [ref, key] of originals) {
      const [domain, id] = ref.split('/') as [(typeof KEY_DOMAINS)[number], string];
      expect(service.openDataKey(domain, id).equals(key), ref).toBe(true);
      opened++;
    }
    const models = service.status().domains.find((d) => d.domain === 'models')!;
    service.seal();
    return { opened, pending, version: models.currentVersion, perVersion: models.versions.map((v) => [v.version, v.dataKeys]) };
  } finally {
    db.close();
  }
}

describe('KEK rotation killed at every step boundary', () => {
  it('loses no data key: each crash is recovered by the next unseal', async () => {
    // A clean run counts the boundaries.
    const clean = path.join(dir, 'clean.db');
    fs.copyFileSync(pristine, clean);
    const ok = run(clean, 0);
    expect(ok.status, ok.stderr).toBe(0);
    const total = Number(/boundaries (\d+)/.exec(ok.stdout)![1]);
    // begin, version committed, then one per written slice of each page.
    expect(total).toBeGreaterThanOrEqual(2 + Math.ceil(((KEYS * 3) / 4) / PAGE));
    expect((await recoverAndCheck(clean)).version).toBe(2);

    for (let k = 1; k <= total; k++) {
      const f = path.join(dir, `kill-${k}.db`);
      fs.copyFileSync(pristine, f);
      const r = run(f, k);
      expect(r.signal, `kill at ${k}: ${r.stdout}${r.stderr}`).toBe('SIGKILL');
      const at = r.stdout.trim().split('\n').at(-1)!;
      const rec = await recoverAndCheck(f);
      expect(rec.opened).toBe(KEYS);
      // Killed before the new version was committed: nothing changed. After: version 2, every key moved to it.
      if (at.endsWith('rotate-kek:begin')) expect(rec.version, at).toBe(1);
      else {
        expect(rec.version, at).toBe(2);
        expect(rec.perVersion.filter(([v, n]) => v !== 2 && n! > 0), at).toEqual([]);
        if (k < total) expect(rec.pending, at).toEqual(['models']);
      }
    }
  }, 300_000);
});

import Database from 'better-sqlite3';
import fc from 'fast-check';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditTrail, canonical, chainHash, CHECKPOINT_CHANNEL, GENESIS_HASH, readHighWater } from './audit';
import { openDatabase } from '../db/db';
import { checkpointPayload } from './chain';
import { AUDIT_PUBLIC_META, keyFingerprint } from './keys';
import { verifyAudit } from './verify';
import { ChainScanner } from './verify-core';
import { sharedPool, WorkerPool } from '../workers/pool';
import { auditSigner, sampleEvent, testTrail } from '../../../test/support/audit';

const trail = testTrail;
const ev = sampleEvent;

/** Edits the raw file the way an attacker with the database would: bypassing the triggers. */
function tamper(db: Database.Database, sql: string, ...args: unknown[]) {
  db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');
  db.prepare(sql).run(...args);
}

const row = (db: Database.Database, seq: number) =>
  db.prepare('SELECT seq, body, prev_hash, hash FROM audit_events WHERE seq = ?').get(seq) as { seq: number; body: string; prev_hash: string; hash: string };

/** Recomputes every hash from `from` on, as an attacker covering their tracks would. */
function rechain(db: Database.Database, from: number) {
  let prev = from === 1 ? GENESIS_HASH : row(db, from - 1).hash;
  const rows = db.prepare('SELECT seq, body FROM audit_events WHERE seq >= ? ORDER BY seq').all(from) as Array<{ seq: number; body: string }>;
  for (const r of rows) {
    const h = chainHash(prev, r.body);
    tamper(db, 'UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?', prev, h, r.seq);
    prev = h;
  }
}

describe('audit trail', () => {
  it('chains SHA-256(prev || canonical(event)) from a zero genesis', async () => {
    const { db, audit } = trail();
    const a = audit.append(ev(1));
    const b = audit.append(ev(2));
    expect(a.seq).toBe(1);
    expect(a.prevHash).toBe(GENESIS_HASH);
    expect(b.prevHash).toBe(a.hash);
    const r = row(db, 2);
    expect(chainHash(a.hash, r.body)).toBe(b.hash);
    expect(crypto.createHash('sha256').update(a.hash + r.body, 'utf8').digest('hex')).toBe(b.hash);
    expect(r.body).toBe(canonical(JSON.parse(r.body)));
    expect(await audit.verify()).toMatchObject({ ok: true, checked: 2, headSeq: 2, headHash: b.hash, firstBad: null, checkpoints: 0 });
  });

  it('canonical JSON sorts keys and is stable', () => {
    expect(canonical({ b: 1, a: [2, { d: null, c: 'x' }] })).toBe('{"a":[2,{"c":"x","d":null}],"b":1}');
  });

  it('names an edited event', async () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 5; i++) audit.append(ev(i));
    tamper(db, 'UPDATE audit_events SET body = ? WHERE seq = 3', row(db, 3).body.replace('gpu-3', 'gpu-X'));
    expect((await audit.verify()).firstBad).toEqual({ seq: 3, kind: 'edited', reason: expect.stringMatching(/does not match its hash: edited/) });
  });

  it('names a deleted event', async () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 5; i++) audit.append(ev(i));
    tamper(db, 'DELETE FROM audit_events WHERE seq = 2');
    expect((await audit.verify()).firstBad).toEqual({ seq: 2, kind: 'deleted', reason: expect.stringMatching(/missing.*deleted/) });
  });

  it('names a rewritten (re-hashed) event by its broken link', async () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 4; i++) audit.append(ev(i));
    // The attacker edits event 2 and recomputes its own hash: event 3 no longer links to it.
    const r = row(db, 2);
    const body = r.body.replace('gpu-2', 'gpu-Y');
    tamper(db, 'UPDATE audit_events SET body = ?, hash = ? WHERE seq = 2', body, chainHash(r.prev_hash, body));
    const v = await audit.verify();
    expect(v.firstBad).toEqual({ seq: 2, kind: 'edited', reason: expect.stringMatching(/event 3 does not link to event 2/) });
    expect(v).toMatchObject({ ok: false, checked: 1, headSeq: 1, headHash: row(db, 1).hash });
  });

  it('names reordered events (two rows swapped)', async () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 8; i++) audit.append(ev(i));
    tamper(db, 'UPDATE audit_events SET seq = -5 WHERE seq = 5');
    tamper(db, 'UPDATE audit_events SET seq = 5 WHERE seq = 6');
    tamper(db, 'UPDATE audit_events SET seq = 6 WHERE seq = -5');
    expect((await audit.verify()).firstBad).toMatchObject({ seq: 5, kind: 'reordered', reason: expect.stringMatching(/event 5 sits at position 6/) });
  });

  it('names an inserted event (later rows renumbered, the forgery chained in)', async () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 8; i++) audit.append(ev(i));
    tamper(db, 'UPDATE audit_events SET seq = -seq - 1 WHERE seq >= 4');
    tamper(db, 'UPDATE audit_events SET seq = -seq WHERE seq < 0');
    const prev = row(db, 3).hash;
    const body = canonical({ ...ev(99), seq: 4, ts: '2026-01-01T00:00:03.500Z', actor: 'mallory' });
    db.prepare('INSERT INTO audit_events VALUES (4, ?, ?, ?, ?, ?, ?)').run('2026-01-01T00:00:03.500Z', 'mallory', 'hosts:add', body, prev, chainHash(prev, body));
    expect((await audit.verify()).firstBad).toMatchObject({ seq: 4, kind: 'inserted', reason: expect.stringMatching(/event 4 now sits at position 5/) });
  });

  it('names an event whose filter columns were changed to hide it', async () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 4; i++) audit.append(ev(i));
    tamper(db, "UPDATE audit_events SET actor = 'nobody' WHERE seq = 3");
    expect((await audit.verify()).firstBad).toMatchObject({ seq: 3, kind: 'edited', reason: expect.stringMatching(/columns/) });
  });

  it('refuses UPDATE and DELETE through SQL', () => {
    const { db, audit } = trail();
    audit.append(ev(1));
    expect(() => db.prepare("UPDATE audit_events SET actor = 'mallory'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_events').run()).toThrow(/append-only/);
  });

  it('fails closed: a failed write throws AUDIT_UNAVAILABLE and appends nothing', async () => {
    const { db, audit } = trail();
    audit.append(ev(1));
    db.exec("CREATE TRIGGER no_more BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END;");
    expect(() => audit.append(ev(2))).toThrow(expect.objectContaining({ code: 'AUDIT_UNAVAILABLE' }));
    db.exec('DROP TRIGGER no_more');
    const next = audit.append(ev(3));
    expect(next.seq).toBe(2);
    expect((await audit.verify()).ok).toBe(true);
  });

  it('lists newest first with filters', () => {
    const { audit } = trail();
    for (let i = 1; i <= 5; i++) audit.append(ev(i));
    audit.append({ ...ev(6), channel: 'hosts:scan', actor: 'bob', outcome: 'refused', target: 'Rack-7/GPU' });
    const all = audit.list({ limit: 3 });
    expect(all.events.map((e) => e.seq)).toEqual([6, 5, 4]);
    expect(all.total).toBe(6);
    expect(audit.list({ limit: 10, beforeSeq: 3 }).events.map((e) => e.seq)).toEqual([2, 1]);
    expect(audit.list({ limit: 10, actor: 'bob' }).events.map((e) => e.seq)).toEqual([6]);
    expect(audit.list({ limit: 10, channel: 'hosts:add' }).events).toHaveLength(5);
    expect(audit.list({ limit: 10, outcome: 'refused' }).events.map((e) => e.seq)).toEqual([6]);
    expect(audit.list({ limit: 10, target: 'rack-7' }).events.map((e) => e.seq)).toEqual([6]);
    audit.append({ ...ev(7), target: 'say "hi" 50%_x\\y' });
    expect(audit.list({ limit: 10, target: '"HI" 50%_X\\' }).events.map((e) => e.seq)).toEqual([7]);
    expect(audit.list({ limit: 10, target: '50%x' }).events).toHaveLength(0);
    expect(audit.list({ limit: 10, target: 'gpu-1' }).events.map((e) => e.seq)).toEqual([1]);
    expect(audit.list({ limit: 10, since: '2026-01-01T00:00:04Z', until: '2026-01-01T00:00:05.5Z' }).events.map((e) => e.seq)).toEqual([5, 4]);
    expect(() => audit.list({ limit: 10, since: 'yesterday' })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it('keeps one chain with two connections appending in turn (head cache follows data_version)', async () => {
    const a = trail({ file: true });
    const db2 = openDatabase(path.join(a.dir!, 'airlock.db'));
    const b = new AuditTrail(db2, () => new Date());
    try {
      for (let i = 0; i < 20; i++) {
        (i % 3 === 0 ? b : a.audit).append(ev(i));
      }
      expect(a.audit.head().seq).toBe(20);
      expect(b.head().seq).toBe(20);
      expect(await a.verify()).toMatchObject({ ok: true, checked: 20 });
    } finally {
      db2.close();
    }
  });

  it('forgets its cached head when an append inside a caller transaction is rolled back', async () => {
    const { db, audit } = trail();
    audit.append(ev(1));
    expect(() =>
      db.transaction(() => {
        audit.append(ev(2));
        throw new Error('the caller fails');
      })(),
    ).toThrow('the caller fails');
    expect(audit.append(ev(3)).seq).toBe(2);
    expect((await audit.verify()).ok).toBe(true);
  });

  it('verifies a range', async () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 10; i++) audit.append(ev(i));
    expect(await audit.verify({ fromSeq: 3, toSeq: 6 })).toMatchObject({ ok: true, checked: 4, fromSeq: 3, toSeq: 6, headSeq: 6 });
    tamper(db, 'UPDATE audit_events SET body = ? WHERE seq = 8', row(db, 8).body.replace('gpu-8', 'gpu-Z'));
    expect((await audit.verify({ fromSeq: 3, toSeq: 6 })).ok).toBe(true);
    expect((await audit.verify({ fromSeq: 7 })).firstBad).toMatchObject({ seq: 8, kind: 'edited' });
  });
});

describe('signed checkpoints', () => {
  it('signs the head every N events, as an event in the chain', async () => {
    const { audit, signer: s, db } = trail({ signed: true, every: 5 });
    for (let i = 1; i <= 12; i++) audit.append(ev(i));
    const cps = audit.list({ limit: 100, channel: CHECKPOINT_CHANNEL }).events.reverse();
    // Events 1–5, then the checkpoint (6); 7–11, then the checkpoint (12); then the last events.
    expect(cps.map((e) => e.seq)).toEqual([6, 12]);
    const cp = cps[0]!;
    expect(cp).toMatchObject({ actor: 'airlock', channel: 'audit:checkpoint', outcome: 'ok', params: { headSeq: 5, headHash: row(db, 5).hash, keyFingerprint: s!.fp } });
    const p = cp.params as { headSeq: number; headHash: string; headTs: string; signature: string };
    const payload = checkpointPayload({ seq: p.headSeq, hash: p.headHash, ts: p.headTs });
    expect(payload.toString()).toBe(`{"hash":"${p.headHash}","seq":5,"ts":"${p.headTs}"}`);
    expect(crypto.verify(null, payload, s!.publicKey, Buffer.from(p.signature, 'base64'))).toBe(true);
    expect(await audit.verify()).toMatchObject({ ok: true, checkpoints: 2, lastCheckpointSeq: 12, keyFingerprint: s!.fp });
  });

  it('signs after T seconds when fewer than N events came', () => {
    const { audit, clock } = trail({ signed: true, every: 1000, seconds: 60 });
    audit.append(ev(1));
    audit.append(ev(2));
    expect(audit.checkpointIfDue()).toBeNull();
    clock.advance(61_000);
    expect(audit.checkpointIfDue()).toMatchObject({ seq: 3, channel: 'audit:checkpoint', params: { headSeq: 2 } });
    // Nothing new since: no checkpoint of a checkpoint.
    clock.advance(120_000);
    expect(audit.checkpointIfDue()).toBeNull();
  });

  it('waits while the key is sealed and writes the checkpoint at the next opportunity', async () => {
    const { audit, signer: s } = trail({ signed: true, every: 3 });
    s!.lock();
    for (let i = 1; i <= 7; i++) audit.append(ev(i));
    expect(audit.list({ limit: 100, channel: CHECKPOINT_CHANNEL }).events).toHaveLength(0);
    s!.unlock();
    expect(audit.checkpointIfDue()).toMatchObject({ seq: 8, params: { headSeq: 7 } });
    expect(await audit.verify()).toMatchObject({ ok: true, checkpoints: 1 });
  });

  it('writes the signed high-water file after each checkpoint', async () => {
    const { audit, headFile, signer: s } = trail({ file: true, signed: true, every: 4 });
    for (let i = 1; i <= 9; i++) audit.append(ev(i));
    const hw = readHighWater(headFile!)!;
    expect(hw).toMatchObject({ v: 1, seq: 10, hash: audit.list({ limit: 1, beforeSeq: 11 }).events[0]!.hash, keyFingerprint: s!.fp });
    expect(crypto.verify(null, checkpointPayload(hw), s!.publicKey, Buffer.from(hw.signature, 'base64'))).toBe(true);
    expect(fs.statSync(headFile!).mode & 0o777).toBe(0o600);
  });

  it('names a checkpoint whose signature was altered and the chain re-hashed after it', async () => {
    const { db, audit } = trail({ signed: true, every: 4 });
    for (let i = 1; i <= 10; i++) audit.append(ev(i));
    const cp = row(db, 5);
    const e = JSON.parse(cp.body) as { params: { signature: string } };
    const sig = Buffer.from(e.params.signature, 'base64');
    sig[7] = sig[7]! ^ 0x01;
    e.params.signature = sig.toString('base64');
    tamper(db, 'UPDATE audit_events SET body = ? WHERE seq = 5', canonical(e));
    rechain(db, 5);
    expect((await audit.verify()).firstBad).toMatchObject({ seq: 5, kind: 'bad-signature', reason: expect.stringMatching(/does not verify/) });
  });

  it('names a history rewritten and re-chained under a valid checkpoint', async () => {
    const { db, audit } = trail({ signed: true, every: 4 });
    for (let i = 1; i <= 10; i++) audit.append(ev(i));
    // Checkpoints at 5 (head 4) and 10 (head 9). Event 7 is rewritten and everything re-chained.
    tamper(db, 'UPDATE audit_events SET body = ? WHERE seq = 7', row(db, 7).body.replace('gpu-', 'gpu-EVIL-'));
    rechain(db, 7);
    expect((await audit.verify()).firstBad).toMatchObject({ seq: 5, kind: 'edited', reason: expect.stringMatching(/checkpoint 10 signed event 9.*after 4 up to 9/) });
  });

  it('refuses a checkpoint signed by a key that is not on record', async () => {
    const { db, audit } = trail({ signed: true, every: 3 });
    for (let i = 1; i <= 5; i++) audit.append(ev(i));
    // Someone replaces the public key on record (to re-sign a rewritten chain with their own).
    auditSigner(db);
    expect((await audit.verify()).firstBad).toMatchObject({ seq: 4, kind: 'bad-signature', reason: expect.stringMatching(/not on record/) });
  });

  it('names a truncated tail from the high-water file, even with the checkpoints gone', async () => {
    const t = trail({ file: true, signed: true, every: 4 });
    for (let i = 1; i <= 12; i++) t.audit.append(ev(i));
    expect(await t.verify()).toMatchObject({ ok: true });
    // The attacker's own connection: the console's connection sees the change (data_version).
    const attacker = new Database(path.join(t.dir!, 'airlock.db'));
    tamper(attacker, 'DELETE FROM audit_events WHERE seq > 7');
    attacker.close();
    expect((await t.verify()).firstBad).toMatchObject({ seq: 8, kind: 'truncated', reason: expect.stringMatching(/ends at event 7.*truncated/) });
    // The console goes on writing: the new events reuse the lost numbers, the chain links, the cut still shows.
    for (let i = 0; i < 3; i++) t.audit.append(ev(100 + i));
    expect((await t.verify()).firstBad).toMatchObject({ seq: 8, kind: 'truncated', reason: expect.stringMatching(/from 8 on were written after that checkpoint/) });
  });

  it('reports a forged high-water file', async () => {
    const t = trail({ file: true, signed: true, every: 4 });
    for (let i = 1; i <= 6; i++) t.audit.append(ev(i));
    const hw = readHighWater(t.headFile!)!;
    fs.writeFileSync(t.headFile!, JSON.stringify({ ...hw, seq: 3 }));
    expect((await t.verify()).firstBad).toMatchObject({ kind: 'bad-signature', reason: expect.stringMatching(/audit\.head/) });
  });

  it('fails (head-missing), not merely warns, when checkpoints exist but the high-water file is gone', async () => {
    const t = trail({ file: true, signed: true, every: 4 });
    for (let i = 1; i <= 6; i++) t.audit.append(ev(i));
    fs.rmSync(t.headFile!);
    const v = await t.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBad).toMatchObject({ seq: 6, kind: 'head-missing', reason: expect.stringMatching(/audit\.head is missing/) });
  });
});

describe('verification in worker threads', () => {
  it('verifies off the main thread and agrees with the in-process verifier on every kind of tampering', async () => {
    const cases: Array<[string, (db: Database.Database) => void, string | null]> = [
      ['intact', () => {}, null],
      ['edited', (db) => tamper(db, 'UPDATE audit_events SET body = ? WHERE seq = 1500', row(db, 1500).body.replace('gpu-', 'gpu-X')), 'edited'],
      ['deleted', (db) => tamper(db, 'DELETE FROM audit_events WHERE seq BETWEEN 2999 AND 3001'), 'deleted'],
      ['reordered', (db) => (tamper(db, 'UPDATE audit_events SET seq = -1 WHERE seq = 2100'), tamper(db, 'UPDATE audit_events SET seq = 2100 WHERE seq = 2101'), tamper(db, 'UPDATE audit_events SET seq = 2101 WHERE seq = -1')), 'reordered'],
      ['separator in a value', (db) => tamper(db, "UPDATE audit_events SET actor = 'a' || char(30) || 'b' WHERE seq = 10"), 'edited'],
      ['deleted at a range boundary', (db) => tamper(db, 'DELETE FROM audit_events WHERE seq BETWEEN 1001 AND 2000'), 'deleted'],
    ];
    for (const [name, harm, kind] of cases) {
      const t = trail({ file: true, signed: true, every: 250 });
      for (let i = 1; i <= 4000; i++) t.audit.append(ev(i));
      harm(t.db);
      const inWorkers = await verifyAudit({ db: t.db, dbFile: path.join(t.dir!, 'airlock.db'), headFile: t.headFile, workerThreshold: 0, maxWorkers: 3 });
      const inProcess = await t.verify();
      expect(inWorkers.engine, name).toBe('worker');
      expect(inWorkers.firstBad?.kind ?? null, name).toBe(kind);
      const { engine: _w, ...a } = inWorkers;
      const { engine: _m, ...b } = inProcess;
      expect(a, name).toEqual(b);
      t.db.close();
    }
  });

  it('falls back to verifying in-process when no worker can start', async () => {
    const t = trail({ file: true });
    for (let i = 1; i <= 50; i++) t.audit.append(ev(i));
    const pool = new WorkerPool({ script: new URL('file:///nonexistent/worker.mjs') });
    const v = await verifyAudit({ db: t.db, dbFile: path.join(t.dir!, 'airlock.db'), headFile: null, workerThreshold: 0, pool });
    expect(v).toMatchObject({ ok: true, checked: 50, engine: 'main' });
    await pool.close();
  });

  it('lists with body filters in a worker, as in-process', async () => {
    const t = trail({ file: true });
    for (let i = 1; i <= 30; i++) t.audit.append({ ...ev(i), outcome: i % 4 ? 'pending' : 'refused' });
    const options = { limit: 10, target: 'GPU-1', outcome: 'pending' };
    const inWorker = await sharedPool().run('audit.list', { dbFile: path.join(t.dir!, 'airlock.db'), options });
    expect(inWorker).toEqual(t.audit.list(options));
    expect(inWorker.events.map((e) => e.seq)).toEqual([19, 18, 17, 15, 14, 13, 11, 10, 1]);
  });

  it('reports progress', async () => {
    const t = trail({ file: true });
    t.db.transaction(() => {
      for (let i = 1; i <= 3000; i++) t.audit.append(ev(i));
    })();
    const seen: Array<[number, number]> = [];
    const v = await verifyAudit({ db: t.db, dbFile: path.join(t.dir!, 'airlock.db'), headFile: null, workerThreshold: 0, progressMs: 0, onProgress: (c, n) => seen.push([c, n]) });
    expect(v.ok).toBe(true);
    expect(seen.at(-1)).toEqual([3000, 3000]);
    expect(seen.every(([c, n]) => c <= n && n === 3000)).toBe(true);
  });
});

describe('verification, property-based', () => {
  it('the fast path and the exact row-by-row path agree on any tampering, and no tampering goes unnoticed', () => {
    const { db, audit } = trail({ signed: true, every: 7 });
    for (let i = 1; i <= 60; i++) audit.append({ ...ev(i), actor: i % 5 === 0 ? 'bob "the" admin' : 'alice', target: i % 3 ? `gpu-${i}` : 'ünïcode ✓' });
    const pristine = db.serialize();
    const keys = Object.fromEntries(
      (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().all(AUDIT_PUBLIC_META) as string[]).map((pem) => [keyFingerprint(pem), pem]),
    );
    const scan = (d: Database.Database, exact: boolean) => new ChainScanner(d, { from: 1, to: 62 }, GENESIS_HASH, keys, 16, exact).runAll();
    const harm = fc.oneof(
      fc.record({ op: fc.constant('byte' as const), seq: fc.integer({ min: 1, max: 62 }), at: fc.nat(), to: fc.integer({ min: 32, max: 126 }) }),
      fc.record({ op: fc.constant('delete' as const), seq: fc.integer({ min: 1, max: 61 }) }),
      fc.record({ op: fc.constant('swap' as const), seq: fc.integer({ min: 1, max: 61 }) }),
      fc.record({ op: fc.constant('column' as const), seq: fc.integer({ min: 1, max: 62 }), col: fc.constantFrom('actor', 'channel', 'ts') }),
      fc.record({ op: fc.constant('rehash' as const), seq: fc.integer({ min: 1, max: 61 }), at: fc.nat(), to: fc.integer({ min: 32, max: 126 }) }),
    );
    fc.assert(
      fc.property(harm, (h) => {
        const d = new Database(pristine);
        d.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
        const r = row(d, h.seq);
        let changed = true;
        if (h.op === 'byte' || h.op === 'rehash') {
          const i = h.at % r.body.length;
          const body = r.body.slice(0, i) + String.fromCharCode(h.to) + r.body.slice(i + 1);
          changed = body !== r.body;
          d.prepare('UPDATE audit_events SET body = ?, hash = ? WHERE seq = ?').run(body, h.op === 'rehash' ? chainHash(r.prev_hash, body) : r.hash, h.seq);
        } else if (h.op === 'delete') d.prepare('DELETE FROM audit_events WHERE seq = ?').run(h.seq);
        else if (h.op === 'swap') {
          d.prepare('UPDATE audit_events SET seq = -1 WHERE seq = ?').run(h.seq);
          d.prepare('UPDATE audit_events SET seq = ? WHERE seq = ?').run(h.seq, h.seq + 1);
          d.prepare('UPDATE audit_events SET seq = ? WHERE seq = -1').run(h.seq + 1);
        } else d.prepare(`UPDATE audit_events SET ${h.col} = ${h.col} || 'x' WHERE seq = ?`).run(h.seq);
        const fast = scan(d, false);
        const exact = scan(d, true);
        d.close();
        expect(fast).toEqual(exact);
        if (changed) expect(fast.bad, JSON.stringify(h)).not.toBeNull();
      }),
      { numRuns: 400 },
    );
  });
});

describe('the trusted head (issue 9, point 2: a checkpoint signs only a chain that extends it)', () => {
  const checkpoints = (db: Database.Database) => db.prepare('SELECT count(*) FROM audit_events WHERE channel = ?').pluck().get(CHECKPOINT_CHANNEL) as number;

  it('never signs a chain re-hashed by another connection, and reports the divergence once the transaction is over', () => {
    const t = trail({ file: true, signed: true, every: 4 });
    const found: Array<{ seq: number; kind: string }> = [];
    t.audit.onDiverge((d) => found.push({ seq: d.bad.seq, kind: d.bad.kind }));
    for (let i = 1; i <= 9; i++) t.audit.append(ev(i));
    const head = fs.readFileSync(t.headFile!, 'utf8');
    const before = checkpoints(t.db);
    // The attacker's connection: event 3 edited, everything after re-chained.
    const attacker = new Database(path.join(t.dir!, 'airlock.db'));
    tamper(attacker, "UPDATE audit_events SET body = replace(body, '\"alice\"', '\"mallory\"') WHERE seq = 3");
    let prev = attacker.prepare('SELECT hash FROM audit_events WHERE seq = 2').pluck().get() as string;
    for (const r of attacker.prepare('SELECT seq, body FROM audit_events WHERE seq >= 3 ORDER BY seq').all() as Array<{ seq: number; body: string }>) {
      const h = chainHash(prev, r.body);
      tamper(attacker, 'UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?', prev, h, r.seq);
      prev = h;
    }
    attacker.close();
    for (let i = 10; i <= 20; i++) t.audit.append(ev(i));
    expect(checkpoints(t.db)).toBe(before);
    expect(fs.readFileSync(t.headFile!, 'utf8')).toBe(head);
    expect(t.audit.isBlocked).toBe(true);
    expect(found).toHaveLength(1);
    expect(found[0]!.kind).toBe('edited');
  });

  it('signs over events other connections appended (checked incrementally from the last point it knows)', async () => {
    const t = trail({ file: true, signed: true, every: 4 });
    for (let i = 1; i <= 5; i++) t.audit.append(ev(i));
    // A second trail on its own connection (the CLI beside the console) appends without signing.
    const otherDb = new Database(path.join(t.dir!, 'airlock.db'));
    const other = new AuditTrail(otherDb, () => new Date(Date.UTC(2026, 0, 2)), { signer: null });
    for (let i = 0; i < 3; i++) other.append(ev(100 + i));
    otherDb.close();
    const cpBefore = checkpoints(t.db);
    for (let i = 6; i <= 10; i++) t.audit.append(ev(i));
    expect(checkpoints(t.db)).toBeGreaterThan(cpBefore);
    expect(t.audit.isBlocked).toBe(false);
    expect(await t.verify()).toMatchObject({ ok: true });
  });
});

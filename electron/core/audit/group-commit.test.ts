import Database from 'better-sqlite3';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { AuditEvent } from '../../../shared/contract/audit';
import { CHECKPOINT_CHANNEL, GENESIS_HASH, chainHash, readHighWater } from './audit';
import { sampleEvent, testTrail } from '../../../test/support/audit';

const trail = testTrail;
const ev = sampleEvent;

const rows = (db: Database.Database) =>
  db.prepare('SELECT seq, channel, body, prev_hash AS prevHash, hash FROM audit_events ORDER BY seq').all() as Array<{ seq: number; channel: string; body: string; prevHash: string; hash: string }>;

/** Settles every promise, in order: the value or the error. */
const settle = <T>(ps: Array<Promise<T>>) => Promise.all(ps.map((p) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }))));

describe('group commit (appendAsync)', () => {
  it('commits concurrent callers in one transaction, in call order, and resolves each with its event', async () => {
    const { db, audit, batches, verify } = trail();
    const ps = Array.from({ length: 50 }, (_, i) => audit.appendAsync(ev(i)));
    expect(rows(db)).toHaveLength(0); // queued, not yet written
    const out = await Promise.all(ps);
    expect(batches).toEqual([50]);
    expect(out.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(out.map((e) => e.target)).toEqual(Array.from({ length: 50 }, (_, i) => `gpu-${i}`));
    const r = rows(db);
    let prev = GENESIS_HASH;
    for (const [i, e] of out.entries()) {
      expect(e.prevHash).toBe(prev);
      expect(r[i]!.hash).toBe(e.hash);
      expect(chainHash(prev, r[i]!.body)).toBe(e.hash);
      prev = e.hash;
    }
    expect(audit.head()).toEqual({ seq: 50, hash: prev });
    expect(await verify()).toMatchObject({ ok: true, checked: 50 });
  });

  it('resolves only once the event is committed: another connection already sees it', async () => {
    const { dir, audit } = trail({ file: true });
    const other = new Database(path.join(dir!, 'airlock.db'), { readonly: true });
    onTestFinished(() => {
      other.close();
    });
    const count = () => other.prepare('SELECT count(*) FROM audit_events').pluck().get() as number;
    const seen: number[] = [];
    await Promise.all(Array.from({ length: 5 }, (_, i) => audit.appendAsync(ev(i)).then(() => seen.push(count()))));
    expect(seen).toEqual([5, 5, 5, 5, 5]);
  });

  it('keeps one chain across batches and interleaved synchronous appends (which commit the queue first)', async () => {
    const { db, audit, batches, verify } = trail();
    const a = audit.appendAsync(ev(1));
    const b = audit.appendAsync(ev(2));
    const c = audit.append(ev(3)); // commits a and b first: it was called after them
    expect(c.seq).toBe(3);
    expect((await a).seq).toBe(1);
    expect((await b).seq).toBe(2);
    expect(c.prevHash).toBe((await b).hash);
    for (let round = 0; round < 5; round++) {
      const ps = Array.from({ length: 7 }, (_, i) => audit.appendAsync(ev(100 + round * 10 + i)));
      if (round === 2) audit.append(ev(999));
      await Promise.all(ps);
      audit.append(ev(1000 + round));
    }
    expect(batches).toEqual([2, 7, 7, 7, 7, 7]);
    expect(rows(db).map((r) => r.seq)).toEqual(Array.from({ length: 3 + 5 * 8 + 1 }, (_, i) => i + 1));
    expect(await verify()).toMatchObject({ ok: true, checked: 44 });
  });

  it('writes checkpoints where they fall due inside a batch, as one-at-a-time appends would', async () => {
    const g = trail({ file: true, signed: true, every: 5 });
    const out = await Promise.all(Array.from({ length: 13 }, (_, i) => g.audit.appendAsync(ev(i))));
    const s = trail({ signed: true, every: 5 });
    for (let i = 0; i < 13; i++) s.audit.append(ev(i));
    const layout = (db: Database.Database) => rows(db).map((r) => `${r.seq}:${r.channel}`);
    expect(layout(g.db)).toEqual(layout(s.db));
    expect(layout(g.db).filter((x) => x.endsWith(CHECKPOINT_CHANNEL))).toEqual([`6:${CHECKPOINT_CHANNEL}`, `12:${CHECKPOINT_CHANNEL}`]);
    // Callers get their own events, never a checkpoint.
    expect(out.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14, 15]);
    expect(g.batches).toEqual([15]);
    const cp = JSON.parse(rows(g.db)[11]!.body) as { params: { headSeq: number; headHash: string } };
    expect(cp.params).toMatchObject({ headSeq: 11, headHash: out[9]!.hash });
    expect(readHighWater(g.headFile!)).toMatchObject({ seq: 12 });
    expect(g.audit.checkpointError).toBeNull();
    expect(await g.verify()).toMatchObject({ ok: true, checked: 15, checkpoints: 2, lastCheckpointSeq: 12, warnings: [] });
    // The next event continues after them, synchronous or not.
    expect(g.audit.append(ev(99)).seq).toBe(16);
    expect((await g.audit.appendAsync(ev(100))).seq).toBe(17);
  });

  it('fails a batch whole: every caller gets AUDIT_UNAVAILABLE, nothing of it stays, and the chain continues later', async () => {
    const { db, audit, batches, verify } = trail();
    await Promise.all([audit.appendAsync(ev(1)), audit.appendAsync(ev(2))]);
    const head = audit.head();
    // The fourth event of the next batch cannot be written (as a full disk would refuse it).
    db.exec(`CREATE TRIGGER no_gpu_13 BEFORE INSERT ON audit_events WHEN NEW.body LIKE '%gpu-13%' BEGIN SELECT RAISE(ABORT, 'disk full'); END;`);
    const failed = await settle(Array.from({ length: 6 }, (_, i) => audit.appendAsync(ev(10 + i))));
    for (const r of failed) {
      expect(r.ok).toBe(false);
      expect(r.ok ? null : r.e).toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringMatching(/disk full.*not performed/) });
    }
    expect(rows(db).map((r) => r.seq)).toEqual([1, 2]);
    expect(audit.head()).toEqual(head);
    db.exec('DROP TRIGGER no_gpu_13');
    const later = await Promise.all([audit.appendAsync(ev(20)), audit.appendAsync(ev(21))]);
    expect(later.map((e) => e.seq)).toEqual([3, 4]);
    expect(later[0]!.prevHash).toBe(head.hash);
    expect(audit.append(ev(22)).seq).toBe(5);
    expect(batches).toEqual([2, 2]);
    expect(await verify()).toMatchObject({ ok: true, checked: 5 });
  });

  it('fails only the caller whose event has no canonical form', async () => {
    const { audit, verify } = trail();
    const out = await settle([audit.appendAsync(ev(1)), audit.appendAsync({ ...ev(2), params: { n: NaN } }), audit.appendAsync(ev(3))]);
    expect(out[0]).toMatchObject({ ok: true, v: { seq: 1 } });
    expect(out[1]).toMatchObject({ ok: false, e: { code: 'AUDIT_UNAVAILABLE' } });
    expect(out[2]).toMatchObject({ ok: true, v: { seq: 2 } });
    expect(await verify()).toMatchObject({ ok: true, checked: 2 });
  });

  it('rejects every queued caller when the database is gone', async () => {
    const { db, audit } = trail();
    await audit.appendAsync(ev(1));
    const ps = settle([audit.appendAsync(ev(2)), audit.appendAsync(ev(3))]);
    db.close();
    for (const r of await ps) expect(r).toMatchObject({ ok: false, e: { code: 'AUDIT_UNAVAILABLE' } });
  });

  it('does not commit the queue inside a caller transaction: a rollback there cannot take queued events with it', async () => {
    const { db, audit, verify } = trail();
    const queued = audit.appendAsync(ev(1));
    expect(() =>
      db.transaction(() => {
        audit.append(ev(2));
        throw new Error('the caller fails');
      })(),
    ).toThrow('the caller fails');
    expect((await queued).seq).toBe(1);
    expect(audit.append(ev(3)).seq).toBe(2);
    expect(await verify()).toMatchObject({ ok: true, checked: 2 });
  });

  it('calls onCommit listeners once per committed event, in chain order, checkpoints included', async () => {
    const { audit } = trail({ signed: true, every: 3 });
    const seen: AuditEvent[] = [];
    audit.onCommit((e) => seen.push(e));
    audit.onCommit(() => {
      throw new Error('a listener that fails changes nothing');
    });
    const ps = Array.from({ length: 4 }, (_, i) => audit.appendAsync(ev(i)));
    expect(seen).toHaveLength(0);
    await Promise.all(ps);
    await settle([audit.appendAsync(ev(9)), audit.appendAsync({ ...ev(10), params: { n: Infinity } })]);
    expect(seen.map((e) => `${e.seq}:${e.channel === CHECKPOINT_CHANNEL ? 'cp' : e.target}`)).toEqual(['1:gpu-0', '2:gpu-1', '3:gpu-2', '4:cp', '5:gpu-3', '6:gpu-9']);
  });
});

import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate } from '../db/db';
import { migrations } from '../db/migrations';
import { AuditTrail, canonical, chainHash, GENESIS_HASH, type AuditInput } from './audit';

function trail() {
  const db = new Database(':memory:');
  migrate(db, migrations);
  let t = Date.UTC(2026, 0, 1);
  return { db, audit: new AuditTrail(db, () => new Date((t += 1000))) };
}

const ev = (i: number): AuditInput => ({
  actor: 'alice',
  roles: ['admin'],
  session: 's1',
  shell: 'cli:test',
  channel: 'hosts:add',
  phase: 'request',
  target: `gpu-${i}`,
  params: { name: `gpu-${i}`, port: 22 },
  outcome: 'pending',
  errorCode: null,
});

/** Edits the raw file the way an attacker with the database would: bypassing the triggers. */
function tamper(db: Database.Database, sql: string, ...args: unknown[]) {
  db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
  db.prepare(sql).run(...args);
}

describe('audit trail', () => {
  it('chains SHA-256(prev || canonical(event)) from a zero genesis', () => {
    const { db, audit } = trail();
    const a = audit.append(ev(1));
    const b = audit.append(ev(2));
    expect(a.seq).toBe(1);
    expect(a.prevHash).toBe(GENESIS_HASH);
    expect(b.prevHash).toBe(a.hash);
    const row = db.prepare('SELECT body FROM audit_events WHERE seq = 2').get() as { body: string };
    expect(chainHash(a.hash, row.body)).toBe(b.hash);
    expect(row.body).toBe(canonical(JSON.parse(row.body)));
    expect(audit.verify()).toMatchObject({ ok: true, checked: 2, headSeq: 2, headHash: b.hash, firstBad: null });
  });

  it('canonical JSON sorts keys and is stable', () => {
    expect(canonical({ b: 1, a: [2, { d: null, c: 'x' }] })).toBe('{"a":[2,{"c":"x","d":null}],"b":1}');
  });

  it('names an edited event', () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 5; i++) audit.append(ev(i));
    const body = (db.prepare('SELECT body FROM audit_events WHERE seq = 3').get() as { body: string }).body;
    tamper(db, 'UPDATE audit_events SET body = ? WHERE seq = 3', body.replace('gpu-3', 'gpu-X'));
    expect(audit.verify().firstBad).toEqual({ seq: 3, reason: expect.stringMatching(/edited/) });
  });

  it('names a deleted event', () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 5; i++) audit.append(ev(i));
    tamper(db, 'DELETE FROM audit_events WHERE seq = 2');
    expect(audit.verify().firstBad).toEqual({ seq: 2, reason: expect.stringMatching(/missing.*deleted/) });
  });

  it('names a re-hashed (rewritten) event by its broken link', () => {
    const { db, audit } = trail();
    for (let i = 1; i <= 4; i++) audit.append(ev(i));
    // The attacker edits event 2 and recomputes its own hash: event 3 no longer links.
    const row = db.prepare('SELECT body, prev_hash FROM audit_events WHERE seq = 2').get() as { body: string; prev_hash: string };
    const body = row.body.replace('gpu-2', 'gpu-Y');
    tamper(db, 'UPDATE audit_events SET body = ?, hash = ? WHERE seq = 2', body, chainHash(row.prev_hash, body));
    expect(audit.verify().firstBad).toEqual({ seq: 3, reason: expect.stringMatching(/does not link/) });
  });

  it('refuses UPDATE and DELETE through SQL', () => {
    const { db, audit } = trail();
    audit.append(ev(1));
    expect(() => db.prepare("UPDATE audit_events SET actor = 'mallory'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_events').run()).toThrow(/append-only/);
  });

  it('fails closed: a failed write throws AUDIT_UNAVAILABLE and appends nothing', () => {
    const { db, audit } = trail();
    audit.append(ev(1));
    db.exec("CREATE TRIGGER no_more BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END;");
    expect(() => audit.append(ev(2))).toThrow(expect.objectContaining({ code: 'AUDIT_UNAVAILABLE' }));
    db.exec('DROP TRIGGER no_more');
    const next = audit.append(ev(3));
    expect(next.seq).toBe(2);
    expect(audit.verify().ok).toBe(true);
  });

  it('lists newest first with filters', () => {
    const { audit } = trail();
    for (let i = 1; i <= 5; i++) audit.append(ev(i));
    audit.append({ ...ev(6), channel: 'hosts:scan', actor: 'bob' });
    const all = audit.list({ limit: 3 });
    expect(all.events.map((e) => e.seq)).toEqual([6, 5, 4]);
    expect(all.total).toBe(6);
    expect(audit.list({ limit: 10, beforeSeq: 3 }).events.map((e) => e.seq)).toEqual([2, 1]);
    expect(audit.list({ limit: 10, actor: 'bob' }).events.map((e) => e.seq)).toEqual([6]);
    expect(audit.list({ limit: 10, channel: 'hosts:add' }).events).toHaveLength(5);
  });
});

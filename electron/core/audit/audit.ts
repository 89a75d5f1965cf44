import canonicalize from 'canonicalize';
import crypto from 'node:crypto';
import type { AuditEvent, VerifyReport } from '../../../shared/contract/audit';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';

export const GENESIS_HASH = '0'.repeat(64);

/** What a caller supplies; sequence, time and hashes are the trail's own. */
export type AuditInput = Omit<AuditEvent, 'seq' | 'ts' | 'prevHash' | 'hash'>;
type Body = Omit<AuditEvent, 'prevHash' | 'hash'>;

/** RFC 8785 (JCS) canonical JSON: the same event always hashes to the same bytes. */
export function canonical(value: unknown): string {
  const s = canonicalize(value);
  if (s === undefined) throw new Error('value has no canonical JSON form');
  return s;
}

/** hash = SHA-256(prev_hash_hex || canonical(body)), hex. */
export function chainHash(prevHash: string, canonicalBody: string): string {
  return crypto.createHash('sha256').update(prevHash, 'utf8').update(canonicalBody, 'utf8').digest('hex');
}

/**
 * The append-only, hash-chained audit trail. Appends are serialised by SQLite's
 * write lock (IMMEDIATE transaction) so two shells writing at once cannot fork the chain.
 * A failed append throws: callers treat that as "the action must not happen".
 */
export class AuditTrail {
  private readonly insert;
  private readonly head;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {
    this.insert = db.prepare(
      'INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.head = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
  }

  append(input: AuditInput): AuditEvent {
    try {
      return this.db
        .transaction(() => {
          const last = this.head.get() as { seq: number; hash: string } | undefined;
          const seq = (last?.seq ?? 0) + 1;
          const prevHash = last?.hash ?? GENESIS_HASH;
          const body: Body = { ...input, seq, ts: this.now().toISOString() };
          const text = canonical(body);
          const hash = chainHash(prevHash, text);
          this.insert.run(seq, body.ts, body.actor, body.channel, text, prevHash, hash);
          return { ...body, prevHash, hash };
        })
        .immediate();
    } catch (e) {
      throw new AirlockError(
        'AUDIT_UNAVAILABLE',
        `The audit trail could not be written (${(e as Error).message}); the action was not performed.`,
      );
    }
  }

  list(opts: { beforeSeq?: number; limit: number; channel?: string; actor?: string }): {
    events: AuditEvent[];
    total: number;
  } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.beforeSeq !== undefined) (where.push('seq < ?'), args.push(opts.beforeSeq));
    if (opts.channel) (where.push('channel = ?'), args.push(opts.channel));
    if (opts.actor) (where.push('actor = ?'), args.push(opts.actor));
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows = this.db
      .prepare(`SELECT body, prev_hash, hash FROM audit_events ${w} ORDER BY seq DESC LIMIT ?`)
      .all(...args, opts.limit) as Array<{ body: string; prev_hash: string; hash: string }>;
    const total = (this.db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n;
    return {
      events: rows.map((r) => ({ ...(JSON.parse(r.body) as Body), prevHash: r.prev_hash, hash: r.hash })),
      total,
    };
  }

  /** Walks the whole chain in order and names the first event that does not fit. */
  verify(): VerifyReport {
    let expectSeq = 1;
    let prev = GENESIS_HASH;
    let checked = 0;
    const stmt = this.db.prepare('SELECT seq, body, prev_hash, hash FROM audit_events ORDER BY seq');
    for (const row of stmt.iterate() as Iterable<{ seq: number; body: string; prev_hash: string; hash: string }>) {
      const bad = (reason: string): VerifyReport => ({
        ok: false,
        checked,
        headSeq: expectSeq - 1,
        headHash: prev,
        firstBad: { seq: row.seq < expectSeq ? row.seq : expectSeq, reason },
      });
      if (row.seq !== expectSeq) {
        return bad(
          row.seq > expectSeq
            ? `event ${expectSeq} is missing (next present is ${row.seq}): deleted`
            : `sequence ${row.seq} out of order`,
        );
      }
      if (row.prev_hash !== prev) return bad(`event ${row.seq} does not link to event ${row.seq - 1}: inserted, reordered or edited`);
      let body: Body;
      try {
        body = JSON.parse(row.body) as Body;
      } catch {
        return bad(`event ${row.seq} is not valid JSON: edited`);
      }
      if (body.seq !== row.seq) return bad(`event ${row.seq} carries sequence ${String(body.seq)}: edited`);
      if (canonical(body) !== row.body || chainHash(prev, row.body) !== row.hash) {
        return bad(`event ${row.seq} does not match its hash: edited`);
      }
      prev = row.hash;
      expectSeq++;
      checked++;
    }
    return { ok: true, checked, headSeq: expectSeq - 1, headHash: prev, firstBad: null };
  }
}

import type Database from 'better-sqlite3';
import type { AuditEvent } from '../../../shared/contract/audit';
import { AirlockError } from '../../../shared/domain/errors';

export interface ListOptions {
  beforeSeq?: number;
  limit: number;
  channel?: string;
  actor?: string;
  outcome?: string;
  target?: string;
  since?: string;
  until?: string;
}

/** Filters that scan event bodies (not indexed): on a large trail they run in a worker thread. */
export function scansBodies(opts: ListOptions): boolean {
  return Boolean(opts.target || opts.outcome);
}

/** Times compare as the trail writes them (ISO 8601, milliseconds, Z), whatever precision was given. */
function isoTime(v: string, name: string): string {
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new AirlockError('INVALID_INPUT', `${name} is not a date and time (ISO 8601).`);
  return new Date(t).toISOString();
}

/** Events newest first, filtered; `total` is the size of the whole trail. */
export function listEvents(db: Database.Database, opts: ListOptions): { events: AuditEvent[]; total: number } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (opts.beforeSeq !== undefined) (where.push('seq < ?'), args.push(opts.beforeSeq));
  if (opts.channel) (where.push('channel = ?'), args.push(opts.channel));
  if (opts.actor) (where.push('actor = ?'), args.push(opts.actor));
  if (opts.since) (where.push('ts >= ?'), args.push(isoTime(opts.since, 'since')));
  if (opts.until) (where.push('ts <= ?'), args.push(isoTime(opts.until, 'until')));
  // A cheap substring test on the raw body first (C, no allocation), the exact JSON test on what passes.
  if (opts.outcome) (where.push("instr(body, ?) > 0 AND (body ->> '$.outcome') = ?"), args.push(`"outcome":${JSON.stringify(opts.outcome)}`, opts.outcome));
  if (opts.target) {
    where.push("body LIKE ? ESCAPE '\\' AND instr(lower(body ->> '$.target'), lower(?)) > 0");
    // The body holds the target JSON-escaped: search for it in that form.
    const escaped = JSON.stringify(opts.target).slice(1, -1);
    args.push(`%${escaped.replace(/[\\%_]/g, (c) => `\\${c}`)}%`, opts.target);
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const rows = db.prepare(`SELECT body, prev_hash, hash FROM audit_events ${w} ORDER BY seq DESC LIMIT ?`).all(...args, opts.limit) as Array<{
    body: string;
    prev_hash: string;
    hash: string;
  }>;
  const total = db.prepare('SELECT count(*) FROM audit_events').pluck().get() as number;
  return {
    events: rows.map((r) => ({ ...(JSON.parse(r.body) as Omit<AuditEvent, 'prevHash' | 'hash'>), prevHash: r.prev_hash, hash: r.hash })),
    total,
  };
}

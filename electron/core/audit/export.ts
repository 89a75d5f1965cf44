import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ExportResult } from '../../../shared/contract/audit';
import type { Db } from '../db/db';
import { bundleHeader } from './bundle';

export const EXPORT_DIR = 'exports';

export const CSV_COLUMNS = ['seq', 'ts', 'actor', 'roles', 'session', 'shell', 'channel', 'phase', 'target', 'outcome', 'errorCode', 'params', 'prevHash', 'hash'] as const;

/**
 * One CSV cell (RFC 4180): quoted when it holds a quote, comma, CR or LF, quotes doubled.
 * Text a spreadsheet would run as a formula (starting with = + - @, tab or CR) is prefixed with
 * an apostrophe first (OWASP "CSV injection"), so opening an export never executes anything.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  let s = typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvLine(body: string, prevHash: string, hash: string): string {
  const e = JSON.parse(body) as Record<string, unknown>;
  const cells = CSV_COLUMNS.map((c) => {
    switch (c) {
      case 'roles':
        return csvCell(Array.isArray(e.roles) ? e.roles.join(';') : e.roles);
      case 'params':
        return csvCell(e.params === undefined ? null : JSON.stringify(e.params));
      case 'prevHash':
        return csvCell(prevHash);
      case 'hash':
        return csvCell(hash);
      default:
        return csvCell(e[c]);
    }
  });
  return cells.join(',') + '\r\n';
}

/**
 * A JSONL line: the event as recorded (its canonical body, keys sorted) plus prevHash and hash,
 * so an auditor re-verifies with standard tools: drop hash and prevHash, canonicalise, and
 * check sha256(prevHash || body) == hash (docs/formats.md).
 */
function jsonlLine(body: string, prevHash: string, hash: string): string {
  return `${body.slice(0, -1)},"hash":${JSON.stringify(hash)},"prevHash":${JSON.stringify(prevHash)}}\n`;
}

/**
 * Writes the events of a range into `<dataDir>/exports/` (the core chooses the name; callers
 * only name the range), streaming in chunks so a large trail does not stall the event loop, and
 * atomically (temp file, fsync, rename). Returns the file, the number of events and the file's SHA-256.
 */
export async function exportAudit(o: {
  db: Db;
  dataDir: string;
  format: 'jsonl' | 'csv' | 'bundle';
  fromSeq?: number;
  toSeq?: number;
  now: () => Date;
  random: (n: number) => Buffer;
}): Promise<ExportResult> {
  const max = (o.db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number | null) ?? 0;
  const from = o.fromSeq ?? 1;
  const to = Math.min(o.toSeq ?? max, max);
  const dir = path.join(o.dataDir, EXPORT_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = o.now().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const name = `audit-${from}-${Math.max(to, from - 1)}-${stamp}-${o.random(3).toString('hex')}.${o.format}`;
  const file = path.join(dir, name);
  const tmp = path.join(dir, `.${name}.tmp`);

  const sha = crypto.createHash('sha256');
  let events = 0;
  let first: number | null = null;
  let last: number | null = null;
  const fh = await fs.promises.open(tmp, 'wx', 0o600);
  try {
    const write = async (text: string) => {
      const buf = Buffer.from(text, 'utf8');
      sha.update(buf);
      await fh.write(buf);
    };
    if (o.format === 'csv') await write(CSV_COLUMNS.join(',') + '\r\n');
    // A bundle: the keys and handovers an offline verifier needs first (bundle.ts), then the JSONL lines.
    if (o.format === 'bundle') await write(bundleHeader(o.db, from, Math.max(to, from - 1)) + '\n');
    const stmt = o.db.prepare('SELECT seq, body, prev_hash, hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 5000');
    let after = from - 1;
    for (;;) {
      const rows = stmt.all(after, to) as Array<{ seq: number; body: string; prev_hash: string; hash: string }>;
      if (rows.length === 0) break;
      let chunk = '';
      for (const r of rows) chunk += o.format === 'csv' ? csvLine(r.body, r.prev_hash, r.hash) : jsonlLine(r.body, r.prev_hash, r.hash);
      await write(chunk);
      events += rows.length;
      first ??= rows[0]!.seq;
      after = last = rows[rows.length - 1]!.seq;
    }
    await fh.sync();
  } catch (e) {
    await fh.close();
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  await fh.close();
  fs.renameSync(tmp, file);
  return { file, format: o.format, events, sha256: sha.digest('hex'), fromSeq: first, toSeq: last };
}

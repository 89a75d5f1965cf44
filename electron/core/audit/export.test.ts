import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate } from '../db/db';
import { migrations } from '../db/migrations';
import { AuditTrail, canonical, GENESIS_HASH, type AuditInput } from './audit';
import { CSV_COLUMNS, csvCell, exportAudit } from './export';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const nasty = ['=cmd|"/c calc"!A1', '+1+1', '-2+3', '@SUM(A1:A2)', '\tTAB', 'a,b', 'say "hi"', 'line1\nline2', 'crlf\r\nx', 'émoji 😀', 'plain'];

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-export-'));
  dirs.push(dir);
  const db = new Database(':memory:');
  migrate(db, migrations);
  let t = Date.UTC(2026, 0, 1);
  const audit = new AuditTrail(db, () => new Date((t += 1000)));
  nasty.forEach((target, i) => {
    const e: AuditInput = { actor: 'alice', roles: ['admin', 'auditor'], session: 's1', shell: 'cli:test', channel: 'hosts:add', phase: 'request', target, params: { name: target, port: 22 + i }, outcome: 'pending', errorCode: null };
    audit.append(e);
  });
  const run = (format: 'jsonl' | 'csv', range: { fromSeq?: number; toSeq?: number } = {}) =>
    exportAudit({ db, dataDir: dir, format, now: () => new Date(Date.UTC(2026, 1, 2, 3, 4, 5)), random: crypto.randomBytes, ...range });
  return { dir, db, audit, run };
}

/** A strict RFC 4180 reader, for the test only. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let cell = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (text[i] === '"' && text[i + 1] === '"') (cell += '"'), (i += 2);
        else if (text[i] === '"') {
          i++;
          break;
        } else cell += text[i++];
      }
    } else while (i < text.length && text[i] !== ',' && text[i] !== '\r') cell += text[i++];
    row.push(cell);
    if (text[i] === ',') i++;
    else if (text[i] === '\r' && text[i + 1] === '\n') (rows.push(row), (row = []), (i += 2));
    else if (i < text.length) throw new Error(`bad CSV at ${i}`);
  }
  return rows;
}

describe('audit export', () => {
  it('writes JSONL an auditor can re-verify with sha256(prevHash || canonical body)', async () => {
    const { run, dir } = setup();
    const r = await run('jsonl');
    expect(r).toMatchObject({ format: 'jsonl', events: nasty.length, fromSeq: 1, toSeq: nasty.length });
    expect(path.dirname(r.file)).toBe(path.join(dir, 'exports'));
    expect(path.basename(r.file)).toMatch(/^audit-1-11-20260202T030405Z-[0-9a-f]{6}\.jsonl$/);
    const bytes = fs.readFileSync(r.file);
    expect(crypto.createHash('sha256').update(bytes).digest('hex')).toBe(r.sha256);
    expect(fs.statSync(r.file).mode & 0o777).toBe(0o600);
    let prev = GENESIS_HASH;
    const lines = bytes.toString('utf8').trimEnd().split('\n');
    for (const line of lines) {
      const { hash, prevHash, ...event } = JSON.parse(line) as Record<string, unknown>;
      expect(prevHash).toBe(prev);
      expect(crypto.createHash('sha256').update(String(prevHash) + canonical(event), 'utf8').digest('hex')).toBe(hash);
      prev = String(hash);
    }
    expect(lines).toHaveLength(nasty.length);
  });

  it('writes RFC 4180 CSV with formula injection neutralised', async () => {
    const { run } = setup();
    const r = await run('csv', { fromSeq: 2, toSeq: 9 });
    expect(r).toMatchObject({ events: 8, fromSeq: 2, toSeq: 9 });
    const text = fs.readFileSync(r.file, 'utf8');
    const rows = parseCsv(text);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    const target = CSV_COLUMNS.indexOf('target');
    expect(rows.slice(1).map((row) => row[target])).toEqual(["'+1+1", "'-2+3", "'@SUM(A1:A2)", "'\tTAB", 'a,b', 'say "hi"', 'line1\nline2', 'crlf\r\nx']);
    expect(rows[1]![CSV_COLUMNS.indexOf('roles')]).toBe('admin;auditor');
    expect(JSON.parse(rows[1]![CSV_COLUMNS.indexOf('params')]!)).toEqual({ name: '+1+1', port: 23 });
    // No cell a spreadsheet would evaluate.
    for (const row of rows) for (const cell of row) expect(cell).not.toMatch(/^[=+\-@]/);
  });

  it('quotes and neutralises cells', () => {
    expect(csvCell('=1+2')).toBe("'=1+2");
    expect(csvCell('a"b')).toBe('"a""b"');
    expect(csvCell(null)).toBe('');
    expect(csvCell(42)).toBe('42');
    expect(csvCell('-')).toBe("'-");
  });

  it('exports an empty range as an empty file with a known hash', async () => {
    const { run } = setup();
    const r = await run('jsonl', { fromSeq: 100 });
    expect(r).toMatchObject({ events: 0, fromSeq: null, toSeq: null, sha256: crypto.createHash('sha256').digest('hex') });
  });
});

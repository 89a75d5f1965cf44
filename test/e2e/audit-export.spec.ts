/**
 * The audit view's export buttons and time-range filter, through the real UI and core.
 *
 * - Export JSONL, then CSV: each writes a file into the data directory's exports/ folder (the
 *   console and the browser of `airlock serve` are on the same machine), whose SHA-256 is the one
 *   the UI shows. The JSONL holds every event of the trail in order, chained (each prevHash is the
 *   previous hash), including the export's own request; the CSV holds the same trail plus the
 *   JSONL export as an event, and a target a spreadsheet would run as a formula ("-1-1", from a
 *   probe of a hostile address) is neutralised (no cell starts with = + - @ tab or CR). Both exports
 *   are in the trail, read in the UI, naming the file and its hash.
 * - Time range: three users created in three different seconds (their times read from the trail);
 *   From/To (inclusive, to the second the table shows) show exactly the events inside the range.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { ADMIN, createUser, expect, filterAudit, firstRunSetup, test } from './fixtures';

interface JsonlEvent {
  seq: number;
  ts: string;
  actor: string;
  channel: string;
  phase: string;
  target: string | null;
  outcome: string;
  params: unknown;
  prevHash: string;
  hash: string;
}

const HOSTILE_ADDRESS = '-1-1';

/** RFC 4180: CRLF records, quoted cells with doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"', i++);
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (row.push(cell), (cell = ''));
    else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length) throw new Error('CSV does not end with CRLF');
  return rows;
}

/** Click an export button; returns the file the UI names (read from disk) after checking the hash the UI shows. */
async function exportFrom(page: Page, dataDir: string, format: 'jsonl' | 'csv'): Promise<{ text: string; events: number; sha256: string; file: string }> {
  await page.getByTestId(`audit-export-${format}`).click();
  const result = page.getByTestId('audit-export-result');
  await expect(result).toHaveAttribute('data-format', format);
  const file = (await page.getByTestId('audit-export-file').innerText()).trim();
  expect(path.dirname(file)).toBe(path.join(dataDir, 'exports'));
  expect(path.basename(file)).toMatch(new RegExp(`^audit-1-\\d+-\\d{8}T\\d{6}Z-[0-9a-f]{6}\\.${format}$`));
  const bytes = readFileSync(file);
  const sha256 = (await page.getByTestId('audit-export-sha256').innerText()).trim();
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
  return { text: bytes.toString('utf8'), events: Number(await result.getAttribute('data-events')), sha256, file };
}

test('export JSONL and CSV: the files hold the trail, formulas are neutralised, and each export is audited', async ({ app }) => {
  test.setTimeout(90_000);
  const { page, dataDir } = app;
  await firstRunSetup(page);
  await createUser(page, 'nina', 'nina initial password', ['auditor']);
  await expect(page.getByTestId('user-row-nina')).toBeVisible();

  // A probe of an address a spreadsheet would read as a formula: refused (no such host), on record with that target.
  await page.getByTestId('nav-hosts').click();
  await page.getByTestId('enrol-open').click();
  await page.getByTestId('enrol-name').fill('hostile');
  await page.getByTestId('enrol-address').fill(HOSTILE_ADDRESS);
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-error')).toBeVisible({ timeout: 30_000 });
  await page.getByTestId('enrol-cancel').click();

  // ---- JSONL
  await page.getByTestId('nav-audit').click();
  const jsonl = await exportFrom(page, dataDir, 'jsonl');
  const lines = jsonl.text.split('\n');
  expect(lines.pop()).toBe('');
  const events = lines.map((l) => JSON.parse(l) as JsonlEvent);
  expect(events).toHaveLength(jsonl.events);
  // The whole trail from seq 1, in order, chained.
  events.forEach((e, i) => {
    expect(e.seq).toBe(i + 1);
    if (i > 0) expect(e.prevHash).toBe(events[i - 1]!.hash);
  });
  const find = (p: (e: JsonlEvent) => boolean) => events.filter(p);
  expect(find((e) => e.channel === 'session:setup' && e.outcome === 'ok' && e.actor === ADMIN.name)).toHaveLength(1);
  expect(find((e) => e.channel === 'users:create' && e.target === 'nina' && e.outcome === 'ok')).toHaveLength(1);
  expect(find((e) => e.channel === 'hosts:probe' && e.target === HOSTILE_ADDRESS && e.phase === 'outcome' && e.outcome === 'error')).toHaveLength(1);
  // The initial password never reaches the trail, so not the export either.
  expect(jsonl.text).not.toContain('nina initial password');
  expect(jsonl.text).not.toContain(ADMIN.password);
  // Its own request is the last event of the export (signed checkpoints aside).
  const own = events.filter((e) => e.channel !== 'audit:checkpoint').at(-1)!;
  expect(own).toMatchObject({ channel: 'audit:export', phase: 'request', outcome: 'pending', actor: ADMIN.name, params: { format: 'jsonl' } });

  // ---- CSV
  const csv = await exportFrom(page, dataDir, 'csv');
  expect(csv.file).not.toBe(jsonl.file);
  const [header, ...rows] = parseCsv(csv.text);
  expect(header).toEqual(['seq', 'ts', 'actor', 'roles', 'session', 'shell', 'channel', 'phase', 'target', 'outcome', 'errorCode', 'params', 'prevHash', 'hash']);
  expect(rows).toHaveLength(csv.events);
  const col = (name: string) => header!.indexOf(name);
  rows.forEach((r, i) => {
    expect(r).toHaveLength(header!.length);
    expect(Number(r[col('seq')])).toBe(i + 1);
  });
  // The same events as the JSONL file, then more: the JSONL export's outcome among them.
  expect(rows.length).toBeGreaterThan(events.length);
  events.forEach((e, i) => expect(rows[i]![col('hash')]).toBe(e.hash));
  const jsonlDone = rows.filter((r) => r[col('channel')] === 'audit:export' && r[col('outcome')] === 'ok');
  expect(jsonlDone).toHaveLength(1);
  expect(JSON.parse(jsonlDone[0]![col('params')]!)).toMatchObject({ detail: { file: path.basename(jsonl.file), events: jsonl.events, sha256: jsonl.sha256 } });
  // Formula injection: the hostile target is prefixed with an apostrophe, and no cell starts a formula.
  const probe = rows.filter((r) => r[col('channel')] === 'hosts:probe');
  expect(probe.length).toBeGreaterThan(0);
  for (const r of probe) expect(r[col('target')]).toBe(`'${HOSTILE_ADDRESS}`);
  for (const r of rows) for (const cell of r) expect(cell).not.toMatch(/^[=+\-@\t\r]/);

  // ---- Both exports are on record in the trail, read in the UI, naming file and hash.
  await filterAudit(page, { channel: 'audit:export', actor: ADMIN.name, outcome: 'ok' });
  const done = page.getByTestId('audit-table').locator('[data-testid=audit-row]');
  await expect(done).toHaveCount(2);
  for (const [i, exp] of [
    [0, csv],
    [1, jsonl],
  ] as const) {
    await done.nth(i).click();
    const detail = page.getByTestId('audit-detail');
    await expect(detail).toContainText(path.basename(exp.file));
    await expect(detail).toContainText(exp.sha256);
  }
});

/** The datetime-local value (the browser's local time, to the second) of an ISO time. */
function localSecond(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The time of the successful users:create of one user, read from the trail in the UI. */
async function createdAt(page: Page, name: string): Promise<string> {
  await filterAudit(page, { channel: 'users:create', outcome: 'ok', target: name });
  const row = page.getByTestId('audit-table').locator('[data-testid=audit-row]');
  await expect(row).toHaveCount(1);
  return (await row.getAttribute('data-ts'))!;
}

/** Wait until the clock is in a later second than `iso`, so the next event gets a later second. */
async function nextSecond(iso: string): Promise<void> {
  const after = Math.floor(Date.parse(iso) / 1000) * 1000 + 1000;
  await expect.poll(() => Date.now(), { timeout: 5_000 }).toBeGreaterThanOrEqual(after);
}

test('time-range filter: From and To show exactly the events inside the range, to the second', async ({ app }) => {
  const { page } = app;
  await firstRunSetup(page);
  const times: Record<string, string> = {};
  for (const name of ['early', 'middle', 'late']) {
    if (name !== 'early') await nextSecond(Object.values(times).at(-1)!);
    await createUser(page, name, `${name} initial password`, ['auditor']);
    await expect(page.getByTestId(`user-row-${name}`)).toBeVisible();
    times[name] = await createdAt(page, name);
  }
  const { early, middle, late } = times as Record<'early' | 'middle' | 'late', string>;
  expect(localSecond(early) < localSecond(middle) && localSecond(middle) < localSecond(late)).toBe(true);

  const targets = page.getByTestId('audit-table').locator('[data-testid=audit-row] [data-testid=audit-row-target]');
  const shows = async (f: { since?: string; until?: string }, expected: string[]) => {
    await filterAudit(page, { channel: 'users:create', outcome: 'ok', ...f });
    await expect(targets).toHaveText(expected);
  };
  // Newest first.
  await shows({}, ['late', 'middle', 'early']);
  // One second, From = To: the event of that second only (To includes the second it names).
  await shows({ since: localSecond(middle), until: localSecond(middle) }, ['middle']);
  await shows({ since: localSecond(early), until: localSecond(middle) }, ['middle', 'early']);
  await shows({ since: localSecond(late) }, ['late']);
  await shows({ until: localSecond(early) }, ['early']);
  // A range before everything shows nothing.
  await filterAudit(page, { channel: 'users:create', until: localSecond(new Date(Date.parse(early) - 60_000).toISOString()) });
  await expect(page.getByTestId('audit-count')).toContainText('0 matching events');
  await expect(page.getByTestId('audit-table')).toContainText('No events.');
});

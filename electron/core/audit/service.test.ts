import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, testCore, type TestCore } from '../../../test/support/core';
import { DB_FILE } from '../app';
import { AUDIT_PUBLIC_META } from './keys';

const AUDITOR = { name: 'carol', password: 'a long auditor password', roles: ['auditor'] };
const cores: TestCore[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
async function open(dir: string, extra: Record<string, unknown> = {}) {
  const t = await testCore({ dataDir: dir, ...extra });
  cores.push(t);
  return t;
}
function tempDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-auditsvc-'));
  dirs.push(d);
  return d;
}
const checkpoints = async (c: ReturnType<TestCore['client']>) =>
  (await c.ok('audit:list', { limit: 1000, channel: 'audit:checkpoint' })).events;

describe('audit service in the core', () => {
  it('creates the audit keys at first-run setup and signs checkpoints every N events', async () => {
    const t = await open(tempDir(), { auditCheckpointEvery: 5 });
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    for (let i = 0; i < 6; i++) await c.ok('hosts:list', {});
    const raw = new Database(path.join(t.dir, DB_FILE), { readonly: true });
    expect(raw.prepare("SELECT purpose FROM console_keys WHERE purpose LIKE 'audit.%' AND retired_at IS NULL ORDER BY purpose").pluck().all()).toEqual(['audit.hmac', 'audit.signing']);
    expect(raw.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(AUDIT_PUBLIC_META)).toMatch(/BEGIN PUBLIC KEY/);
    raw.close();
    const cps = await checkpoints(c);
    expect(cps.length).toBeGreaterThanOrEqual(2);
    const v = await c.ok('audit:verify', {});
    expect(v).toMatchObject({ ok: true, checkpoints: cps.length, keyFingerprint: expect.stringMatching(/^SHA256:/) });
    expect(fs.existsSync(path.join(t.dir, 'audit.head'))).toBe(true);
  });

  it('holds checkpoints while nobody has signed in since start, and writes them at the next sign-in', async () => {
    const dir = tempDir();
    const a = await open(dir, { auditCheckpointEvery: 1_000_000 });
    await a.client().ok('session:setup', ADMIN);
    await cores.pop()!.close();

    const b = await open(dir, { auditCheckpointEvery: 4 });
    const anon = b.client();
    // Refusals before anyone signed in: audited, but the keys are sealed (session:status itself is a quiet read).
    for (let i = 0; i < 6; i++) expect((await anon.call('session:status', { probe: i })).ok).toBe(false);
    const raw = new Database(path.join(dir, DB_FILE), { readonly: true });
    expect(raw.prepare("SELECT count(*) FROM audit_events WHERE channel = 'audit:checkpoint'").pluck().get()).toBe(0);
    raw.close();
    const admin = b.client();
    await admin.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    const cps = (await checkpoints(admin)).reverse();
    // The first checkpoint came at the sign-in itself and covers everything before it.
    const loginRequest = (await admin.ok('audit:list', { limit: 50, channel: 'session:login' })).events.find((e) => e.phase === 'request')!;
    expect(cps[0]).toMatchObject({ seq: loginRequest.seq + 1, params: { headSeq: loginRequest.seq } });
    expect((await admin.ok('audit:verify', {})).ok).toBe(true);
  });

  it('gives a database created before audit keys existed its keys at the next admin sign-in, not at an auditor’s', async () => {
    const dir = tempDir();
    const a = await open(dir, { auditCheckpointEvery: 1_000_000 });
    const c = a.client();
    await c.ok('session:setup', ADMIN);
    await c.ok('users:create', { ...AUDITOR, mustChangePassword: false });
    await cores.pop()!.close();
    const raw = new Database(path.join(dir, DB_FILE));
    raw.prepare("DELETE FROM console_keys WHERE purpose LIKE 'audit.%'").run();
    raw.prepare('DELETE FROM meta WHERE key = ?').run(AUDIT_PUBLIC_META);
    raw.close();

    const b = await open(dir, { auditCheckpointEvery: 3 });
    const carol = b.client();
    await carol.ok('session:login', { name: AUDITOR.name, password: AUDITOR.password });
    for (let i = 0; i < 4; i++) await carol.ok('audit:list', { limit: 1 });
    expect(await checkpoints(carol)).toHaveLength(0);
    const v0 = await carol.ok('audit:verify', {});
    expect(v0.ok).toBe(true);
    expect(v0.warnings?.join(' ')).toMatch(/No audit signing key/);

    const alice = b.client();
    await alice.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    const raw2 = new Database(path.join(dir, DB_FILE), { readonly: true });
    expect(raw2.prepare("SELECT count(*) FROM console_keys WHERE purpose LIKE 'audit.%' AND retired_at IS NULL").pluck().get()).toBe(2);
    raw2.close();
    expect((await checkpoints(alice)).length).toBeGreaterThanOrEqual(1);
    expect(await alice.ok('audit:verify', {})).toMatchObject({ ok: true, checkpoints: expect.any(Number) });
  });

  it('audits reading: the range listed, the verification, and the export with its digest', async () => {
    const t = await open(tempDir());
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    const listed = await c.ok('audit:list', { limit: 3 });
    const exported = await c.ok('audit:export', { format: 'jsonl' });
    await c.ok('audit:verify', { fromSeq: 1 });
    const outcomes = (await c.ok('audit:list', { limit: 50 })).events.filter((e) => e.phase === 'outcome' && e.channel.startsWith('audit:'));
    const byChannel = (ch: string) => outcomes.find((e) => e.channel === ch)!.params as { detail: Record<string, unknown> };
    expect(byChannel('audit:list').detail).toMatchObject({ events: 3, newestSeq: listed.events[0]!.seq, oldestSeq: listed.events[2]!.seq });
    expect(byChannel('audit:export').detail).toMatchObject({ file: path.basename(exported.file), events: exported.events, sha256: exported.sha256 });
    expect(byChannel('audit:verify').detail).toMatchObject({ ok: true, firstBadSeq: null });
    const req = (await c.ok('audit:list', { limit: 50, channel: 'audit:export' })).events.find((e) => e.phase === 'request')!;
    expect(req.params).toEqual({ format: 'jsonl' });
    expect(exported.file.startsWith(path.join(t.dir, 'exports') + path.sep)).toBe(true);
  });

  it('sends verify progress to the client that asked, in worker threads', async () => {
    const t = await open(tempDir(), { auditWorkerThreshold: 0 });
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    for (let i = 0; i < 5; i++) await c.ok('hosts:list', {});
    const v = await c.ok('audit:verify', {});
    expect(v).toMatchObject({ ok: true, engine: 'worker' });
    const progress = c.events.filter((e) => e.event === 'audit:verify-progress').map((e) => e.payload);
    expect(progress.at(-1)).toEqual({ checked: v.checked, total: v.checked });
  });

  it('searches event bodies in a worker on a large trail, with the same answers and errors', async () => {
    const t = await open(tempDir(), { auditWorkerThreshold: 0 });
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await c.ok('hosts:list', {});
    await c.call('hosts:remove', { name: 'Rack-7-GPU' });
    const hits = await c.ok('audit:list', { limit: 50, target: 'rack-7' });
    expect(hits.events.length).toBeGreaterThan(0);
    expect(hits.events.every((e) => e.target?.toLowerCase().includes('rack-7'))).toBe(true);
    const errors = await c.ok('audit:list', { limit: 50, outcome: 'error' });
    expect(errors.events.map((e) => e.channel)).toEqual(['hosts:remove']);
    expect(await c.call('audit:list', { limit: 5, target: 'x', since: 'not a time' })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
  });

  it('never records a password, even by HMAC, once the keys are unsealed', async () => {
    const t = await open(tempDir());
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await c.ok('users:create', { ...AUDITOR, mustChangePassword: false });
    const { events } = await c.ok('audit:list', { limit: 50 });
    const req = events.find((e) => e.channel === 'users:create' && e.phase === 'request')!;
    expect(req.params).toMatchObject({ name: 'carol', password: '[redacted]' });
    expect(JSON.stringify(events)).not.toMatch(/hmac-sha256:|a long auditor password/);
  });

  it('refuses a verify range that ends before it starts', async () => {
    const t = await open(tempDir());
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    expect(await c.call('audit:verify', { fromSeq: 5, toSeq: 2 })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
  });
});

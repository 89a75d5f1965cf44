import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../electron/core/app';
import { canonical, chainHash, GENESIS_HASH } from '../../electron/core/audit/audit';
import { ADMIN, testCore } from '../support/core';
import { startReceiver } from '../support/syslog';

/**
 * The audit commands of the real `airlock` CLI (bin/airlock.mjs, the bundled build with its
 * bundled verify worker) on a real SQLite file, tampered with the way an attacker holding the
 * file would: raw SQL with the append-only triggers dropped.
 */
const root = path.resolve(__dirname, '../..');
let base: string;
let pristine: string;

function airlock(args: string[], data: string) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', data], {
    encoding: 'utf8',
    env: { ...process.env, AIRLOCK_USER: ADMIN.admin, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

/** Like airlock(), without blocking this process: the test's own syslog receiver must keep reading. */
function airlockAsync(args: string[], data: string): Promise<{ code: number | null; stdout: string; stderr: string; json: () => unknown }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', data], {
      env: { ...process.env, AIRLOCK_USER: ADMIN.admin, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

/** A copy of the pristine data directory (database and high-water file), to harm. */
function copy(name: string): string {
  const dir = path.join(base, name);
  fs.cpSync(pristine, dir, { recursive: true });
  return dir;
}

function withDb<T>(dir: string, f: (db: Database.Database) => T): T {
  const db = new Database(path.join(dir, DB_FILE));
  try {
    db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');
    return f(db);
  } finally {
    db.close();
  }
}
const body = (db: Database.Database, seq: number) => db.prepare('SELECT body FROM audit_events WHERE seq = ?').pluck().get(seq) as string;
const hashAt = (db: Database.Database, seq: number) => (seq === 0 ? GENESIS_HASH : (db.prepare('SELECT hash FROM audit_events WHERE seq = ?').pluck().get(seq) as string));
function rechain(db: Database.Database, from: number) {
  let prev = hashAt(db, from - 1);
  for (const r of db.prepare('SELECT seq, body FROM audit_events WHERE seq >= ? ORDER BY seq').all(from) as Array<{ seq: number; body: string }>) {
    const h = chainHash(prev, r.body);
    db.prepare('UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?').run(prev, h, r.seq);
    prev = h;
  }
}

let checkpointSeqs: number[] = [];
beforeAll(async () => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  expect(fs.existsSync(path.join(root, 'dist/node/worker.mjs'))).toBe(true);
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-auditcli-'));
  pristine = path.join(base, 'pristine');
  // A trail with checkpoints every 10 events, written by the core itself.
  const t = await testCore({ dataDir: pristine, auditCheckpointEvery: 10 });
  const c = t.client();
  await c.ok('session:setup', ADMIN);
  for (let i = 0; i < 12; i++) await c.ok('hosts:importSshConfig', { text: `Host gpu${i}\n  HostName 10.1.0.${i + 1}\n` });
  await c.call('hosts:remove', { name: 'no-such-host' });
  for (let i = 0; i < 12; i++) await c.ok('hosts:list', {});
  checkpointSeqs = (await c.ok('audit:list', { limit: 1000, channel: 'audit:checkpoint' })).events.map((e) => e.seq).reverse();
  await t.close();
  expect(checkpointSeqs.length).toBeGreaterThanOrEqual(4);
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

describe('airlock audit verify (the built CLI, in its worker)', () => {
  it('passes an intact trail with its checkpoint signatures (exit 0)', () => {
    const r = airlock(['audit', 'verify', '--json'], copy('intact'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, firstBad: null, checkpoints: checkpointSeqs.length, keyFingerprint: expect.stringMatching(/^SHA256:/) });
    const human = airlock(['audit', 'verify'], copy('intact-human'));
    expect(human.stdout).toMatch(/^Audit chain OK: \d+ events \(1–\d+\), \d+ checkpoint signature\(s\) verified with SHA256:/);
  });

  it('runs the verification in a worker thread of the bundled CLI', async () => {
    const dir = copy('big');
    // Enough events for the worker path (20,000 and more), chained by raw inserts.
    withDb(dir, (db) => {
      let prev = hashAt(db, db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number);
      let seq = db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number;
      const ins = db.prepare('INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?)');
      db.transaction(() => {
        for (let i = 0; i < 25_000; i++) {
          seq++;
          const ts = new Date(Date.UTC(2026, 0, 1) + seq).toISOString();
          const b = canonical({ actor: 'alice', channel: 'hosts:list', errorCode: null, outcome: 'ok', params: { request: seq - 1 }, phase: 'outcome', roles: ['admin'], seq, session: 'abcd1234', shell: 'cli:test', target: null, ts });
          const h = chainHash(prev, b);
          ins.run(seq, ts, 'alice', 'hosts:list', b, prev, h);
          prev = h;
        }
      })();
    });
    const r = airlock(['audit', 'verify', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, engine: 'worker' });
    expect(r.json().checked).toBeGreaterThan(25_000);
  });

  const cases: Array<[kind: string, harm: (db: Database.Database) => number]> = [
    ['edited', (db) => (db.prepare('UPDATE audit_events SET body = ? WHERE seq = 20').run(body(db, 20).replace('"alice"', '"mallory"')), 20)],
    ['deleted', (db) => (db.prepare('DELETE FROM audit_events WHERE seq = 20').run(), 20)],
    [
      'reordered',
      (db) => {
        db.prepare('UPDATE audit_events SET seq = -1 WHERE seq = 20').run();
        db.prepare('UPDATE audit_events SET seq = 20 WHERE seq = 21').run();
        db.prepare('UPDATE audit_events SET seq = 21 WHERE seq = -1').run();
        return 20;
      },
    ],
    [
      'inserted',
      (db) => {
        db.prepare('UPDATE audit_events SET seq = -seq - 1 WHERE seq >= 20').run();
        db.prepare('UPDATE audit_events SET seq = -seq WHERE seq < 0').run();
        const e = JSON.parse(body(db, 21)) as Record<string, unknown>;
        const forged = canonical({ ...e, seq: 20, actor: 'alice', channel: 'hosts:remove', target: 'evidence' });
        const prev = hashAt(db, 19);
        db.prepare('INSERT INTO audit_events VALUES (20, ?, ?, ?, ?, ?, ?)').run(e.ts, 'alice', 'hosts:remove', forged, prev, chainHash(prev, forged));
        return 20;
      },
    ],
    [
      'truncated',
      (db) => {
        // The tail goes, checkpoints included; only the high-water file remembers.
        db.prepare('DELETE FROM audit_events WHERE seq > ?').run(checkpointSeqs[1]! - 3);
        return checkpointSeqs[1]! - 2;
      },
    ],
    [
      'bad-signature',
      (db) => {
        const c = checkpointSeqs[1]!;
        const e = JSON.parse(body(db, c)) as { params: { signature: string } };
        const sig = Buffer.from(e.params.signature, 'base64');
        sig[10] = sig[10]! ^ 0x80;
        e.params.signature = sig.toString('base64');
        db.prepare('UPDATE audit_events SET body = ? WHERE seq = ?').run(canonical(e), c);
        rechain(db, c); // only the signature is wrong now
        return c;
      },
    ],
  ];
  for (const [kind, harm] of cases) {
    it(`names the first bad event of a ${kind} trail (exit 1)`, () => {
      const dir = copy(kind);
      const seq = withDb(dir, harm);
      const r = airlock(['audit', 'verify', '--json'], dir);
      expect(r.code, r.stderr).toBe(1);
      expect(r.json()).toMatchObject({ ok: false, firstBad: { seq, kind, reason: expect.any(String) } });
      const human = airlock(['audit', 'verify'], dir);
      expect(human.code).toBe(1);
      expect(human.stdout).toContain(`Audit chain BROKEN at event ${seq} (${kind}): `);
    });
  }

  it('verifies a range with --from/--to', () => {
    const dir = copy('range');
    withDb(dir, (db) => db.prepare('UPDATE audit_events SET body = ? WHERE seq = 40').run(body(db, 40).replace('"alice"', '"mallory"')));
    const before = airlock(['audit', 'verify', '--from', '5', '--to', '30', '--json'], dir);
    expect(before.code).toBe(0);
    expect(before.json()).toMatchObject({ ok: true, checked: 26, fromSeq: 5, toSeq: 30 });
    const after = airlock(['audit', 'verify', '--from', '31', '--json'], dir);
    expect(after.code).toBe(1);
    expect(after.json().firstBad).toMatchObject({ seq: 40, kind: 'edited' });
    expect(airlock(['audit', 'verify', '--from', 'x'], dir).code).toBe(2);
  });
});

describe('airlock audit export', () => {
  it('exports JSONL that the documented python and jq checks re-verify', () => {
    const dir = copy('export');
    const out = path.join(base, 'audit.jsonl');
    const r = airlock(['audit', 'export', '--format', 'jsonl', '--out', out, '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const v = r.json() as { file: string; events: number; sha256: string };
    expect(v.file).toBe(out);
    expect(crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(v.sha256);
    expect(fs.readdirSync(path.join(dir, 'exports'))).toHaveLength(1);

    // The checks exactly as docs/formats.md shows them.
    const doc = fs.readFileSync(path.join(root, 'docs/formats.md'), 'utf8');
    const python = /<!-- check:python -->\s*```python\n([\s\S]*?)```/.exec(doc)![1]!;
    const py = spawnSync('python3', ['-c', python, out], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    expect(py.stdout).toMatch(new RegExp(`^ok ${v.events} events`));
    const shell = /<!-- check:shell -->\s*```sh\n([\s\S]*?)```/.exec(doc)![1]!;
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    const n = lines.findIndex((l, i) => i > 3 && l.includes('"actor":"alice"')) + 1;
    const sh = spawnSync('sh', ['-c', shell, 'sh', out, String(n)], { encoding: 'utf8' });
    expect(sh.stdout.trim()).toBe('ok');

    // A tampered export fails the same checks.
    lines[n - 1] = lines[n - 1]!.replace('"actor":"alice"', '"actor":"mallory"');
    fs.writeFileSync(out, lines.join('\n'));
    expect(spawnSync('python3', ['-c', python, out], { encoding: 'utf8' }).status).not.toBe(0);
    expect(spawnSync('sh', ['-c', shell, 'sh', out, String(n)], { encoding: 'utf8' }).stdout.trim()).toBe('BAD');
  });

  it('exports a range as CSV, and the export itself is audited', () => {
    const dir = copy('export-csv');
    const r = airlock(['audit', 'export', '--format', 'csv', '--from', '3', '--to', '12', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ format: 'csv', events: 10, fromSeq: 3, toSeq: 12 });
    const text = fs.readFileSync(r.json().file, 'utf8');
    expect(text.split('\r\n')[0]).toBe('seq,ts,actor,roles,session,shell,channel,phase,target,outcome,errorCode,params,prevHash,hash');
    expect(text.trimEnd().split('\r\n')).toHaveLength(11);
    const list = airlock(['audit', 'list', '--limit', '10', '--json'], dir).json() as { events: Array<{ channel: string; phase: string; params: Record<string, unknown> }> };
    const outcome = list.events.find((e) => e.channel === 'audit:export' && e.phase === 'outcome')!;
    expect(outcome.params.detail).toMatchObject({ events: 10, sha256: r.json().sha256 });
    expect(airlock(['audit', 'export', '--format', 'xml'], dir).code).toBe(2);
  });
});

describe('airlock audit forward', () => {
  it('sets, shows and turns off forwarding; the CLI delivers its own events before it exits', async () => {
    const rx = await startReceiver();
    try {
      const dir = copy('forward');
      const started = Date.now();
      const set = await airlockAsync(['audit', 'forward', '--host', '127.0.0.1', '--port', String(rx.port), '--json'], dir);
      expect(set.code, set.stderr).toBe(0);
      expect(set.json()).toMatchObject({ enabled: true, host: '127.0.0.1', port: rx.port, tls: false });
      const show = await airlockAsync(['audit', 'forward'], dir);
      expect(show.stdout).toMatch(new RegExp(`^Forwarding audit events to 127\\.0\\.0\\.1:${rx.port} \\(plain TCP\\); sent up to event \\d+ of \\d+`));
      // Each process delivered its events and closed cleanly before exiting: no wait, no gap, no repeat.
      expect(Date.now() - started).toBeLessThan(5000);
      const db = new Database(path.join(dir, DB_FILE), { readonly: true });
      const head = db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number;
      const forwarded = Number(db.prepare("SELECT value FROM meta WHERE key = 'audit.forwarded_seq'").pluck().get());
      db.close();
      const seqs = rx.seqs();
      const first = seqs[0]!;
      expect(seqs).toEqual(Array.from({ length: head - first + 1 }, (_, i) => first + i));
      expect(forwarded).toBeGreaterThanOrEqual(first); // confirmed delivery was recorded (all of it, unless a close was not clean)
      expect(forwarded).toBeLessThanOrEqual(head);
      // Forwarding starts with the request that turned it on.
      expect(JSON.parse(rx.records[0]!.msg)).toMatchObject({ channel: 'audit:setForwarding', phase: 'request' });
      const off = await airlockAsync(['audit', 'forward', '--off', '--json'], dir);
      expect(off.json()).toMatchObject({ enabled: false });
      expect((await airlockAsync(['audit', 'forward', '--host', '127.0.0.1'], dir)).code).toBe(2);
    } finally {
      await rx.stop();
    }
  });
});

import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AlarmStatus, VerifyReport } from '../../shared/contract/audit';
import { DB_FILE } from '../../electron/core/app';
import { ADMIN, testCore } from '../support/core';
import { startReceiver, waitFor } from '../support/syslog';

/**
 * Issue 9, point 2: "a checkpoint signs whatever the database holds". The attacker is another
 * process holding the database file (test/support/audit-attacker.mjs: better-sqlite3, triggers
 * dropped, the chain re-hashed); the console is the real built CLI (bin/airlock.mjs), run again
 * and again as normal use goes on; syslog is a real receiver in this process.
 */
const root = path.resolve(__dirname, '../..');
const attackerScript = path.join(root, 'test/support/audit-attacker.mjs');
const OFFICER = { name: 'off1', password: 'an officer password here' };
let base: string;
let pristine: string;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let checkpointSeqs: number[] = [];

type Run = { code: number | null; stdout: string; stderr: string; json: <T = unknown>() => T };
/** The CLI as `who`, without blocking this process (the syslog receiver must keep reading). */
function airlock(args: string[], data: string, who: { name: string; password: string } = { name: ADMIN.admin, password: ADMIN.password }): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', data], {
      env: { ...process.env, AIRLOCK_USER: who.name, AIRLOCK_PASSWORD: who.password, AIRLOCK_TOTP_POLICY: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr, json: <T,>() => JSON.parse(stdout) as T }));
  });
}

/** The attacker's edit, in its own process. */
function attack(dir: string, cmd: Record<string, unknown>): void {
  const r = spawnSync(process.execPath, [attackerScript, path.join(dir, DB_FILE), JSON.stringify(cmd)], { encoding: 'utf8', cwd: root });
  expect(r.status, r.stderr).toBe(0);
}

function copy(name: string): string {
  const dir = path.join(base, name);
  fs.cpSync(pristine, dir, { recursive: true });
  return dir;
}

function readOnly<T>(dir: string, f: (db: Database.Database) => T): T {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return f(db);
  } finally {
    db.close();
  }
}
const checkpointsAfter = (dir: string, seq: number) =>
  readOnly(dir, (db) => db.prepare("SELECT count(*) FROM audit_events WHERE channel = 'audit:checkpoint' AND seq > ?").pluck().get(seq) as number);
const maxSeq = (dir: string) => readOnly(dir, (db) => db.prepare('SELECT max(seq) FROM audit_events').pluck().get() as number);
const headFile = (dir: string) => fs.readFileSync(path.join(dir, 'audit.head'), 'utf8');
const sshConfig = (dir: string, i: number) => {
  const f = path.join(dir, `cfg${i}`);
  fs.writeFileSync(f, `Host late${i}\n  HostName 10.2.0.${i}\n`);
  return f;
};

/** Normal use going on: CLI runs that each sign in, read, and (without an alarm) would checkpoint when due. */
async function keepUsing(dir: string, runs: number): Promise<void> {
  for (let i = 0; i < runs; i++) {
    const r = await airlock(['audit', 'list', '--limit', '1', '--json'], dir);
    expect(r.code, r.stderr).toBe(0);
  }
}

beforeAll(async () => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-audittrust-'));
  pristine = path.join(base, 'pristine');
  rx = await startReceiver();
  // A trail with checkpoints every 10 events, an officer, and syslog forwarding on, written by the core itself.
  const t = await testCore({ dataDir: pristine, auditCheckpointEvery: 10 });
  const c = t.client();
  await c.ok('session:setup', ADMIN);
  await c.ok('users:create', { ...OFFICER, roles: ['officer'], mustChangePassword: false });
  await c.ok('audit:setForwarding', { host: '127.0.0.1', port: rx.port });
  for (let i = 0; i < 12; i++) await c.ok('hosts:importSshConfig', { text: `Host gpu${i}\n  HostName 10.1.0.${i + 1}\n` });
  for (let i = 0; i < 12; i++) await c.ok('hosts:list', {});
  checkpointSeqs = (await c.ok('audit:list', { limit: 1000, channel: 'audit:checkpoint' })).events.map((e) => e.seq).reverse();
  await t.close();
  expect(checkpointSeqs.length).toBeGreaterThanOrEqual(4);
});
afterAll(async () => {
  await rx?.stop();
  if (base) fs.rmSync(base, { recursive: true, force: true });
});
beforeEach(() => {
  rx.records.length = 0;
});

describe('a forged chain is never signed (the trusted head is audit.head, and the running console)', () => {
  it('checkpoints deleted and the chain re-hashed: the next sign-in signs nothing, raises the alarm, refuses writes until an officer acknowledges', async () => {
    const dir = copy('forged');
    const head = headFile(dir);
    // Event 20 edited (alice → mallory), every checkpoint deleted, all renumbered and re-hashed: a chain that links.
    attack(dir, { op: 'forge', all: true, edit: { seq: 20, from: '"actor":"alice"', to: '"actor":"mallory"' } });
    const forgedHead = maxSeq(dir);

    // The next sign-in: before the fix it signed the forgery and rewrote audit.head; verify then said OK.
    const first = await airlock(['audit', 'alarm', '--json'], dir);
    expect(first.code, first.stderr).toBe(1); // an open alarm
    const status = first.json<AlarmStatus>();
    expect(status.active).toMatchObject({ id: 1, kind: 'edited', acknowledged: null, observedSeq: forgedHead });
    expect(headFile(dir)).toBe(head);
    expect(checkpointsAfter(dir, 0)).toBe(0);

    // Fail-closed: a write is refused with AUDIT_ALARM (and the refusal is on record); reads still work.
    const write = await airlock(['hosts', 'import-ssh-config', sshConfig(dir, 1), '--json'], dir);
    expect(write.code).toBe(1);
    expect(write.stdout + write.stderr).toMatch(/AUDIT_ALARM/);
    const v = await airlock(['audit', 'verify', '--json'], dir);
    expect(v.code).toBe(1);
    expect(v.json<VerifyReport>()).toMatchObject({ ok: false, firstBad: { kind: 'edited' } });
    await keepUsing(dir, 3);
    expect(headFile(dir)).toBe(head);
    expect(checkpointsAfter(dir, 0)).toBe(0);

    // Syslog got the alert (out of sequence order), and the audit:alarm event itself.
    await waitFor(() => rx.records.some((r) => r.msgid === 'alarm' && r.sd.alarm === '1'), 15_000, 'the syslog alarm');
    const alert = rx.records.find((r) => r.msgid === 'alarm' && r.sd.alarm === '1')!;
    expect(alert.pri).toBe(13 * 8 + 1);
    expect(JSON.parse(alert.msg)).toMatchObject({ id: 1, kind: 'edited' });

    // Only an officer acknowledges (an admin is refused), with step-up (the CLI's fresh sign-in) and a reason.
    const byAdmin = await airlock(['audit', 'acknowledge', '1', '--reason', 'seen', '--json'], dir);
    expect(byAdmin.code).toBe(1);
    expect(byAdmin.stdout + byAdmin.stderr).toMatch(/FORBIDDEN/);
    const ack = await airlock(['audit', 'acknowledge', '1', '--reason', 'restored from the syslog copy; incident 42', '--json'], dir, OFFICER);
    expect(ack.code, ack.stdout + ack.stderr).toBe(0);
    const after = ack.json<AlarmStatus>();
    expect(after.active).toBeNull();
    expect(after.alarms[0]).toMatchObject({ id: 1, kind: 'edited', acknowledged: { by: 'off1', reason: 'restored from the syslog copy; incident 42' } });
    // Re-anchored: a signed checkpoint over the current chain, audit.head rewritten; writes work again.
    expect(headFile(dir)).not.toBe(head);
    expect(checkpointsAfter(dir, 0)).toBe(1);
    const again = await airlock(['hosts', 'import-ssh-config', sshConfig(dir, 2), '--json'], dir);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    // The evidence stays: in the alarm record and the verify report.
    const later = await airlock(['audit', 'verify', '--json'], dir);
    expect(later.json<VerifyReport>().alarms).toEqual([expect.objectContaining({ id: 1, kind: 'edited', acknowledged: expect.objectContaining({ by: 'off1' }) })]);
    expect(later.json<VerifyReport>().warnings?.join('\n')).toMatch(/Audit alarm #1 .*edited.*acknowledged by off1/);
    // An acknowledged alarm survives a restart; nothing is raised again.
    const st = await airlock(['audit', 'alarm', '--json'], dir);
    expect(st.code).toBe(0);
    expect(st.json<AlarmStatus>()).toMatchObject({ active: null, alarms: [{ id: 1, acknowledged: { by: 'off1' } }] });
  });

  it('a tail cut across the last checkpoint stays detected while the console goes on being used', async () => {
    const dir = copy('cut');
    const head = headFile(dir);
    const last = checkpointSeqs[checkpointSeqs.length - 1]!;
    attack(dir, { op: 'cut', after: last - 3 });
    // Enough use for the new events to pass the old checkpoint and for checkpoints to fall due.
    await keepUsing(dir, 6);
    expect(maxSeq(dir)).toBeGreaterThan(last + 10);
    expect(headFile(dir)).toBe(head);
    expect(checkpointsAfter(dir, last - 3)).toBe(0);
    const v = await airlock(['audit', 'verify', '--json'], dir);
    expect(v.code).toBe(1);
    expect(v.json<VerifyReport>().firstBad).toMatchObject({ seq: last - 2, kind: 'truncated' });
    const st = (await airlock(['audit', 'alarm', '--json'], dir)).json<AlarmStatus>();
    expect(st.active).toMatchObject({ kind: 'truncated', firstBadSeq: last - 2 });
    expect(st.alarms).toHaveLength(1); // raised once, not again at every run
  });

  it('a missing audit.head beside a database with checkpoints is an alarm, not a warning', async () => {
    const dir = copy('no-head');
    fs.rmSync(path.join(dir, 'audit.head'));
    const st = await airlock(['audit', 'alarm', '--json'], dir);
    expect(st.code).toBe(1);
    expect(st.json<AlarmStatus>().active).toMatchObject({ kind: 'head-missing', firstBadSeq: checkpointSeqs[checkpointSeqs.length - 1]! + 1 });
    const write = await airlock(['hosts', 'import-ssh-config', sshConfig(dir, 3), '--json'], dir);
    expect(write.stdout + write.stderr).toMatch(/AUDIT_ALARM/);
    expect(fs.existsSync(path.join(dir, 'audit.head'))).toBe(false);
    const v = (await airlock(['audit', 'verify', '--json'], dir)).json<VerifyReport>();
    expect(v).toMatchObject({ ok: false, firstBad: { kind: 'head-missing' } });
  });
});

describe('verify names the first bad event, also after normal use continued on top', () => {
  const cases: Array<[string, (dir: string) => { seq: number; kind: string }]> = [
    [
      'a re-hashed edit (the later checkpoints deleted)',
      (dir) => {
        attack(dir, { op: 'forge', dropCheckpointsFrom: 26, edit: { seq: 25, from: '"actor":"alice"', to: '"actor":"mallory"' } });
        // Named from the first event after the last checkpoint the rewrite left intact (audit.head lists it, signed).
        const cp = checkpointSeqs.filter((s) => s < 25).pop()!;
        return { seq: cp + 1, kind: 'edited' };
      },
    ],
    [
      'a re-hashed insertion (the later checkpoints deleted)',
      (dir) => {
        const cp = checkpointSeqs[1]!;
        attack(dir, { op: 'forge', dropCheckpointsFrom: cp + 1, insertAt: cp + 1 });
        return { seq: cp + 1, kind: 'edited' };
      },
    ],
    ['an insertion', (dir) => (attack(dir, { op: 'insert', at: 20 }), { seq: 20, kind: 'inserted' })],
    [
      'a truncation across the last checkpoint',
      (dir) => {
        const last = checkpointSeqs[checkpointSeqs.length - 1]!;
        attack(dir, { op: 'cut', after: last - 5 });
        return { seq: last - 4, kind: 'truncated' };
      },
    ],
  ];
  for (const [name, harm] of cases) {
    it(name, async () => {
      const dir = copy(name.replace(/\W+/g, '-'));
      const head = headFile(dir);
      const expected = harm(dir);
      await keepUsing(dir, 5);
      expect(headFile(dir)).toBe(head);
      const r = await airlock(['audit', 'verify', '--json'], dir);
      expect(r.code, r.stderr).toBe(1);
      expect(r.json<VerifyReport>().firstBad).toMatchObject(expected);
      const human = await airlock(['audit', 'verify'], dir);
      expect(human.stdout).toContain(`Audit chain BROKEN at event ${expected.seq} (${expected.kind}): `);
    });
  }
});

describe('the running console keeps the trusted head in memory', () => {
  it('a cut of events newer than audit.head, made while the console runs, is never signed', async () => {
    let now = Date.UTC(2026, 5, 1);
    const t = await testCore({ auditCheckpointEvery: 10, clock: () => new Date((now += 1000)) });
    try {
      const c = t.client();
      await c.ok('session:setup', ADMIN);
      for (let i = 0; i < 6; i++) await c.ok('hosts:list', {});
      // Until a few events stand after the last checkpoint (audit.head).
      while (maxSeq(t.dir) < (JSON.parse(headFile(t.dir)) as { seq: number }).seq + 5) await c.ok('hosts:list', {});
      const before = headFile(t.dir);
      const end = maxSeq(t.dir);
      // Events after the last checkpoint: audit.head does not know them, only the console does.
      attack(t.dir, { op: 'cut', after: end - 3 });
      for (let i = 0; i < 8; i++) await c.call('hosts:list', {});
      expect(headFile(t.dir)).toBe(before);
      expect(checkpointsAfter(t.dir, end - 3)).toBe(0);
      const st = await c.ok('audit:alarmStatus', {});
      expect(st.active).toMatchObject({ kind: 'truncated', firstBadSeq: end - 2 });
      expect(await c.call('hosts:importSshConfig', { text: 'Host x\n  HostName 10.9.9.9\n' })).toMatchObject({ ok: false, error: { code: 'AUDIT_ALARM' } });
      expect(await c.call('audit:list', { limit: 5 })).toMatchObject({ ok: true });
    } finally {
      await t.close();
    }
  });
});

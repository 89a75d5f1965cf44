/**
 * Attack test: a hostile GPU host (test/lab/gpu/hostile.ts) whose nvidia-smi, hostname,
 * os-release and login shell print terminal escape sequences (CSI, OSC 0/8/52, DCS), C1 controls,
 * bidi overrides, NUL, CR, very long strings and HTML. Enrolled and scanned through the real core
 * (real sshd in the lab, real SQLite) and through the real `airlock` CLI.
 *
 * The defence under test is the core's sanitiser (electron/core/ssh/sanitize.ts, applied by
 * hosts/inventory.ts and hosts/service.ts to everything read from a host) and the CLI's own pass
 * over what it prints. If either were removed, the raw characters would reach hosts:list,
 * hosts:scan, the stored inventory, lastError, or the operator's terminal through the CLI.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authorizeKey,
  HOSTILE_ERROR_TEXT,
  HOSTILE_HOSTNAME,
  HOSTILE_OS_PRETTY_NAME,
  HOSTILE_SEQUENCES,
  HOSTILE_VISIBLE,
  HOSTILE_WARNING,
  labDown,
  labUp,
  runOnHost,
  setGpuProfile,
  setLoginText,
  type Lab,
  type LabHost,
} from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

const LAB_ID = 'ihostile';
const root = path.resolve(__dirname, '../..');

/**
 * What must never survive from a host: C0 controls (ESC, BEL, NUL, CR, and TAB/LF too: every
 * inventory field is one line), DEL, C1 controls (8-bit CSI/OSC/ST…), bidi embeddings, overrides
 * and isolates, zero-width characters and the BOM.
 */
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/u;
/** The same, for human CLI output, where TAB separates columns and LF ends lines. */
const FORBIDDEN_IN_TERMINAL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/u;

function describeChar(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Every string (keys included) in a value, with where it was found. */
function strings(v: unknown, at = '$', out: Array<[string, string]> = []): Array<[string, string]> {
  if (typeof v === 'string') out.push([at, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${at}[${i}]`, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push([`${at} (key)`, k]);
      strings(x, `${at}.${k}`, out);
    }
  }
  return out;
}

/** "where: U+001B in "…"" for each string holding a forbidden character; [] when clean. */
function offences(v: unknown, re = FORBIDDEN): string[] {
  return strings(v)
    .filter(([, s]) => re.test(s))
    .map(([at, s]) => `${at}: ${describeChar(re.exec(s)![0])} in ${JSON.stringify(s.slice(0, 120))}`);
}

let lab: Lab;
let host: LabHost;
let t: TestCore;
let admin: TestClient;

beforeAll(async () => {
  t = await testCore({ sshTimeoutMs: 8000 });
  admin = t.client();
  await admin.ok('session:setup', ADMIN);
  lab = await labUp({ id: LAB_ID, hosts: 1, gpuProfiles: ['hostile'] });
  host = lab.hosts[0]!;
  await authorizeKey(lab, (await admin.ok('identity:show', {})).publicKey);
});

afterAll(async () => {
  await t?.close();
  await labDown({ id: LAB_ID });
});

describe('the hostile lab host', () => {
  // Without this the rest would prove nothing: the attack has to reach Airlock's side of the wire.
  it('really prints escape sequences, C1, bidi, NUL and HTML', async () => {
    expect(host.gpuProfile).toBe('hostile');
    const name = await runOnHost(lab, host.name, ['uname', '-n']);
    expect(name.stdout).toBe(HOSTILE_HOSTNAME + '\n');
    const osr = await runOnHost(lab, host.name, ['sh', '-c', 'sed -n "s/^PRETTY_NAME=//p" /etc/os-release']);
    expect(osr.stdout).toContain(HOSTILE_SEQUENCES.oscClipboard);
    expect(osr.stdout).toContain(HOSTILE_SEQUENCES.htmlScript);
    const smi = await runOnHost(lab, host.name, ['nvidia-smi', '--query-gpu=index,name,uuid,driver_version', '--format=csv,noheader,nounits']);
    expect(smi.code).toBe(0);
    for (const s of ['\x1b[31m', '\x1b]0;pwned\x07', '\x1b]8;;https://evil.example/', '\u009b', '\u202e', '\u0000', '\r', '<img src=x onerror=']) {
      expect(smi.stdout + smi.stderr, JSON.stringify(s)).toContain(s);
    }
    expect(smi.stderr).toBe(HOSTILE_WARNING + '\n');
    expect(smi.stdout.length).toBeGreaterThan(65536);
    expect(HOSTILE_OS_PRETTY_NAME).toContain('\u0000');
  });
});

describe('a hostile host through the core', () => {
  it('enrols and scans; nothing but inert text survives in the scan result or hosts:list', async () => {
    await admin.ok('hosts:add', { name: 'hostile', address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint });
    const [out] = await admin.ok('hosts:scan', { names: ['hostile'] });
    expect(out, JSON.stringify(out?.error)).toMatchObject({ ok: true, status: 'reachable', error: null });
    const listed = await admin.ok('hosts:list', {});
    expect(offences(out)).toEqual([]);
    expect(offences(listed)).toEqual([]);

    const inv = out!.inventory!;
    expect(listed[0]!.inventory).toEqual(inv);
    // What remains is the text a reader should see. The HTML is still there, as text (React shows
    // it escaped): the core removes terminal controls, it does not HTML-encode.
    expect(inv.hostname).toBe(HOSTILE_VISIBLE.hostnamePrefix);
    expect(inv.os.startsWith(HOSTILE_VISIBLE.osPrefix), inv.os).toBe(true);
    expect(inv.driverVersion).toBe(HOSTILE_VISIBLE.driverPrefix);
    expect(inv.gpus).toHaveLength(2);
    expect(inv.gpus[0]!.name).toBe(HOSTILE_VISIBLE.gpu0Name);
    expect(inv.gpus[0]!.uuid).toBe(HOSTILE_VISIBLE.gpu0UuidPrefix);
    expect(inv.gpus[1]!.name.startsWith(HOSTILE_VISIBLE.gpu1NamePrefix)).toBe(true);
    // The warning line nvidia-smi printed first is not a GPU row: reported, quoted harmlessly.
    expect(inv.gpuError).toMatch(/^1 line\(s\) of nvidia-smi output were not understood \(first: "WARNING: infoROM is corrupted/);
    // Very long strings are capped (code points), so one host cannot bloat every view and record.
    expect(Array.from(inv.gpus[1]!.name).length).toBeLessThanOrEqual(128);
    expect(Array.from(inv.gpus[1]!.uuid ?? '').length).toBeLessThanOrEqual(96);
    for (const [at, s] of strings(listed)) expect(s.length, at).toBeLessThanOrEqual(600);
    // Nor does anything hide in the stored row (the JSON the next hosts:list reads back).
    const stored = await admin.ok('hosts:list', {});
    expect(stored).toEqual(listed);
  });

  it('a failing nvidia-smi with a hostile error message: gpuError quotes it harmlessly', async () => {
    // Without the warning line, so the error message is the first line (the one that is quoted).
    await setGpuProfile(lab, host.name, (p) => {
      p.failure = 'error';
      p.warnings = [];
    });
    try {
      const [out] = await admin.ok('hosts:scan', { names: ['hostile'] });
      expect(out).toMatchObject({ ok: true });
      const gpuError = out!.inventory!.gpuError ?? '';
      expect(gpuError).toMatch(/^nvidia-smi failed \(exit 15\): NVIDIA-SMI has failed <script>window.__pwned=1<\/script><img src=x/);
      expect(HOSTILE_ERROR_TEXT).toContain('\x1b');
      expect(offences(out)).toEqual([]);
      expect(offences(await admin.ok('hosts:list', {}))).toEqual([]);
    } finally {
      await setGpuProfile(lab, host.name, (p) => {
        p.failure = null;
        p.warnings = [HOSTILE_WARNING];
      });
    }
  });

  it('output nobody asked for (a hostile login shell) fails the scan; the error and lastError quote it harmlessly', async () => {
    const S = HOSTILE_SEQUENCES;
    await setLoginText(lab, host.name, `${S.csiClear}${S.oscTitle}Welcome ${S.htmlImg}${S.oscClipboard}${S.c1Csi}${S.bidiOverride}${S.nul}\r\nmore\n`);
    try {
      const [out] = await admin.ok('hosts:scan', { names: ['hostile'] });
      expect(out).toMatchObject({ ok: false, status: 'error', error: { code: 'PARSE_ERROR' } });
      // The bidi override and NUL are shown, not dropped (issue 9 item 10).
      expect(out!.error!.message).toContain(`(it began: "Welcome ${S.htmlImg}\\u{202E}\\u{0}")`);
      const [row] = await admin.ok('hosts:list', {});
      expect(row!.lastError).toContain(`Welcome ${S.htmlImg}`);
      expect(offences(out)).toEqual([]);
      expect(offences(row)).toEqual([]);
    } finally {
      await setLoginText(lab, host.name, null);
    }
    const [again] = await admin.ok('hosts:scan', { names: ['hostile'] });
    expect(again).toMatchObject({ ok: true });
  });

  it('the terminal is the one place the bytes arrive as they are (xterm interprets them)', async () => {
    const { id } = await admin.ok('terminal:open', { host: 'hostile', cols: 120, rows: 30 });
    try {
      await admin.ok('terminal:input', { id, data: 'uname -n; echo done-$((6*7))\n' });
      const text = () =>
        admin.events
          .filter((e) => e.event === 'terminal:data' && (e.payload as { id: string }).id === id)
          .map((e) => (e.payload as { data: string }).data)
          .join('');
      await expect.poll(text, { timeout: 15_000 }).toContain('done-42');
      expect(text()).toContain(HOSTILE_HOSTNAME);
    } finally {
      await admin.ok('terminal:close', { id });
    }
  });

  it('the audit trail holds no raw host text, and its chain verifies', async () => {
    const { events } = await admin.ok('audit:list', { limit: 1000 });
    expect(events.some((e) => e.channel === 'hosts:scan')).toBe(true);
    expect(offences(events)).toEqual([]);
    expect(await admin.ok('audit:verify', {})).toMatchObject({ ok: true });
  });
});

describe('a hostile host through the airlock CLI', () => {
  const PASSWORD = 'correct horse battery staple';
  let data: string;

  function airlock(args: string[]) {
    const r = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), ...args, '--data', data], {
      encoding: 'utf8',
      env: { ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: PASSWORD, AIRLOCK_TOTP_POLICY: 'off', SSH_AUTH_SOCK: '' },
      input: '',
      timeout: 90_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  beforeAll(async () => {
    // NODE_ENV=production: vitest sets NODE_ENV=test, and a renderer rebuilt under it would be
    // React's development build (StrictMode double effects), which the e2e suite then serves.
    const env = { ...process.env, NODE_ENV: 'production' };
    expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit', env }).status).toBe(0);
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-cli-hostile-'));
    expect(airlock(['init', '--admin', 'alice']).code).toBe(0);
    const key = airlock(['identity', 'show']);
    expect(key.code, key.stderr).toBe(0);
    await authorizeKey(lab, key.stdout.trim());
    const add = airlock(['hosts', 'add', 'hostile', '--address', host.address, '--port', String(host.port), '--user', host.user, '--fingerprint', host.fingerprint]);
    expect(add.code, add.stderr).toBe(0);
  });
  afterAll(() => {
    if (data) fs.rmSync(data, { recursive: true, force: true });
  });

  it('human output of hosts scan and hosts list carries no escape, control or bidi character', () => {
    const scan = airlock(['hosts', 'scan']);
    expect(scan.code, scan.stdout + scan.stderr).toBe(0);
    const list = airlock(['hosts', 'list']);
    expect(list.code, list.stderr).toBe(0);
    for (const r of [scan, list]) {
      expect(offences([r.stdout, r.stderr], FORBIDDEN_IN_TERMINAL)).toEqual([]);
    }
    expect(scan.stdout).toContain(HOSTILE_VISIBLE.gpu0Name);
    expect(list.stdout).toContain(`2x ${HOSTILE_VISIBLE.gpu0Name} (driver ${HOSTILE_VISIBLE.driverPrefix})`);
  });

  it('--json keeps the text faithfully, as escaped JSON, with no raw control character on stdout', () => {
    for (const args of [['hosts', 'scan', '--json'], ['hosts', 'list', '--json']]) {
      const r = airlock(args);
      expect(r.code, r.stderr).toBe(0);
      // LF between JSON tokens is all the raw control text there may be.
      expect(offences([r.stdout.replace(/\n/g, '')])).toEqual([]);
      const value = JSON.parse(r.stdout) as Array<{ inventory: { hostname: string; gpus: Array<{ name: string }> } }>;
      expect(value[0]!.inventory.hostname).toBe(HOSTILE_VISIBLE.hostnamePrefix);
      expect(value[0]!.inventory.gpus[0]!.name).toBe(HOSTILE_VISIBLE.gpu0Name);
    }
  });

  it('a failed scan (hostile login output) prints its error and lastError harmlessly, in both forms', async () => {
    const S = HOSTILE_SEQUENCES;
    await setLoginText(lab, host.name, `${S.csiClear}${S.oscTitle}Welcome ${S.htmlImg}${S.oscClipboard}${S.c1Csi}${S.bidiOverride}${S.nul}\n`);
    try {
      const scan = airlock(['hosts', 'scan']);
      expect(scan.code).toBe(1);
      expect(scan.stdout).toContain('PARSE_ERROR');
      const scanJson = airlock(['hosts', 'scan', '--json']);
      const list = airlock(['hosts', 'list']);
      const listJson = airlock(['hosts', 'list', '--json']);
      expect(list.stdout).toContain(`Welcome ${S.htmlImg}`);
      for (const r of [scan, list]) expect(offences([r.stdout, r.stderr], FORBIDDEN_IN_TERMINAL)).toEqual([]);
      for (const r of [scanJson, listJson]) {
        expect(offences([r.stdout.replace(/\n/g, '')])).toEqual([]);
        expect(JSON.stringify(JSON.parse(r.stdout))).toContain(`Welcome ${S.htmlImg.replace(/"/g, '\\"')}`);
      }
    } finally {
      await setLoginText(lab, host.name, null);
    }
  });

  it('audit list (human and --json) carries no raw host text', () => {
    for (const args of [['audit', 'list', '--limit', '1000'], ['audit', 'list', '--limit', '1000', '--json']]) {
      const r = airlock(args);
      expect(r.code, r.stderr).toBe(0);
      expect(offences([r.stdout.replace(/\n/g, '')], FORBIDDEN_IN_TERMINAL)).toEqual([]);
    }
  });
});

/**
 * Issue 9, items 5, 8, 9 and 10, from the operator's and the attacker's side: the real `airlock`
 * command (bin/airlock.mjs, bundled), real files and directories, real modes and owners.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../electron/shells/cli';
import { spawnServe, stopProcess } from '../support/serve';

const root = path.resolve(__dirname, '../..');
const BIN = path.join(root, 'bin/airlock.mjs');
const ALICE = 'correct horse battery staple';
const NOBODY = 65534;
let tmp: string;
let data: string;

function airlock(args: string[], env: Record<string, string | undefined> = {}, dir = data) {
  const r = spawnSync(process.execPath, [BIN, ...args, '--data', dir], {
    encoding: 'utf8',
    env: { ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, AIRLOCK_NEW_PASSWORD: undefined, AIRLOCK_DEBUG: undefined, ...env },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) as Record<string, unknown> };
}
const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
/** What must never reach a terminal from the CLI: controls (but TAB, LF) and invisible characters. */
const HIDDEN_IN_TERMINAL = /(?![\t\n])[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** A stack trace or an install path in what a user sees. */
const LEAK = /\n\s+at |node_modules|dist\/node|\.mjs:\d|\.ts:\d/;

beforeAll(() => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-harden-'));
  fs.chmodSync(tmp, 0o755); // others may traverse it, as they could a home directory
  data = path.join(tmp, 'data');
  fs.mkdirSync(data, { mode: 0o755 });
  fs.chmodSync(data, 0o755);
  const init = airlock(['init', '--admin', 'alice', '--json']);
  expect(init.code, init.stderr).toBe(0);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('item 5: a new account never gets the acting admin password', () => {
  it('users create, reset-password and enable without a new-password source: exit 2, nothing created', () => {
    const create = airlock(['users', 'create', 'bob', '--role', 'auditor']);
    expect(create.code, create.stdout + create.stderr).toBe(2);
    expect(create.stderr).toContain("bob's new password needs a source: --new-password-file F, AIRLOCK_NEW_PASSWORD, --generate-password");
    expect(create.stderr).toContain('never used for another account');
    // The attacker's view: alice's password does not open an account called bob.
    expect(airlock(['hosts', 'list'], { AIRLOCK_USER: 'bob' }).code).toBe(1);
    expect((airlock(['users', 'list', '--json']).json() as unknown as Array<{ name: string }>).map((u) => u.name)).toEqual(['alice']);

    expect(airlock(['users', 'create', 'carol', '--role', 'auditor'], { AIRLOCK_NEW_PASSWORD: 'carol first password' }).code).toBe(0);
    for (const verb of ['reset-password', 'enable']) {
      const r = airlock(['users', verb, 'carol']);
      expect(r.code, `${verb}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain("carol's new password needs a source");
    }
    const r = airlock(['hosts', 'list'], { AIRLOCK_USER: 'carol', AIRLOCK_PASSWORD: ALICE });
    expect(r.stderr).toContain('BAD_CREDENTIALS');
  });

  it('--generate-password prints a strong one-time password once; it must be changed at first sign-in', () => {
    const r = airlock(['users', 'create', 'dave', '--role', 'auditor', '--generate-password', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const otp = r.json().oneTimePassword as string;
    expect(otp).toMatch(/^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
    expect(r.json().mustChangePassword).toBe(true);
    expect(airlock(['hosts', 'list'], { AIRLOCK_USER: 'dave', AIRLOCK_PASSWORD: ALICE }).stderr).toContain('BAD_CREDENTIALS');
    expect(airlock(['hosts', 'list'], { AIRLOCK_USER: 'dave', AIRLOCK_PASSWORD: otp }).stderr).toContain('PASSWORD_CHANGE_REQUIRED');

    const reset = airlock(['users', 'reset-password', 'dave', '--generate-password']);
    expect(reset.code, reset.stderr).toBe(0);
    const again = /One-time password for dave \(shown only now[^\n]*\n {2}(\S+)\n/.exec(reset.stdout)?.[1];
    expect(again).toMatch(/^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
    expect(again).not.toBe(otp);
    expect(airlock(['hosts', 'list'], { AIRLOCK_USER: 'dave', AIRLOCK_PASSWORD: again }).stderr).toContain('PASSWORD_CHANGE_REQUIRED');

    const conflict = airlock(['users', 'create', 'erin', '--role', 'auditor', '--generate-password', '--no-password-change']);
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toContain('a generated password is one-time');
  });

  it('on a terminal the new password is typed twice, and never falls back to the admin password', async () => {
    const cmd = [process.execPath, BIN, 'users', 'create', 'fay', '--role', 'auditor', '--data', data].map((a) => `'${a}'`).join(' ');
    const out = await new Promise<string>((resolve) => {
      const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, TERM: 'dumb' } });
      let text = '';
      let step = 0;
      p.stdout.on('data', (c: Buffer) => {
        text += c.toString();
        if (step === 0 && text.includes('New password for fay: ')) {
          step = 1;
          p.stdin.write('fay typed this one\n');
        } else if (step === 1 && text.includes('Type it again: ')) {
          step = 2;
          p.stdin.write('fay typed this one\n');
        }
      });
      p.on('close', (code) => resolve(`${text}\n[exit ${code}]`));
    });
    expect(out).toContain('Created fay (auditor)');
    expect(out).toContain('[exit 0]');
    expect(airlock(['hosts', 'list'], { AIRLOCK_USER: 'fay', AIRLOCK_PASSWORD: 'fay typed this one' }).stderr).toContain('PASSWORD_CHANGE_REQUIRED');
  });

  it('init without any password source off a terminal is a usage error', () => {
    const dir = path.join(tmp, 'fresh-init');
    const r = airlock(['init', '--admin', 'zed'], { AIRLOCK_PASSWORD: undefined }, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("init needs the first administrator's password");
  });
});

describe('item 8: the data directory is private, or refused', () => {
  it('mkdir -m755 then init: the directory is 0700 and every file Airlock wrote 0600, -wal and -shm included', async () => {
    expect(mode(data)).toBe('700');
    // A running console keeps the database open: its -wal and -shm exist, made by this process.
    const { child: serve } = await spawnServe({ dataDir: data, env: { ...process.env, AIRLOCK_RENDERER_DIR: path.join(root, 'dist/renderer') } });
    try {
      // Sign-ins write checkpoints and audit.head.
      expect(airlock(['audit', 'verify']).code).toBe(0);
      const names = fs.readdirSync(data);
      expect(names).toEqual(expect.arrayContaining(['airlock.db', 'airlock.db-wal', 'airlock.db-shm']));
      const walk = (d: string): string[] => fs.readdirSync(d).flatMap((n) => (fs.lstatSync(path.join(d, n)).isDirectory() ? [path.join(d, n), ...walk(path.join(d, n))] : [path.join(d, n)]));
      for (const p of walk(data)) expect(`${path.relative(data, p)} ${mode(p)}`).toBe(`${path.relative(data, p)} ${fs.statSync(p).isDirectory() ? '700' : '600'}`);
    } finally {
      await stopProcess(serve);
    }
  });

  it('an older install left world-readable (0755 dir, 0644 files) is made private when opened', () => {
    const dir = path.join(tmp, 'old');
    fs.cpSync(data, dir, { recursive: true });
    fs.chmodSync(dir, 0o755);
    for (const n of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, n), 0o644);
    // (No audit.head is made up here: an empty or foreign one is an audit alarm, not an old install.)
    const r = airlock(['users', 'list'], {}, dir);
    expect(r.code, r.stderr).toBe(0);
    expect(mode(dir)).toBe('700');
    for (const n of fs.readdirSync(dir)) expect(`${n} ${mode(path.join(dir, n))}`).toBe(`${n} 600`);
  });

  it('refuses a directory writable by others, and changes nothing in it', () => {
    const dir = path.join(tmp, 'shared');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    const r = airlock(['init', '--admin', 'alice'], {}, dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`DATA_DIR_UNSAFE: The data directory ${dir} is writable by every user (mode 0777)`);
    expect(r.stderr).not.toMatch(LEAK);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(mode(dir)).toBe('777');
    fs.chmodSync(dir, 0o775);
    expect(airlock(['init', '--admin', 'alice'], {}, dir).stderr).toContain('is writable by its group (mode 0775)');
  });

  it('refuses a directory owned by another user, also through a symbolic link', () => {
    const dir = path.join(tmp, 'nobodys');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, NOBODY, NOBODY);
    const r = airlock(['init', '--admin', 'alice'], {}, dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`The data directory ${dir} is owned by uid ${NOBODY}, not by the user running Airlock`);
    expect(fs.readdirSync(dir)).toEqual([]);
    const link = path.join(tmp, 'link-to-nobodys');
    fs.symlinkSync(dir, link);
    expect(airlock(['init', '--admin', 'alice'], {}, link).stderr).toContain(`is owned by uid ${NOBODY}`);
  });

  it('refuses a database file that is a symbolic link, belongs to someone else or is writable by others', () => {
    const dir = path.join(tmp, 'db-cases');
    fs.cpSync(data, dir, { recursive: true });
    const db = path.join(dir, 'airlock.db');
    fs.chownSync(db, NOBODY, NOBODY);
    expect(airlock(['users', 'list'], {}, dir).stderr).toContain(`${db} is owned by uid ${NOBODY}`);
    fs.chownSync(db, process.getuid!(), process.getgid!());
    fs.chmodSync(db, 0o666);
    expect(airlock(['users', 'list'], {}, dir).stderr).toContain(`${db} is writable by every user (mode 0666)`);
    fs.chmodSync(db, 0o600);
    fs.renameSync(db, path.join(tmp, 'elsewhere.db'));
    fs.symlinkSync(path.join(tmp, 'elsewhere.db'), db);
    expect(airlock(['users', 'list'], {}, dir).stderr).toContain(`${db} is not a regular file (a symbolic link)`);
  });
});

describe('item 9: every file the CLI reads fails with one clear line and exit 2', () => {
  let dir: string;
  let big: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(tmp, 'files-'));
    big = path.join(dir, 'big');
    fs.writeFileSync(big, '{' + ' '.repeat(5 * 1024 * 1024) + '}');
    fs.writeFileSync(path.join(dir, 'bad.json'), '{\n  "base": {\n    "x": 1,\n  }\n}\n');
    fs.writeFileSync(path.join(dir, 'latin1'), Buffer.from([0x48, 0xe9, 0x0a]));
  });
  const missing = () => path.join(dir, 'missing');
  const cases = (): Array<[string, (f: string) => string[], Record<string, string>?]> => [
    ['--params', (f) => ['provision', 'plan', '--playbook', 'base', '--hosts', 'all', '--params', f]],
    ['provision import-playbook', (f) => ['provision', 'import-playbook', f]],
    ['hosts import-known-hosts', (f) => ['hosts', 'import-known-hosts', f]],
    ['hosts import-ssh-config', (f) => ['hosts', 'import-ssh-config', f]],
    ['attest verify', (f) => ['attest', 'verify', f]],
    ['attest verify --key (the file)', (f) => ['attest', 'verify', f, '--key', f]],
    ['attest verify --key (the key)', (f) => ['attest', 'verify', path.join(dir, 'bad.json'), '--key', f]],
    ['--password-file', (f) => ['hosts', 'list', '--password-file', f]],
    ['--new-password-file', (f) => ['users', 'create', 'gus', '--role', 'auditor', '--new-password-file', f]],
    ['audit forward --ca', (f) => ['audit', 'forward', '--host', '127.0.0.1', '--port', '6514', '--tls', '--ca', f]],
  ];

  it('a missing file, a directory, a file too large, /dev/zero, bad UTF-8: named, exit 2, no stack', () => {
    for (const [what, args] of cases()) {
      for (const [file, expected] of [
        [missing(), `cannot read ${missing()}: no such file`],
        [dir, `cannot read ${dir}: it is a directory`],
        [big, `${big} is too large`],
        ['/dev/zero', '/dev/zero is too large (more than'],
        [path.join(dir, 'latin1'), `${path.join(dir, 'latin1')} is not valid UTF-8 text`],
      ] as const) {
        const r = airlock(args(file));
        expect(r.code, `${what} ${file}: ${r.stderr}`).toBe(2);
        expect(r.stderr.startsWith(`airlock: ${expected}`), `${what} ${file}: ${r.stderr}`).toBe(true);
        expect(r.stderr.trim().split('\n'), `${what} ${file}`).toHaveLength(1);
        expect(r.stderr).not.toMatch(LEAK);
      }
    }
  });

  it('--params with invalid JSON names the file, the line and the column', () => {
    const bad = path.join(dir, 'bad.json');
    const r = airlock(['provision', 'plan', '--playbook', 'base', '--hosts', 'all', '--params', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^airlock: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid JSON: line 4 column 3: .+\\n$`));
    expect(r.stderr).not.toMatch(LEAK);
    fs.writeFileSync(path.join(dir, 'empty.json'), '');
    expect(airlock(['provision', 'plan', '--playbook', 'base', '--hosts', 'all', '--params', path.join(dir, 'empty.json')]).stderr).toBe(
      `airlock: ${path.join(dir, 'empty.json')} is not valid JSON: the file is empty\n`,
    );
    fs.writeFileSync(path.join(dir, 'step.json'), '{"base": 5}');
    const step = airlock(['provision', 'plan', '--playbook', 'base', '--hosts', 'all', '--params', path.join(dir, 'step.json')]);
    expect(step.code).toBe(2);
    expect(step.stderr).toContain('"base" must hold an object');
  });

  it('an unexpected exception is one line without stack or paths, non-zero exit; AIRLOCK_DEBUG shows the stack', async () => {
    const run = async (env: Record<string, string>) => {
      let stderr = '';
      const code = await runCli(['identity', 'show', '--data', data], {
        stdout: () => {
          throw new TypeError(`Cannot read properties of undefined (reading 'x') at ${root}/dist/node/cli.mjs:12:34\n    at main (${root}/node_modules/x.js:1:1)`);
        },
        stderr: (s) => (stderr += s),
        env: { AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, AIRLOCK_TOTP_POLICY: 'off', ...env },
        prompt: null,
        rendererDir: data,
        version: 'test',
      });
      return { code, stderr };
    };
    const plain = await run({});
    expect(plain.code).toBe(1);
    expect(plain.stderr).toBe("airlock: unexpected error (TypeError): Cannot read properties of undefined (reading 'x') at … (AIRLOCK_DEBUG=1 for details)\n");
    const debug = await run({ AIRLOCK_DEBUG: '1' });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });
});

describe('item 10: what the CLI echoes has its control and invisible characters made visible', () => {
  const HOSTILE = ['\x1b]0;pwned\x07', '\x1b[2J', '\u009b31m', 'gpu\u200b1', 'a\u202eb', 'x\u{e0041}y', 'h\u3164i', 's\u00adt', 'l\u2028m', 'v\ufe0fw'];

  it('unknown command, unknown option and bad values never echo the raw characters', () => {
    for (const h of HOSTILE) {
      for (const args of [[h, 'now'], ['hosts', h], ['hosts', 'list', `--${h}`], ['hosts', 'remove', h], ['users', 'create', h, '--role', 'auditor', '--generate-password']]) {
        const r = airlock(args);
        expect(r.code, JSON.stringify(args)).not.toBe(0);
        expect(r.stderr + r.stdout, JSON.stringify(args)).not.toMatch(HIDDEN_IN_TERMINAL);
      }
    }
    const esc = airlock(['\x1b]0;pwned\x07', 'now']);
    expect(esc.code).toBe(2);
    expect(esc.stderr).toContain('airlock: unknown command "\\u{1B}]0;pwned\\u{7} now"');
  });

  it('a user name with a hidden character is refused at input, and nothing is created', () => {
    const r = airlock(['users', 'create', 'bob\u200b', '--role', 'auditor', '--generate-password']);
    expect(r.code).toBe(2); // INVALID_INPUT is an input error: exit 2 (electron/shells/cli/exit.ts)
    expect(r.stderr).toContain('INVALID_INPUT');
    expect(r.stdout).not.toContain('One-time password');
    expect((airlock(['users', 'list', '--json']).json() as unknown as Array<{ name: string }>).map((u) => u.name)).not.toContain('bob\u200b');
  });
});

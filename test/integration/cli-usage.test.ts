/**
 * One exit-code rule (electron/shells/cli/exit.ts): every usage or input mistake — an unknown
 * command or option, a missing or extra argument, a bad value, a file that cannot be used, input
 * the core refuses as INVALID_INPUT — exits 2 with one line on stderr naming what is wrong.
 * The same runCli the bundled command runs, in-process, on a real data directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../electron/shells/cli';

const ALICE = 'correct horse battery staple';
let data: string;
let pwFile: string;

async function airlock(args: string[], env: Record<string, string | undefined> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['--data', data, ...args], {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    env: { AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, AIRLOCK_TOTP_POLICY: 'off', ...env },
    prompt: null,
    rendererDir: data,
    version: 'test',
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-cli-usage-'));
  pwFile = path.join(data, 'pw');
  fs.writeFileSync(pwFile, 'a new password for someone\n', { mode: 0o600 });
  expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
});
afterAll(() => fs.rmSync(data, { recursive: true, force: true }));

const FP = 'SHA256:' + 'A'.repeat(43);
/** [command line, what the one line must say, environment]. */
const cases = (): Array<[string[], string | RegExp, Record<string, string | undefined>?]> => [
  [['frobnicate', 'now'], 'unknown command "frobnicate now"'],
  [['hosts', 'frob'], 'unknown command "hosts frob"'],
  [['hosts'], 'hosts needs a command: list, probe, add, confirm, repin, edit, remove'],
  [['hosts', 'list', '--no-such-flag'], 'unknown option --no-such-flag'],
  [['hosts', 'list', '-x'], 'unknown option -x'],
  [['hosts', 'list', '--port', '22'], 'hosts list takes no option --port'],
  [['hosts', 'list', '--json=yes'], '--json takes no value'],
  [['hosts', 'remove'], 'hosts remove needs NAME (the host)'],
  [['hosts', 'remove', 'gpu1', 'gpu2'], 'hosts remove takes NAME; "gpu2" is one too many'],
  [['identity', 'show', 'extra'], 'identity show takes no argument; "extra" is one too many'],
  [['serve', 'now'], 'serve takes no argument; "now" is one too many'],
  [['hosts', 'add', 'gpu1'], 'hosts add needs --address A'],
  [['hosts', 'add', 'gpu1', '--address', '10.0.0.1', '--fingerprint', 'SHA256:short'], '--fingerprint "SHA256:short" is not valid: SHA256:<43 base64 characters>'],
  [['hosts', 'add', 'gpu1', '--address', '10.0.0.1', '--fingerprint', 'MD5:aa:bb'], '--fingerprint "MD5:aa:bb" is not valid'],
  [['hosts', 'confirm', 'gpu1', '--fingerprint', FP.slice(0, -1)], '--fingerprint "SHA256:AAAA'],
  [['hosts', 'add', 'gpu1', '--address', 'a b', '--fingerprint', FP], '--address "a b" is not valid: a host name or IP address'],
  [['hosts', 'add', 'gpu 1', '--address', '10.0.0.1', '--fingerprint', FP], 'NAME "gpu 1" is not valid'],
  [['hosts', 'probe', '10.0.0.1', '--port', 'x'], '--port must be a whole number, not "x"'],
  [['hosts', 'probe', '10.0.0.1', '--port', '70000'], '--port "70000" is not valid'],
  [['hosts', 'probe', '10.0.0.1', '--port'], '--port needs a value: --port P'],
  [['hosts', 'probe', '10.0.0.1', '--port', '--json'], '--port needs a value, not the option --json'],
  [['hosts', 'probe'], 'hosts probe needs an ADDRESS'],
  [['hosts', 'import-ssh-config', path.join(os.tmpdir(), 'no-such-airlock-file')], `cannot read ${path.join(os.tmpdir(), 'no-such-airlock-file')}: no such file`],
  [['users', 'create', 'bob'], 'users create needs --role R'],
  [['users', 'create', 'bob', '--role', 'root'], '--role "root" is not valid'],
  [['users', 'create', 'bob', '--role', 'auditor'], "bob's new password needs a source"],
  [['users', 'create', 'bob', '--role', 'auditor', '--generate-password', '--no-password-change'], 'a generated password is one-time'],
  [['users', 'create', 'bob', '--role', 'auditor', '--generate-password', '--new-password-file', 'F'], 'give --generate-password or --new-password-file, not both'],
  [['users', 'create', 'Bob!', '--role', 'auditor', '--generate-password'], /^INVALID_INPUT: Not accepted — name: /],
  [['users', 'reset-password', 'bob'], "bob's new password needs a source"],
  [['users', 'passwd', '--generate-password'], 'users passwd: choose your own password'],
  [['session', 'passwd', '--new-password-file', path.join(os.tmpdir(), 'no-such-airlock-file')], 'cannot read'],
  [['totp', 'confirm'], 'totp confirm needs CODE'],
  [['totp', 'confirm', '12 34 56 78'], /^INVALID_INPUT: /],
  [['settings', 'set', '--idle-minutes', 'ten'], '--idle-minutes must be a whole number, not "ten"'],
  [['settings', 'set', '--idle-minutes', '0'], /^INVALID_INPUT: /],
  [['approvals', 'show', 'abc'], 'ID must be a whole number, not "abc"'],
  [['approvals', 'show'], 'approvals show needs ID'],
  [['approvals', 'approve', '1'], 'approvals approve needs --reason R'],
  [['approvals', 'list', '--status', 'weird'], '--status "weird" is not valid'],
  [['approvals', 'set-policy', 'nope', '--reason', 'a good reason'], 'unknown operation "nope"'],
  [['approvals', 'set-policy', 'keys:rotateRoot', '--required', '--not-required'], 'give --required or --not-required, not both'],
  [['approvals', 'set-policy', 'keys:rotateRoot', '--approver-role', 'auditor'], '--approver-role "auditor" is not valid'],
  [['audit', 'export'], 'audit export needs --format jsonl|csv'],
  [['audit', 'export', '--format', 'xml'], '--format "xml" is not valid'],
  [['audit', 'verify', '--from', 'x'], '--from must be a whole number'],
  [['audit', 'list', '--limit', '5000'], /^INVALID_INPUT: /],
  [['audit', 'forward', '--host', '127.0.0.1'], 'audit forward needs --port P with --host H'],
  [['audit', 'forward', '--host', '127.0.0.1', '--port', '6514', '--ca', 'ca.pem'], '--ca goes with --tls'],
  [['audit', 'acknowledge', '1'], 'audit acknowledge needs --reason R'],
  [['provision', 'plan', '--hosts', 'all'], 'provision plan needs --playbook NAME'],
  [['provision', 'apply', '--playbook', 'base'], 'provision apply needs --hosts SELECTOR'],
  [['provision', 'plan', '--playbook', 'base', '--hosts', 'all', '--set', 'nodot'], '--set nodot: expected STEP.PARAM=JSON'],
  [['provision', 'resume'], 'provision resume needs RUN'],
  [['store', 'import-model', data], 'store import-model needs --name N'],
  [['attest', 'show'], 'attest show needs an ID or --host H'],
  [['attest', 'verify'], 'attest verify needs FILE'],
  [['init'], 'init needs --admin NAME'],
  [['init', '--admin', 'x', '--generate-password'], "init: choose the first administrator's password"],
  [['hosts', 'list'], 'sign in with --user NAME', { AIRLOCK_USER: undefined }],
  [['hosts', 'list'], 'Password for alice is needed', { AIRLOCK_PASSWORD: undefined }],
  [['hosts', 'list'], 'AIRLOCK_TOTP_POLICY must be "off" or "required", not "of"', { AIRLOCK_TOTP_POLICY: 'of' }],
];

describe('usage and input errors', () => {
  it('each exits 2 with one line on stderr naming what is wrong, and prints nothing on stdout', async () => {
    for (const [args, says, env] of cases()) {
      const r = await airlock(args, env);
      const what = JSON.stringify(args);
      expect(r.code, `${what}: ${r.stderr}`).toBe(EXIT.usage);
      expect(r.stderr, what).toMatch(/^airlock: [^\n]+\n$/);
      const line = r.stderr.slice('airlock: '.length);
      if (typeof says === 'string') expect(line, what).toContain(says);
      else expect(line, what).toMatch(says);
      expect(r.stdout, what).toBe('');
    }
  });

  it('INVALID_INPUT under --json: the error as JSON on stdout, exit 2', async () => {
    const r = await airlock(['settings', 'set', '--idle-minutes', '0', '--json']);
    expect(r.code).toBe(EXIT.usage);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
  });

  it('a refusal that ran stays exit 1; help asked for is 0, a bare `airlock` is 2', async () => {
    expect((await airlock(['hosts', 'list'], { AIRLOCK_PASSWORD: 'not the password' })).code).toBe(EXIT.failed);
    expect((await airlock(['hosts', 'remove', 'nosuchhost'])).code).toBe(EXIT.failed);
    for (const args of [['--help'], ['help'], ['hosts', '--help'], ['help', 'hosts'], ['hosts', 'add', '--help'], ['help', 'hosts', 'add'], ['users', 'passwd', '-h']]) {
      const r = await airlock(args);
      expect(r.code, JSON.stringify(args)).toBe(EXIT.ok);
      expect(r.stdout.length, JSON.stringify(args)).toBeGreaterThan(100);
    }
    const bare = await runCli([], { stdout: () => {}, stderr: () => {}, env: {}, prompt: null, rendererDir: data, version: 'test' });
    expect(bare).toBe(EXIT.usage);
  });
});

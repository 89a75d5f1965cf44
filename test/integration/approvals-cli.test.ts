/**
 * The identity and two-person commands of the `airlock` CLI, run in-process (the same runCli the
 * bundled command runs) on a temp data dir: every invocation is its own sign-in, as in a shell.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../electron/shells/cli';
import { asOlga, inProcessCli } from '../support/cli';

let data: string;
beforeEach(() => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-cli-id-'));
});
afterEach(() => fs.rmSync(data, { recursive: true, force: true }));

const airlock = inProcessCli(() => data);

describe('airlock approvals', () => {
  it('files with --reason (exit 3), lists, refuses self-approval, approves, executes once', async () => {
    expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
    expect((await airlock(['users', 'create', 'olga', '--role', 'officer', '--no-password-change'], { AIRLOCK_NEW_PASSWORD: 'olga own password' })).code).toBe(EXIT.ok);

    const noReason = await airlock(['users', 'create', 'bob', '--role', 'admin'], { AIRLOCK_NEW_PASSWORD: 'bob initial password' });
    expect(noReason.code).toBe(EXIT.failed);
    expect(noReason.stderr).toMatch(/APPROVAL_REQUIRED: .*Re-run with --reason/);

    const filed = await airlock(['users', 'create', 'bob', '--role', 'admin', '--reason', 'night shift admin', '--json'], { AIRLOCK_NEW_PASSWORD: 'bob initial password' });
    expect(filed.code).toBe(EXIT.pending);
    const id = (filed.json().pending as { id: number }).id;
    expect(filed.json().pending).toMatchObject({ status: 'pending', input: { password: '[sealed]' } });

    const list = await airlock(['approvals', 'list'], asOlga);
    expect(list.code).toBe(EXIT.ok);
    expect(list.stdout).toContain(`#${id}\tpending\talice\tusers:grantAdmin\tCreate user bob with roles admin\t(you may approve)`);
    expect(list.stdout).toContain('1 pending, 1 awaiting your decision');

    const self = await airlock(['approvals', 'approve', String(id), '--reason', 'trust me']);
    expect(self.code).toBe(EXIT.failed);
    expect(self.stderr).toMatch(/FORBIDDEN: You filed this request/);
    expect((await airlock(['approvals', 'approve', String(id)], asOlga)).code).toBe(EXIT.usage); // --reason is required

    const ok = await airlock(['approvals', 'approve', String(id), '--reason', 'confirmed in person'], asOlga);
    expect(ok.code, ok.stderr).toBe(EXIT.ok);
    expect(ok.stdout).toMatch(/approved by olga at .*: confirmed in person/);

    const run = await airlock(['approvals', 'execute', String(id)]);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stdout).toBe(`Executed request ${id}: Create user bob with roles admin\n`);
    expect((await airlock(['approvals', 'execute', String(id)])).code).toBe(EXIT.failed);

    const users = await airlock(['users', 'list', '--json']);
    expect((users.json() as unknown as Array<{ name: string; roles: string[] }>).find((u) => u.name === 'bob')?.roles).toEqual(['admin']);
    const show = await airlock(['approvals', 'show', String(id)], asOlga);
    expect(show.stdout).toMatch(new RegExp(`^#${id}\\texecuted\\tusers:grantAdmin`));
    expect(show.stdout).not.toContain('bob initial password');
  });

  it('shows and changes the policy through a request; rejects', async () => {
    await airlock(['init', '--admin', 'alice']);
    await airlock(['users', 'create', 'olga', '--role', 'officer', '--no-password-change'], { AIRLOCK_NEW_PASSWORD: 'olga own password' });
    const policy = await airlock(['approvals', 'policy'], asOlga);
    expect(policy.stdout).toContain('users:grantAdmin\trequired\tadmin|officer\t1440 min\tusers:create,users:setRoles,users:enable');
    expect(policy.stdout).toContain('keys:rotateRoot\trequired\tofficer\t1440 min\tkeys:beginRotateRoot');
    expect(policy.stdout).toContain('models:grantPhi\trequired\tofficer\t1440 min\tgrants:add');
    expect(policy.stdout).toContain('audit:delete\trequired\tofficer\t1440 min\t(no channel yet)');
    const filed = await airlock(['approvals', 'set-policy', 'keys:rotateRoot', '--expiry-minutes', '120', '--reason', 'shorter window', '--json'], asOlga);
    expect(filed.code).toBe(EXIT.pending);
    const id = (filed.json().pending as { id: number }).id;
    const rejected = await airlock(['approvals', 'reject', String(id), '--reason', 'keep 24 h']);
    expect(rejected.code).toBe(EXIT.ok);
    expect(rejected.stdout).toMatch(/rejected by alice/);
    expect((await airlock(['approvals', 'execute', String(id)], asOlga)).code).toBe(EXIT.failed);
  });
});

describe('airlock identity commands', () => {
  it('enrols TOTP from the CLI and then needs --totp; a stale code is a replay', async () => {
    const policy = { AIRLOCK_TOTP_POLICY: undefined };
    const init = await airlock(['init', '--admin', 'alice'], policy);
    expect(init.code).toBe(EXIT.ok);
    expect(init.stdout).toContain('Administrators must use TOTP: enrol now with `airlock totp enrol --user alice`');
    const blocked = await airlock(['identity', 'show'], policy);
    expect(blocked.code).toBe(EXIT.failed);
    expect(blocked.stderr).toMatch(/TOTP_ENROLMENT_REQUIRED: .*\(CLI: `airlock totp enrol`/);

    const enrol = await airlock(['totp', 'enrol'], policy);
    expect(enrol.code).toBe(EXIT.ok);
    const secret = /Secret: ([A-Z2-7]+)/.exec(enrol.stdout)![1]!;
    expect(enrol.stdout).toMatch(/[█▀▄]/); // the QR code, drawn in the terminal
    const at = (ms: number) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: ms });
    const confirm = await airlock(['totp', 'confirm', at(Date.now())], policy);
    expect(confirm.code, confirm.stderr).toBe(EXIT.ok);
    expect(confirm.stdout.match(/^ {2}[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/gm)).toHaveLength(10);
    const recovery = confirm.stdout.match(/[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}/)![0];

    const missing = await airlock(['identity', 'show'], policy);
    expect(missing.code).toBe(EXIT.failed);
    expect(missing.stderr).toMatch(/TOTP_REQUIRED: .*--totp CODE/);
    // The code the phone shows 30 s from now is a later step than the one used to confirm: accepted once.
    const next = at(Date.now() + 30_000);
    expect((await airlock(['identity', 'show', '--totp', next], policy)).code).toBe(EXIT.ok);
    expect((await airlock(['identity', 'show', '--totp', next], policy)).stderr).toMatch(/BAD_CREDENTIALS: Wrong or already used code/);
    expect((await airlock(['identity', 'show'], { ...policy, AIRLOCK_RECOVERY_CODE: recovery })).code).toBe(EXIT.ok);
    expect((await airlock(['identity', 'show'], { ...policy, AIRLOCK_RECOVERY_CODE: recovery })).code).toBe(EXIT.failed);
  });

  it('manages users: forced password change, passwd, reset, disable/enable, remove, settings', async () => {
    await airlock(['init', '--admin', 'alice']);
    const bob = { AIRLOCK_USER: 'bob', AIRLOCK_PASSWORD: 'bob temporary 1' };
    expect((await airlock(['users', 'create', 'bob', '--role', 'auditor', '--role', 'officer'], { AIRLOCK_NEW_PASSWORD: 'bob temporary 1' })).code).toBe(EXIT.ok);
    const forced = await airlock(['hosts', 'list'], bob);
    expect(forced.stderr).toMatch(/PASSWORD_CHANGE_REQUIRED: .*\(CLI: `airlock session passwd`\)/);
    expect((await airlock(['users', 'passwd'], { ...bob, AIRLOCK_NEW_PASSWORD: 'bob picked this one' })).code).toBe(EXIT.ok);
    const bob2 = { AIRLOCK_USER: 'bob', AIRLOCK_PASSWORD: 'bob picked this one' };
    expect((await airlock(['hosts', 'list'], bob2)).code).toBe(EXIT.ok);

    const weak = await airlock(['users', 'reset-password', 'bob'], { AIRLOCK_NEW_PASSWORD: 'password1234' });
    expect(weak.stderr).toMatch(/WEAK_PASSWORD: This is one of the most commonly used passwords/);
    expect((await airlock(['users', 'disable', 'bob'])).stdout).toMatch(/vault key slot was destroyed/);
    expect((await airlock(['hosts', 'list'], bob2)).code).toBe(EXIT.failed);
    expect((await airlock(['users', 'enable', 'bob'], { AIRLOCK_NEW_PASSWORD: 'bob enabled again' })).code).toBe(EXIT.ok);
    expect((await airlock(['users', 'set-roles', 'bob', '--role', 'auditor', '--json'])).json()).toMatchObject({ roles: ['auditor'] });
    expect((await airlock(['users', 'remove', 'alice'])).stderr).toMatch(/CONFLICT: "alice" is the last enabled administrator/);
    expect((await airlock(['users', 'remove', 'bob'])).code).toBe(EXIT.ok);

    const set = await airlock(['settings', 'set', '--idle-minutes', '15', '--json']);
    expect(set.json()).toMatchObject({ sessionIdleMinutes: 15, stepUpMinutes: 5, totpRequiredFor: [] });
    expect((await airlock(['settings', 'show'])).stdout).toContain('TOTP required for: nobody (AIRLOCK_TOTP_POLICY=off: lab/test setting)');
  });

  it('refuses a mistyped TOTP policy rather than weakening it', async () => {
    const r = await airlock(['users', 'list'], { AIRLOCK_TOTP_POLICY: 'of' });
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/AIRLOCK_TOTP_POLICY must be "off" or "required", not "of"/);
  });
});

describe('airlock provision disable-egress', () => {
  it('is a two-person call: refused without --reason, filed with it under provision:disableEgressLockdown', async () => {
    expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
    const cfg = path.join(data, 'ssh_config');
    fs.writeFileSync(cfg, 'Host gpu7\n  HostName 10.0.0.7\n  User root\n');
    expect((await airlock(['hosts', 'import-ssh-config', cfg])).code).toBe(EXIT.ok);

    const noReason = await airlock(['provision', 'disable-egress', 'gpu7']);
    expect(noReason.code, noReason.stderr).toBe(EXIT.failed);
    expect(noReason.stderr).toMatch(/APPROVAL_REQUIRED: .*Re-run with --reason/);

    const filed = await airlock(['provision', 'disable-egress', 'gpu7', '--reason', 'vendor update window', '--json']);
    expect(filed.code, filed.stderr).toBe(EXIT.pending);
    expect(filed.json().pending).toMatchObject({ status: 'pending', operation: 'provision:disableEgressLockdown', channel: 'provision:disableEgressLockdown', input: { host: 'gpu7' } });

    const help = await airlock(['provision', 'disable-egress', '--help']);
    expect(help.code).toBe(EXIT.ok);
    expect(help.stdout).toContain("Remove a host's egress lockdown");
  });
});

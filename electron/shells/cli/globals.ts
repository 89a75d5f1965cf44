import os from 'node:os';
import path from 'node:path';
import type { Result } from '../../../shared/domain/errors';
import { FILE_LIMITS, readTextFile, UsageError } from '../cli-files';
import type { CliIo } from './io';
import { opt, type CommandDef, type Failure, type Specs } from './spec';

/**
 * The options every command takes, and signing in: who acts (--user, --as, AIRLOCK_USER), with
 * which password (--password-file, AIRLOCK_PASSWORD, a prompt) and second factor.
 */
export const GLOBAL_OPTIONS = {
  data: opt.string('DIR', 'data directory (default: AIRLOCK_DATA, else the platform app-data folder, the one the Electron app uses)'),
  json: opt.flag('machine-readable output (stdout); usage errors stay one line on stderr'),
  user: opt.string('NAME', 'acting Airlock user (or --as NAME, or AIRLOCK_USER); on `hosts add` and `hosts import-known-hosts`, --user is the SSH login user, as in OpenSSH'),
  as: opt.string('NAME', 'acting Airlock user, where --user means something else'),
  'password-file': opt.string(
    'F',
    'your password, to sign in (or AIRLOCK_PASSWORD); prompted on a terminal otherwise. init uses it for the administrator it creates, when no --new-password-file/AIRLOCK_NEW_PASSWORD is given',
  ),
  totp: opt.string('CODE', 'TOTP code for sign-in (or AIRLOCK_TOTP); prompted on a terminal when needed'),
  'recovery-code': opt.string('C', 'a recovery code instead of a TOTP code (or AIRLOCK_RECOVERY_CODE)'),
  help: opt.flag('this help; `airlock AREA --help`, `airlock AREA COMMAND --help` for one area or command'),
} satisfies Specs;

export const ENVIRONMENT_HELP = 'Environment: AIRLOCK_TOTP_POLICY=off is a lab/test setting: no role has to enrol TOTP.\n';

/** Channels the runner calls for every command, whatever the command: reachable from the CLI. */
export const RUNNER_CHANNELS = {
  'session:login': 'every signed-in command signs in first (one sign-in per run, so its step-up window is fresh)',
  'approvals:request': 'a two-person command given --reason files its refused call as a request',
} as const;

export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  if (env.AIRLOCK_DATA) return env.AIRLOCK_DATA;
  // The same folder Electron's app.getPath('userData') gives for productName "Airlock".
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support', 'Airlock');
  if (process.platform === 'win32') return path.join(env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming'), 'Airlock');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'Airlock');
}

/** The acting user. A command that declares its own --user (the SSH login) leaves --as and AIRLOCK_USER. */
export function actorOf(cmd: CommandDef, o: { as?: string | undefined; user?: string | undefined }, env: NodeJS.ProcessEnv): string | undefined {
  const ownUser = !!cmd.options && 'user' in cmd.options;
  return o.as ?? (ownUser ? undefined : o.user) ?? env.AIRLOCK_USER;
}

export const readPasswordFile = (file: string) => readTextFile(file, FILE_LIMITS.password).replace(/\r?\n$/, '');

export async function readSecret(file: string | undefined, envValue: string | undefined, io: CliIo, question: string): Promise<string> {
  if (file !== undefined) return readPasswordFile(file);
  if (envValue !== undefined) return envValue;
  if (!io.prompt) throw new UsageError(`${question.replace(/:\s*$/, '')} is needed: give a password file or an environment variable`);
  return io.prompt(question, { secret: true });
}

/**
 * Each CLI run signs in once (so its step-up window is fresh). A TOTP code comes from --totp,
 * AIRLOCK_TOTP, a recovery code from --recovery-code or AIRLOCK_RECOVERY_CODE, or — on a
 * terminal, when the core answers TOTP_REQUIRED — a prompt.
 */
export async function signIn(
  call: (c: 'session:login', i: unknown) => Promise<Result<unknown>>,
  name: string | undefined,
  passwordFile: string | undefined,
  second: { totp?: string | undefined; recoveryCode?: string | undefined },
  io: CliIo,
): Promise<{ ok: true; password: string } | Failure> {
  if (!name) throw new UsageError('sign in with --user NAME (or --as NAME, or AIRLOCK_USER)');
  const password = await readSecret(passwordFile, io.env.AIRLOCK_PASSWORD, io, `Password for ${name}: `);
  const totp = second.totp ?? io.env.AIRLOCK_TOTP;
  const recoveryCode = second.recoveryCode ?? io.env.AIRLOCK_RECOVERY_CODE;
  const input = { name, password, ...(totp ? { totp: totp.replace(/\s+/g, '') } : {}), ...(recoveryCode ? { recoveryCode } : {}) };
  let r = await call('session:login', input);
  if (!r.ok && r.error.code === 'TOTP_REQUIRED' && io.prompt) {
    const answer = (await io.prompt(`TOTP code for ${name} (or a recovery code): `, { secret: true })).trim();
    const code = answer.replace(/\s+/g, '');
    r = await call('session:login', { name, password, ...(/^\d{6}$/.test(code) ? { totp: code } : { recoveryCode: answer }) });
  }
  return r.ok ? { ok: true, password } : r;
}

/** What a CLI user does about an identity refusal (the core's messages name channels). */
export const CLI_HINTS: Partial<Record<string, string>> = {
  PASSWORD_CHANGE_REQUIRED: ' (CLI: `airlock session passwd`)',
  TOTP_ENROLMENT_REQUIRED: ' (CLI: `airlock totp enrol`, then `airlock totp confirm CODE`)',
  TOTP_REQUIRED: ' (CLI: --totp CODE or AIRLOCK_TOTP, or --recovery-code)',
};

import crypto from 'node:crypto';
import { InputError, UsageError } from '../cli-files';
import { readSecret } from './globals';
import type { CliIo } from './io';
import { opt, type OneTimeNote } from './spec';

/** New passwords: the first administrator's, another account's, your own. */

export const NEW_PASSWORD_FILE = opt.string('F', 'the new password, from a file (or AIRLOCK_NEW_PASSWORD); typed twice on a terminal otherwise');
export const GENERATE_PASSWORD = opt.flag('a strong one-time password, printed once (also in --json as oneTimePassword); the user must change it at first sign-in');
/** Another account's password: where it may come from (users create, enable, reset-password). */
export const NEWPW_NOTE =
  "the account's password comes from --new-password-file F, AIRLOCK_NEW_PASSWORD, --generate-password, or is typed twice on a terminal; never from your own --password-file/AIRLOCK_PASSWORD (without a source and without a terminal: exit 2)";

/** A new password from a file, the environment, or typed twice on a terminal. */
export async function newPasswordFrom(file: string | undefined, envValue: string | undefined, io: CliIo, question: string): Promise<string> {
  if (file !== undefined || envValue !== undefined || !io.prompt) return readSecret(file, envValue, io, question);
  const first = await io.prompt(question, { secret: true });
  const again = await io.prompt('Type it again: ', { secret: true });
  if (first !== again) throw new InputError('the two passwords differ; nothing was changed');
  return first;
}

/**
 * init: the first administrator's own password. Their sign-in password (--password-file,
 * AIRLOCK_PASSWORD) is an explicit choice here: it is the account being created.
 */
export async function initPassword(o: { 'new-password-file'?: string | undefined; 'password-file'?: string | undefined; 'generate-password'?: boolean }, io: CliIo): Promise<string> {
  if (o['generate-password']) throw new UsageError("init: choose the first administrator's password (--new-password-file F, --password-file F, or typed on a terminal)");
  const file = o['new-password-file'] ?? o['password-file'];
  const env = file === undefined ? (io.env.AIRLOCK_NEW_PASSWORD ?? io.env.AIRLOCK_PASSWORD) : undefined;
  if (file === undefined && env === undefined && !io.prompt) {
    throw new UsageError("init needs the first administrator's password: --new-password-file F (or AIRLOCK_NEW_PASSWORD), --password-file F (or AIRLOCK_PASSWORD), or run it on a terminal");
  }
  return newPasswordFrom(file, env, io, 'Password for the first administrator: ');
}

/**
 * Another account's password (users create, enable, reset-password). It comes only from a source
 * meant for it — never from the acting admin's own --password-file/AIRLOCK_PASSWORD, which would
 * hand the new account the admin's password.
 */
export async function accountPassword(o: { 'new-password-file'?: string | undefined; 'generate-password'?: boolean }, io: CliIo, name: string): Promise<{ password: string; generated: boolean }> {
  if (o['generate-password']) {
    if (o['new-password-file'] !== undefined) throw new UsageError('give --generate-password or --new-password-file, not both');
    return { password: oneTimePassword(), generated: true };
  }
  if (o['new-password-file'] === undefined && io.env.AIRLOCK_NEW_PASSWORD === undefined && !io.prompt) {
    throw new InputError(
      `${name}'s new password needs a source: --new-password-file F, AIRLOCK_NEW_PASSWORD, --generate-password ` +
        '(a one-time password, printed once), or a terminal to type it. Your own --password-file/AIRLOCK_PASSWORD is never used for another account.',
    );
  }
  return { password: await newPasswordFrom(o['new-password-file'], io.env.AIRLOCK_NEW_PASSWORD, io, `New password for ${name}: `), generated: false };
}

/** 20 characters from 31 unambiguous ones (about 99 bits), in groups of five for reading aloud. */
const OTP_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
function oneTimePassword(): string {
  const c = Array.from({ length: 20 }, () => OTP_ALPHABET[crypto.randomInt(OTP_ALPHABET.length)]!);
  return [0, 5, 10, 15].map((i) => c.slice(i, i + 5).join('')).join('-');
}

/** What the CLI prints about a generated password: once, here, and nowhere else. */
export function oneTimeNote(pw: { password: string; generated: boolean }, name: string): OneTimeNote {
  if (!pw.generated) return { human: '', json: {} };
  return {
    human: `One-time password for ${name} (shown only now; give it to them privately, they must change it at first sign-in):\n  ${pw.password}\n`,
    json: { oneTimePassword: pw.password },
  };
}

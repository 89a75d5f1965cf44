import { AirlockError } from '../../../shared/domain/errors';

/**
 * The one POSIX shell quoting of Airlock: every value and script put into a command line run by a
 * shell on a host (and in the lab) goes through here. Single quotes protect everything but the
 * single quote itself, which is closed, escaped and reopened (`'\''`). There is no character a
 * quoted value can use to leave its quotes; the only refusals are characters no value of ours may
 * carry at all.
 */
function singleQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A value (a path, a name, a parameter) for a command line. NUL, CR and LF are refused: no value of ours carries one. */
export function shellQuote(s: string): string {
  if (typeof s !== 'string' || /[\0\r\n]/.test(s)) {
    throw new AirlockError('INVALID_INPUT', 'A value sent to a host contains a NUL, CR or newline character.');
  }
  return singleQuote(s);
}

/** A whole script of ours (its own newlines allowed; values in it already quoted) as one word. Only NUL is refused. */
export function shellQuoteScript(script: string): string {
  if (typeof script !== 'string' || script.includes('\0')) {
    throw new AirlockError('INVALID_INPUT', 'A script sent to a host contains a NUL character.');
  }
  return singleQuote(script);
}

/** A script run by /bin/sh whatever the login shell of the account is. */
export function shCommand(script: string): string {
  return `/bin/sh -c ${shellQuoteScript(script)}`;
}

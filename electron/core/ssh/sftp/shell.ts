/** Commands for a host's /bin/sh: values quoted, our own scripts wrapped. */
import { AirlockError } from '../../../../shared/domain/errors';

/**
 * POSIX single-quote escaping for a value put into a shell command on a host. Refuses NUL, CR and
 * LF, which no path or value Airlock sends should contain.
 */
export function shellQuote(s: string): string {
  if (typeof s !== 'string' || /[\0\r\n]/.test(s)) {
    throw new AirlockError('INVALID_INPUT', 'A value sent to a host contains a NUL, CR or newline character.');
  }
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A script of ours (values in it already quoted) as one command, run by /bin/sh whatever the login shell is. */
export function sh(script: string): string {
  if (script.includes('\0')) throw new AirlockError('INTERNAL', 'A host script contains a NUL character.');
  return `/bin/sh -c '${script.replace(/'/g, `'\\''`)}'`;
}

/** Single-quote a multi-line value of ours (Python source) for the shell. */
export function quoteLines(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

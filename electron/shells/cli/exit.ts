import type { ErrorCode } from '../../../shared/domain/errors';

/**
 * The CLI's exit codes, in one place (the help and the README print them from here):
 * - 0: done.
 * - 1: the operation ran and failed, or was refused (a role, a wrong password, a host that did not
 *   answer, a verification that found tampering, a scan with a failed host).
 * - 2: the command was not called right: an unknown command or option, a missing or extra
 *   argument, a bad option value, a file that cannot be used, or input the core refused as
 *   INVALID_INPUT. Nothing ran; fix the command line.
 * - 3: filed for approval (two-person rule): a second person approves, then `airlock approvals execute ID`.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, pending: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * Every error code the core can answer with, and the exit code it gives. A Record over the codes:
 * a new code does not compile until it is placed here.
 */
export const EXIT_FOR_ERROR: Record<ErrorCode, ExitCode> = {
  INVALID_INPUT: EXIT.usage, // the input failed the channel's schema or a check of what the operator gave
  UNAUTHENTICATED: EXIT.failed,
  FORBIDDEN: EXIT.failed,
  UNKNOWN_CHANNEL: EXIT.failed, // the CLI only calls declared channels: a bug, not the operator's mistake
  NOT_FOUND: EXIT.failed,
  CONFLICT: EXIT.failed,
  SETUP_DONE: EXIT.failed,
  SETUP_REQUIRED: EXIT.failed,
  BAD_CREDENTIALS: EXIT.failed,
  WEAK_PASSWORD: EXIT.failed, // the password policy refused it (a refusal, like a role)
  LOCKED_OUT: EXIT.failed,
  TOTP_REQUIRED: EXIT.failed,
  TOTP_ENROLMENT_REQUIRED: EXIT.failed,
  PASSWORD_CHANGE_REQUIRED: EXIT.failed,
  STEP_UP_REQUIRED: EXIT.failed,
  APPROVAL_REQUIRED: EXIT.failed, // without --reason; with it the command files a request and exits 3
  HOST_KEY_CHANGED: EXIT.failed,
  HOST_KEY_MISMATCH: EXIT.failed,
  HOST_KEY_UNCONFIRMED: EXIT.failed, // `hosts add` under --json without --fingerprint: compare, then re-run
  HOST_KEY_REVOKED: EXIT.failed,
  HOST_UNREACHABLE: EXIT.failed,
  SSH_AUTH_FAILED: EXIT.failed,
  SSH_ERROR: EXIT.failed,
  TIMEOUT: EXIT.failed,
  CANCELLED: EXIT.failed,
  AUDIT_UNAVAILABLE: EXIT.failed,
  AUDIT_ALARM: EXIT.failed,
  DB_TOO_NEW: EXIT.failed,
  DATA_DIR_UNSAFE: EXIT.failed,
  PARSE_ERROR: EXIT.failed, // untrusted text (host output, a file's lines) that the core could not parse
  NO_SPACE: EXIT.failed,
  HASH_MISMATCH: EXIT.failed,
  KEY_UNAVAILABLE: EXIT.failed, // the hierarchy is sealed: unseal with officers' shares first
  INTERNAL: EXIT.failed,
};

/** The exit code for an error code; a code the table does not know (a newer core) is a failure. */
export function exitFor(code: string): ExitCode {
  return Object.prototype.hasOwnProperty.call(EXIT_FOR_ERROR, code) ? EXIT_FOR_ERROR[code as ErrorCode] : EXIT.failed;
}

/** The exit codes as the help prints them. */
export function exitHelp(): string {
  const usage = Object.entries(EXIT_FOR_ERROR)
    .filter(([, x]) => x === EXIT.usage)
    .map(([c]) => c);
  return (
    'Exit codes: 0 done; 1 ran and failed, or refused (every error code but the ones below; a failed\n' +
    '            verification; a scan or run with a failed host);\n' +
    `            2 usage or input error (unknown command or option, missing or extra argument, bad value,\n` +
    `            a file that cannot be used, ${usage.join(', ')} from the core): nothing ran;\n` +
    '            3 filed for approval: a second person must approve, then `airlock approvals execute ID`.\n'
  );
}

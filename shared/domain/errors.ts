/**
 * Stable error codes. They cross process boundaries as plain objects
 * `{ code, message }`; callers branch on `code`, people read `message`.
 */
export const ErrorCodes = [
  'UNAUTHENTICATED', // no session, or it expired
  'FORBIDDEN', // the session's roles may not call this channel
  'INVALID_INPUT', // input failed the channel's schema
  'UNKNOWN_CHANNEL',
  'NOT_FOUND',
  'CONFLICT', // e.g. a host name already in use
  'SETUP_DONE', // first-run setup called after an admin exists
  'SETUP_REQUIRED',
  'BAD_CREDENTIALS',
  'WEAK_PASSWORD', // a new password fails the policy (length, user name, common passwords); the message says which rule
  'LOCKED_OUT', // too many failed sign-ins for this user or source; the message says when to retry
  'TOTP_REQUIRED', // the password was right and this user has TOTP: send the code (or a recovery code) too
  'TOTP_ENROLMENT_REQUIRED', // policy requires TOTP for this user's roles: only the totp:* enrolment channels work until done
  'PASSWORD_CHANGE_REQUIRED', // an administrator set this password: only session:changePassword works until the user picks one
  'STEP_UP_REQUIRED', // a sensitive operation: the person confirms their password (+ TOTP) first
  'APPROVAL_REQUIRED', // two-person rule: file the same call with approvals:request; a second person must approve it
  'HOST_KEY_CHANGED', // pinned fingerprint differs: hard refusal
  'HOST_KEY_MISMATCH', // the fingerprint the user confirmed is not what the host presented
  'HOST_KEY_UNCONFIRMED', // no pinned key yet: Airlock will not authenticate to it
  'HOST_KEY_REVOKED', // the key is @revoked in an imported known_hosts: never pinned, never accepted
  'HOST_UNREACHABLE',
  'SSH_AUTH_FAILED',
  'SSH_ERROR',
  'TIMEOUT',
  'CANCELLED',
  'AUDIT_UNAVAILABLE', // the audit event could not be written: the action did not happen
  'AUDIT_ALARM', // the audit chain does not extend its trusted head: writes are refused until an officer acknowledges (audit:acknowledgeAlarm)
  'DB_TOO_NEW',
  'DATA_DIR_UNSAFE', // the data directory (or a file in it) belongs to someone else or is writable by others: refused
  'PARSE_ERROR', // untrusted input (file, host output) could not be parsed
  'NO_SPACE', // the host (or the console) has too little free space for a transfer; nothing was replaced
  'HASH_MISMATCH', // a file's SHA-256 on the host is not the expected one; never reported as success
  'KEY_UNAVAILABLE', // the key hierarchy is sealed (or a key version is below min_decryption_version): the message says what is missing (unseal with officers' shares)
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export interface AirlockErrorShape {
  code: ErrorCode;
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: AirlockErrorShape };

/** An error meant for the user: its message is safe to show and its code is stable. */
export class AirlockError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AirlockError';
  }
  toJSON(): AirlockErrorShape {
    return { code: this.code, message: this.message };
  }
}

export function isErrorShape(x: unknown): x is AirlockErrorShape {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as { code?: unknown }).code === 'string' &&
    (ErrorCodes as readonly string[]).includes((x as { code: string }).code) &&
    typeof (x as { message?: unknown }).message === 'string'
  );
}

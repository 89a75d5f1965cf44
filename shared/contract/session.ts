import { z } from 'zod';
import { channel } from './channel';
import { UserView } from './users';
import { NewPassword, NoInput, Password, RoleSchema, UserName, Empty } from './common';

/** Every signed-in role: the channels anyone with an account may call on their own account. */
const ANY = ['admin', 'officer', 'auditor'] as const;

/** A 6-digit RFC 6238 code from an authenticator app (spaces removed by the UI). */
export const TotpCode = z.string().regex(/^\d{6}$/, '6 digits');
/** A single-use recovery code as shown at enrolment (`xxxx-xxxx-xxxx-xxxx`); case, spaces and dashes are ignored. */
export const RecoveryCode = z.string().min(8).max(64).regex(/^[A-Za-z0-9 -]+$/, 'letters, digits and dashes');

/**
 * Why a signed-in session may call only the channels marked `whileRestricted`:
 * - 'password-change': an administrator set the password; call session:changePassword.
 * - 'totp-enrolment': policy requires TOTP for the user's roles and none is enrolled; call totp:begin, totp:confirm.
 */
export const Restriction = z.enum(['password-change', 'totp-enrolment']);
export type Restriction = z.infer<typeof Restriction>;

/**
 * The lockout rule as applied: after `threshold` wrong passwords (or codes) an account is locked
 * for `baseSeconds`, doubling with each further one up to `maxSeconds`, from every shell; another
 * machine is locked the same way; this machine's failed sign-ins together may come in a burst of
 * `thisMachine.burst`, then one per `thisMachine.everySeconds`.
 */
export const LockoutRule = z.object({
  threshold: z.number().int().positive(),
  baseSeconds: z.number().int().nonnegative(),
  maxSeconds: z.number().int().nonnegative(),
  thisMachine: z.object({ burst: z.number().int().positive(), everySeconds: z.number().int().nonnegative() }),
});
export type LockoutRule = z.infer<typeof LockoutRule>;

/** A one-time sign-in link of the browser console (`session:signInLink`). */
export const SignInLink = z.object({
  /** `http://127.0.0.1:PORT/#token=T`: opens a sign-in page once. */
  url: z.string(),
  expiresAt: z.string(),
});
export type SignInLink = z.infer<typeof SignInLink>;

export const SessionStatus = z.object({
  setupRequired: z.boolean(),
  user: z
    .object({
      name: UserName,
      roles: z.array(RoleSchema),
      restriction: Restriction.nullable(),
      totp: z.object({
        enrolled: z.boolean(),
        /** The policy requires TOTP for one of this user's roles. */
        required: z.boolean(),
        recoveryCodesLeft: z.number().int().nonnegative(),
      }),
      /** Until when sensitive (`stepUp`) channels work without session:stepUp; null = step up first. */
      stepUpUntil: z.string().nullable(),
      /** When the session ends if nothing else is called (idle lock); session:status itself is not activity. */
      lockAt: z.string(),
    })
    .nullable(),
  shell: z.enum(['electron', 'browser', 'cli']),
  version: z.string(),
  /** The core's clock (ISO), so countdowns do not depend on the client's clock. */
  now: z.string(),
  idleMinutes: z.number().int().positive(),
  stepUpMinutes: z.number().int().positive(),
  /** Roles that must use TOTP. Empty only with the lab/test setting AIRLOCK_TOTP_POLICY=off: show a warning. */
  totpPolicy: z.object({ requiredFor: z.array(RoleSchema) }),
  /** The sign-in lockout the core applies (its configured numbers), for the Account page. */
  lockout: LockoutRule,
});
export type SessionStatus = z.infer<typeof SessionStatus>;

export const session = {
  'session:status': channel({
    in: NoInput,
    out: SessionStatus,
    roles: 'public',
    // Asked by the console itself (at start, after a step-up, when the idle lock falls due) and
    // about the caller's own session only: not worth a trail entry; refusals still are.
    audit: 'quiet-read',
    summary: 'Whether first-run setup is needed, who is signed in, restrictions, step-up and idle-lock times',
  }),
  'session:setup': channel({
    in: z.object({ admin: UserName, password: NewPassword }).strict(),
    out: UserView,
    roles: 'public',
    session: 'opens',
    actor: 'admin',
    secret: ['password'],
    summary: 'First run: create the first administrator, the vault and the SSH identity',
  }),
  'session:login': channel({
    in: z
      .object({ name: UserName, password: Password, totp: TotpCode.optional(), recoveryCode: RecoveryCode.optional() })
      .strict(),
    out: UserView,
    roles: 'public',
    target: 'name',
    // Signs the client in: the request names who tries, the outcome the session opened.
    session: 'opens',
    actor: 'name',
    secret: ['password', 'totp', 'recoveryCode'],
    summary: 'Sign in (TOTP_REQUIRED asks for a code; LOCKED_OUT after repeated failures)',
  }),
  'session:logout': channel({
    in: NoInput,
    out: Empty,
    roles: ANY,
    whileRestricted: true,
    summary: 'Sign out and forget the unlocked vault key',
  }),
  'session:signInLink': channel({
    in: NoInput,
    out: SignInLink,
    roles: ANY,
    summary: 'Browser console: a new one-time link (once, 5 minutes) for someone else to sign in beside you',
  }),
  'session:stepUp': channel({
    in: z.object({ password: Password, totp: TotpCode.optional(), recoveryCode: RecoveryCode.optional() }).strict(),
    out: z.object({ stepUpUntil: z.string() }),
    roles: ANY,
    whileRestricted: true,
    secret: ['password', 'totp', 'recoveryCode'],
    summary: 'Re-enter the password (and TOTP code when enrolled) before a sensitive operation',
  }),
  'session:changePassword': channel({
    in: z.object({ oldPassword: Password, newPassword: NewPassword }).strict(),
    out: Empty,
    roles: ANY,
    whileRestricted: true,
    secret: ['oldPassword', 'newPassword'],
    summary: 'Change your own password (re-wraps your vault key slot; ends your other sessions)',
  }),
} as const;

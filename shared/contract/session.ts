import { z } from 'zod';
import { channel } from './channel';
import { NewPassword, NoInput, Password, RoleSchema, UserName, Empty } from './common';

/** Every signed-in role: the channels anyone with an account may call on their own account. */
const ANY = ['admin', 'officer', 'auditor'] as const;

/** A 6-digit RFC 6238 code from an authenticator app (spaces removed by the UI). */
export const TotpCode = z.string().regex(/^\d{6}$/, '6 digits');
/** A single-use recovery code as shown at enrolment (`xxxx-xxxx-xxxx-xxxx`); case, spaces and dashes are ignored. */
export const RecoveryCode = z.string().min(8).max(64).regex(/^[A-Za-z0-9 -]+$/, 'letters, digits and dashes');

export const UserView = z.object({
  name: UserName,
  roles: z.array(RoleSchema).min(1),
  createdAt: z.string(),
  disabled: z.boolean(),
  /** Who created the account (null: first-run setup, or the creator was removed). */
  createdBy: UserName.nullable(),
  totpEnrolled: z.boolean(),
  /** An administrator set the password (creation, reset, re-enable): the user must choose their own at next sign-in. */
  mustChangePassword: z.boolean(),
  lastLoginAt: z.string().nullable(),
  /** Set while sign-in for this user name is locked out after repeated failures (ISO time it ends). */
  lockedUntil: z.string().nullable(),
});
export type UserView = z.infer<typeof UserView>;

/**
 * Why a signed-in session may call only the channels marked `whileRestricted`:
 * - 'password-change': an administrator set the password; call session:changePassword.
 * - 'totp-enrolment': policy requires TOTP for the user's roles and none is enrolled; call totp:begin, totp:confirm.
 */
export const Restriction = z.enum(['password-change', 'totp-enrolment']);
export type Restriction = z.infer<typeof Restriction>;

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
    secret: ['password'],
    summary: 'First run: create the first administrator, the vault and the SSH identity',
  }),
  'session:login': channel({
    in: z
      .object({ name: UserName, password: Password, totp: TotpCode.optional(), recoveryCode: RecoveryCode.optional() })
      .strict(),
    out: UserView,
    roles: 'public',
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

export const TotpEnrolment = z.object({
  /** Base32, shown once: for typing into an authenticator that cannot scan. */
  secret: z.string(),
  /** otpauth://totp/… Key URI. */
  uri: z.string(),
  /** The QR code of `uri`, rendered in the core: an SVG document. */
  qrSvg: z.string(),
  /** The same as `data:image/svg+xml;base64,…` for an <img src> (CSP allows img data:). */
  qrDataUrl: z.string(),
  issuer: z.string(),
  account: z.string(),
  algorithm: z.literal('SHA1'),
  digits: z.literal(6),
  period: z.literal(30),
});
export type TotpEnrolment = z.infer<typeof TotpEnrolment>;

export const RecoveryCodes = z.object({
  /** Ten single-use codes, shown once: each works instead of a TOTP code at sign-in or step-up. */
  recoveryCodes: z.array(z.string()).length(10),
});

export const totp = {
  'totp:begin': channel({
    in: NoInput,
    out: TotpEnrolment,
    roles: ANY,
    whileRestricted: true,
    stepUp: true,
    summary: 'Start TOTP enrolment (or re-enrolment on a new device): a new secret, its URI and QR code',
  }),
  'totp:confirm': channel({
    in: z.object({ code: TotpCode }).strict(),
    out: RecoveryCodes,
    roles: ANY,
    whileRestricted: true,
    secret: ['code'],
    summary: 'Finish TOTP enrolment with a first code; returns ten recovery codes, once',
  }),
  'totp:recoveryCodes': channel({
    in: NoInput,
    out: RecoveryCodes,
    roles: ANY,
    stepUp: true,
    summary: 'Replace your recovery codes with ten new ones (the old ones stop working)',
  }),
  'totp:disable': channel({
    in: NoInput,
    out: Empty,
    roles: ANY,
    stepUp: true,
    summary: 'Remove your TOTP second factor (refused when the policy requires it for your roles)',
  }),
} as const;

const UserRoles = z.array(RoleSchema).min(1).max(3);

export const users = {
  'users:list': channel({
    in: NoInput,
    out: z.array(UserView),
    roles: ['admin'],
    summary: 'List local users',
  }),
  'users:create': channel({
    in: z
      .object({
        name: UserName,
        password: NewPassword,
        roles: UserRoles,
        /** Default true: the user must choose their own password at first sign-in. */
        mustChangePassword: z.boolean().default(true),
      })
      .strict(),
    out: UserView,
    roles: ['admin'],
    secret: ['password'],
    stepUp: true,
    twoPerson: 'users:grantAdmin',
    summary: 'Create a local user with roles (with the admin role: two-person rule)',
  }),
  'users:setRoles': channel({
    in: z.object({ name: UserName, roles: UserRoles }).strict(),
    out: UserView,
    roles: ['admin'],
    stepUp: true,
    twoPerson: 'users:grantAdmin',
    summary: "Replace a user's roles (adding admin: two-person rule; the last enabled admin keeps admin)",
  }),
  'users:disable': channel({
    in: z.object({ name: UserName }).strict(),
    out: UserView,
    roles: ['admin'],
    stepUp: true,
    summary: "Disable a user: ends their sessions and destroys their vault key slot (not the last enabled admin, not yourself)",
  }),
  'users:enable': channel({
    in: z.object({ name: UserName, password: NewPassword }).strict(),
    out: UserView,
    roles: ['admin'],
    secret: ['password'],
    stepUp: true,
    twoPerson: 'users:grantAdmin',
    summary: 'Re-enable a user with a new initial password and a new vault key slot (an admin: two-person rule)',
  }),
  'users:resetPassword': channel({
    in: z.object({ name: UserName, password: NewPassword }).strict(),
    out: UserView,
    roles: ['admin'],
    secret: ['password'],
    stepUp: true,
    summary: "Set another user's password: new vault key slot, their sessions end, they must change it at next sign-in",
  }),
  'users:resetTotp': channel({
    in: z.object({ name: UserName }).strict(),
    out: UserView,
    roles: ['admin'],
    stepUp: true,
    summary: "Remove another user's TOTP and recovery codes (lost device); they enrol again at next sign-in",
  }),
  'users:unlock': channel({
    in: z.object({ name: UserName }).strict(),
    out: UserView,
    roles: ['admin'],
    summary: 'Clear the sign-in lockout of a user name',
  }),
  'users:remove': channel({
    in: z.object({ name: UserName }).strict(),
    out: Empty,
    roles: ['admin'],
    stepUp: true,
    summary: 'Remove a user and destroy their vault key slot (not the last enabled admin, not yourself)',
  }),
} as const;

export const Settings = z.object({
  /** Minutes without a call before a session ends (idle lock). */
  sessionIdleMinutes: z.number().int().min(1).max(1440),
  /** Minutes a sign-in or session:stepUp counts for sensitive (`stepUp`) channels. */
  stepUpMinutes: z.number().int().min(1).max(120),
  /** Read-only here (the installation's config): sign-in lockout after repeated failures. */
  lockout: z.object({ threshold: z.number().int(), baseSeconds: z.number().int(), maxSeconds: z.number().int() }),
  /** Read-only here (the installation's config; AIRLOCK_TOTP_POLICY=off empties it in labs and tests). */
  totpRequiredFor: z.array(RoleSchema),
});
export type Settings = z.infer<typeof Settings>;

export const settings = {
  'settings:get': channel({
    in: NoInput,
    out: Settings,
    roles: ANY,
    summary: 'Identity settings: idle lock, step-up window, lockout and TOTP policy',
  }),
  'settings:set': channel({
    in: z
      .object({
        sessionIdleMinutes: Settings.shape.sessionIdleMinutes.optional(),
        stepUpMinutes: Settings.shape.stepUpMinutes.optional(),
      })
      .strict(),
    out: Settings,
    roles: ['admin'],
    stepUp: true,
    summary: 'Change the idle lock and the step-up window',
  }),
} as const;

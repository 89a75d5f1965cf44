import { z } from 'zod';
import { channel } from './channel';
import { NewPassword, NoInput, Password, RoleSchema, UserName, Empty } from './common';

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
    target: 'name',
    secret: ['password'],
    stepUp: true,
    twoPerson: 'users:grantAdmin',
    summary: 'Create a local user with roles (with the admin role: two-person rule)',
  }),
  'users:setRoles': channel({
    in: z.object({ name: UserName, roles: UserRoles }).strict(),
    out: UserView,
    roles: ['admin'],
    target: 'name',
    stepUp: true,
    twoPerson: 'users:grantAdmin',
    summary: "Replace a user's roles (adding admin: two-person rule; the last enabled admin keeps admin)",
  }),
  'users:disable': channel({
    in: z.object({ name: UserName }).strict(),
    out: UserView,
    roles: ['admin'],
    target: 'name',
    stepUp: true,
    summary: "Disable a user: ends their sessions and destroys their vault key slot (not the last enabled admin, not yourself)",
  }),
  'users:enable': channel({
    in: z.object({ name: UserName, password: NewPassword }).strict(),
    out: UserView,
    roles: ['admin'],
    target: 'name',
    secret: ['password'],
    stepUp: true,
    twoPerson: 'users:grantAdmin',
    summary: 'Re-enable a user with a new initial password and a new vault key slot (an admin: two-person rule)',
  }),
  'users:resetPassword': channel({
    in: z.object({ name: UserName, password: NewPassword }).strict(),
    out: UserView,
    roles: ['admin'],
    target: 'name',
    secret: ['password'],
    stepUp: true,
    summary: "Set another user's password: new vault key slot, their sessions end, they must change it at next sign-in",
  }),
  'users:resetTotp': channel({
    in: z.object({ name: UserName }).strict(),
    out: UserView,
    roles: ['admin'],
    target: 'name',
    stepUp: true,
    summary: "Remove another user's TOTP and recovery codes (lost device); they enrol again at next sign-in",
  }),
  'users:unlock': channel({
    in: z.object({ name: UserName }).strict(),
    out: UserView,
    roles: ['admin'],
    target: 'name',
    summary: 'Clear the sign-in lockout of a user name',
  }),
  'users:remove': channel({
    in: z.object({ name: UserName }).strict(),
    out: Empty,
    roles: ['admin'],
    target: 'name',
    stepUp: true,
    summary: 'Remove a user and destroy their vault key slot (not the last enabled admin, not yourself)',
  }),
} as const;

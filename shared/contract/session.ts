import { z } from 'zod';
import { channel } from './channel';
import { NewPassword, NoInput, Password, RoleSchema, UserName, Empty } from './common';

export const UserView = z.object({
  name: UserName,
  roles: z.array(RoleSchema).min(1),
  createdAt: z.string(),
  disabled: z.boolean(),
});
export type UserView = z.infer<typeof UserView>;

export const SessionStatus = z.object({
  setupRequired: z.boolean(),
  user: z.object({ name: UserName, roles: z.array(RoleSchema) }).nullable(),
  shell: z.enum(['electron', 'browser', 'cli']),
  version: z.string(),
});
export type SessionStatus = z.infer<typeof SessionStatus>;

export const session = {
  'session:status': channel({
    in: NoInput,
    out: SessionStatus,
    roles: 'public',
    summary: 'Whether first-run setup is needed and who is signed in',
  }),
  'session:setup': channel({
    in: z.object({ admin: UserName, password: NewPassword }).strict(),
    out: UserView,
    roles: 'public',
    secret: ['password'],
    summary: 'First run: create the first administrator, the vault and the SSH identity',
  }),
  'session:login': channel({
    in: z.object({ name: UserName, password: Password }).strict(),
    out: UserView,
    roles: 'public',
    secret: ['password'],
    summary: 'Sign in',
  }),
  'session:logout': channel({
    in: NoInput,
    out: Empty,
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Sign out and forget the unlocked vault key',
  }),
} as const;

export const users = {
  'users:list': channel({
    in: NoInput,
    out: z.array(UserView),
    roles: ['admin'],
    summary: 'List local users',
  }),
  'users:create': channel({
    in: z.object({ name: UserName, password: NewPassword, roles: z.array(RoleSchema).min(1).max(3) }).strict(),
    out: UserView,
    roles: ['admin'],
    secret: ['password'],
    summary: 'Create a local user with roles',
  }),
} as const;

import { z } from 'zod';
import { channel } from './channel';
import { NoInput, RoleSchema } from './common';

/** Every signed-in role: the channels anyone with an account may call on their own account. */
const ANY = ['admin', 'officer', 'auditor'] as const;

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

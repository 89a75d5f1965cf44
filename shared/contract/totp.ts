import { z } from 'zod';
import { channel } from './channel';
import { NoInput, Empty } from './common';
import { TotpCode } from './session';

/** Every signed-in role: the channels anyone with an account may call on their own account. */
const ANY = ['admin', 'officer', 'auditor'] as const;

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

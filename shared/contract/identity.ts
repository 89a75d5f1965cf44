import { z } from 'zod';
import { channel } from './channel';
import { Fingerprint, NoInput } from './common';

export const identity = {
  'identity:show': channel({
    in: NoInput,
    out: z.object({
      publicKey: z.string(),
      fingerprint: Fingerprint,
      agent: z.object({ available: z.boolean(), socket: z.string().nullable() }),
    }),
    roles: ['admin', 'officer', 'auditor'],
    summary: "Airlock's SSH public key in authorized_keys format",
  }),
} as const;

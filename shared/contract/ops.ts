import { z } from 'zod';
import { channel } from './channel';
import { RequestId } from './common';

export const ops = {
  'ops:cancel': channel({
    in: z.object({ requestId: RequestId }).strict(),
    out: z.object({ cancelled: z.boolean() }),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'Cancel a running operation started by this session',
  }),
} as const;

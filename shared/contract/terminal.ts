import { z } from 'zod';
import { channel, event } from './channel';
import { HostName, Empty } from './common';

const TermId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const Cols = z.number().int().min(2).max(1000);
const Rows = z.number().int().min(2).max(1000);

export const terminal = {
  'terminal:open': channel({
    in: z.object({ host: HostName, cols: Cols.default(80), rows: Rows.default(24) }).strict(),
    out: z.object({ id: TermId, fingerprint: z.string() }),
    roles: ['admin'],
    target: 'host',
    summary: 'Open a PTY shell on a host (only after its pinned host key matches)',
  }),
  'terminal:input': channel({
    in: z.object({ id: TermId, data: z.string().max(65536) }).strict(),
    out: Empty,
    roles: ['admin'],
    target: 'id',
    audit: 'io',
    secret: ['data'],
    summary: 'Keystrokes to an open terminal (not audited one by one: the session is)',
  }),
  'terminal:resize': channel({
    in: z.object({ id: TermId, cols: Cols, rows: Rows }).strict(),
    out: Empty,
    roles: ['admin'],
    target: 'id',
    audit: 'io',
    summary: 'Resize an open terminal',
  }),
  'terminal:close': channel({
    in: z.object({ id: TermId }).strict(),
    out: Empty,
    roles: ['admin'],
    target: 'id',
    summary: 'Close a terminal',
  }),
} as const;

export const terminalEvents = {
  'terminal:data': event({
    payload: z.object({ id: TermId, data: z.string() }),
    summary: 'Bytes from the PTY (UTF-8)',
    // A slow client pauses the terminal's SSH channel: no byte is lost, none piles up.
    flow: 'pause',
  }),
  'terminal:exit': event({
    payload: z.object({ id: TermId, code: z.number().int().nullable(), reason: z.string().nullable() }),
    summary: 'The terminal closed',
  }),
} as const;

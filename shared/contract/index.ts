import type { z } from 'zod';
import { approvals, approvalsEvents } from './approvals';
import { audit, auditEvents } from './audit';
import type { ChannelDef } from './channel';
import { hosts, identity } from './hosts';
import { provision, provisionEvents } from './provision';
import { session, settings, totp, users } from './session';
import { terminal, terminalEvents } from './terminal';

/** The whole contract: every operation any shell may ask the core for. */
export const channels = {
  ...session,
  ...totp,
  ...users,
  ...settings,
  ...approvals,
  ...identity,
  ...hosts,
  ...terminal,
  ...audit,
  ...provision,
} as const;

export const events = {
  ...terminalEvents,
  ...auditEvents,
  ...provisionEvents,
  ...approvalsEvents,
} as const;

export type Channels = typeof channels;
export type ChannelName = keyof Channels;
export type EventName = keyof typeof events;
export type In<C extends ChannelName> = z.input<Channels[C]['in']>;
export type Out<C extends ChannelName> = z.output<Channels[C]['out']>;
export type EventPayload<E extends EventName> = z.output<(typeof events)[E]['payload']>;

export const channelNames = Object.keys(channels) as ChannelName[];

export function isChannelName(x: unknown): x is ChannelName {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(channels, x);
}

export function getChannel(name: ChannelName): ChannelDef {
  return channels[name] as unknown as ChannelDef;
}

/** The area of a channel: 'hosts:add' → 'hosts'. Per-area client objects are built from it. */
export function areaOf(name: string): string {
  return name.slice(0, name.indexOf(':'));
}

export { channel, event } from './channel';
export type { ChannelDef, EventDef } from './channel';

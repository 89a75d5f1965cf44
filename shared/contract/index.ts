import type { z } from 'zod';
import { enclaves, grants, policy, principals } from './access';
import { approvals, approvalsEvents } from './approvals';
import { audit, auditEvents } from './audit';
import type { ChannelDef } from './channel';
import { attest } from './attest';
import { hosts } from './hosts';
import { identity } from './identity';
import { keys } from './keys';
import { datasets } from './datasets';
import { models } from './models';
import { ops } from './ops';
import { provision, provisionEvents } from './provision';
import { session } from './session';
import { settings } from './settings';
import { store } from './store';
import { terminal, terminalEvents } from './terminal';
import { totp } from './totp';
import { users } from './users';

/** The whole contract: every operation any shell may ask the core for. */
export const channels = {
  ...session,
  ...totp,
  ...users,
  ...settings,
  ...approvals,
  ...identity,
  ...hosts,
  ...ops,
  ...terminal,
  ...audit,
  ...provision,
  ...store,
  ...attest,
  ...keys,
  ...datasets,
  ...models,
  ...principals,
  ...grants,
  ...enclaves,
  ...policy,
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

import type { Result } from '../domain/errors';
import { channelNames, type ChannelName, type EventName, type EventPayload, type In, type Out } from './index';

/**
 * A transport moves one call to the core and back. Electron's preload and the
 * browser shell's HTTP bridge each provide one; the typed client on top is the same.
 */
export interface Transport {
  call(channel: ChannelName, input: unknown): Promise<Result<unknown>>;
  subscribe(event: EventName, listener: (payload: unknown) => void): () => void;
}

type AreaOf<C extends string> = C extends `${infer A}:${string}` ? A : never;
type VerbOf<C extends string> = C extends `${string}:${infer V}` ? V : never;

/** `client.hosts.add({...})` for `'hosts:add'`, typed from the contract. */
export type Client = {
  [A in AreaOf<ChannelName>]: {
    [C in ChannelName as AreaOf<C> extends A ? VerbOf<C> : never]: (input: In<C>) => Promise<Result<Out<C>>>;
  };
} & {
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void;
};

export function createClient(transport: Transport): Client {
  const client: Record<string, Record<string, unknown>> = {};
  for (const name of channelNames) {
    const [area, verb] = name.split(':') as [string, string];
    client[area] ??= {};
    client[area][verb] = (input: unknown) => transport.call(name, input ?? {});
  }
  (client as unknown as { on: unknown }).on = (event: EventName, listener: (p: unknown) => void) =>
    transport.subscribe(event, listener);
  return client as unknown as Client;
}

/**
 * The API the preload exposes as `window.airlock` (checklist 20).
 *
 * Built from the contract's channel table: one function per channel, grouped by
 * area (`api.hosts.add(input)`), plus `on(event, listener)` for declared events.
 * Never `ipcRenderer`, never a generic `invoke(channel)`: a page that is
 * compromised (an HTML injection from host output, say) can only call what the
 * contract declares, and the core checks session, role and input again anyway.
 * The preload itself checks nothing the core does not check again.
 */
import type { Client } from '../../shared/contract/client';
import { channelNames, events } from '../../shared/contract/index';
import { IPC_ACK, IPC_CALL, IPC_EVENT, type EventEnvelope } from './ipc-channels';

/** The slice of `ipcRenderer` the API needs; a fake in tests. */
export interface IpcLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  send(channel: string, ...args: unknown[]): void;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

type Listener = (payload: unknown) => void;

export function buildApi(
  ipc: IpcLike,
  names: readonly string[] = channelNames,
  eventNames: readonly string[] = Object.keys(events),
): Client {
  const api: Record<string, unknown> = {};
  const areas: Record<string, Record<string, (input?: unknown) => Promise<unknown>>> = {};
  for (const name of names) {
    const colon = name.indexOf(':');
    const area = name.slice(0, colon);
    const verb = name.slice(colon + 1);
    if (colon <= 0 || verb === '' || area === 'on') throw new Error(`bad channel name in the contract: ${name}`);
    const group = (areas[area] ??= {});
    group[verb] = (input?: unknown) =>
      ipc.invoke(IPC_CALL, name, input === undefined ? {} : input).catch((e: unknown) => ({
        ok: false,
        error: { code: 'INTERNAL', message: `IPC failed: ${e instanceof Error ? e.message : String(e)}` },
      }));
  }
  for (const [area, group] of Object.entries(areas)) api[area] = Object.freeze(group);

  // One IPC listener for all events, attached for the page's life: every envelope is acknowledged
  // (IPC_ACK) once the page's listeners have had it, listened to or not, so the main process can
  // count what is in flight (IPC has no backpressure of its own). The IpcRendererEvent is never
  // handed to the page: its `sender` is ipcRenderer.
  const declared = new Set(eventNames);
  const listeners = new Map<string, Set<Listener>>();
  const ack = (seq: unknown) => {
    if (typeof seq === 'number') ipc.send(IPC_ACK, seq);
  };
  const onEnvelope = (_event: unknown, envelope: unknown): void => {
    if (typeof envelope !== 'object' || envelope === null) return;
    const { event, payload, seq } = envelope as Partial<EventEnvelope>;
    if (typeof event !== 'string') return ack(seq);
    const set = listeners.get(event);
    if (!set) return ack(seq);
    for (const l of [...set]) {
      try {
        l(payload);
      } catch (e) {
        console.error(`airlock: listener for ${event} failed`, e);
      }
    }
    ack(seq);
  };
  ipc.on(IPC_EVENT, onEnvelope);
  // A new page: whatever was sent to the one before it will never be acknowledged.
  ipc.send(IPC_ACK, null);

  api.on = (event: unknown, listener: unknown): (() => void) => {
    if (typeof event !== 'string' || !declared.has(event)) throw new TypeError(`airlock: unknown event ${String(event)}`);
    if (typeof listener !== 'function') throw new TypeError('airlock: listener must be a function');
    const l = listener as Listener;
    let set = listeners.get(event);
    if (!set) listeners.set(event, (set = new Set()));
    set.add(l);
    return () => {
      set.delete(l);
    };
  };

  return Object.freeze(api) as unknown as Client;
}

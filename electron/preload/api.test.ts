import { describe, expect, it, vi } from 'vitest';
import { channelNames, events } from '../../shared/contract/index';
import { buildApi, type IpcLike } from './api';
import { IPC_ACK, IPC_CALL, IPC_EVENT } from './ipc-channels';

type L = (event: unknown, ...args: unknown[]) => void;

function fakeIpc(answer: () => Promise<unknown> = async () => ({ ok: true, value: 1 })) {
  const listeners = new Map<string, L[]>();
  const invoked: unknown[][] = [];
  const acks: unknown[] = [];
  const ipc = {
    invoked,
    acks,
    invoke(...args: unknown[]): Promise<unknown> {
      invoked.push(args);
      return answer();
    },
    send(channel: string, ...args: unknown[]): void {
      if (channel === IPC_ACK) acks.push(args[0]);
      else throw new Error(`unexpected send on ${channel}`);
    },
    on(channel: string, l: L): void {
      listeners.set(channel, [...(listeners.get(channel) ?? []), l]);
    },
    removeListener(channel: string, l: L): void {
      listeners.set(channel, (listeners.get(channel) ?? []).filter((x) => x !== l));
    },
    fire(channel: string, ...args: unknown[]): void {
      // Electron passes an IpcRendererEvent whose `sender` is ipcRenderer itself.
      for (const l of listeners.get(channel) ?? []) l({ sender: ipc, ports: [] }, ...args);
    },
    listenerCount(channel: string): number {
      return listeners.get(channel)?.length ?? 0;
    },
  };
  return ipc;
}

const ev = Object.keys(events)[0] as keyof typeof events;

describe('buildApi', () => {
  it('has one function per contract channel, by area, and nothing generic', () => {
    const api = buildApi(fakeIpc() as IpcLike) as unknown as Record<string, Record<string, unknown>>;
    const areas = new Set(channelNames.map((n) => n.split(':')[0]!));
    expect(new Set(Object.keys(api))).toEqual(new Set([...areas, 'on']));
    for (const name of channelNames) {
      const [area, verb] = name.split(':') as [string, string];
      expect(typeof api[area]![verb], name).toBe('function');
    }
    expect(Object.isFrozen(api)).toBe(true);
    for (const area of areas) expect(Object.isFrozen(api[area])).toBe(true);
  });

  it('invokes the call channel with the channel name and the input ({} when omitted)', async () => {
    const ipc = fakeIpc();
    const api = buildApi(ipc as IpcLike) as unknown as {
      session: { status(i?: unknown): Promise<unknown> };
      terminal: { input(i: unknown): Promise<unknown> };
    };
    await expect(api.session.status()).resolves.toEqual({ ok: true, value: 1 });
    await api.terminal.input({ id: 't', data: 'ls\n' });
    expect(ipc.invoked).toEqual([
      [IPC_CALL, 'session:status', {}],
      [IPC_CALL, 'terminal:input', { id: 't', data: 'ls\n' }],
    ]);
  });

  it('turns an IPC failure into a Result instead of a rejection', async () => {
    const api = buildApi(
      fakeIpc(async () => {
        throw new Error('An object could not be cloned.');
      }) as IpcLike,
    ) as unknown as { hosts: { list(): Promise<unknown> } };
    await expect(api.hosts.list()).resolves.toEqual({ ok: false, error: { code: 'INTERNAL', message: 'IPC failed: An object could not be cloned.' } });
  });

  it('refuses a channel table that would shadow on() or lacks an area', () => {
    expect(() => buildApi(fakeIpc() as IpcLike, ['on:x'])).toThrow();
    expect(() => buildApi(fakeIpc() as IpcLike, ['nocolon'])).toThrow();
  });

  it('delivers only the payload of the subscribed event, and unsubscribes', () => {
    const ipc = fakeIpc();
    const api = buildApi(ipc as IpcLike);
    const a: unknown[][] = [];
    const b: unknown[][] = [];
    const offA = api.on(ev, (...args: unknown[]) => a.push(args));
    api.on(ev, (...args: unknown[]) => b.push(args));
    expect(ipc.listenerCount(IPC_EVENT)).toBe(1);
    ipc.fire(IPC_EVENT, { event: ev, payload: { n: 1 } });
    ipc.fire(IPC_EVENT, { event: 'other:event', payload: { n: 2 } });
    ipc.fire(IPC_EVENT, 'garbage');
    ipc.fire(IPC_EVENT, null);
    expect(a).toEqual([[{ n: 1 }]]);
    offA();
    offA();
    ipc.fire(IPC_EVENT, { event: ev, payload: { n: 3 } });
    expect(a).toHaveLength(1);
    expect(b).toEqual([[{ n: 1 }], [{ n: 3 }]]);
  });

  it('acknowledges every envelope, listened to or not, after its listeners had it (the main side counts what is in flight)', () => {
    const ipc = fakeIpc();
    const api = buildApi(ipc as IpcLike);
    // A new page first says nothing sent before it will be acknowledged.
    expect(ipc.acks).toEqual([null]);
    expect(ipc.listenerCount(IPC_EVENT)).toBe(1);
    const got: unknown[] = [];
    const off = api.on(ev, (p) => got.push([p, ipc.acks.length]));
    ipc.fire(IPC_EVENT, { event: ev, payload: 1, seq: 1 });
    off();
    ipc.fire(IPC_EVENT, { event: ev, payload: 2, seq: 2 });
    ipc.fire(IPC_EVENT, { event: 'made:up', payload: 3, seq: 3 });
    ipc.fire(IPC_EVENT, { event: ev, payload: 4 });
    // The listener ran before its envelope was acknowledged; one IPC listener stays, for the acks.
    expect(got).toEqual([[1, 1]]);
    expect(ipc.acks).toEqual([null, 1, 2, 3]);
    expect(ipc.listenerCount(IPC_EVENT)).toBe(1);
  });

  it('a throwing listener does not stop the others', () => {
    const ipc = fakeIpc();
    const api = buildApi(ipc as IpcLike);
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    const good: unknown[] = [];
    api.on(ev, () => {
      throw new Error('boom');
    });
    api.on(ev, (p) => good.push(p));
    ipc.fire(IPC_EVENT, { event: ev, payload: 1 });
    expect(good).toEqual([1]);
    spy.mockRestore();
  });

  it('refuses undeclared events and non-function listeners', () => {
    const api = buildApi(fakeIpc() as IpcLike) as unknown as { on(e: unknown, l: unknown): unknown };
    expect(() => api.on('ipc:anything', () => {})).toThrow(TypeError);
    expect(() => api.on('__proto__', () => {})).toThrow(TypeError);
    expect(() => api.on(ev, 'not a function')).toThrow(TypeError);
  });
});

import { describe, expect, it, vi } from 'vitest';
import { channelNames } from '../../shared/contract/index';

// The preload entry imports 'electron', which cannot load here: replace it with a
// recording fake of the two objects the entry uses.
const fake = vi.hoisted(() => {
  const exposed: Array<{ key: string; api: unknown }> = [];
  const calls: string[] = [];
  const ipcRenderer = {
    invoke: async (...args: unknown[]) => {
      calls.push(`invoke ${JSON.stringify(args)}`);
      return { ok: true, value: null };
    },
    on: () => {},
    removeListener: () => {},
    send: (...args: unknown[]) => calls.push(`send ${JSON.stringify(args)}`),
    sendSync: () => calls.push('sendSync'),
  };
  return { exposed, calls, ipcRenderer };
});

vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => fake.exposed.push({ key, api }) },
  ipcRenderer: fake.ipcRenderer,
}));

describe('the preload entry', () => {
  it('exposes exactly one global, window.airlock, shaped by the contract', async () => {
    await import('./preload');
    expect(fake.exposed.map((e) => e.key)).toEqual(['airlock']);
    const api = fake.exposed[0]!.api as Record<string, unknown>;
    const names = Object.entries(api).flatMap(([area, v]) =>
      typeof v === 'function' ? [area] : Object.keys(v as object).map((verb) => `${area}:${verb}`),
    );
    expect(names.sort()).toEqual([...channelNames, 'on'].sort());
    expect(Object.values(api)).not.toContain(fake.ipcRenderer);
    await (api.hosts as { list(): Promise<unknown> }).list();
    // The one `send`: the new page's acknowledgement on the ack channel (ipc-channels.ts), no other.
    expect(fake.calls).toEqual(['send ["airlock:ack",null]', 'invoke ["airlock:call","hosts:list",{}]']);
  });
});

import { describe, expect, it } from 'vitest';
import { channelNames, events } from '../../shared/contract/index';
import { IPC_ACK, IPC_CALL, IPC_EVENT } from '../preload/ipc-channels';
import { createCallHandler, registerAcks, registerIpc, toPlainResult, windowEvents, type InvokeEventLike } from './ipc';
import { FakeContents, FakeFrame, fakeCore } from './fixtures/electron-fakes';

const quiet = (): void => {};

function setup() {
  const core = fakeCore();
  const contents = new FakeContents();
  contents.commit('app://airlock/index.html');
  const client = core.newClient({ shell: 'electron', source: `electron:window-${contents.id}` });
  const handler = createCallHandler({ core, clientFor: (id) => (id === contents.id ? client : undefined), log: quiet });
  const event = (frame: FakeFrame | null = contents.mainFrame) => ({ senderFrame: frame, sender: contents }) as unknown as InvokeEventLike;
  return { core, contents, client, handler, event };
}

describe('createCallHandler', () => {
  it("dispatches with the window's own client, the channel and the input untouched", async () => {
    const { core, client, handler, event } = setup();
    const input = { name: 'gpu-1', address: '10.0.0.1', fingerprint: 'SHA256:x' };
    await expect(handler(event(), 'hosts:add', input)).resolves.toEqual({ ok: true, value: { pong: true } });
    expect(core.dispatched).toEqual([{ client, channel: 'hosts:add', input }]);
  });

  it('accepts a second wrapper object of the same main frame', async () => {
    const { core, contents, handler, event } = setup();
    await expect(handler(event(contents.mainFrame.alias()), 'hosts:list', {})).resolves.toMatchObject({ ok: true });
    expect(core.dispatched).toHaveLength(1);
  });

  it('refuses channels the contract does not declare, without dispatching', async () => {
    const { core, handler, event } = setup();
    for (const channel of ['hosts:nope', 'constructor', '__proto__', 'toString', '', 42, null, undefined, { toString: () => 'hosts:list' }]) {
      const r = await handler(event(), channel, {});
      expect(r, String(channel)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });
    }
    expect(core.dispatched).toHaveLength(0);
  });

  it('checks the sender before the channel (a foreign frame learns nothing about channel names)', async () => {
    const { handler } = setup();
    const r = await handler({ senderFrame: new FakeFrame('https://evil.example/'), sender: new FakeContents() } as unknown as InvokeEventLike, 'nope', {});
    expect(r).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });

  it('refuses after the window navigated away from the app origin', async () => {
    const { core, contents, handler, event } = setup();
    contents.commit('https://evil.example/');
    expect(await handler(event(), 'hosts:list', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(core.dispatched).toHaveLength(0);
  });

  it('never throws: a throwing core becomes INTERNAL without its message or stack', async () => {
    const { core, handler, event } = setup();
    core.next = async () => {
      throw new Error('ENOENT /home/admin/.config/Airlock/airlock.db');
    };
    const r = await handler(event(), 'hosts:list', {});
    expect(r).toEqual({ ok: false, error: { code: 'INTERNAL', message: expect.any(String) } });
    expect(JSON.stringify(r)).not.toContain('/home/admin');
  });

  it('passes core errors through as plain {code, message}', async () => {
    const { core, handler, event } = setup();
    const err = Object.assign(new Error('Wrong name or password'), { code: 'BAD_CREDENTIALS' });
    core.next = { ok: false, error: err as unknown as { code: 'BAD_CREDENTIALS'; message: string } };
    const r = await handler(event(), 'session:login', { name: 'a', password: 'b' });
    expect(r).toEqual({ ok: false, error: { code: 'BAD_CREDENTIALS', message: 'Wrong name or password' } });
    expect(Object.getPrototypeOf((r as { error: object }).error)).toBe(Object.prototype);
    expect(r).not.toHaveProperty('error.stack');
  });
});

describe('toPlainResult', () => {
  it('keeps ok values and flattens known errors', () => {
    expect(toPlainResult({ ok: true, value: [1] }, quiet)).toEqual({ ok: true, value: [1] });
    expect(toPlainResult({ ok: false, error: { code: 'FORBIDDEN', message: 'no', extra: 1 } }, quiet)).toEqual({ ok: false, error: { code: 'FORBIDDEN', message: 'no' } });
  });
  it('turns anything malformed into INTERNAL', () => {
    for (const bad of [undefined, null, 'ok', new Error('x'), { ok: false, error: { code: 'MADE_UP', message: 'x' } }, { ok: false, error: 'x' }, { ok: 'yes' }]) {
      expect(toPlainResult(bad, quiet)).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
    }
  });
});

describe('registerIpc', () => {
  it('registers the handler on the call channel and can remove it', () => {
    const handlers = new Map<string, unknown>();
    const ipcMain = {
      handle: (c: string, h: unknown) => void handlers.set(c, h),
      removeHandler: (c: string) => void handlers.delete(c),
    };
    const { handler } = setup();
    const undo = registerIpc(ipcMain as never, handler);
    expect([...handlers.keys()]).toEqual([IPC_CALL]);
    undo();
    expect(handlers.size).toBe(0);
  });
});

describe('windowEvents', () => {
  const declared = Object.keys(events)[0]!;
  it('sends declared events in a numbered envelope on the event channel', () => {
    const c = new FakeContents();
    c.commit('app://airlock/index.html');
    const w = windowEvents(c, undefined, quiet);
    w.send(declared, { id: 't', data: 'x' });
    w.send(declared, { id: 't', data: 'y' });
    expect(c.sent).toEqual([
      { channel: IPC_EVENT, args: [{ event: declared, payload: { id: 't', data: 'x' }, seq: 1 }] },
      { channel: IPC_EVENT, args: [{ event: declared, payload: { id: 't', data: 'y' }, seq: 2 }] },
    ]);
  });
  it('drops undeclared events, destroyed windows and foreign pages', () => {
    const c = new FakeContents();
    c.commit('app://airlock/index.html');
    windowEvents(c, undefined, quiet).send(channelNames[0]!, {});
    windowEvents(c, undefined, quiet).send('made:up', {});
    const foreign = new FakeContents();
    foreign.commit('https://evil.example/');
    windowEvents(foreign, undefined, quiet).send(declared, { secret: 1 });
    const gone = new FakeContents();
    gone.commit('app://airlock/index.html');
    gone.destroyed = true;
    windowEvents(gone, undefined, quiet).send(declared, {});
    expect([...c.sent, ...foreign.sent, ...gone.sent]).toEqual([]);
  });
  it('counts the bytes in flight until the preload acknowledges them (IPC has no backpressure of its own)', () => {
    const c = new FakeContents();
    c.commit('app://airlock/index.html');
    const w = windowEvents(c, undefined, quiet);
    const data = 'x'.repeat(1000);
    for (let i = 0; i < 10; i++) w.send('terminal:data', { id: 't', data });
    expect(w.buffered()).toBeGreaterThan(10 * 1000);
    w.ack(4);
    expect(w.buffered()).toBeGreaterThan(6 * 1000);
    expect(w.buffered()).toBeLessThan(7 * 1000);
    // Nonsense acks change nothing; an old seq again changes nothing.
    for (const bad of ['9', {}, undefined, NaN, 2]) w.ack(bad);
    expect(w.buffered()).toBeGreaterThan(6 * 1000);
    w.ack(10);
    expect(w.buffered()).toBe(0);
    // A reloaded page never acknowledges what the old one had in flight: it says so (null).
    w.send('terminal:data', { id: 't', data });
    w.ack(null);
    expect(w.buffered()).toBe(0);
  });
  it("takes acks from the app's own main frame only", () => {
    const { contents, event } = setup();
    const w = windowEvents(contents, undefined, quiet);
    const listeners = new Map<string, (e: unknown, ...a: unknown[]) => void>();
    const ipcMain = { on: (ch: string, l: (e: unknown, ...a: unknown[]) => void) => listeners.set(ch, l), removeListener: (ch: string) => listeners.delete(ch) };
    const undo = registerAcks(ipcMain as never, { eventsFor: (id) => (id === contents.id ? w : undefined) });
    w.send('terminal:data', { id: 't', data: 'x'.repeat(100) });
    const ack = listeners.get(IPC_ACK)!;
    ack(event(null), 1);
    ack(event(new FakeFrame('https://evil.example/')), 1);
    expect(w.buffered()).toBeGreaterThan(100);
    ack(event(), 1);
    expect(w.buffered()).toBe(0);
    undo();
    expect(listeners.size).toBe(0);
  });
});

/**
 * SECURITY-CRITICAL: the one IPC entry point of the Electron shell (checklist 17).
 *
 * The renderer is untrusted. Every call is checked, in this order, before the core
 * sees it: the sender is a live main frame showing app://airlock (not an iframe,
 * not a page that somehow navigated away), it is the main frame of a window this
 * shell created, and the channel is one the contract declares. Then the core's
 * dispatcher does its own checks (session, role, input schema, audit).
 *
 * Nothing throws through IPC: Electron would serialise the error with its message
 * (paths, internals) and drop its type. Every outcome is a plain `Result`.
 */
import type { IpcMain, WebContents, WebFrameMain } from 'electron';
import { events, isChannelName } from '../../shared/contract/index';
import { isErrorShape, type ErrorCode, type Result } from '../../shared/domain/errors';
import { IPC_ACK, IPC_CALL, IPC_EVENT, type EventEnvelope } from '../preload/ipc-channels';
import type { ClientContext, Core } from '../core/types';
import { APP_ORIGIN, isTrustedSender, originOf, type FrameLike, type Log } from './hardening';

type FrameRef = FrameLike & { readonly processId?: WebFrameMain['processId']; readonly routingId?: WebFrameMain['routingId'] };

/** What the handler reads from an `IpcMainInvokeEvent`. */
export interface InvokeEventLike {
  readonly senderFrame: FrameRef | null;
  readonly sender: { readonly id: number; readonly mainFrame: FrameRef };
}

export interface CallHandlerDeps {
  core: Pick<Core, 'dispatch'>;
  /** The ClientContext of a window this shell created, by its webContents id. */
  clientFor(webContentsId: number): ClientContext | undefined;
  appOrigin?: string;
  log?: Log;
}

export type CallHandler = (event: InvokeEventLike, channel: unknown, input: unknown) => Promise<Result<unknown>>;

function fail(code: ErrorCode, message: string): Result<never> {
  return { ok: false, error: { code, message } };
}

/** The same frame, even if Electron hands out two wrapper objects for it. */
function sameFrame(a: FrameRef, b: FrameRef): boolean {
  if (a === b) return true;
  return a.processId !== undefined && a.routingId !== undefined && a.processId === b.processId && a.routingId === b.routingId;
}

/**
 * Flatten whatever the core returned into a plain `{ok, value} | {ok: false, error: {code, message}}`:
 * only `code` and `message` cross, never a stack or an Error instance.
 */
export function toPlainResult(r: unknown, log: Log = console.error): Result<unknown> {
  if (typeof r === 'object' && r !== null && 'ok' in r) {
    const res = r as { ok: unknown; value?: unknown; error?: unknown };
    if (res.ok === true) return { ok: true, value: res.value };
    if (res.ok === false && isErrorShape(res.error)) return fail(res.error.code, res.error.message);
  }
  log(`airlock: the core returned a malformed result: ${describe(r)}`);
  return fail('INTERNAL', 'The core returned a malformed result; see the console log');
}

function describe(x: unknown): string {
  if (x instanceof Error) return x.stack ?? x.message;
  try {
    return JSON.stringify(x)?.slice(0, 500) ?? String(x);
  } catch {
    return String(x);
  }
}

export function createCallHandler(deps: CallHandlerDeps): CallHandler {
  const appOrigin = deps.appOrigin ?? APP_ORIGIN;
  const log = deps.log ?? ((m: string) => console.warn(`[airlock:security] ${m}`));
  return async (event, channel, input) => {
    try {
      const frame = event.senderFrame;
      if (!isTrustedSender(frame, appOrigin) || frame === null) {
        log(`IPC refused: sender frame ${safeUrl(frame)} is not the app's main frame`);
        return fail('FORBIDDEN', 'IPC refused: the sender is not the Airlock window');
      }
      if (!sameFrame(frame, event.sender.mainFrame)) {
        log('IPC refused: sender frame is not the main frame of its window');
        return fail('FORBIDDEN', 'IPC refused: the sender is not the Airlock window');
      }
      const client = deps.clientFor(event.sender.id);
      if (!client) {
        log(`IPC refused: webContents ${event.sender.id} is not a window Airlock created`);
        return fail('FORBIDDEN', 'IPC refused: the sender is not the Airlock window');
      }
      if (!isChannelName(channel)) {
        return fail('UNKNOWN_CHANNEL', `Unknown channel: ${typeof channel === 'string' ? channel.slice(0, 64) : typeof channel}`);
      }
      return toPlainResult(await deps.core.dispatch(client, channel, input), log);
    } catch (e) {
      // The details stay in the main process's log; the renderer gets a code.
      log(`IPC call failed: ${describe(e)}`);
      return fail('INTERNAL', 'Internal error; see the console log');
    }
  };
}

function safeUrl(frame: FrameLike | null): string {
  if (!frame) return '(none)';
  try {
    return frame.url.slice(0, 200);
  } catch {
    return '(disposed)';
  }
}

/** Register the handler on the one call channel. Returns the undo. */
export function registerIpc(ipcMain: Pick<IpcMain, 'handle' | 'removeHandler'>, handler: CallHandler): () => void {
  ipcMain.handle(IPC_CALL, handler);
  return () => ipcMain.removeHandler(IPC_CALL);
}

const declaredEvents = new Set(Object.keys(events));

/** One window's event channel: the sending side of its ClientContext, and its backpressure measure. */
export interface WindowEvents {
  /** The `emit` of the window's client (Transport.send). */
  send(event: string, payload: unknown): void;
  /** Bytes sent to the window and not yet acknowledged by its preload (Transport.buffered). */
  buffered(): number;
  /** An IPC_ACK from the window's preload: every envelope up to `seq`, or null from a new page. */
  ack(seq: unknown): void;
}

/**
 * The events of a window: declared events only, and only while the window still shows the app
 * (terminal bytes must never reach a foreign page). Electron's IPC has no backpressure signal:
 * each envelope carries a sequence number, the preload acknowledges it once the page's listeners
 * have had it, and the bytes not yet acknowledged are what the core's outbox measures — a renderer
 * that is busy or hung pauses the terminal feeding it instead of filling the main process.
 */
export function windowEvents(
  contents: Pick<WebContents, 'isDestroyed' | 'send' | 'getURL'>,
  appOrigin: string = APP_ORIGIN,
  log: Log = console.error,
): WindowEvents {
  let seq = 0;
  let inFlight = 0;
  const unacked: Array<{ seq: number; bytes: number }> = [];
  return {
    send(event, payload) {
      if (!declaredEvents.has(event)) {
        log(`airlock: refusing to send undeclared event ${event}`);
        return;
      }
      if (contents.isDestroyed()) return;
      if (originOf(contents.getURL()) !== appOrigin) return;
      const envelope: EventEnvelope = { event, payload, seq: ++seq };
      try {
        contents.send(IPC_EVENT, envelope);
      } catch (e) {
        log(`airlock: could not send ${event}: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      const bytes = event.length + (JSON.stringify(payload)?.length ?? 0);
      unacked.push({ seq, bytes });
      inFlight += bytes;
    },
    buffered: () => inFlight,
    ack(n) {
      if (n === null) {
        // A new page (a reload): what the old one did not acknowledge never will be.
        unacked.length = 0;
        inFlight = 0;
        return;
      }
      if (typeof n !== 'number') return;
      while (unacked.length > 0 && unacked[0]!.seq <= n) inFlight -= unacked.shift()!.bytes;
    },
  };
}

/**
 * Register the acknowledgement channel. An ack is taken only from the main frame of a window this
 * shell created, showing the app (a foreign frame could only ever lift that window's own
 * backpressure, but it is refused all the same). Returns the undo.
 */
export function registerAcks(
  ipcMain: Pick<IpcMain, 'on' | 'removeListener'>,
  deps: { eventsFor(webContentsId: number): WindowEvents | undefined; appOrigin?: string },
): () => void {
  const appOrigin = deps.appOrigin ?? APP_ORIGIN;
  const listener = (event: InvokeEventLike, seq: unknown) => {
    const frame = event.senderFrame;
    if (frame === null || !isTrustedSender(frame, appOrigin) || !sameFrame(frame, event.sender.mainFrame)) return;
    deps.eventsFor(event.sender.id)?.ack(seq);
  };
  ipcMain.on(IPC_ACK, listener as unknown as Parameters<IpcMain['on']>[1]);
  return () => ipcMain.removeListener(IPC_ACK, listener as unknown as Parameters<IpcMain['on']>[1]);
}

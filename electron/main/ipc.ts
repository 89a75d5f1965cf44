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
import { IPC_CALL, IPC_EVENT, type EventEnvelope } from '../preload/ipc-channels';
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

/**
 * The `emit` of a window's ClientContext: declared events only, and only while
 * the window still shows the app (terminal bytes must never reach a foreign page).
 */
export function eventSender(
  contents: Pick<WebContents, 'isDestroyed' | 'send' | 'getURL'>,
  appOrigin: string = APP_ORIGIN,
  log: Log = console.error,
): (event: string, payload: unknown) => void {
  return (event, payload) => {
    if (!declaredEvents.has(event)) {
      log(`airlock: refusing to send undeclared event ${event}`);
      return;
    }
    if (contents.isDestroyed()) return;
    if (originOf(contents.getURL()) !== appOrigin) return;
    const envelope: EventEnvelope = { event, payload };
    try {
      contents.send(IPC_EVENT, envelope);
    } catch (e) {
      log(`airlock: could not send ${event}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
}

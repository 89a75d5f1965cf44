import { createContext, useContext, useEffect, useRef } from 'react';

/**
 * Handlers that pages bind to the commands their feature declares (Feature.commands): the
 * declaration says what the palette lists, the page says what it does, since only the page holds
 * the state it changes (the enrol dialog's open flag, the scan in progress).
 */
export interface CommandHandlers {
  /** Bind a handler to a command id; returns the unbind function. */
  bind(id: string, fn: () => void): () => void;
}

export const CommandHandlersContext = createContext<CommandHandlers | null>(null);

/**
 * Run `fn` when the palette (or a shortcut) performs command `id`, for as long as the calling
 * component is mounted and `fn` is not null (null: nothing to do now, so the palette does not
 * offer it — no dead entries). The latest `fn` is called (no stale state).
 * Outside a console (a page rendered alone) it does nothing.
 */
export function useCommand(id: string, fn: (() => void) | null): void {
  const handlers = useContext(CommandHandlersContext);
  const latest = useRef(fn);
  latest.current = fn;
  const on = fn !== null;
  useEffect(() => (on ? handlers?.bind(id, () => latest.current?.()) : undefined), [handlers, id, on]);
}

/**
 * The registry of bound handlers with one pending command: `perform` on a page not mounted yet
 * (the palette shows it first) runs when the page binds it. A pending command is dropped when
 * another is performed, or after `patienceMs` (a page that never binds it: the caller is told).
 */
export class HandlerRegistry implements CommandHandlers {
  private readonly fns = new Map<string, Array<() => void>>();
  private pending: { id: string; timer: ReturnType<typeof setTimeout> } | null = null;

  constructor(
    private readonly onMissing: (id: string) => void,
    private readonly patienceMs = 5000,
  ) {}

  bind(id: string, fn: () => void): () => void {
    const list = this.fns.get(id) ?? [];
    list.push(fn);
    this.fns.set(id, list);
    if (this.pending?.id === id) {
      clearTimeout(this.pending.timer);
      this.pending = null;
      // After the binding page's own effects (its state is ready).
      queueMicrotask(fn);
    }
    return () => {
      const cur = this.fns.get(id);
      if (!cur) return;
      const i = cur.indexOf(fn);
      if (i >= 0) cur.splice(i, 1);
      if (cur.length === 0) this.fns.delete(id);
    };
  }

  /** Run the handler bound last, or wait for a page to bind one. */
  perform(id: string): void {
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = null;
    const list = this.fns.get(id);
    const fn = list?.[list.length - 1];
    if (fn) return fn();
    const timer = setTimeout(() => {
      if (this.pending?.id !== id) return;
      this.pending = null;
      this.onMissing(id);
    }, this.patienceMs);
    this.pending = { id, timer };
  }

  bound(id: string): boolean {
    return (this.fns.get(id)?.length ?? 0) > 0;
  }
}

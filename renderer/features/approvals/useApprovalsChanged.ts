import { useEffect, useRef } from 'react';
import type { Api } from '../../api';

/**
 * Run `load` now, then again whenever the core pushes `approvals:changed` — no polling: an idle
 * console asks nothing, so it writes nothing to the audit trail. Also once when the browser shell's
 * event stream comes back (pushes sent while it was down are lost). Loads never overlap: pushes
 * that arrive while one runs are answered by one more load after it.
 */
export function useApprovalsChanged(api: Pick<Api, 'client' | 'onEventsState'>, load: () => Promise<void>, enabled = true): void {
  const latest = useRef(load);
  latest.current = load;
  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let running = false;
    let again = false;
    const run = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          if (stopped) return;
          await latest.current();
        } while (again);
      } finally {
        running = false;
      }
    };
    void run();
    const off = api.client.on('approvals:changed', () => void run());
    let wasConnected: boolean | null = null;
    const offState = api.onEventsState((connected) => {
      if (connected && wasConnected === false) void run();
      wasConnected = connected;
    });
    return () => {
      stopped = true;
      off();
      offState();
    };
  }, [api, enabled]);
}

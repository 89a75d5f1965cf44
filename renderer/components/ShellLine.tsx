import { useEffect, useState } from 'react';
import type { SessionStatus } from '../../shared/contract/session';
import type { Api } from '../api';

/** Which shell this is (the browser shell says so) and whether its event stream is down. */
export function ShellLine({ api, status }: { api: Api; status: SessionStatus }) {
  const [connected, setConnected] = useState(true);
  useEffect(() => api.onEventsState(setConnected), [api]);
  const browser = status.shell === 'browser';
  if (!browser && connected) return null;
  return (
    <div className={browser ? 'shell-banner' : 'shell-banner shell-banner-warn'} data-testid="shell-banner">
      {browser ? 'Browser shell (airlock serve) — Electron binary not installed' : null}
      {!connected ? <span className="shell-banner-warn-text"> · event stream disconnected, reconnecting…</span> : null}
    </div>
  );
}

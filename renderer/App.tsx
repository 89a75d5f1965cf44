import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { SessionStatus } from '../shared/contract/session';
import type { ChannelName } from '../shared/contract/index';
import type { AirlockErrorShape } from '../shared/domain/errors';
import { can as canCall, type Api } from './api';
import { AppContext, type AppContextValue } from './context';
import { ErrorLine } from './components/ErrorLine';
import { Setup } from './features/session/Setup';
import { Login } from './features/session/Login';
import { HostsView } from './features/hosts/HostsView';
import { TerminalView } from './features/terminal/TerminalView';
import { AuditView } from './features/audit/AuditView';
import { IdentityView } from './features/identity/IdentityView';
import { UsersView } from './features/users/UsersView';

export type View = 'hosts' | 'terminal' | 'audit' | 'identity' | 'users';

interface NavItem {
  view: View;
  label: string;
  /** The channel a view needs; the item is hidden when the roles cannot call it. */
  needs: ChannelName;
}

const NAV: NavItem[] = [
  { view: 'hosts', label: 'Hosts', needs: 'hosts:list' },
  { view: 'terminal', label: 'Terminal', needs: 'terminal:open' },
  { view: 'audit', label: 'Audit', needs: 'audit:list' },
  { view: 'identity', label: 'Identity', needs: 'identity:show' },
  { view: 'users', label: 'Users', needs: 'users:list' },
];

export function App({ api }: { api: Api }) {
  const client = api.client;
  const [status, setStatus] = useState<SessionStatus | null>(null);
  const [bootError, setBootError] = useState<AirlockErrorShape | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const boot = useCallback(async () => {
    const r = await client.session.status({});
    if (!r.ok) {
      setBootError(r.error);
      return null;
    }
    setBootError(null);
    setStatus(r.value);
    return r.value;
  }, [client]);

  useEffect(() => {
    void boot();
  }, [boot]);

  useEffect(() => {
    api.setUnauthenticatedHandler(() => {
      setNotice('Your session ended. Sign in again.');
      setStatus((s) => (s ? { ...s, user: null } : s));
    });
  }, [api]);

  if (!status) {
    return (
      <div className="auth-page">
        <div className="auth-card">
          <div className="brand brand-large">Airlock</div>
          {bootError ? (
            <>
              <ErrorLine error={bootError} testId="boot-error" />
              <button type="button" onClick={() => void boot()}>
                Retry
              </button>
            </>
          ) : (
            <p className="muted">Connecting to the Airlock core…</p>
          )}
        </div>
      </div>
    );
  }

  const shellLine = <ShellLine api={api} status={status} />;

  if (status.setupRequired) {
    return (
      <>
        {shellLine}
        <Setup
          client={client}
          onDone={async (name, password) => {
            const s = await boot();
            // If the core does not open a session on setup, sign in with what was just typed.
            if (s && !s.setupRequired && !s.user) {
              const r = await client.session.login({ name, password });
              if (r.ok) await boot();
            }
          }}
        />
      </>
    );
  }

  if (!status.user) {
    return (
      <>
        {shellLine}
        <Login
          client={client}
          notice={notice}
          onDone={() => {
            setNotice(null);
            void boot();
          }}
        />
      </>
    );
  }

  return (
    <Console
      api={api}
      status={status}
      user={status.user}
      shellLine={shellLine}
      onSignedOut={() => {
        setNotice(null);
        void boot();
      }}
    />
  );
}

function ShellLine({ api, status }: { api: Api; status: SessionStatus }) {
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

function Console({
  api,
  status,
  user,
  shellLine,
  onSignedOut,
}: {
  api: Api;
  status: SessionStatus;
  user: NonNullable<SessionStatus['user']>;
  shellLine: React.ReactNode;
  onSignedOut: () => void;
}) {
  const hooks = useRef(new Set<() => Promise<void>>());
  const ctx: AppContextValue = useMemo(
    () => ({
      api,
      client: api.client,
      user,
      can: (c: ChannelName) => canCall(user.roles, c),
      onBeforeLogout: (hook: () => Promise<void>) => {
        hooks.current.add(hook);
        return () => {
          hooks.current.delete(hook);
        };
      },
    }),
    [api, user],
  );
  const nav = NAV.filter((n) => ctx.can(n.needs));
  const [view, setView] = useState<View>(nav[0]?.view ?? 'identity');
  const [terminalHost, setTerminalHost] = useState<{ name: string; nonce: number } | null>(null);
  const [logoutError, setLogoutError] = useState<AirlockErrorShape | null>(null);

  async function logout() {
    await Promise.allSettled([...hooks.current].map((h) => h()));
    const r = await api.client.session.logout({});
    if (!r.ok && r.error.code !== 'UNAUTHENTICATED') {
      setLogoutError(r.error);
      return;
    }
    onSignedOut();
  }

  const openTerminal = (name: string) => {
    setTerminalHost({ name, nonce: Date.now() });
    setView('terminal');
  };

  return (
    <AppContext.Provider value={ctx}>
      <div className="layout">
        <nav className="sidebar" aria-label="Main">
          <div className="brand">Airlock</div>
          <ul>
            {nav.map((n) => (
              <li key={n.view}>
                <button
                  type="button"
                  className={view === n.view ? 'nav-item active' : 'nav-item'}
                  aria-current={view === n.view ? 'page' : undefined}
                  data-testid={`nav-${n.view}`}
                  onClick={() => setView(n.view)}
                >
                  {n.label}
                </button>
              </li>
            ))}
          </ul>
          <div className="sidebar-foot" data-testid="shell-kind" data-shell={status.shell}>
            {status.shell} shell · v{status.version}
          </div>
        </nav>
        <div className="main">
          {shellLine}
          <header className="topbar">
            <div className="topbar-title">{nav.find((n) => n.view === view)?.label ?? ''}</div>
            <div className="topbar-user">
              <ErrorLine error={logoutError} testId="logout-error" />
              <span className="user-name" data-testid="topbar-user">
                {user.name}
              </span>
              <span className="roles" data-testid="topbar-roles">
                {user.roles.map((r) => (
                  <span key={r} className={`role role-${r}`}>
                    {r}
                  </span>
                ))}
              </span>
              <button type="button" onClick={() => void logout()} data-testid="signout">
                Sign out
              </button>
            </div>
          </header>
          <main className="content">
            {view === 'hosts' ? <HostsView onOpenTerminal={ctx.can('terminal:open') ? openTerminal : null} /> : null}
            {ctx.can('terminal:open') ? (
              <div className={view === 'terminal' ? 'view-slot' : 'view-slot view-hidden'}>
                <TerminalView active={view === 'terminal'} request={terminalHost} />
              </div>
            ) : null}
            {view === 'audit' ? <AuditView /> : null}
            {view === 'identity' ? <IdentityView /> : null}
            {view === 'users' ? <UsersView /> : null}
          </main>
        </div>
      </div>
    </AppContext.Provider>
  );
}

import { Fragment, useMemo, useRef, useState } from 'react';
import type { SessionStatus } from '../shared/contract/session';
import type { ChannelName } from '../shared/contract/index';
import type { AirlockErrorShape } from '../shared/domain/errors';
import { can as canCall, type Api } from './api';
import { AppContext, type AppContextValue } from './context';
import { ErrorLine } from './components/ErrorLine';
import { clockOffset } from './components/time';
import { AuditAlarmBanner } from './features/audit/AuditAlarm';
import type { Feature, FeatureRequest } from './features/feature';
import { navFor } from './features/registry';
import { SessionGate } from './features/session/SessionGate';

/** The session gate, then the console: the nav and the feature shown, both from the registry. */
export function App({ api }: { api: Api }) {
  return (
    <SessionGate api={api}>
      {(s) => <Console api={api} status={s.status} user={s.user} shellLine={s.banners} onStatus={s.onStatus} onSignedOut={s.onSignedOut} />}
    </SessionGate>
  );
}

function Console({
  api,
  status,
  user,
  shellLine,
  onStatus,
  onSignedOut,
}: {
  api: Api;
  status: SessionStatus;
  user: NonNullable<SessionStatus['user']>;
  shellLine: React.ReactNode;
  onStatus: () => void;
  onSignedOut: () => void;
}) {
  const hooks = useRef(new Set<() => Promise<void>>());
  // Measured when a status arrives: the core's clock minus this browser's.
  const offset = useMemo(() => clockOffset(status.now, Date.now()), [status]);
  const ctx: AppContextValue = useMemo(
    () => ({
      api,
      client: api.client,
      user,
      can: (c: ChannelName) => canCall(user.roles, c),
      coreNow: () => Date.now() + offset,
      onBeforeLogout: (hook: () => Promise<void>) => {
        hooks.current.add(hook);
        return () => {
          hooks.current.delete(hook);
        };
      },
    }),
    [api, user, offset],
  );
  const nav = navFor(user.roles);
  const [view, setView] = useState<string>(nav[0]?.id ?? 'identity');
  // The last request each feature was opened with (Hosts → Terminal on a host).
  const [requests, setRequests] = useState<Record<string, FeatureRequest>>({});
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

  const open = (id: string, name?: string) => {
    if (name !== undefined) setRequests((cur) => ({ ...cur, [id]: { name, nonce: Date.now() } }));
    setView(id);
  };

  const page = (f: Feature) => {
    const Page = f.component;
    return <Page active={view === f.id} status={status} onStatus={onStatus} open={open} request={requests[f.id] ?? null} />;
  };

  return (
    <AppContext.Provider value={ctx}>
      <div className="layout">
        <nav className="sidebar" aria-label="Main">
          <div className="brand">Airlock</div>
          <ul>
            {nav.map((n) => (
              <li key={n.id}>
                <button
                  type="button"
                  className={view === n.id ? 'nav-item active' : 'nav-item'}
                  aria-current={view === n.id ? 'page' : undefined}
                  data-testid={`nav-${n.id}`}
                  onClick={() => setView(n.id)}
                >
                  {n.label}
                  {n.badge ? <n.badge /> : null}
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
          <AuditAlarmBanner client={api.client} enabled={ctx.can('audit:alarmStatus')} />
          <header className="topbar">
            <div className="topbar-title">{nav.find((n) => n.id === view)?.label ?? ''}</div>
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
            {nav.map((f) =>
              f.keepMounted ? (
                <div key={f.id} className={view === f.id ? 'view-slot' : 'view-slot view-hidden'}>
                  {page(f)}
                </div>
              ) : view === f.id ? (
                <Fragment key={f.id}>{page(f)}</Fragment>
              ) : null,
            )}
          </main>
        </div>
      </div>
    </AppContext.Provider>
  );
}

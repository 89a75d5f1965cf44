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
import { AuditAlarmBanner } from './features/audit/AuditAlarm';
import { IdentityView } from './features/identity/IdentityView';
import { UsersView } from './features/users/UsersView';
import { ApprovalsView } from './features/approvals/ApprovalsView';
import { useApprovalsChanged } from './features/approvals/useApprovalsChanged';
import { ProvisionView } from './features/provision/ProvisionView';
import { AccountView } from './features/account/AccountView';
import { PasswordForm } from './features/account/PasswordForm';
import { TotpEnrol } from './features/account/TotpEnrol';
import { ApprovalModal, StepUpModal } from './features/session/Interventions';

export type View = 'hosts' | 'terminal' | 'provision' | 'audit' | 'approvals' | 'identity' | 'users' | 'account';

interface NavItem {
  view: View;
  label: string;
  /** The channel a view needs; the item is hidden when the roles cannot call it. */
  needs: ChannelName;
}

export const NAV: NavItem[] = [
  { view: 'hosts', label: 'Hosts', needs: 'hosts:list' },
  { view: 'terminal', label: 'Terminal', needs: 'terminal:open' },
  { view: 'provision', label: 'Provisioning', needs: 'provision:runs' },
  { view: 'audit', label: 'Audit', needs: 'audit:list' },
  { view: 'approvals', label: 'Approvals', needs: 'approvals:list' },
  { view: 'identity', label: 'Identity', needs: 'identity:show' },
  { view: 'users', label: 'Users', needs: 'users:list' },
  { view: 'account', label: 'My account', needs: 'session:changePassword' },
];

interface StepUpAsk {
  error: AirlockErrorShape;
  resolve: (ok: boolean) => void;
}
interface ApprovalAsk {
  channel: ChannelName;
  input: unknown;
  error: AirlockErrorShape;
  resolve: (id: number | null) => void;
}

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

  // The name of the last signed-in user, prefilled on the sign-in form after an idle lock.
  const lastName = useRef<string | undefined>(undefined);
  if (status?.user) lastName.current = status.user.name;

  const [stepUp, setStepUp] = useState<StepUpAsk | null>(null);
  const [approval, setApproval] = useState<ApprovalAsk | null>(null);
  // Concurrent STEP_UP_REQUIRED results share one prompt.
  const pendingStepUp = useRef<Promise<boolean> | null>(null);

  const lock = useCallback((why: string) => {
    setNotice(why);
    setStepUp((cur) => (cur ? (cur.resolve(false), null) : null));
    setStatus((s) => (s ? { ...s, user: null } : s));
  }, []);

  useEffect(() => {
    api.setInterventions({
      unauthenticated: () => lock('Your session ended (idle lock or sign-out elsewhere). Sign in again.'),
      stepUp: (error) => {
        if (!pendingStepUp.current) {
          pendingStepUp.current = new Promise<boolean>((resolve) => setStepUp({ error, resolve })).finally(() => {
            pendingStepUp.current = null;
          });
        }
        return pendingStepUp.current;
      },
      approval: (channel, input, error) => new Promise<number | null>((resolve) => setApproval({ channel, input, error, resolve })),
    });
  }, [api, lock]);

  // Idle lock: the core's lockAt, measured on the core's clock (status.now) so a skewed client
  // clock does not matter. Re-read status at that moment: any call in between moved it.
  const user = status?.user ?? null;
  useEffect(() => {
    if (!status || !user) return;
    const offset = Date.parse(status.now) - Date.now();
    const due = Date.parse(user.lockAt) - offset - Date.now();
    const t = setTimeout(
      () => {
        void client.session.status({}).then((r) => {
          if (!r.ok) return;
          if (r.value.user) setStatus(r.value);
          else lock('Locked after inactivity. Sign in again.');
        });
      },
      Math.max(1000, Math.min(due + 500, 2_000_000_000)),
    );
    return () => clearTimeout(t);
  }, [client, status, user, lock]);

  const modals = (
    <>
      {stepUp ? (
        <StepUpModal
          client={api.raw}
          reason={stepUp.error}
          totpEnrolled={status?.user?.totp.enrolled ?? false}
          onDone={(ok) => {
            stepUp.resolve(ok);
            setStepUp(null);
            if (ok) void boot();
          }}
        />
      ) : null}
      {approval ? (
        <ApprovalModal
          client={api.raw}
          channel={approval.channel}
          input={approval.input}
          reason={approval.error}
          onDone={(id) => {
            approval.resolve(id);
            setApproval(null);
          }}
        />
      ) : null}
    </>
  );

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
          initialName={lastName.current}
          onDone={() => {
            setNotice(null);
            void boot();
          }}
        />
      </>
    );
  }

  const totpOff = status.totpPolicy.requiredFor.length === 0 ? (
    <div className="shell-banner shell-banner-warn" data-testid="totp-policy-off">
      TOTP policy off — lab/test setting (AIRLOCK_TOTP_POLICY=off); a production console requires TOTP for admins and officers.
    </div>
  ) : null;

  if (status.user.restriction) {
    return (
      <>
        {shellLine}
        {totpOff}
        <Restricted
          api={api}
          status={status}
          user={status.user}
          onDone={() => void boot()}
          onSignOut={async () => {
            await client.session.logout({});
            setNotice(null);
            void boot();
          }}
        />
        {modals}
      </>
    );
  }

  return (
    <>
      <Console
        api={api}
        status={status}
        user={status.user}
        shellLine={
          <>
            {shellLine}
            {totpOff}
          </>
        }
        onStatus={() => void boot()}
        onSignedOut={() => {
          setNotice(null);
          void boot();
        }}
      />
      {modals}
    </>
  );
}

/** A restricted session sees only what lifts the restriction. */
function Restricted({
  api,
  status,
  user,
  onDone,
  onSignOut,
}: {
  api: Api;
  status: SessionStatus;
  user: NonNullable<SessionStatus['user']>;
  onDone: () => void;
  onSignOut: () => Promise<void>;
}) {
  return (
    <div className="auth-page">
      <div className="auth-card auth-card-wide" data-testid="restricted" data-restriction={user.restriction}>
        <div className="brand brand-large">Airlock</div>
        {user.restriction === 'password-change' ? (
          <>
            <h1>Choose your password</h1>
            <p className="muted">
              An administrator set the password of <strong>{user.name}</strong>. Choose your own before going on.
            </p>
            <PasswordForm client={api.client} userName={user.name} title="New password" onDone={onDone} />
          </>
        ) : (
          <>
            <h1>Set up two-factor authentication</h1>
            <p className="muted">
              The policy requires TOTP for the roles {status.totpPolicy.requiredFor.filter((r) => user.roles.includes(r)).join(', ')}.
              Enrol an authenticator for <strong>{user.name}</strong> to continue.
            </p>
            <TotpEnrol client={api.client} onDone={onDone} />
          </>
        )}
        <button type="button" onClick={() => void onSignOut()} data-testid="signout">
          Sign out
        </button>
      </div>
    </div>
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
  const counts = useApprovalCounts(api, ctx.can('approvals:list'));

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
                  {n.view === 'approvals' && counts && counts.awaitingMe + counts.readyToExecute > 0 ? (
                    <span
                      className="nav-badge"
                      data-testid="approvals-badge"
                      data-awaiting={counts.awaitingMe}
                      data-ready={counts.readyToExecute}
                      title={`${counts.awaitingMe} awaiting your decision, ${counts.readyToExecute} ready to execute`}
                    >
                      {counts.awaitingMe}
                      {counts.readyToExecute ? ` · ${counts.readyToExecute}▶` : ''}
                    </span>
                  ) : null}
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
            {ctx.can('provision:runs') ? (
              <div className={view === 'provision' ? 'view-slot' : 'view-slot view-hidden'}>
                <ProvisionView active={view === 'provision'} />
              </div>
            ) : null}
            {view === 'audit' ? <AuditView /> : null}
            {view === 'identity' ? <IdentityView /> : null}
            {view === 'users' ? <UsersView /> : null}
            {view === 'approvals' ? <ApprovalsView /> : null}
            {view === 'account' ? <AccountView status={status} onStatus={onStatus} /> : null}
          </main>
        </div>
      </div>
    </AppContext.Provider>
  );
}

/**
 * The approvals badge: read once at sign-in and again only when the core pushes approvals:changed
 * (a request filed, decided, cancelled, executed or expired, in any process): no polling, so an
 * idle console writes nothing to the audit trail. approvals:list is passive (never keeps an idle
 * session alive).
 */
function useApprovalCounts(api: Api, enabled: boolean) {
  const [counts, setCounts] = useState<{ awaitingMe: number; readyToExecute: number } | null>(null);
  const load = useCallback(async () => {
    const r = await api.client.approvals.list({ status: 'open', limit: 1 });
    if (r.ok) setCounts(r.value.counts);
  }, [api]);
  useApprovalsChanged(api, load, enabled);
  return counts;
}

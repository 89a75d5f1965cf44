import './session.css';
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import type { SessionStatus } from '../../../shared/contract/session';
import type { ChannelName } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import type { Api } from '../../api';
import { ErrorLine } from '../../components/ErrorLine';
import { ShellLine } from '../../components/ShellLine';
import { TotpEnrol } from '../totp/TotpEnrol';
import { ApprovalModal, StepUpModal } from './Interventions';
import { Login } from './Login';
import { PasswordForm } from './PasswordForm';
import { Setup } from './Setup';

/** A signed-in session without a restriction: what the console is given. */
export interface SignedIn {
  status: SessionStatus;
  user: NonNullable<SessionStatus['user']>;
  /** The shell line and the TOTP-policy-off warning, shown above the console's pages. */
  banners: ReactNode;
  /** Read the session status again. */
  onStatus(): void;
  /** The console signed out: back to the sign-in form. */
  onSignedOut(): void;
}

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

/**
 * Everything before the console: connecting to the core, first-run setup, sign-in, a restricted
 * session (a password to choose, TOTP to enrol), the idle lock, and the step-up and approval
 * prompts the client's interventions ask for. Renders `children` for a signed-in session.
 */
export function SessionGate({ api, children }: { api: Api; children: (session: SignedIn) => ReactNode }) {
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

  /**
   * A deliberate sign-out is a hand-over: the sign-in form at once (no waiting for the status
   * round trip, no reload of the app), its name field empty and focused for the next person.
   * Only an idle lock keeps the name (the same person comes back).
   */
  const signedOut = useCallback(() => {
    lastName.current = undefined;
    setNotice('Signed out. The next person can sign in here.');
    setStepUp((cur) => (cur ? (cur.resolve(false), null) : null));
    setApproval((cur) => (cur ? (cur.resolve(null), null) : null));
    setStatus((s) => (s ? { ...s, user: null } : s));
    void boot();
  }, [boot]);

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
            signedOut();
          }}
        />
        {modals}
      </>
    );
  }

  return (
    <>
      {children({
        status,
        user: status.user,
        banners: (
          <>
            {shellLine}
            {totpOff}
          </>
        ),
        onStatus: () => void boot(),
        onSignedOut: signedOut,
      })}
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

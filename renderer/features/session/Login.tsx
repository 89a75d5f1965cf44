import { useState, type FormEvent } from 'react';
import type { Client } from '../../../shared/contract/client';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';

/**
 * Sign in. TOTP_REQUIRED (the password was right, the account has a second factor) keeps the
 * name and password and asks for a code — or a single-use recovery code — and sends all again.
 */
export function Login({
  client,
  notice,
  initialName,
  onDone,
}: {
  client: Client;
  notice: string | null;
  initialName?: string;
  onDone: () => void;
}) {
  const [name, setName] = useState(initialName ?? '');
  const [password, setPassword] = useState('');
  const [needCode, setNeedCode] = useState(false);
  const [useRecovery, setUseRecovery] = useState(false);
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy || !name || !password) return;
    setBusy(true);
    setError(null);
    const c = code.replace(/\s+/g, '');
    const r = await client.session.login({
      name,
      password,
      ...(needCode && c ? (useRecovery ? { recoveryCode: c } : { totp: c }) : {}),
    });
    setBusy(false);
    if (!r.ok) {
      if (r.error.code === 'TOTP_REQUIRED') {
        // First time: just ask; after a wrong code the core's message says so.
        if (needCode) setError(r.error);
        setNeedCode(true);
        setCode('');
        return;
      }
      setError(r.error);
      setCode('');
      if (r.error.code !== 'BAD_CREDENTIALS' || !needCode) {
        setPassword('');
        setNeedCode(false);
      }
      return;
    }
    onDone();
  }

  return (
    <div className="auth-page">
      <form className="auth-card" onSubmit={submit} data-testid="login-form">
        <div className="brand brand-large">Airlock</div>
        <h1>Sign in</h1>
        {notice ? (
          <div className="info-line" data-testid="login-notice">
            {notice}
          </div>
        ) : null}
        <label className="field">
          <span>Name</span>
          <input
            data-testid="login-name"
            value={name}
            autoComplete="username"
            autoFocus={!initialName}
            onChange={(e) => setName(e.target.value)}
            required
            maxLength={64}
            readOnly={needCode}
          />
        </label>
        <label className="field">
          <span>Password</span>
          <input
            data-testid="login-password"
            type="password"
            value={password}
            autoComplete="current-password"
            autoFocus={!!initialName}
            onChange={(e) => setPassword(e.target.value)}
            required
            readOnly={needCode}
          />
        </label>
        {needCode ? (
          <>
            <label className="field">
              <span>{useRecovery ? 'Recovery code (single use)' : 'Code from your authenticator app'}</span>
              <input
                data-testid="login-totp"
                value={code}
                autoComplete="one-time-code"
                inputMode={useRecovery ? 'text' : 'numeric'}
                autoFocus
                onChange={(e) => setCode(e.target.value)}
                maxLength={64}
              />
            </label>
            <button
              type="button"
              className="link-button"
              onClick={() => {
                setUseRecovery(!useRecovery);
                setCode('');
              }}
              data-testid="login-use-recovery"
            >
              {useRecovery ? 'Use an authenticator code' : 'Use a recovery code'}
            </button>
          </>
        ) : null}
        <ErrorLine error={error} testId="login-error" />
        <button
          className="primary"
          type="submit"
          disabled={busy || !name || !password || (needCode && !code.trim())}
          data-testid="login-submit"
        >
          {busy ? 'Signing in…' : needCode ? 'Verify' : 'Sign in'}
        </button>
        {needCode ? (
          <button
            type="button"
            onClick={() => {
              setNeedCode(false);
              setPassword('');
              setCode('');
              setError(null);
            }}
            data-testid="login-back"
          >
            Back
          </button>
        ) : null}
      </form>
    </div>
  );
}

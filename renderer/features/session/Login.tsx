import { useState, type FormEvent } from 'react';
import type { Client } from '../../../shared/contract/client';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';

export function Login({ client, notice, onDone }: { client: Client; notice: string | null; onDone: () => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy || !name || !password) return;
    setBusy(true);
    setError(null);
    const r = await client.session.login({ name, password });
    setBusy(false);
    if (!r.ok) {
      setError(r.error);
      setPassword('');
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
            autoFocus
            onChange={(e) => setName(e.target.value)}
            required
            maxLength={64}
          />
        </label>
        <label className="field">
          <span>Password</span>
          <input
            data-testid="login-password"
            type="password"
            value={password}
            autoComplete="current-password"
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        <ErrorLine error={error} testId="login-error" />
        <button className="primary" type="submit" disabled={busy || !name || !password} data-testid="login-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}

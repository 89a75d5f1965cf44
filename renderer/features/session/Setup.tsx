import { useState, type FormEvent } from 'react';
import type { Client } from '../../../shared/contract/client';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';

const MIN = 12;
const NAME_RE = /^[a-z_][a-z0-9_.-]*$/;

/** First run: the first administrator, and with it the vault and Airlock's SSH identity. */
export function Setup({ client, onDone }: { client: Client; onDone: (name: string, password: string) => void }) {
  const [name, setName] = useState('admin');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  const local =
    name !== '' && !NAME_RE.test(name)
      ? 'Name: lower-case letters, digits, _ . - ; starting with a letter or _'
      : password !== '' && password.length < MIN
        ? `Password: at least ${MIN} characters (${password.length} so far)`
        : confirm !== '' && confirm !== password
          ? 'The two passwords differ'
          : null;
  const ready = name !== '' && password.length >= MIN && confirm === password && !local;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!ready || busy) return;
    setBusy(true);
    setError(null);
    const r = await client.session.setup({ admin: name, password });
    setBusy(false);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    onDone(name, password);
  }

  return (
    <div className="auth-page">
      <form className="auth-card auth-card-wide" onSubmit={submit} data-testid="setup-form">
        <div className="brand brand-large">Airlock</div>
        <h1>First-run setup</h1>
        <p className="muted">
          Create the first administrator. This also creates the <strong>vault</strong> that seals every secret at rest
          (its key is wrapped by a key derived from this password) and Airlock&apos;s own <strong>SSH identity</strong>{' '}
          (an ed25519 key pair) that it uses to log in to the hosts you enrol.
        </p>
        <label className="field">
          <span>Administrator name</span>
          <input
            data-testid="setup-name"
            value={name}
            autoComplete="username"
            onChange={(e) => setName(e.target.value)}
            required
            maxLength={64}
          />
        </label>
        <label className="field">
          <span>Password (at least {MIN} characters)</span>
          <input
            data-testid="setup-password"
            type="password"
            value={password}
            autoComplete="new-password"
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        <label className="field">
          <span>Confirm password</span>
          <input
            data-testid="setup-confirm"
            type="password"
            value={confirm}
            autoComplete="new-password"
            onChange={(e) => setConfirm(e.target.value)}
            required
          />
        </label>
        <p className="hint">
          There is no password recovery: the vault can only be opened with a user&apos;s password. Keep it in your
          site&apos;s password safe.
        </p>
        {local ? (
          <div className="warn-line" data-testid="setup-hint">
            {local}
          </div>
        ) : null}
        <ErrorLine error={error} testId="setup-error" />
        <button className="primary" type="submit" disabled={!ready || busy} data-testid="setup-submit">
          {busy ? 'Creating…' : 'Create administrator'}
        </button>
      </form>
    </div>
  );
}

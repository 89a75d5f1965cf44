import { useState, type FormEvent } from 'react';
import type { Client } from '../../../shared/contract/client';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { passwordProblem } from '../../../shared/domain/password-policy';
import { ErrorLine } from '../../components/ErrorLine';

/** Change one's own password, with the policy's own words shown while typing. */
export function PasswordForm({
  client,
  userName,
  title,
  onDone,
}: {
  client: Client;
  userName: string;
  title: string;
  onDone: () => void;
}) {
  const [oldPassword, setOld] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const problem = next ? passwordProblem(next, userName) : null;
  const mismatch = confirm !== '' && confirm !== next;
  const ready = oldPassword !== '' && next !== '' && !problem && confirm === next;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!ready || busy) return;
    setBusy(true);
    setError(null);
    const r = await client.session.changePassword({ oldPassword, newPassword: next });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setOld('');
    setNext('');
    setConfirm('');
    onDone();
  }

  return (
    <form className="card form-card" onSubmit={submit} data-testid="password-form">
      <h3>{title}</h3>
      <label className="field">
        <span>Current password</span>
        <input type="password" value={oldPassword} onChange={(e) => setOld(e.target.value)} autoComplete="current-password" data-testid="password-old" />
      </label>
      <label className="field">
        <span>New password</span>
        <input type="password" value={next} onChange={(e) => setNext(e.target.value)} autoComplete="new-password" data-testid="password-new" />
      </label>
      {next ? (
        <div className={problem ? 'hint warn-line' : 'hint'} data-testid="password-hint">
          {problem ?? 'Meets the password policy.'}
        </div>
      ) : (
        <div className="hint">At least 12 characters; not your name, not a common password.</div>
      )}
      <label className="field">
        <span>Repeat the new password</span>
        <input type="password" value={confirm} onChange={(e) => setConfirm(e.target.value)} autoComplete="new-password" data-testid="password-confirm" />
      </label>
      {mismatch ? <div className="hint warn-line">The two passwords differ.</div> : null}
      <ErrorLine error={error} testId="password-error" />
      <button type="submit" className="primary" disabled={!ready || busy} data-testid="password-submit">
        {busy ? 'Saving…' : 'Change password'}
      </button>
    </form>
  );
}

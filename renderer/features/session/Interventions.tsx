import { useState, type FormEvent } from 'react';
import type { Client } from '../../../shared/contract/client';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';

/** STEP_UP_REQUIRED: the password again (and a code when TOTP is enrolled), then the call is retried. */
export function StepUpModal({
  client,
  reason,
  totpEnrolled,
  onDone,
}: {
  /** The raw client: the prompt's own calls must not be intercepted again. */
  client: Client;
  reason: AirlockErrorShape;
  totpEnrolled: boolean;
  onDone: (ok: boolean) => void;
}) {
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [useRecovery, setUseRecovery] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy || !password) return;
    setBusy(true);
    setError(null);
    const c = code.replace(/\s+/g, '');
    const r = await client.session.stepUp({
      password,
      ...(totpEnrolled && c ? (useRecovery ? { recoveryCode: c } : { totp: c }) : {}),
    });
    setBusy(false);
    if (!r.ok) {
      setError(r.error);
      setPassword('');
      setCode('');
      return;
    }
    onDone(true);
  }

  return (
    <Modal title="Confirm it is you" onClose={() => onDone(false)} testId="stepup-dialog" busy={busy}>
      <form onSubmit={submit} className="form-grid">
        <p className="muted" data-testid="stepup-reason">
          {safeLine(reason.message)}
        </p>
        <label className="field">
          <span>Password</span>
          <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" data-testid="stepup-password" />
        </label>
        {totpEnrolled ? (
          <>
            <label className="field">
              <span>{useRecovery ? 'Recovery code' : 'Authenticator code'}</span>
              <input value={code} onChange={(e) => setCode(e.target.value)} autoComplete="one-time-code" maxLength={64} data-testid="stepup-totp" />
            </label>
            <button type="button" className="link-button" onClick={() => setUseRecovery(!useRecovery)}>
              {useRecovery ? 'Use an authenticator code' : 'Use a recovery code'}
            </button>
          </>
        ) : null}
        <ErrorLine error={error} testId="stepup-error" />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy || !password || (totpEnrolled && !code.trim())} data-testid="stepup-submit">
            {busy ? 'Checking…' : 'Confirm and continue'}
          </button>
          <button type="button" onClick={() => onDone(false)} disabled={busy} data-testid="stepup-cancel">
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** APPROVAL_REQUIRED: file the very same call as a two-person request, with a reason. */
export function ApprovalModal({
  client,
  channel,
  input,
  reason,
  onDone,
}: {
  client: Client;
  channel: string;
  input: unknown;
  reason: AirlockErrorShape;
  onDone: (id: number | null) => void;
}) {
  const [why, setWhy] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy || why.trim().length < 3) return;
    setBusy(true);
    setError(null);
    const r = await client.approvals.request({
      channel,
      input: (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>,
      reason: why.trim(),
    });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onDone(r.value.id);
  }

  return (
    <Modal title="Second person required" onClose={() => onDone(null)} testId="approval-dialog" busy={busy}>
      <form onSubmit={submit} className="form-grid">
        <p data-testid="approval-message">{safeLine(reason.message)}</p>
        <p className="muted">
          File this operation (<span className="mono">{safeLine(channel)}</span>, with exactly the input you entered) as a
          request. A different person with the approver role named above must approve it; then you execute it from Approvals.
        </p>
        <label className="field">
          <span>Reason (seen by the approver, audited)</span>
          <textarea value={why} onChange={(e) => setWhy(e.target.value)} maxLength={500} rows={3} data-testid="approval-reason" />
        </label>
        <ErrorLine error={error} testId="approval-error" />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy || why.trim().length < 3} data-testid="approval-submit">
            {busy ? 'Filing…' : 'File request'}
          </button>
          <button type="button" onClick={() => onDone(null)} disabled={busy} data-testid="approval-cancel">
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}

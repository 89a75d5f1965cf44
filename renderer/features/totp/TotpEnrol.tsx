import './totp.css';
import { useState, type FormEvent } from 'react';
import type { Client } from '../../../shared/contract/client';
import type { TotpEnrolment } from '../../../shared/contract/totp';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';

/**
 * TOTP enrolment: totp:begin → QR (rendered by the core, an <img> data: URL the CSP allows) and
 * the secret as text, shown once → a first code → totp:confirm → ten recovery codes, shown once,
 * which the user must acknowledge before going on.
 */
export function TotpEnrol({ client, onDone, onCancel }: { client: Client; onDone: () => void; onCancel?: () => void }) {
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [code, setCode] = useState('');
  const [codes, setCodes] = useState<string[] | null>(null);
  const [stored, setStored] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function begin() {
    setBusy(true);
    setError(null);
    const r = await client.totp.begin({});
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setEnrolment(r.value);
  }

  async function confirm(e: FormEvent) {
    e.preventDefault();
    const c = code.replace(/\s+/g, '');
    if (busy || !/^\d{6}$/.test(c)) return;
    setBusy(true);
    setError(null);
    const r = await client.totp.confirm({ code: c });
    setBusy(false);
    if (!r.ok) {
      setCode('');
      return setError(r.error);
    }
    setEnrolment(null);
    setCodes(r.value.recoveryCodes);
  }

  if (codes) {
    return (
      <div className="card form-card" data-testid="totp-recovery">
        <h3>Recovery codes — shown once</h3>
        <p className="muted">
          Each code works once instead of an authenticator code. Store them offline (printed, in a safe). They are not
          shown again.
        </p>
        <ol className="mono recovery-codes" data-testid="totp-recovery-codes">
          {codes.map((c) => (
            <li key={c}>{c}</li>
          ))}
        </ol>
        <label className="check">
          <input type="checkbox" checked={stored} onChange={(e) => setStored(e.target.checked)} data-testid="totp-recovery-stored" />
          <span>I have stored them</span>
        </label>
        <button type="button" className="primary" disabled={!stored} onClick={onDone} data-testid="totp-recovery-done">
          Continue
        </button>
      </div>
    );
  }

  if (!enrolment) {
    return (
      <div className="card form-card" data-testid="totp-start">
        <h3>Two-factor authentication (TOTP)</h3>
        <p className="muted">You will need an RFC 6238 authenticator app (6 digits, 30 seconds).</p>
        <ErrorLine error={error} testId="totp-error" />
        <div className="form-actions">
          <button type="button" className="primary" onClick={() => void begin()} disabled={busy} data-testid="totp-begin">
            {busy ? 'Starting…' : 'Start enrolment'}
          </button>
          {onCancel ? (
            <button type="button" onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </div>
    );
  }

  return (
    <form className="card form-card" onSubmit={confirm} data-testid="totp-enrol">
      <h3>Scan with your authenticator</h3>
      <img className="totp-qr" src={enrolment.qrDataUrl} alt="TOTP QR code" width={200} height={200} data-testid="totp-qr" />
      <div className="field">
        <span>Or type this secret (shown once)</span>
        <code className="mono secret-box" data-testid="totp-secret">
          {enrolment.secret}
        </code>
        <span className="hint">
          {enrolment.issuer} · {enrolment.account} · {enrolment.algorithm}, {enrolment.digits} digits, {enrolment.period} s
        </span>
      </div>
      <label className="field">
        <span>First code from the app</span>
        <input
          value={code}
          onChange={(e) => setCode(e.target.value)}
          inputMode="numeric"
          autoComplete="one-time-code"
          maxLength={8}
          autoFocus
          data-testid="totp-code"
        />
      </label>
      <ErrorLine error={error} testId="totp-error" />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={busy || !/^\d{6}$/.test(code.replace(/\s+/g, ''))} data-testid="totp-confirm">
          {busy ? 'Checking…' : 'Confirm'}
        </button>
        {onCancel ? (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}

import './totp.css';
import { useState } from 'react';
import type { SessionStatus } from '../../../shared/contract/session';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { useApp } from '../../context';
import { TotpEnrol } from './TotpEnrol';

type TotpState = NonNullable<SessionStatus['user']>['totp'];

/**
 * One's own second factor on the account page: enrol (or re-enrol), new recovery codes, remove.
 * The page shows the notes and errors (one line for the whole page, above the password form).
 */
export function TotpCard({
  totp,
  onNote,
  onError,
  onStatus,
}: {
  totp: TotpState;
  onNote: (note: string | null) => void;
  onError: (error: AirlockErrorShape | null) => void;
  onStatus: () => void;
}) {
  const { client } = useApp();
  const [enrolling, setEnrolling] = useState(false);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [busy, setBusy] = useState(false);

  async function regenerate() {
    if (busy || !window.confirm('Replace your recovery codes? The old ones stop working.')) return;
    setBusy(true);
    onError(null);
    onNote(null);
    const r = await client.totp.recoveryCodes({});
    setBusy(false);
    if (!r.ok) return onError(r.error);
    setCodes(r.value.recoveryCodes);
    onStatus();
  }

  async function disable() {
    if (busy || !window.confirm('Remove your TOTP second factor?')) return;
    setBusy(true);
    onError(null);
    onNote(null);
    const r = await client.totp.disable({});
    setBusy(false);
    if (!r.ok) return onError(r.error);
    onNote('TOTP removed.');
    onStatus();
  }

  return enrolling ? (
    <TotpEnrol
      client={client}
      onCancel={() => setEnrolling(false)}
      onDone={() => {
        setEnrolling(false);
        onNote('TOTP enrolled.');
        onStatus();
      }}
    />
  ) : (
    <div className="card form-card">
      <h3>Two-factor authentication</h3>
      <div className="form-actions">
        <button
          type="button"
          onClick={() => {
            onNote(null);
            setCodes(null);
            setEnrolling(true);
          }}
          data-testid="account-totp-enrol"
        >
          {totp.enrolled ? 'Re-enrol on a new device' : 'Enrol an authenticator'}
        </button>
        {totp.enrolled ? (
          <>
            <button type="button" onClick={() => void regenerate()} disabled={busy} data-testid="account-recovery-regenerate">
              New recovery codes
            </button>
            {!totp.required ? (
              <button type="button" className="danger" onClick={() => void disable()} disabled={busy} data-testid="account-totp-disable">
                Remove TOTP
              </button>
            ) : null}
          </>
        ) : null}
      </div>
      {codes ? (
        <div data-testid="account-recovery-codes">
          <p className="warn-line">New recovery codes — shown once; store them now.</p>
          <ol className="mono recovery-codes">
            {codes.map((c) => (
              <li key={c}>{c}</li>
            ))}
          </ol>
          <button type="button" onClick={() => setCodes(null)}>
            I have stored them
          </button>
        </div>
      ) : null}
    </div>
  );
}

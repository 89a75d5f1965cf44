import { useEffect, useState, type FormEvent } from 'react';
import type { SessionStatus } from '../../../shared/contract/session';
import type { Settings } from '../../../shared/contract/settings';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { formatTime } from '../../components/format';
import { useApp } from '../../context';
import { PasswordForm } from './PasswordForm';
import { TotpEnrol } from './TotpEnrol';

/** One's own account (password, TOTP, recovery codes) and, for admins, the identity settings. */
export function AccountView({ status, onStatus }: { status: SessionStatus; onStatus: () => void }) {
  const { client, user, can } = useApp();
  const me = status.user!;
  const [enrolling, setEnrolling] = useState(false);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [busy, setBusy] = useState(false);

  async function regenerate() {
    if (busy || !window.confirm('Replace your recovery codes? The old ones stop working.')) return;
    setBusy(true);
    setError(null);
    setNote(null);
    const r = await client.totp.recoveryCodes({});
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setCodes(r.value.recoveryCodes);
    onStatus();
  }

  async function disable() {
    if (busy || !window.confirm('Remove your TOTP second factor?')) return;
    setBusy(true);
    setError(null);
    setNote(null);
    const r = await client.totp.disable({});
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setNote('TOTP removed.');
    onStatus();
  }

  return (
    <section className="view view-narrow" data-testid="account-view">
      <h2>{user.name}</h2>
      <dl className="kv">
        <dt>Roles</dt>
        <dd>{user.roles.join(', ')}</dd>
        <dt>Two-factor</dt>
        <dd data-testid="account-totp" data-enrolled={me.totp.enrolled}>
          {me.totp.enrolled ? `enrolled · ${me.totp.recoveryCodesLeft} recovery codes left` : 'not enrolled'}
          {me.totp.required ? ' · required by policy' : ''}
        </dd>
        <dt>Step-up valid until</dt>
        <dd>{me.stepUpUntil ? formatTime(me.stepUpUntil) : 'confirm your password at the next sensitive action'}</dd>
        <dt>Idle lock at</dt>
        <dd>{formatTime(me.lockAt)}</dd>
      </dl>
      <ErrorLine error={error} testId="account-error" />
      {note ? (
        <div className="info-line" data-testid="account-note">
          {note}
        </div>
      ) : null}

      <PasswordForm client={client} userName={user.name} title="Change password" onDone={() => setNote('Password changed.')} />

      {enrolling ? (
        <TotpEnrol
          client={client}
          onCancel={() => setEnrolling(false)}
          onDone={() => {
            setEnrolling(false);
            setNote('TOTP enrolled.');
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
                setNote(null);
                setCodes(null);
                setEnrolling(true);
              }}
              data-testid="account-totp-enrol"
            >
              {me.totp.enrolled ? 'Re-enrol on a new device' : 'Enrol an authenticator'}
            </button>
            {me.totp.enrolled ? (
              <>
                <button type="button" onClick={() => void regenerate()} disabled={busy} data-testid="account-recovery-regenerate">
                  New recovery codes
                </button>
                {!me.totp.required ? (
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
      )}

      {can('settings:set') ? <SettingsForm onSaved={onStatus} /> : null}
    </section>
  );
}

function SettingsForm({ onSaved }: { onSaved: () => void }) {
  const { client } = useApp();
  const [settings, setSettings] = useState<Settings | null>(null);
  const [idle, setIdle] = useState('');
  const [stepUp, setStepUp] = useState('');
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void client.settings.get({}).then((r) => {
      if (!r.ok) return setError(r.error);
      setSettings(r.value);
      setIdle(String(r.value.sessionIdleMinutes));
      setStepUp(String(r.value.stepUpMinutes));
    });
  }, [client]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    setNote(null);
    const r = await client.settings.set({ sessionIdleMinutes: Number(idle), stepUpMinutes: Number(stepUp) });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setSettings(r.value);
    setNote('Saved.');
    onSaved();
  }

  return (
    <form className="card form-card" onSubmit={submit} data-testid="settings-form">
      <h3>Identity settings (all users)</h3>
      <div className="form-row">
        <label className="field field-narrow">
          <span>Idle lock (minutes, 1–1440)</span>
          <input type="number" min={1} max={1440} value={idle} onChange={(e) => setIdle(e.target.value)} data-testid="settings-idle" />
        </label>
        <label className="field field-narrow">
          <span>Step-up window (minutes, 1–120)</span>
          <input type="number" min={1} max={120} value={stepUp} onChange={(e) => setStepUp(e.target.value)} data-testid="settings-stepup" />
        </label>
      </div>
      {settings ? (
        <p className="hint">
          Lockout: {settings.lockout.threshold} failures, back-off {settings.lockout.baseSeconds}–{settings.lockout.maxSeconds} s ·
          TOTP required for: {settings.totpRequiredFor.join(', ') || 'nobody (lab/test setting)'} (installation config)
        </p>
      ) : null}
      <ErrorLine error={error} testId="settings-error" />
      {note ? (
        <div className="info-line" data-testid="settings-note">
          {note}
        </div>
      ) : null}
      <button type="submit" className="primary" disabled={busy || !settings} data-testid="settings-submit">
        Save settings
      </button>
    </form>
  );
}

import { useEffect, useState, type FormEvent } from 'react';
import type { Settings } from '../../../shared/contract/settings';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { useApp } from '../../context';

/** The identity settings every user lives by (idle lock, step-up window); admins only. */
export function SettingsForm({ onSaved }: { onSaved: () => void }) {
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

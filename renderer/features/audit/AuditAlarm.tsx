import './audit.css';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { AlarmStatus } from '../../../shared/contract/audit';
import type { Client } from '../../../shared/contract/client';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Time } from '../../components/Time';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';

/** Another component acknowledged or saw a change: every alarm view re-reads. */
const CHANGED = 'airlock:audit-alarm-changed';

/**
 * The audit alarm status (audit:alarmStatus, a quiet read): read when shown, when another view
 * says it changed, and when the core pushes audit:alarmChanged (an alarm raised or acknowledged
 * here or by another shell on the same database) — never polled.
 */
export function useAuditAlarm(client: Client, enabled: boolean): { status: AlarmStatus | null; reload: () => void } {
  const [status, setStatus] = useState<AlarmStatus | null>(null);
  const reload = useCallback(() => {
    if (!enabled) return;
    void client.audit.alarmStatus({}).then((r) => {
      if (r.ok) setStatus(r.value);
    });
  }, [client, enabled]);
  useEffect(() => {
    if (!enabled) return;
    reload();
    const off = client.on('audit:alarmChanged', () => reload());
    window.addEventListener(CHANGED, reload);
    return () => {
      off();
      window.removeEventListener(CHANGED, reload);
    };
  }, [client, enabled, reload]);
  return { status, reload };
}

/** The banner in the app shell, for every role that may read the alarm (admin, officer, auditor). */
export function AuditAlarmBanner({ client, enabled }: { client: Client; enabled: boolean }) {
  const { status } = useAuditAlarm(client, enabled);
  const a = status?.active;
  if (!a) return null;
  return (
    <div className="alarm-banner" role="alert" data-testid="audit-alarm-banner" data-alarm={a.id} data-kind={a.kind}>
      <strong>AUDIT ALARM #{a.id}</strong> — the audit trail does not extend its trusted head ({a.kind} at event #{a.firstBadSeq}). Changes are refused
      until an officer acknowledges the alarm in Audit; reading the trail still works.
    </div>
  );
}

/** The alarm in the audit view: the record, the history, and (for an officer) the acknowledgement. */
export function AuditAlarmPanel() {
  const { client, can } = useApp();
  const { status, reload } = useAuditAlarm(client, can('audit:alarmStatus'));
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  if (!status || status.alarms.length === 0) return null;
  const a = status.active;

  async function acknowledge(e: FormEvent) {
    e.preventDefault();
    if (!a) return;
    setBusy(true);
    setError(null);
    const r = await client.audit.acknowledgeAlarm({ id: a.id, reason });
    setBusy(false);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    setReason('');
    reload();
    window.dispatchEvent(new Event(CHANGED));
  }

  return (
    <div className="alarm-panel" data-testid="audit-alarm-panel">
      {a ? (
        <div className="panel panel-bad" role="alert" data-testid="audit-alarm-active" data-alarm={a.id}>
          <strong>Audit alarm #{a.id}</strong> raised <Time iso={a.raisedAt} />: <strong>{a.kind}</strong> at event{' '}
          <span className="mono">#{a.firstBadSeq}</span> — {safeLine(a.reason)}
          {a.trustedSeq !== null ? <span className="muted"> (trusted head #{a.trustedSeq})</span> : null}
          {can('audit:acknowledgeAlarm') ? (
            <form className="alarm-ack" onSubmit={(e) => void acknowledge(e)}>
              <label>
                Reason for acknowledging{' '}
                <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={1000} required data-testid="audit-alarm-reason" />
              </label>
              <button type="submit" className="primary" disabled={busy || reason.trim() === ''} data-testid="audit-alarm-acknowledge">
                Acknowledge and re-anchor
              </button>
            </form>
          ) : (
            <div className="muted">An officer must acknowledge it.</div>
          )}
          <ErrorLine error={error} testId="audit-alarm-error" />
        </div>
      ) : null}
      {status.alarms
        .filter((x) => x.acknowledged)
        .map((x) => (
          <div key={x.id} className="muted" data-testid="audit-alarm-past" data-alarm={x.id}>
            Alarm #{x.id} ({x.kind} at event #{x.firstBadSeq}, <Time iso={x.raisedAt} />) acknowledged by {safeLine(x.acknowledged!.by)} at{' '}
            <Time iso={x.acknowledged!.at} />: {safeLine(x.acknowledged!.reason)}; re-anchored at event #{x.acknowledged!.anchorSeq}
          </div>
        ))}
    </div>
  );
}

import { useCallback, useEffect, useRef, useState } from 'react';
import type { CertRenewal } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { useApp } from '../../context';
import { renewalProgress } from './history';
import { LIVE_MS } from './useRotations';

const TONE: Record<CertRenewal['status'], string> = {
  running: 'badge-unconfirmed',
  succeeded: 'badge-reachable',
  failed: 'badge-error',
  cancelled: 'badge-error',
  interrupted: 'badge-error',
};

const STEP_TEXT: Record<CertRenewal['hosts'][number]['steps'][number]['step'], string> = {
  keygen: 'new key on the host',
  csr: 'its request checked',
  issue: 'certificate issued',
  install: 'new pair switched in',
  verify: 'checked over SSH',
  promote: 'made current',
  retire: 'old one retired',
};

const STEP_MARK: Record<CertRenewal['hosts'][number]['steps'][number]['status'], string> = { done: '✓', running: '…', failed: '✗', interrupted: '!', pending: '·' };

/**
 * The journaled host certificate renewals (keys:certRenewals, newest first) with each host's
 * progress through keygen → … → retire. While one runs (or `busy`: this page's own renewal call is
 * in flight; a renewal is recorded before its first step) the list is read again every
 * {@link LIVE_MS}, so the steps move on screen. A renewal with pending hosts can be resumed.
 */
export function CertRenewals({ active, busy, reload, onChanged }: { active: boolean; busy: boolean; reload: number; onChanged(): void }) {
  const { client, can } = useApp();
  const allowed = can('keys:certRenewals');
  const [renewals, setRenewals] = useState<CertRenewal[]>([]);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [resuming, setResuming] = useState<string | null>(null);
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const refresh = useCallback(async () => {
    if (!allowed) return;
    const r = await client.keys.certRenewals({ limit: 5 });
    if (!alive.current) return;
    if (!r.ok) return setError(r.error);
    setError(null);
    setRenewals(r.value);
  }, [allowed, client]);

  useEffect(() => {
    if (active) void refresh();
  }, [active, reload, refresh]);

  const live = busy || renewals.some((r) => r.status === 'running');
  useEffect(() => {
    if (!active || !live) return;
    const t = setInterval(() => void refresh(), LIVE_MS);
    return () => clearInterval(t);
  }, [active, live, refresh]);

  async function resume(id: string) {
    setResuming(id);
    const r = await client.keys.resumeCertRenewal({ id });
    if (!alive.current) return;
    setResuming(null);
    if (!r.ok) setError(r.error);
    void refresh();
    onChanged();
  }

  if (!allowed || (!renewals.length && !error)) return null;
  const mayResume = can('keys:resumeCertRenewal');
  return (
    <div className="keys-renewals" data-testid="keys-renewals">
      <h3>Renewals</h3>
      <ErrorLine error={error} testId="keys-renewals-error" />
      <ul className="keys-versions">
        {renewals.map((r) => {
          const p = renewalProgress(r);
          return (
            <li key={r.id} data-testid={`keys-renewal-${r.id}`} data-status={r.status} data-done={p.done} data-total={p.total}>
              <span className={`badge ${TONE[r.status]}`}>{r.status}</span> <span className="mono muted">{r.id}</span>{' '}
              <span role={r.status === 'running' ? 'status' : undefined} data-testid={`keys-renewal-progress-${r.id}`}>
                {p.text}
              </span>{' '}
              <span className="muted">
                by {safeLine(r.actor)}, <Time iso={r.startedAt} />
              </span>
              <ul>
                {r.hosts.map((h) => (
                  <li key={h.host} data-testid={`keys-renewal-host-${r.id}-${h.host}`} data-status={h.status} data-next={h.next ?? ''}>
                    <span className="strong">{safeLine(h.host)}</span>: {h.status}, serving the {h.serving} pair{h.promoted ? ' (the new certificate is current)' : ''}{' '}
                    <span className="mono" title={h.steps.map((s) => `${s.step}: ${s.status}`).join(', ')}>
                      {h.steps.map((s) => STEP_MARK[s.status]).join('')}
                    </span>
                    {h.next ? <span className="muted"> — next: {STEP_TEXT[h.next]}</span> : null}
                    {h.message ? <div className="muted">{safeLine(h.message)}</div> : null}
                  </li>
                ))}
              </ul>
              {r.pendingHosts.length && r.status !== 'running' ? (
                <div className="warn-line">
                  Pending: {r.pendingHosts.map((h) => safeLine(h)).join(', ')} — each still serves a matching pair.{' '}
                  {mayResume ? (
                    <button type="button" className="small primary" onClick={() => void resume(r.id)} disabled={resuming !== null} data-testid={`keys-renewal-resume-${r.id}`}>
                      {resuming === r.id ? 'Resuming…' : 'Resume on the pending hosts'}
                    </button>
                  ) : null}
                </div>
              ) : null}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

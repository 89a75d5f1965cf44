import type { SshRotation } from '../../../shared/contract/keys';
import { shortFingerprint } from '../../components/format';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { rotationProgress } from './history';

const TONE: Record<SshRotation['status'], string> = {
  running: 'badge-unconfirmed',
  succeeded: 'badge-reachable',
  failed: 'badge-error',
  cancelled: 'badge-error',
  interrupted: 'badge-error',
};

const STEP_TEXT: Record<SshRotation['hosts'][number]['steps'][number]['step'], string> = {
  add: 'add the new key',
  verify: 'log in with it',
  remove: 'remove the old key',
};

/**
 * One SSH identity rotation in the history: its status, old → new fingerprint, and each host's
 * progress through add → verify → remove (read again while it runs). A rotation with pending hosts
 * keeps the old key in the vault; it is resumed once they are back.
 */
export function RotationRow({ r, onResume, resuming }: { r: SshRotation; onResume: ((id: string) => void) | null; resuming: boolean }) {
  const p = rotationProgress(r);
  return (
    <tr data-testid={`keys-rotation-${r.id}`} data-status={r.status} data-done={p.done} data-total={p.total}>
      <td>
        <span className="strong">Rotate Airlock&apos;s SSH identity</span> <span className="mono muted">{r.id}</span>
        <div className="muted">
          <span className="mono" title={r.oldFingerprint}>
            {shortFingerprint(r.oldFingerprint)}
          </span>{' '}
          →{' '}
          <span className="mono" title={r.newFingerprint}>
            {shortFingerprint(r.newFingerprint)}
          </span>
          {r.promoted ? ' (the new key is current; the old one is deleted)' : ' (the old key stays until every host is done)'}
        </div>
      </td>
      <td>
        <span className={`badge ${TONE[r.status]}`}>{r.status}</span>{' '}
        <span data-testid={`keys-rotation-progress-${r.id}`} role={r.status === 'running' ? 'status' : undefined}>
          {p.text}
        </span>
        <ul className="keys-versions" data-testid={`keys-rotation-hosts-${r.id}`}>
          {r.hosts.map((h) => (
            <li key={h.host} data-testid={`keys-rotation-host-${r.id}-${h.host}`} data-status={h.status}>
              <span className="strong">{safeLine(h.host)}</span>: {h.status}
              {h.next ? ` — next: ${STEP_TEXT[h.next]}` : ''}
              {h.message ? <span className="muted"> ({safeLine(h.message)})</span> : null}
            </li>
          ))}
        </ul>
        {r.pendingHosts.length && r.status !== 'running' ? (
          <div className="warn-line">Pending: {r.pendingHosts.map((h) => safeLine(h)).join(', ')}. Resume once they are reachable.</div>
        ) : null}
      </td>
      <td>{safeLine(r.actor)}</td>
      <td>{r.hosts.length} host{r.hosts.length === 1 ? '' : 's'}</td>
      <td className="nowrap">
        <Time iso={r.startedAt} />
      </td>
      <td className="nowrap">
        <Time iso={r.finishedAt} />
      </td>
      <td className="col-actions">
        {onResume && !r.promoted && r.status !== 'running' && r.status !== 'cancelled' ? (
          <button type="button" className="small primary" onClick={() => onResume(r.id)} disabled={resuming} data-testid={`keys-rotation-resume-${r.id}`}>
            {resuming ? 'Resuming…' : 'Resume on the pending hosts'}
          </button>
        ) : null}
      </td>
    </tr>
  );
}

import { useState } from 'react';
import type { Ceremony, SshRotation } from '../../../shared/contract/keys';
import { DASH } from '../../components/format';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { groupNonce, KIND_LABELS, ROLE_LABELS, statusText } from './model';
import { historyItems } from './history';
import { RotationRow } from './RotationRows';
import { TranscriptButton } from './TranscriptButton';

const tone = (s: Ceremony['status']) => (s === 'completed' ? 'badge-reachable' : s === 'open' ? 'badge-unconfirmed' : 'badge-error');

/**
 * The rotation history: every ceremony and every rotation of Airlock's SSH identity in one list,
 * newest first: kind, status, who ran it and took part, when. An open ceremony opens the ceremony
 * screen again; a finished one opens its record (steps, who acknowledged them), and a completed
 * one's signed transcript downloads from its row. A rotation shows each host's progress (live
 * while it runs) and is resumed from its row when hosts are pending.
 */
export function CeremoniesPanel({
  ceremonies,
  onResume,
  rotations = [],
  onResumeRotation = null,
  resumingRotation = null,
}: {
  ceremonies: Ceremony[];
  onResume(id: string): void;
  rotations?: SshRotation[];
  onResumeRotation?: ((id: string) => void) | null;
  resumingRotation?: string | null;
}) {
  const [detail, setDetail] = useState<Ceremony | null>(null);
  const items = historyItems(ceremonies, rotations);
  return (
    <>
      <div className="table-wrap">
        <table className="grid" data-testid="keys-ceremonies">
          <thead>
            <tr>
              <th>Ceremony or rotation</th>
              <th>Status and progress</th>
              <th>Run by</th>
              <th>Officers and witnesses, or hosts</th>
              <th>Started</th>
              <th>Finished</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {items.length === 0 ? (
              <tr>
                <td colSpan={7} className="empty">
                  No ceremony or rotation yet.
                </td>
              </tr>
            ) : null}
            {items.map((it) => {
              if (it.type === 'ssh') return <RotationRow key={it.key} r={it.rotation} onResume={onResumeRotation} resuming={resumingRotation === it.rotation.id} />;
              const c = it.ceremony;
              return (
              <tr key={c.id} data-testid={`keys-ceremony-${c.id}`} data-kind={c.kind} data-status={c.status} data-transcript={c.hasTranscript}>
                <td>
                  <span className="strong">
                    {KIND_LABELS[c.kind]}
                    {c.params.domain ? ` (${c.params.domain})` : ''}
                  </span>{' '}
                  <span className="mono muted">{c.id}</span>
                </td>
                <td>
                  <span className={`badge ${tone(c.status)}`}>{statusText(c)}</span>
                </td>
                <td>{safeLine(c.administrator)}</td>
                <td>
                  {c.participants
                    .filter((p) => p.role !== 'administrator')
                    .map((p) => safeLine(p.name))
                    .join(', ') || DASH}
                </td>
                <td className="nowrap">
                  <Time iso={c.startedAt} />
                </td>
                <td className="nowrap">
                  <Time iso={c.finishedAt} />
                </td>
                <td className="col-actions">
                  {c.status === 'open' ? (
                    <button type="button" className="small primary" onClick={() => onResume(c.id)} data-testid={`keys-ceremony-resume-${c.id}`}>
                      Open the ceremony screen
                    </button>
                  ) : (
                    <button type="button" className="small" onClick={() => setDetail(c)} data-testid={`keys-ceremony-open-${c.id}`}>
                      Steps
                    </button>
                  )}
                  {c.hasTranscript ? <TranscriptButton ceremony={c} className="small" quiet testId={`keys-ceremony-transcript-${c.id}`} /> : null}
                </td>
              </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {detail ? <CeremonyDetail c={detail} onClose={() => setDetail(null)} /> : null}
    </>
  );
}

/** A finished ceremony's record: its nonce, participants and each step with who acknowledged it when. */
function CeremonyDetail({ c, onClose }: { c: Ceremony; onClose(): void }) {
  return (
    <Modal
      title={`${KIND_LABELS[c.kind]} ceremony ${c.id}`}
      onClose={onClose}
      wide
      testId="keys-ceremony-detail"
      footer={
        <>
          {c.hasTranscript ? <TranscriptButton ceremony={c} testId="keys-detail-transcript" /> : null}
          <button type="button" onClick={onClose} data-testid="keys-detail-close">
            Close
          </button>
        </>
      }
    >
      <dl className="kv">
        <dt>Status</dt>
        <dd data-testid="keys-detail-status">{c.status}</dd>
        <dt>Nonce</dt>
        <dd className="mono">{groupNonce(c.nonce).join(' ')}</dd>
        <dt>Script</dt>
        <dd className="mono">{safeLine(c.scriptVersion)}</dd>
        <dt>Participants</dt>
        <dd>{c.participants.map((p) => `${safeLine(p.name)} (${ROLE_LABELS[p.role].toLowerCase()})`).join(', ')}</dd>
        {c.message ? (
          <>
            <dt>Outcome</dt>
            <dd>{safeLine(c.message)}</dd>
          </>
        ) : null}
      </dl>
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="keys-detail-steps">
          <thead>
            <tr>
              <th className="num">Step</th>
              <th>What</th>
              <th>For</th>
              <th>Acknowledged by</th>
              <th>Recorded by</th>
              <th>At</th>
            </tr>
          </thead>
          <tbody>
            {c.steps.map((s) => (
              <tr key={s.n}>
                <td className="num">{s.n}</td>
                <td>{safeLine(s.title)}</td>
                <td>{s.automatic ? 'Airlock' : ROLE_LABELS[s.by]}</td>
                <td>{safeLine(s.acknowledgedBy ?? DASH)}</td>
                <td>{safeLine(s.recordedBy ?? DASH)}</td>
                <td className="nowrap">
                  <Time iso={s.at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Modal>
  );
}

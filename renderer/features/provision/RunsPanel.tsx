import { useCallback, useEffect, useRef, useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import type { Run } from '../../../shared/contract/provision';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { useLoaded } from '../../components/useLoaded';
import { Time } from '../../components/Time';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';
import { formatDuration, resumable } from './model';
import { RunBadge, RunHeader, RunHosts } from './RunDisplay';

type RunRow = Out<'provision:runs'>[number];

/**
 * Recent runs (provision:runs); any run can be opened (provision:status) to see every step's
 * output, exit code and duration; an apply that failed, was cancelled or interrupted can be resumed.
 */
export function RunsPanel({
  active,
  generation,
  busy,
  onResume,
  onAttestation,
}: {
  active: boolean;
  /** Bumped by the parent when a run it started has finished. */
  generation: number;
  /** A plan/apply/resume of this view is in flight (one at a time). */
  busy: boolean;
  onResume: (run: Run) => void;
  onAttestation: (host: string, id: string) => void;
}) {
  const { client, can } = useApp();
  const { data: rows, error, refresh } = useLoaded<RunRow[]>(active, () => client.provision.runs({ limit: 100 }));
  const [open, setOpen] = useState<Run | null>(null);
  const [openError, setOpenError] = useState<AirlockErrorShape | null>(null);
  const [loadingId, setLoadingId] = useState<string | null>(null);

  const show = useCallback(
    async (id: string) => {
      setLoadingId(id);
      setOpenError(null);
      const r = await client.provision.status({ runId: id });
      setLoadingId(null);
      if (r.ok) setOpen(r.value);
      else setOpenError(r.error);
    },
    [client],
  );

  // A finished run (generation) changes the list.
  useEffect(() => {
    if (active && generation > 0) void refresh();
  }, [active, refresh, generation]);

  // A run shown here that the parent just finished (a resume) is re-read.
  const openId = useRef<string | null>(null);
  openId.current = open?.id ?? null;
  useEffect(() => {
    if (openId.current && generation > 0) void show(openId.current);
  }, [generation, show]);

  const canResume = can('provision:resume');

  return (
    <div data-testid="prov-runs">
      <div className="toolbar">
        <button type="button" onClick={() => void refresh()} data-testid="prov-runs-refresh">
          Refresh
        </button>
        <span className="muted">Newest first. Plans only look; applies change hosts and end in an attestation per host.</span>
      </div>
      <ErrorLine error={error} testId="prov-runs-error" />
      <div className="table-wrap">
        <table className="grid" data-testid="prov-runs-table">
          <thead>
            <tr>
              <th>Run</th>
              <th>Kind</th>
              <th>Playbook</th>
              <th>Status</th>
              <th className="num">Hosts</th>
              <th className="num">Failed</th>
              <th>By</th>
              <th>Started</th>
              <th className="num">Duration</th>
              <th className="num">Attempts</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {rows && rows.length === 0 ? (
              <tr>
                <td colSpan={11} className="empty">
                  No runs yet.
                </td>
              </tr>
            ) : null}
            {(rows ?? []).map((r) => (
              <tr key={r.id} data-testid={`prov-run-row-${r.id}`} data-kind={r.kind} data-status={r.status} className={open?.id === r.id ? 'row-open' : undefined}>
                <td className="mono">{r.id}</td>
                <td>{r.kind}</td>
                <td>
                  {safeLine(r.playbook)} <span className="muted">v{safeLine(r.playbookVersion)}</span>
                </td>
                <td>
                  <RunBadge status={r.status} />
                </td>
                <td className="num">{r.hostCount}</td>
                <td className={r.failedHosts ? 'num error-cell' : 'num'}>{r.failedHosts}</td>
                <td>{safeLine(r.actor)}</td>
                <td className="nowrap"><Time iso={r.startedAt} /></td>
                <td className="num">{r.finishedAt ? formatDuration(Date.parse(r.finishedAt) - Date.parse(r.startedAt)) : '—'}</td>
                <td className="num">{r.attempts}</td>
                <td className="col-actions">
                  <button type="button" className="small" disabled={loadingId === r.id} onClick={() => void show(r.id)} data-testid={`prov-run-open-${r.id}`}>
                    Open
                  </button>
                  {canResume && resumable(r) ? (
                    <button
                      type="button"
                      className="small primary"
                      disabled={busy}
                      title={busy ? 'Another run of this view is in progress' : 'Re-check, then continue each host from its first unfinished step'}
                      onClick={() => {
                        void client.provision.status({ runId: r.id }).then((s) => {
                          if (s.ok) onResume(s.value);
                          else setOpenError(s.error);
                        });
                      }}
                      data-testid={`prov-run-resume-${r.id}`}
                    >
                      Resume
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ErrorLine error={openError} testId="prov-run-open-error" />
      {open ? (
        <div className="card prov-run" data-testid="prov-run-detail" data-run-id={open.id}>
          <RunHeader run={open}>
            <button type="button" className="small" onClick={() => void show(open.id)} data-testid="prov-run-detail-refresh">
              Refresh
            </button>
            {canResume && resumable(open) ? (
              <button type="button" className="small primary" disabled={busy} onClick={() => onResume(open)} data-testid="prov-run-detail-resume">
                Resume
              </button>
            ) : null}
            <button type="button" className="small" onClick={() => setOpen(null)} data-testid="prov-run-detail-close">
              Close
            </button>
          </RunHeader>
          <div className="muted">
            playbook digest <span className="mono">{open.playbookDigest}</span>
          </div>
          <RunHosts key={open.id} kind={open.kind} hosts={open.hosts} onAttestation={onAttestation} expandFailed={open.kind === 'plan' || open.status !== 'succeeded'} />
        </div>
      ) : null}
    </div>
  );
}

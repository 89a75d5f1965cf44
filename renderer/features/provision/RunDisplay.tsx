import { Fragment, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { Change, HostRun, Run, StepRecord } from '../../../shared/contract/provision';
import { DASH, formatBytes } from '../../components/format';
import { Time } from '../../components/Time';
import { safeLine, safeText } from '../../components/safeText';
import { diffLines, formatDuration, stepCounter, stepLog, toneOf, type LiveKind } from './model';

/** A run, host or step status as a badge (text is the status itself; colour by what it means). */
export function RunBadge({ status, testId }: { status: string; testId?: string }) {
  const tone = toneOf(status);
  return (
    <span className={`badge prov-tone-${tone}`} data-testid={testId} data-status={status}>
      {status === 'running' ? <span className="spinner spinner-inline" aria-hidden="true" /> : null}
      {status === 'running' ? ' ' : null}
      {status}
    </span>
  );
}

/** The line above a run: id, kind, playbook, status, who, when, attempts. */
export function RunHeader({ run, children }: { run: Pick<Run, 'id' | 'kind' | 'playbook' | 'playbookVersion' | 'status' | 'actor' | 'startedAt' | 'finishedAt' | 'attempts'>; children?: React.ReactNode }) {
  const ms = run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(run.startedAt) : null;
  return (
    <div className="prov-run-head" data-testid="prov-run-header" data-run-id={run.id} data-status={run.status} data-kind={run.kind}>
      <strong className="mono">{run.id}</strong>
      <span className="badge">{run.kind}</span>
      <span>
        {safeLine(run.playbook)} <span className="muted">v{safeLine(run.playbookVersion)}</span>
      </span>
      <RunBadge status={run.status} testId="prov-run-status" />
      <span className="muted">
        by {safeLine(run.actor)} · <Time iso={run.startedAt} />
        {ms !== null && Number.isFinite(ms) ? ` · ${formatDuration(ms)}` : ''}
        {run.attempts > 1 ? ` · ${run.attempts} attempts` : ''}
      </span>
      <div className="toolbar-spacer" />
      {children}
    </div>
  );
}

/**
 * Per host, per step: status, phase, transfer progress, changes with their diffs, output, exit
 * code and duration. Everything that came from a host is rendered as text (React-escaped, with
 * escape sequences and bidi controls removed).
 */
export function RunHosts({
  kind,
  hosts,
  logs,
  live,
  onAttestation,
  expandFailed,
}: {
  /** What the run does to each step (checks them, or applies them): its counter says so. */
  kind: LiveKind | Run['kind'];
  hosts: HostRun[];
  logs?: Record<string, string>;
  live?: boolean;
  onAttestation?: (host: string, id: string) => void;
  /** Open the steps that would change or failed (a plan to review, a run that went wrong). */
  expandFailed?: boolean;
}) {
  if (hosts.length === 0) return <div className="muted">No host has reported yet…</div>;
  return (
    <div data-testid="prov-run-hosts">
      {hosts.map((h) => (
        <HostCard key={h.host} kind={kind} host={h} logs={logs} live={live ?? false} onAttestation={onAttestation} expandFailed={expandFailed ?? false} />
      ))}
    </div>
  );
}

function HostCard({
  kind,
  host,
  logs,
  live,
  onAttestation,
  expandFailed,
}: {
  kind: LiveKind | Run['kind'];
  host: HostRun;
  logs?: Record<string, string>;
  live: boolean;
  onAttestation?: (host: string, id: string) => void;
  expandFailed: boolean;
}) {
  const [open, setOpen] = useState<Set<number>>(() => new Set());
  const [touched, setTouched] = useState(false);
  const interesting = (s: StepRecord) => s.status === 'failed' || s.status === 'would-change' || (live && s.status === 'running');
  // Until the operator toggles something, the steps worth a look are open.
  const isOpen = (s: StepRecord) => (touched ? open.has(s.idx) : open.has(s.idx) || (expandFailed && interesting(s)) || (live && s.status === 'running'));
  const toggle = (s: StepRecord) => {
    const cur = isOpen(s);
    const base = touched ? new Set(open) : new Set(host.steps.filter((x) => isOpen(x)).map((x) => x.idx));
    if (cur) base.delete(s.idx);
    else base.add(s.idx);
    setOpen(base);
    setTouched(true);
  };
  const counter = stepCounter(kind, host.steps);
  return (
    <div className="panel prov-host" data-testid={`prov-host-${host.host}`} data-status={host.status} data-attestation={host.attestationId ?? ''}>
      <div className="prov-host-head">
        <span className="strong">{host.host}</span>
        <RunBadge status={host.status} testId={`prov-host-status-${host.host}`} />
        <span className="muted">
          <span data-testid={`prov-host-counter-${host.host}`} data-done={counter.done} data-total={counter.total}>
            {counter.text}
          </span>
          {host.finishedAt ? (
            <>
              {' · finished '}
              <Time iso={host.finishedAt} />
            </>
          ) : null}
        </span>
        {host.message ? (
          <span className="prov-host-message" data-testid={`prov-host-message-${host.host}`}>
            {safeLine(host.message, 600)}
          </span>
        ) : null}
        <div className="toolbar-spacer" />
        {host.attestationId && onAttestation ? (
          <button type="button" className="small primary" onClick={() => onAttestation(host.host, host.attestationId!)} data-testid={`prov-attestation-open-${host.host}`}>
            Attestation {host.attestationId}
          </button>
        ) : null}
      </div>
      <table className="grid grid-compact prov-steps" data-testid={`prov-steps-${host.host}`}>
        <thead>
          <tr>
            <th className="col-toggle" aria-label="Details" />
            <th className="num">#</th>
            <th>Step</th>
            <th>Type</th>
            <th>Status</th>
            <th>Phase</th>
            <th>Progress</th>
            <th className="num">Changes</th>
            <th className="num">Exit</th>
            <th className="num">Duration</th>
          </tr>
        </thead>
        <tbody>
          {host.steps.map((s) => {
            const o = isOpen(s);
            return (
              <Fragment key={s.idx}>
                <tr data-testid={`prov-step-${host.host}-${s.stepId}`} data-status={s.status} data-phase={s.phase ?? ''}>
                  <td className="col-toggle">
                    <button
                      type="button"
                      className="icon-button"
                      aria-expanded={o}
                      aria-label={o ? 'Hide step details' : 'Show step details'}
                      onClick={() => toggle(s)}
                      data-testid={`prov-step-toggle-${host.host}-${s.stepId}`}
                    >
                      {o ? '▾' : '▸'}
                    </button>
                  </td>
                  <td className="num">{s.idx + 1}</td>
                  <td>
                    <span className="strong">{safeLine(s.title)}</span> <span className="muted mono">{s.stepId}</span>
                  </td>
                  <td className="mono">{s.type}</td>
                  <td>
                    <RunBadge status={s.status} testId={`prov-step-status-${host.host}-${s.stepId}`} />
                  </td>
                  <td>{s.phase ?? DASH}</td>
                  <td>{s.transfer ? <Transfer t={s.transfer} testId={`prov-step-progress-${host.host}-${s.stepId}`} /> : DASH}</td>
                  <td className="num">{s.changes.length || DASH}</td>
                  <td className="num">{s.exitCode ?? DASH}</td>
                  <td className="num">{formatDuration(s.durationMs)}</td>
                </tr>
                {o ? (
                  <tr className="prov-step-detail">
                    <td />
                    <td colSpan={9}>
                      <StepDetail host={host.host} step={s} log={stepLog(logs, host.host, s)} live={live} />
                    </td>
                  </tr>
                ) : null}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Transfer({ t, testId }: { t: NonNullable<StepRecord['transfer']>; testId: string }) {
  const total = Math.max(t.total, 0);
  const done = Math.min(Math.max(t.done, 0), total || t.done);
  const pct = total > 0 ? Math.round((done / total) * 100) : 100;
  return (
    <span className="prov-progress" data-testid={testId} data-done={t.done} data-total={t.total} data-sent={t.sent}>
      <progress max={total || 1} value={total ? done : 1} aria-label={`${pct}%`} />
      <span>
        {formatBytes(done)} / {formatBytes(total)} ({pct}%)
      </span>
    </span>
  );
}

function StepDetail({ host, step, log, live }: { host: string; step: StepRecord; log: string; live: boolean }) {
  const id = `${host}-${step.stepId}`;
  return (
    <div data-testid={`prov-step-detail-${id}`}>
      {step.message ? (
        <div className={step.status === 'failed' || step.status === 'cancelled' || step.status === 'interrupted' ? 'error-line' : 'info-line'} data-testid={`prov-step-message-${id}`}>
          {step.errorCode ? <span className="error-code">{step.errorCode}</span> : null}
          <span className="error-message">{safeText(step.message)}</span>
        </div>
      ) : null}
      {step.changes.length ? <Changes changes={step.changes} id={id} /> : null}
      <div className="muted">
        {step.startedAt ? (
          <>
            {'started '}
            <Time iso={step.startedAt} />
          </>
        ) : (
          'not started'
        )}
        {step.finishedAt ? (
          <>
            {' · finished '}
            <Time iso={step.finishedAt} />
          </>
        ) : null}
        {step.exitCode !== null ? ` · exit code ${step.exitCode}` : ''}
        {step.durationMs !== null ? ` · ${formatDuration(step.durationMs)}` : ''}
      </div>
      <Details initiallyOpen={live && step.status === 'running'} testId={`prov-step-output-${id}`} summary={<>Output ({log ? `${log.split('\n').length - (log.endsWith('\n') ? 1 : 0)} lines` : 'none'})</>}>
        <LogPre text={log} testId={`prov-step-log-${id}`} />
      </Details>
    </div>
  );
}

/** <details> whose open state is the operator's (React would otherwise reset it on re-render). */
export function Details({ initiallyOpen, summary, testId, children }: { initiallyOpen: boolean; summary: React.ReactNode; testId?: string; children: React.ReactNode }) {
  const [open, setOpen] = useState(initiallyOpen);
  return (
    <details className="prov-details" open={open} onToggle={(e) => setOpen(e.currentTarget.open)} data-testid={testId}>
      <summary>{summary}</summary>
      {open ? children : null}
    </details>
  );
}

/** A log that follows its end while the reader is at the end. */
function LogPre({ text, testId }: { text: string; testId: string }) {
  const ref = useRef<HTMLPreElement>(null);
  const atEnd = useRef(true);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && atEnd.current) el.scrollTop = el.scrollHeight;
  }, [text]);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const onScroll = () => {
      atEnd.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    };
    el.addEventListener('scroll', onScroll);
    return () => el.removeEventListener('scroll', onScroll);
  }, []);
  return (
    <pre ref={ref} className="prov-pre prov-log" tabIndex={0} data-testid={testId}>
      {text ? safeText(text) : '(no output)'}
    </pre>
  );
}

function Side({ v }: { v: string | null }) {
  return v === null ? <span className="prov-absent">absent</span> : <span className="mono">{safeLine(v, 400)}</span>;
}

function Changes({ changes, id }: { changes: Change[]; id: string }) {
  return (
    <>
      <table className="grid grid-compact" data-testid={`prov-changes-${id}`}>
        <thead>
          <tr>
            <th>Kind</th>
            <th>Target</th>
            <th>From → To</th>
          </tr>
        </thead>
        <tbody>
          {changes.map((c, i) => (
            <tr key={i} data-testid="prov-change" data-kind={c.kind} data-target={c.target}>
              <td>
                <span className="badge">{c.kind}</span>
              </td>
              <td className="mono">{safeLine(c.target, 400)}</td>
              <td>
                <Side v={c.from} />
                <span className="prov-arrow">→</span>
                <Side v={c.to} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {changes.map((c, i) =>
        c.diff ? (
          <Details
            key={i}
            initiallyOpen
            testId={`prov-diff-${id}-${i}`}
            summary={
              <>
                Diff of <span className="mono">{safeLine(c.target, 200)}</span>
              </>
            }
          >
            <DiffPre diff={c.diff} testId={`prov-diff-text-${id}-${i}`} />
          </Details>
        ) : null,
      )}
    </>
  );
}

/** A unified diff as text lines (coloured by class); never parsed as markup. */
export function DiffPre({ diff, testId }: { diff: string; testId?: string }) {
  return (
    <pre className="prov-pre prov-diff" tabIndex={0} data-testid={testId}>
      {diffLines(safeText(diff)).map((l, i) => (
        <span key={i} className={`d-${l.kind}`}>
          {l.text}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

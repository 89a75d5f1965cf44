import './audit.css';
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { AuditEvent, ExportResult, VerifyReport } from '../../../shared/contract/audit';
import { channelNames, type In } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { DASH, shortHash } from '../../components/format';
import { Time } from '../../components/Time';
import { safeLine, safeText } from '../../components/safeText';
import { useApp } from '../../context';
import { useCommand } from '../palette/commands';
import { AuditAlarmPanel } from './AuditAlarm';

/** Rows fetched per call (the contract allows up to 1000). */
const PAGE = 500;
const ROW_HEIGHT = 26;
const OUTCOMES = ['ok', 'refused', 'error', 'pending'] as const;

interface Filters {
  channel: string;
  actor: string;
  outcome: string;
  target: string;
  since: string;
  until: string;
}
const EMPTY: Filters = { channel: '', actor: '', outcome: '', target: '', since: '', until: '' };
const filtered = (f: Filters) => Object.values(f).some((v) => v !== '');

/**
 * datetime-local (the user's local time) → ISO 8601 UTC, as the core compares (inclusive, to the
 * millisecond). An upper bound covers the whole minute or second typed: "To 10:00:05" includes
 * an event the table shows at 10:00:05 (recorded at 10:00:05.734), as a person reading it expects.
 */
function toIso(local: string, bound: 'from' | 'to'): string | undefined {
  if (!local) return undefined;
  const t = new Date(local).getTime();
  if (Number.isNaN(t)) return undefined;
  const rest = bound === 'from' ? 0 : /T\d{2}:\d{2}$/.test(local) ? 59_999 : /T\d{2}:\d{2}:\d{2}$/.test(local) ? 999 : 0;
  return new Date(t + rest).toISOString();
}

function query(f: Filters): Omit<In<'audit:list'>, 'limit' | 'beforeSeq'> {
  const since = toIso(f.since, 'from');
  const until = toIso(f.until, 'to');
  return {
    ...(f.channel ? { channel: f.channel } : {}),
    ...(f.actor ? { actor: f.actor } : {}),
    ...(f.outcome ? { outcome: f.outcome as (typeof OUTCOMES)[number] } : {}),
    ...(f.target ? { target: f.target } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
}

/**
 * The audit trail, virtualised: only the rows in view (plus a small overscan) are in the DOM.
 *
 * Unfiltered, the trail's sequence numbers are contiguous, so row i is seq `head - i`: the
 * scrollbar spans the whole trail and any position is one `beforeSeq` page away (jumping to the
 * far end of 1,000,000 events costs one call, not 2,000). A missing sequence number shows as a
 * gap row (which Verify will name). Filtered, pages are fetched in order as the end comes near.
 */
export function AuditView() {
  const { client, can, api } = useApp();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [head, setHead] = useState<number | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  // Unfiltered: events by seq. Filtered: the list so far (newest first) and whether there is more.
  const [bySeq, setBySeq] = useState<Map<number, AuditEvent>>(new Map());
  const [list, setList] = useState<AuditEvent[]>([]);
  const [more, setMore] = useState(false);
  const [generation, setGeneration] = useState(0);
  const inFlight = useRef(new Set<string>());
  const [open, setOpen] = useState<AuditEvent | null>(null);
  // True from a filter change or refresh until its first page is shown (so a stale list is never taken for the new one).
  const [loading, setLoading] = useState(true);

  const isFiltered = filtered(filters);
  const q = useMemo(() => query(filters), [filters]);

  // First page (and on filter change / refresh): the head, the total and the newest rows.
  useEffect(() => {
    let live = true;
    inFlight.current = new Set();
    void client.audit.list({ limit: PAGE, ...q }).then((r) => {
      if (!live) return;
      setLoading(false);
      if (!r.ok) return setError(r.error);
      setError(null);
      const page = [...r.value.events].sort((a, b) => b.seq - a.seq);
      setTotal(r.value.total);
      if (isFiltered) {
        setList(page);
        setMore(page.length === PAGE);
        setHead(null);
      } else {
        setHead(page[0]?.seq ?? 0);
        setBySeq(new Map(page.map((e) => [e.seq, e])));
      }
    });
    return () => {
      live = false;
    };
  }, [client, q, isFiltered, generation]);

  const count = isFiltered ? list.length + (more ? 1 : 0) : (head ?? 0);
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;

  const fetchPage = useCallback(
    async (key: string, input: In<'audit:list'>, apply: (events: AuditEvent[]) => void) => {
      if (inFlight.current.has(key)) return;
      inFlight.current.add(key);
      const gen = inFlight.current;
      const r = await client.audit.list(input);
      if (gen !== inFlight.current) return; // filters changed meanwhile
      if (!r.ok) {
        inFlight.current.delete(key);
        return setError(r.error);
      }
      apply(r.value.events);
    },
    [client],
  );

  // Fetch what the viewport shows, a moment after scrolling settles (a fling to the end fetches one page).
  useEffect(() => {
    if (count === 0) return;
    const t = setTimeout(() => {
      if (isFiltered) {
        if (more && last >= list.length - 50) {
          const oldest = list[list.length - 1]?.seq;
          void fetchPage(`before:${oldest}`, { limit: PAGE, ...q, ...(oldest ? { beforeSeq: oldest } : {}) }, (events) => {
            const page = [...events].sort((a, b) => b.seq - a.seq);
            setList((cur) => [...cur, ...page]);
            setMore(page.length === PAGE);
          });
        }
        return;
      }
      if (head === null) return;
      for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) {
        const topSeq = head - p * PAGE;
        if (topSeq < 1 || bySeq.has(topSeq) || bySeq.has(Math.max(1, topSeq - PAGE + 1))) continue;
        void fetchPage(`page:${p}`, { limit: PAGE, beforeSeq: topSeq + 1 }, (events) => {
          setBySeq((cur) => {
            const n = new Map(cur);
            for (const e of events) n.set(e.seq, e);
            return n;
          });
        });
      }
    }, 60);
    return () => clearTimeout(t);
  }, [first, last, count, isFiltered, more, list, head, bySeq, q, fetchPage]);

  function rowAt(index: number): AuditEvent | null | undefined {
    if (isFiltered) return list[index];
    if (head === null) return undefined;
    return bySeq.get(head - index);
  }

  function applyFilters(e: FormEvent) {
    e.preventDefault();
    const next = { ...draft, channel: draft.channel.trim(), actor: draft.actor.trim(), target: draft.target.trim() };
    setOpen(null);
    setLoading(true);
    setFilters(next);
    setList([]);
    setBySeq(new Map());
    virtualizer.scrollToIndex(0);
  }

  function refresh() {
    setLoading(true);
    setBySeq(new Map());
    setList([]);
    setGeneration((g) => g + 1);
  }

  return (
    <section className="view audit-view" data-testid="audit-view">
      <div className="toolbar">
        <form className="toolbar-form audit-filters" onSubmit={applyFilters}>
          <label className="inline-field">
            <span>Actor</span>
            <input value={draft.actor} onChange={(e) => setDraft({ ...draft, actor: e.target.value })} placeholder="user name" maxLength={64} data-testid="audit-filter-actor" />
          </label>
          <label className="inline-field">
            <span>Channel</span>
            <input
              value={draft.channel}
              onChange={(e) => setDraft({ ...draft, channel: e.target.value })}
              placeholder="e.g. hosts:add"
              maxLength={64}
              list="audit-channels"
              data-testid="audit-filter-channel"
            />
          </label>
          <label className="inline-field">
            <span>Outcome</span>
            <select value={draft.outcome} onChange={(e) => setDraft({ ...draft, outcome: e.target.value })} data-testid="audit-filter-outcome">
              <option value="">any</option>
              {OUTCOMES.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          </label>
          <label className="inline-field">
            <span>Target contains</span>
            <input value={draft.target} onChange={(e) => setDraft({ ...draft, target: e.target.value })} placeholder="search targets" maxLength={256} data-testid="audit-filter-target" />
          </label>
          <label className="inline-field">
            <span>From</span>
            <input type="datetime-local" step={1} value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.target.value })} data-testid="audit-filter-since" />
          </label>
          <label className="inline-field">
            <span>To</span>
            <input type="datetime-local" step={1} value={draft.until} onChange={(e) => setDraft({ ...draft, until: e.target.value })} data-testid="audit-filter-until" />
          </label>
          <button type="submit" data-testid="audit-filter-apply">
            Apply
          </button>
          {isFiltered ? (
            <button
              type="button"
              onClick={() => {
                setDraft(EMPTY);
                setLoading(true);
                setFilters(EMPTY);
                setOpen(null);
              }}
              data-testid="audit-filter-clear"
            >
              Clear
            </button>
          ) : null}
        </form>
        <button type="button" onClick={refresh} data-testid="audit-refresh">
          Refresh
        </button>
      </div>
      <datalist id="audit-channels">
        {channelNames.map((c) => (
          <option key={c} value={c} />
        ))}
      </datalist>

      <AuditAlarmPanel />
      <div className="toolbar">
        {can('audit:verify') ? <VerifyPanel api={api} /> : null}
        <div className="toolbar-spacer" />
        {can('audit:export') ? <ExportButtons /> : null}
      </div>
      <ErrorLine error={error} testId="audit-error" />

      <div className="summary-line">
        {total !== null ? (
          <span data-testid="audit-count" data-total={total} data-rows={count}>
            {isFiltered
              ? `${list.length}${more ? '+' : ''} matching events (of ${total.toLocaleString('en')}) · newest first`
              : `${count.toLocaleString('en')} events · newest first`}
          </span>
        ) : (
          <span className="muted">Loading…</span>
        )}
      </div>

      <div className="audit-split">
        <div className="audit-grid" role="table" aria-rowcount={count + 1} aria-busy={loading} data-testid="audit-table" data-loading={loading}>
          <div className="audit-row audit-head" role="row" aria-rowindex={1}>
            <span className="num" role="columnheader">Seq</span>
            <span role="columnheader">Time</span>
            <span role="columnheader">Actor</span>
            <span role="columnheader">Channel</span>
            <span role="columnheader">Phase</span>
            <span role="columnheader">Target</span>
            <span role="columnheader">Outcome</span>
            <span role="columnheader">Error</span>
            <span role="columnheader">Hash</span>
          </div>
          {/* The rows scroll: focusable, so the keyboard scrolls them too (axe: scrollable-region-focusable). */}
          <div className="audit-scroll" ref={scrollRef} role="rowgroup" tabIndex={0} aria-label="Audit events, newest first" data-testid="audit-scroll">
            {count === 0 && total !== null ? (
              <div className="empty" role="row">
                <span role="cell">No events.</span>
              </div>
            ) : null}
            <div className="audit-canvas" style={{ height: virtualizer.getTotalSize() }}>
              {items.map((vi) => {
                const e = rowAt(vi.index);
                const style = { transform: `translateY(${vi.start}px)`, height: ROW_HEIGHT };
                if (!e) {
                  return (
                    <div key={vi.key} role="row" aria-rowindex={vi.index + 2} className="audit-row audit-row-loading" style={style} data-testid="audit-row-loading" data-index={vi.index}>
                      <span className="num mono" role="cell">{!isFiltered && head !== null ? head - vi.index : ''}</span>
                      <span className="muted" role="cell">loading…</span>
                    </div>
                  );
                }
                return (
                  <div
                    key={vi.key}
                    role="row"
                    aria-rowindex={vi.index + 2}
                    className={open?.seq === e.seq ? 'audit-row clickable row-open' : 'audit-row clickable'}
                    style={style}
                    onClick={() => setOpen(open?.seq === e.seq ? null : e)}
                    data-testid="audit-row"
                    data-index={vi.index}
                    data-seq={e.seq}
                    data-ts={e.ts}
                    data-channel={e.channel}
                    data-outcome={e.outcome}
                  >
                    <span className="num mono" role="cell">{e.seq}</span>
                    <span className="nowrap" role="cell">
                      <Time iso={e.ts} testId="audit-row-time" />
                    </span>
                    <span className="truncate" role="cell">{safeLine(e.actor)}</span>
                    <span className="mono truncate" role="cell">{safeLine(e.channel)}</span>
                    <span role="cell">{e.phase}</span>
                    <span className="truncate" role="cell" title={safeLine(e.target ?? '')} data-testid="audit-row-target">
                      {e.target ? safeLine(e.target) : DASH}
                    </span>
                    <span role="cell">
                      <span className={`badge outcome-${e.outcome}`}>{e.outcome}</span>
                    </span>
                    <span className="mono truncate" role="cell">{e.errorCode ? safeLine(e.errorCode) : DASH}</span>
                    <span className="mono" role="cell">{shortHash(e.hash)}</span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
        {open ? <EventDetail event={open} onClose={() => setOpen(null)} /> : null}
      </div>
    </section>
  );
}

function EventDetail({ event: e, onClose }: { event: AuditEvent; onClose: () => void }) {
  const cp = e.channel === 'audit:checkpoint' && typeof e.params === 'object' && e.params !== null ? (e.params as Record<string, unknown>) : null;
  return (
    <aside className="card audit-detail" data-testid="audit-detail" data-seq={e.seq}>
      <div className="panel-head">
        <h3>Event #{e.seq}</h3>
        <button type="button" className="icon-button" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <dl className="kv">
        <dt>Time</dt>
        <dd>
          {/* The event's own ts, exactly as recorded and hashed, beside the local reading. */}
          <Time iso={e.ts} testId="audit-detail-time" /> <span className="mono muted">{safeLine(e.ts)}</span>
        </dd>
        <dt>Actor</dt>
        <dd>
          {safeLine(e.actor)} ({e.roles.map((r) => safeLine(r)).join(', ') || DASH})
        </dd>
        <dt>Session · shell</dt>
        <dd className="mono">
          {e.session ? safeLine(e.session) : DASH} · {safeLine(e.shell)}
        </dd>
        <dt>Channel</dt>
        <dd className="mono">
          {safeLine(e.channel)} ({e.phase})
        </dd>
        <dt>Target</dt>
        <dd>{e.target ? safeLine(e.target) : DASH}</dd>
        <dt>Outcome</dt>
        <dd>
          {e.outcome}
          {e.errorCode ? ` · ${safeLine(e.errorCode)}` : ''}
        </dd>
        <dt>Chain position</dt>
        <dd className="mono" data-testid="audit-detail-chain">
          seq {e.seq}
          <br />
          prev {e.prevHash}
          <br />
          hash {e.hash}
        </dd>
        {cp ? (
          <>
            <dt>Checkpoint</dt>
            <dd className="mono" data-testid="audit-detail-checkpoint">
              head #{safeLine(cp.headSeq)} {safeLine(cp.headHash)}
              <br />
              at {safeLine(cp.headTs)}
              <br />
              key {safeLine(cp.keyFingerprint)}
              <br />
              signature {safeLine(cp.signature)}
            </dd>
          </>
        ) : null}
        <dt>Parameters</dt>
        <dd>
          <pre className="mono params">{safeText(JSON.stringify(e.params, null, 2) ?? '')}</pre>
        </dd>
      </dl>
    </aside>
  );
}

/** "Verify now": progress from the `audit:verify-progress` event; indeterminate until the first one. */
function VerifyPanel({ api }: { api: ReturnType<typeof useApp>['api'] }) {
  const { client } = useApp();
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState<{ checked: number; total: number } | null>(null);
  const [report, setReport] = useState<VerifyReport | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  useEffect(() => client.on('audit:verify-progress', (p) => setProgress(p)), [client]);

  // The palette's "Verify the audit trail" (declared in ./index.ts).
  useCommand('audit.verify', running ? null : () => void run());

  async function run() {
    setRunning(true);
    setReport(null);
    setError(null);
    setProgress(null);
    await api.eventsReady();
    const r = await client.audit.verify({});
    setRunning(false);
    if (r.ok) setReport(r.value);
    else setError(r.error);
  }

  return (
    <div className="verify-panel">
      <button type="button" className="primary" onClick={() => void run()} disabled={running} data-testid="audit-verify">
        {running ? 'Verifying…' : 'Verify now'}
      </button>
      {running ? (
        progress && progress.total > 0 ? (
          <span className="verify-progress">
            <progress max={progress.total} value={progress.checked} data-testid="audit-verify-progress" data-checked={progress.checked} />{' '}
            {progress.checked.toLocaleString('en')} / {progress.total.toLocaleString('en')}
          </span>
        ) : (
          <progress data-testid="audit-verify-progress" />
        )
      ) : null}
      {report ? (
        report.ok ? (
          <span className="panel panel-ok" data-testid="audit-verify-result" data-ok="true">
            <strong>Chain OK</strong> — {report.checked.toLocaleString('en')} events, {report.checkpoints} signed checkpoints; head #{report.headSeq}{' '}
            <span className="mono" title={report.headHash}>
              {shortHash(report.headHash)}
            </span>
            {report.warnings?.length ? <span className="muted"> · {report.warnings.map((w) => safeLine(w)).join('; ')}</span> : null}
          </span>
        ) : (
          <span className="panel panel-bad" role="alert" data-testid="audit-verify-result" data-ok="false">
            <strong>Chain BROKEN</strong>
            {report.firstBad ? (
              <>
                {' '}
                at seq <span className="mono" data-testid="audit-verify-bad-seq">#{report.firstBad.seq}</span> ({report.firstBad.kind}):{' '}
                {safeLine(report.firstBad.reason)}
              </>
            ) : null}{' '}
            ({report.checked} checked before the break)
          </span>
        )
      ) : null}
      <ErrorLine error={error} testId="audit-verify-error" />
    </div>
  );
}

function ExportButtons() {
  const { client } = useApp();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ExportResult | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  async function run(format: 'jsonl' | 'csv') {
    setBusy(true);
    setError(null);
    setResult(null);
    const r = await client.audit.export({ format });
    setBusy(false);
    if (r.ok) setResult(r.value);
    else setError(r.error);
  }
  return (
    <div className="export-panel">
      <button type="button" onClick={() => void run('jsonl')} disabled={busy} data-testid="audit-export-jsonl">
        Export JSONL
      </button>
      <button type="button" onClick={() => void run('csv')} disabled={busy} data-testid="audit-export-csv">
        Export CSV
      </button>
      {result ? (
        <span className="info-line" data-testid="audit-export-result" data-format={result.format} data-events={result.events}>
          {result.events.toLocaleString('en')} events → <span className="mono" data-testid="audit-export-file">{safeLine(result.file)}</span> · sha256{' '}
          <span className="mono" data-testid="audit-export-sha256">
            {result.sha256}
          </span>
        </span>
      ) : null}
      <ErrorLine error={error} testId="audit-export-error" />
    </div>
  );
}

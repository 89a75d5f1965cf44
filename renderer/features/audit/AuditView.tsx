import { Fragment, useCallback, useEffect, useState, type FormEvent } from 'react';
import type { AuditEvent, VerifyReport } from '../../../shared/contract/audit';
import { channelNames } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { DASH, formatTime, shortHash } from '../../components/format';
import { safeLine, safeText } from '../../components/safeText';
import { useApp } from '../../context';

const PAGE = 100;

interface Filters {
  channel: string;
  actor: string;
}

export function AuditView() {
  const { client, can } = useApp();
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [loading, setLoading] = useState(false);
  const [draft, setDraft] = useState<Filters>({ channel: '', actor: '' });
  const [filters, setFilters] = useState<Filters>({ channel: '', actor: '' });
  const [verify, setVerify] = useState<VerifyReport | null>(null);
  const [verifyError, setVerifyError] = useState<AirlockErrorShape | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [openSeq, setOpenSeq] = useState<number | null>(null);

  const load = useCallback(
    async (beforeSeq?: number) => {
      setLoading(true);
      setError(null);
      const r = await client.audit.list({
        limit: PAGE,
        ...(beforeSeq !== undefined ? { beforeSeq } : {}),
        ...(filters.channel ? { channel: filters.channel } : {}),
        ...(filters.actor ? { actor: filters.actor } : {}),
      });
      setLoading(false);
      if (!r.ok) return setError(r.error);
      // Newest first, whatever order the page came in.
      const page = [...r.value.events].sort((a, b) => b.seq - a.seq);
      setEvents((cur) => (beforeSeq === undefined ? page : [...cur, ...page]));
      setTotal(r.value.total);
    },
    [client, filters],
  );

  useEffect(() => {
    void load();
  }, [load]);

  async function runVerify() {
    setVerifying(true);
    setVerify(null);
    setVerifyError(null);
    const r = await client.audit.verify({});
    setVerifying(false);
    if (r.ok) setVerify(r.value);
    else setVerifyError(r.error);
  }

  function applyFilters(e: FormEvent) {
    e.preventDefault();
    setFilters({ channel: draft.channel.trim(), actor: draft.actor.trim() });
  }

  const oldest = events.length ? events[events.length - 1]!.seq : null;
  const more = oldest !== null && oldest > 1 && (total === null || events.length < total);

  return (
    <section className="view" data-testid="audit-view">
      <div className="toolbar">
        <form className="toolbar-form" onSubmit={applyFilters}>
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
            <span>Actor</span>
            <input
              value={draft.actor}
              onChange={(e) => setDraft({ ...draft, actor: e.target.value })}
              placeholder="user name"
              maxLength={64}
              data-testid="audit-filter-actor"
            />
          </label>
          <button type="submit" data-testid="audit-filter-apply">
            Apply
          </button>
          {filters.channel || filters.actor ? (
            <button
              type="button"
              onClick={() => {
                setDraft({ channel: '', actor: '' });
                setFilters({ channel: '', actor: '' });
              }}
              data-testid="audit-filter-clear"
            >
              Clear
            </button>
          ) : null}
        </form>
        <button type="button" onClick={() => void load()} disabled={loading} data-testid="audit-refresh">
          Refresh
        </button>
        <div className="toolbar-spacer" />
        {can('audit:verify') ? (
          <button type="button" className="primary" onClick={() => void runVerify()} disabled={verifying} data-testid="audit-verify">
            {verifying ? 'Verifying…' : 'Verify chain'}
          </button>
        ) : null}
      </div>
      <datalist id="audit-channels">
        {channelNames.map((c) => (
          <option key={c} value={c} />
        ))}
      </datalist>

      {verify ? (
        verify.ok ? (
          <div className="panel panel-ok" data-testid="audit-verify-result" data-ok="true">
            <strong>Chain OK</strong> — {verify.checked} events checked; head #{verify.headSeq}{' '}
            <span className="mono" title={verify.headHash}>
              {verify.headHash}
            </span>
          </div>
        ) : (
          <div className="panel panel-bad" role="alert" data-testid="audit-verify-result" data-ok="false">
            <strong>Chain BROKEN</strong>
            {verify.firstBad ? (
              <>
                {' '}
                at seq <span className="mono">#{verify.firstBad.seq}</span>: {safeLine(verify.firstBad.reason)}
              </>
            ) : null}{' '}
            ({verify.checked} checked before the break)
          </div>
        )
      ) : null}
      <ErrorLine error={verifyError} testId="audit-verify-error" />
      <ErrorLine error={error} testId="audit-error" />

      <div className="summary-line">
        {total !== null ? (
          <span data-testid="audit-count">
            Showing {events.length} of {total} events{filters.channel || filters.actor ? ' (filtered)' : ''} · newest first
          </span>
        ) : (
          <span className="muted">Loading…</span>
        )}
      </div>

      <div className="table-wrap">
        <table className="grid audit-table" data-testid="audit-table">
          <thead>
            <tr>
              <th className="num">Seq</th>
              <th>Time</th>
              <th>Actor</th>
              <th>Roles</th>
              <th>Channel</th>
              <th>Phase</th>
              <th>Target</th>
              <th>Outcome</th>
              <th>Error code</th>
              <th>Hash</th>
            </tr>
          </thead>
          <tbody>
            {events.length === 0 && !loading ? (
              <tr>
                <td colSpan={10} className="empty">
                  No events.
                </td>
              </tr>
            ) : null}
            {events.map((e) => (
              <Fragment key={e.seq}>
                <tr
                  className={openSeq === e.seq ? 'row-open clickable' : 'clickable'}
                  onClick={() => setOpenSeq(openSeq === e.seq ? null : e.seq)}
                  data-testid="audit-row"
                  data-seq={e.seq}
                  data-channel={e.channel}
                  data-outcome={e.outcome}
                >
                  <td className="num mono">{e.seq}</td>
                  <td className="nowrap" title={e.ts}>
                    {formatTime(e.ts)}
                  </td>
                  <td>{safeLine(e.actor)}</td>
                  <td>{e.roles.map((r) => safeLine(r)).join(', ') || DASH}</td>
                  <td className="mono">{safeLine(e.channel)}</td>
                  <td>{e.phase}</td>
                  <td className="truncate" title={safeLine(e.target ?? '')}>
                    {e.target ? safeLine(e.target) : DASH}
                  </td>
                  <td>
                    <span className={`badge outcome-${e.outcome}`}>{e.outcome}</span>
                  </td>
                  <td className="mono">{e.errorCode ? safeLine(e.errorCode) : DASH}</td>
                  <td className="mono" title={e.hash}>
                    {shortHash(e.hash)}
                  </td>
                </tr>
                {openSeq === e.seq ? (
                  <tr className="row-detail">
                    <td colSpan={10}>
                      <dl className="kv">
                        <dt>Session</dt>
                        <dd className="mono">{e.session ? safeLine(e.session) : DASH}</dd>
                        <dt>Shell</dt>
                        <dd>{safeLine(e.shell)}</dd>
                        <dt>Parameters</dt>
                        <dd>
                          <pre className="mono params">{safeText(JSON.stringify(e.params, null, 2) ?? '')}</pre>
                        </dd>
                        <dt>Previous hash</dt>
                        <dd className="mono">{e.prevHash}</dd>
                        <dt>Hash</dt>
                        <dd className="mono">{e.hash}</dd>
                      </dl>
                    </td>
                  </tr>
                ) : null}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
      <div className="pager">
        {more ? (
          <button type="button" onClick={() => void load(oldest ?? undefined)} disabled={loading} data-testid="audit-load-older">
            {loading ? 'Loading…' : 'Load older'}
          </button>
        ) : events.length ? (
          <span className="muted">Beginning of the trail.</span>
        ) : null}
      </div>
    </section>
  );
}

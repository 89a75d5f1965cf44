import './hosts.css';
import { Fragment, useCallback, useEffect, useRef, useState } from 'react';
import type { Host, ScanOutcome } from '../../../shared/contract/hosts';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { newRequestId } from '../../api';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { DASH, formatDuration, orDash, shortFingerprint } from '../../components/format';
import { Ago, useCoreNow } from '../../components/Time';
import { shownStatus, type ShownStatus } from './health';
import { safeLine, safeText } from '../../components/safeText';
import { useApp } from '../../context';
import { useCommand } from '../palette/commands';
import { ConfirmKeyDialog } from './ConfirmKeyDialog';
import { EditHostDialog } from './EditHostDialog';
import { EmptyHosts } from './EmptyHosts';
import { RepinDialog } from './RepinDialog';
import { EnrolDialog } from './EnrolDialog';
import { gpuSummary, HostDetail } from './GpuTable';
import { ImportDialog, type ImportKind } from './ImportDialog';

interface ScanRun {
  requestId: string;
  /** Null for "Scan all". */
  names: string[] | null;
  startedAt: number;
}

interface ScanReport {
  outcomes: ScanOutcome[];
  ms: number;
  cancelled: boolean;
}

/** The core's status (`data-status`); `shown` is what the view makes of it (stale, GPU error: `data-shown`). */
export function StatusBadge({ status, shown, testId }: { status: Host['status']; shown?: ShownStatus; testId?: string }) {
  return (
    <span className={`badge ${shown?.className ?? `badge-${status}`}`} data-testid={testId} data-status={status} data-shown={shown?.label ?? status} title={shown?.note ?? undefined}>
      {shown?.label ?? status}
    </span>
  );
}

export function HostsView({ onOpenTerminal, onOpenIdentity }: { onOpenTerminal: ((name: string) => void) | null; onOpenIdentity: (() => void) | null }) {
  const { client, can } = useApp();
  const now = useCoreNow();
  const [hosts, setHosts] = useState<Host[] | null>(null);
  const [listError, setListError] = useState<AirlockErrorShape | null>(null);
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [scan, setScan] = useState<ScanRun | null>(null);
  const [scanError, setScanError] = useState<AirlockErrorShape | null>(null);
  const [report, setReport] = useState<ScanReport | null>(null);
  const [rowScans, setRowScans] = useState<Set<string>>(new Set());
  const [rowErrors, setRowErrors] = useState<Record<string, AirlockErrorShape>>({});
  const [enrolOpen, setEnrolOpen] = useState(false);
  const [confirmKeyFor, setConfirmKeyFor] = useState<Host | null>(null);
  const [repinFor, setRepinFor] = useState<Host | null>(null);
  const [editFor, setEditFor] = useState<Host | null>(null);
  const [removeFor, setRemoveFor] = useState<Host | null>(null);
  const [removeError, setRemoveError] = useState<AirlockErrorShape | null>(null);
  const [importKind, setImportKind] = useState<ImportKind | null>(null);
  const [filter, setFilter] = useState('');
  const live = useRef(true);
  const cancelRequested = useRef(false);
  useEffect(() => {
    // Set on every mount: StrictMode mounts, unmounts and mounts again in development.
    live.current = true;
    return () => {
      live.current = false;
    };
  }, []);

  const refresh = useCallback(async () => {
    const r = await client.hosts.list({});
    if (!live.current) return;
    if (r.ok) {
      setHosts(r.value);
      setListError(null);
    } else setListError(r.error);
  }, [client]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  async function scanAll() {
    const run: ScanRun = { requestId: newRequestId(), names: null, startedAt: Date.now() };
    cancelRequested.current = false;
    setScan(run);
    setScanError(null);
    setReport(null);
    const r = await client.hosts.scan({ requestId: run.requestId });
    if (!live.current) return;
    setScan(null);
    if (r.ok) setReport({ outcomes: r.value, ms: Date.now() - run.startedAt, cancelled: cancelRequested.current });
    else if (r.error.code === 'CANCELLED') setReport({ outcomes: [], ms: Date.now() - run.startedAt, cancelled: true });
    else setScanError(r.error);
    await refresh();
  }

  async function cancelScan() {
    if (!scan) return;
    cancelRequested.current = true;
    const r = await client.ops.cancel({ requestId: scan.requestId });
    if (!r.ok) setScanError(r.error);
  }

  async function scanOne(name: string) {
    setRowScans((s) => new Set(s).add(name));
    setRowErrors(({ [name]: _drop, ...rest }) => rest);
    const r = await client.hosts.scan({ names: [name], requestId: newRequestId() });
    if (!live.current) return;
    setRowScans((s) => {
      const n = new Set(s);
      n.delete(name);
      return n;
    });
    if (!r.ok) setRowErrors((e) => ({ ...e, [name]: r.error }));
    else {
      const o = r.value.find((x) => x.name === name);
      if (o && !o.ok && o.error) setRowErrors((e) => ({ ...e, [name]: o.error as AirlockErrorShape }));
    }
    await refresh();
  }

  async function remove(host: Host) {
    setRemoveError(null);
    const r = await client.hosts.remove({ name: host.name });
    if (!r.ok) return setRemoveError(r.error);
    setRemoveFor(null);
    await refresh();
  }

  function toggle(name: string) {
    setExpanded((s) => {
      const n = new Set(s);
      if (n.has(name)) n.delete(name);
      else n.add(name);
      return n;
    });
  }

  const canScan = can('hosts:scan');
  const canAdmin = can('hosts:add');
  // The palette's "Enrol a host" and "Scan all hosts" (declared in ./index.tsx).
  useCommand('hosts.enrol', canAdmin ? () => setEnrolOpen(true) : null);
  useCommand('hosts.scanAll', canScan && hosts?.length && !scan ? () => void scanAll() : null);
  const q = filter.trim().toLowerCase();
  const shown = (hosts ?? []).filter(
    (h) => !q || h.name.toLowerCase().includes(q) || h.address.toLowerCase().includes(q) || h.status.includes(q),
  );
  const counts = (hosts ?? []).reduce<Record<string, number>>((acc, h) => {
    acc[h.status] = (acc[h.status] ?? 0) + 1;
    return acc;
  }, {});
  const gpuTotal = (hosts ?? []).reduce((n, h) => n + (h.inventory?.gpus.length ?? 0), 0);

  return (
    <section className="view" data-testid="hosts-view">
      <div className="toolbar">
        {canScan ? (
          scan ? (
            <>
              <button type="button" disabled data-testid="hosts-scan-all">
                <span className="spinner" /> Scanning…
              </button>
              <button type="button" className="danger" onClick={() => void cancelScan()} data-testid="hosts-scan-cancel">
                Cancel
              </button>
            </>
          ) : (
            <button type="button" className="primary" onClick={() => void scanAll()} disabled={!hosts?.length} data-testid="hosts-scan-all">
              Scan all
            </button>
          )
        ) : null}
        {canAdmin ? (
          <button type="button" onClick={() => setEnrolOpen(true)} data-testid="enrol-open">
            Enrol host…
          </button>
        ) : null}
        {can('hosts:importKnownHosts') ? (
          <button type="button" onClick={() => setImportKind('knownHosts')} data-testid="import-known-hosts">
            Import known_hosts…
          </button>
        ) : null}
        {can('hosts:importSshConfig') ? (
          <button type="button" onClick={() => setImportKind('sshConfig')} data-testid="import-ssh-config">
            Import ssh_config…
          </button>
        ) : null}
        <button type="button" onClick={() => void refresh()} data-testid="hosts-refresh">
          Refresh
        </button>
        <div className="toolbar-spacer" />
        <input
          className="filter"
          type="search"
          placeholder="Filter by name, address, status"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          data-testid="hosts-filter"
        />
      </div>
      <div className="summary-line" data-testid="hosts-summary">
        {hosts ? (
          <>
            <span>{hosts.length} hosts</span>
            {Object.entries(counts).map(([s, n]) => (
              <span key={s}>
                <StatusBadge status={s as Host['status']} /> {n}
              </span>
            ))}
            <span>{gpuTotal} GPUs</span>
          </>
        ) : (
          <span className="muted">Loading…</span>
        )}
      </div>
      <ErrorLine error={listError} testId="hosts-error" />
      <ErrorLine error={scanError} testId="scan-error" />
      {report ? <ScanReportPanel report={report} onDismiss={() => setReport(null)} /> : null}

      {hosts && hosts.length === 0 ? <EmptyHosts onOpenIdentity={onOpenIdentity} canEnrol={canAdmin} onEnrol={() => setEnrolOpen(true)} /> : null}
      <div className="table-wrap">
        <table className="grid hosts-table" data-testid="hosts-table">
          <thead>
            <tr>
              <th className="col-toggle" aria-label="Details" />
              <th>Name</th>
              <th>Address</th>
              <th>User</th>
              <th>Status</th>
              <th>Fingerprint</th>
              <th>OS</th>
              <th>GPUs</th>
              <th>Driver</th>
              <th>Last seen</th>
              <th>Last error</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {hosts && shown.length === 0 ? (
              <tr>
                <td colSpan={12} className="empty">
                  {hosts.length === 0 ? 'No hosts yet. Enrol one, or import a known_hosts or ssh_config file.' : 'No host matches the filter.'}
                </td>
              </tr>
            ) : null}
            {shown.map((h) => {
              const open = expanded.has(h.name);
              const rowErr = rowErrors[h.name];
              const busy = rowScans.has(h.name) || (scan !== null && scan.names === null);
              return (
                <Fragment key={h.name}>
                  <tr className={open ? 'row-open' : undefined} data-testid={`host-row-${h.name}`} data-host={h.name} data-busy={busy}>
                    <td className="col-toggle">
                      <button
                        type="button"
                        className="icon-button"
                        aria-expanded={open}
                        aria-label={open ? 'Hide details' : 'Show details'}
                        onClick={() => toggle(h.name)}
                        data-testid={`host-expand-${h.name}`}
                      >
                        {open ? '▾' : '▸'}
                      </button>
                    </td>
                    <td className="strong">{h.name}</td>
                    <td className="mono">
                      {h.address}:{h.port}
                    </td>
                    <td className="mono">{h.user}</td>
                    <td>
                      <StatusBadge status={h.status} shown={shownStatus(h, now)} testId={`host-status-${h.name}`} />
                      {busy ? <span className="spinner spinner-inline" aria-label="scanning" /> : null}
                    </td>
                    <td className="mono nowrap" title={h.fingerprint ?? 'No pinned key'} data-testid={`host-fingerprint-${h.name}`}>
                      {shortFingerprint(h.fingerprint)}
                    </td>
                    <td className="truncate" title={safeLine(h.inventory?.os ?? '')}>
                      <span className="cell-clip">{orDash(h.inventory?.os)}</span>
                    </td>
                    <td className="nowrap" data-testid={`host-gpus-${h.name}`}>
                      {gpuSummary(h)}
                    </td>
                    <td className="mono">{orDash(h.inventory?.driverVersion)}</td>
                    <td className="nowrap">
                      <Ago iso={h.lastSeenAt} now={now} testId={`host-last-seen-${h.name}`} />
                    </td>
                    <td className={h.lastError ? 'truncate last-error error-cell' : 'truncate last-error'} title={safeLine(h.lastError ?? '')} data-testid={`host-error-${h.name}`}>
                      <span className="cell-clip">{h.lastError ? safeLine(h.lastError, 300) : DASH}</span>
                    </td>
                    <td className="col-actions">
                      {h.status === 'unconfirmed' && can('hosts:confirm') ? (
                        <button type="button" className="small primary" onClick={() => setConfirmKeyFor(h)} data-testid={`host-confirm-key-${h.name}`}>
                          Confirm key
                        </button>
                      ) : null}
                      {canScan ? (
                        <button
                          type="button"
                          className="small"
                          onClick={() => void scanOne(h.name)}
                          disabled={busy || h.fingerprint === null}
                          title={h.fingerprint === null ? 'Confirm the host key first' : undefined}
                          data-testid={`host-scan-${h.name}`}
                        >
                          Scan
                        </button>
                      ) : null}
                      {onOpenTerminal ? (
                        <button
                          type="button"
                          className="small"
                          onClick={() => onOpenTerminal(h.name)}
                          disabled={h.fingerprint === null}
                          data-testid={`host-terminal-${h.name}`}
                        >
                          Terminal
                        </button>
                      ) : null}
                      {can('hosts:update') ? (
                        <button type="button" className="small" onClick={() => setEditFor(h)} data-testid={`host-edit-${h.name}`}>
                          Edit…
                        </button>
                      ) : null}
                      {can('hosts:remove') ? (
                        <button
                          type="button"
                          className="small danger-outline"
                          onClick={() => {
                            setRemoveError(null);
                            setRemoveFor(h);
                          }}
                          data-testid={`host-remove-${h.name}`}
                        >
                          Remove
                        </button>
                      ) : null}
                    </td>
                  </tr>
                  {rowErr || h.status === 'key-changed' ? (
                    <tr className="row-error">
                      <td />
                      <td colSpan={11}>
                        {rowErr ? (
                          <ErrorLine error={rowErr} testId={`host-scan-error-${h.name}`} />
                        ) : (
                          <div className="error-line" role="alert">
                            <span className="error-message">{safeText(h.lastError ?? 'The host presented a different host key.')}</span>
                          </div>
                        )}
                        {h.status === 'key-changed' ? (
                          <div className="hint" data-testid={`host-key-changed-help-${h.name}`}>
                            Airlock refuses to connect to this host while its key differs from the pinned one. If the
                            host was reinstalled, compare the new key with the one on its console and accept it
                            (&quot;Accept new key…&quot;: both keys side by side, recorded in the audit trail); otherwise
                            treat this as a possible interception.
                            {h.fingerprint !== null && can('hosts:repin') ? (
                              <>
                                {' '}
                                <button type="button" className="small danger-outline" onClick={() => setRepinFor(h)} data-testid={`host-repin-${h.name}`}>
                                  Accept new key…
                                </button>
                              </>
                            ) : null}
                          </div>
                        ) : null}
                      </td>
                    </tr>
                  ) : null}
                  {open ? (
                    <tr className="row-detail">
                      <td />
                      <td colSpan={11}>
                        <HostDetail host={h} />
                      </td>
                    </tr>
                  ) : null}
                </Fragment>
              );
            })}
          </tbody>
        </table>
      </div>

      {enrolOpen ? (
        <EnrolDialog
          onClose={() => setEnrolOpen(false)}
          onEnrolled={(h) => {
            setEnrolOpen(false);
            // Shown at once, and scanned at once: the row says whether Airlock can log in.
            setHosts((list) => [...(list ?? []).filter((x) => x.name !== h.name), h].sort((a, b) => (a.name < b.name ? -1 : 1)));
            void scanOne(h.name);
          }}
        />
      ) : null}
      {confirmKeyFor ? (
        <ConfirmKeyDialog
          host={confirmKeyFor}
          onClose={() => setConfirmKeyFor(null)}
          onConfirmed={() => {
            setConfirmKeyFor(null);
            void refresh();
          }}
        />
      ) : null}
      {repinFor ? (
        <RepinDialog
          host={repinFor}
          onClose={() => setRepinFor(null)}
          onPinned={(h) => {
            setRepinFor(null);
            void scanOne(h.name);
          }}
        />
      ) : null}
      {editFor ? (
        <EditHostDialog
          host={editFor}
          onClose={() => setEditFor(null)}
          onSaved={(h, moved) => {
            setEditFor(null);
            if (moved && h.fingerprint !== null) void scanOne(h.name);
            else void refresh();
          }}
        />
      ) : null}
      {importKind ? <ImportDialog kind={importKind} onClose={() => setImportKind(null)} onImported={() => void refresh()} /> : null}
      {removeFor ? (
        <Modal
          title={`Remove ${removeFor.name}?`}
          onClose={() => setRemoveFor(null)}
          testId="remove-dialog"
          footer={
            <>
              <button type="button" onClick={() => setRemoveFor(null)} data-testid="remove-cancel">
                Cancel
              </button>
              <button type="button" className="danger" onClick={() => void remove(removeFor)} data-testid="remove-confirm">
                Remove host
              </button>
            </>
          }
        >
          <p>
            Airlock forgets <strong>{removeFor.name}</strong> ({removeFor.address}:{removeFor.port}) and its pinned host key
            {removeFor.fingerprint ? <span className="mono"> {removeFor.fingerprint}</span> : null}. Enrolling it again means
            verifying its key again. Airlock&apos;s public key stays in the host&apos;s authorized_keys until you remove it there.
          </p>
          <ErrorLine error={removeError} testId="remove-error" />
        </Modal>
      ) : null}
    </section>
  );
}

function ScanReportPanel({ report, onDismiss }: { report: ScanReport; onDismiss: () => void }) {
  const failed = report.outcomes.filter((o) => !o.ok);
  const ok = report.outcomes.length - failed.length;
  return (
    <div className={failed.length || report.cancelled ? 'panel panel-warn' : 'panel panel-ok'} data-testid="scan-results">
      <div className="panel-head">
        <span>
          {report.cancelled
            ? `Scan cancelled after ${formatDuration(report.ms)}: ${ok} ok, ${failed.length} failed or not finished.`
            : `Scanned ${report.outcomes.length} host${report.outcomes.length === 1 ? '' : 's'} in ${formatDuration(report.ms)}: ${ok} ok, ${failed.length} failed.`}
        </span>
        <button type="button" className="icon-button" aria-label="Dismiss" onClick={onDismiss}>
          ×
        </button>
      </div>
      {failed.length ? (
        <table className="grid grid-compact">
          <thead>
            <tr>
              <th>Host</th>
              <th>Status</th>
              <th>Code</th>
              <th>Error</th>
              <th className="num">Time</th>
            </tr>
          </thead>
          <tbody>
            {failed.map((o) => (
              <tr key={o.name} data-testid={`scan-failure-${o.name}`}>
                <td className="strong">{o.name}</td>
                <td>
                  <StatusBadge status={o.status} />
                </td>
                <td className="mono">{o.error?.code ?? DASH}</td>
                <td className="error-cell">{safeLine(o.error?.message ?? '')}</td>
                <td className="num">{formatDuration(o.ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

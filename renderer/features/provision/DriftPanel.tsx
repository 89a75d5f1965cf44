import { useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { Out } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { newRequestId } from '../../api';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { useApp } from '../../context';
import { HostPicker } from './HostPicker';
import { compactJson, EMPTY_SELECTION, selectorOf, type HostSelection } from './model';

type Report = Out<'provision:drift'>[number];

/** Compare hosts with their last as-built attestation (read-only on the hosts). */
export function DriftPanel({ hosts, onHostsChanged, onAttestation }: { hosts: Host[]; onHostsChanged: () => void; onAttestation: (host: string, id: string) => void }) {
  const { client, coreNow } = useApp();
  const [sel, setSel] = useState<HostSelection>(EMPTY_SELECTION);
  const [requestId, setRequestId] = useState<string | null>(null);
  const [reports, setReports] = useState<Report[] | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [at, setAt] = useState<string | null>(null);
  const selector = selectorOf(sel);

  async function run() {
    if (!selector) return;
    const id = newRequestId();
    setRequestId(id);
    setError(null);
    setReports(null);
    const r = await client.provision.drift({ hosts: selector, requestId: id });
    setRequestId(null);
    if (r.ok) {
      setReports(r.value);
      // The core's clock, shown the one way (components/time.ts).
      setAt(new Date(coreNow()).toISOString());
    } else setError(r.error);
  }

  async function cancel() {
    if (!requestId) return;
    const r = await client.ops.cancel({ requestId });
    if (!r.ok) setError(r.error);
  }

  const drifted = reports?.filter((r) => r.drifted).length ?? 0;
  const failed = reports?.filter((r) => r.error).length ?? 0;

  return (
    <div data-testid="prov-drift">
      <div className="card">
        <div className="prov-section-title">
          <h2>Drift</h2>
          <span className="muted">Each host&apos;s playbook verify is run again (read-only) and compared with what its last attestation proved.</span>
        </div>
        <HostPicker hosts={hosts} value={sel} onChange={setSel} onHostsChanged={onHostsChanged} prefix="prov-drift" />
        <div className="prov-actions">
          {requestId ? (
            <>
              <button type="button" disabled data-testid="prov-drift-run">
                <span className="spinner" /> Checking…
              </button>
              <button type="button" className="danger" onClick={() => void cancel()} data-testid="prov-drift-cancel">
                Cancel
              </button>
            </>
          ) : (
            <button type="button" className="primary" disabled={!selector} onClick={() => void run()} data-testid="prov-drift-run">
              Check drift
            </button>
          )}
        </div>
      </div>
      <ErrorLine error={error} testId="prov-drift-error" />
      {reports ? (
        <div className="prov-run" data-testid="prov-drift-results" data-drifted={drifted} data-failed={failed}>
          <div className="summary-line">
            <span>
              {reports.length} host(s) checked
              {at ? (
                <>
                  {' at '}
                  <Time iso={at} />
                </>
              ) : null}
              : {drifted} drifted, {failed} could not be checked, {reports.length - drifted - failed} as attested.
            </span>
          </div>
          {reports.map((r) => (
            <div
              key={r.host}
              className={r.error ? 'panel panel-warn prov-drift-host' : r.drifted ? 'panel panel-bad prov-drift-host' : 'panel panel-ok prov-drift-host'}
              data-testid={`prov-drift-host-${r.host}`}
              data-drifted={r.drifted}
              data-items={r.items.length}
            >
              <div className="panel-head">
                <span>
                  <strong>{r.host}</strong>{' '}
                  {r.error ? 'could not be checked' : r.drifted ? `drifted: ${r.items.length} item(s) differ from the attestation` : 'as attested: no drift'}
                </span>
                {r.attestationId ? (
                  <button type="button" className="small" onClick={() => onAttestation(r.host, r.attestationId!)} data-testid={`prov-drift-attestation-${r.host}`}>
                    Attestation {r.attestationId}
                  </button>
                ) : null}
              </div>
              {r.error ? <div className="error-message">{safeLine(r.error, 1000)}</div> : null}
              {r.items.length ? (
                <table className="grid grid-compact">
                  <thead>
                    <tr>
                      <th>Step</th>
                      <th>Path</th>
                      <th>Attested</th>
                      <th>Now</th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.items.map((it, i) => (
                      <tr key={i} data-testid="prov-drift-item" data-step={it.stepId} data-path={it.path}>
                        <td className="mono">{it.stepId}</td>
                        <td className="mono">{safeLine(it.path, 300)}</td>
                        <td className="prov-drift-value">{safeLine(compactJson(it.attested))}</td>
                        <td className="prov-drift-value">{safeLine(compactJson(it.now))}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              ) : null}
            </div>
          ))}
        </div>
      ) : null}
    </div>
  );
}

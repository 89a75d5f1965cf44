import type { Host } from '../../../shared/contract/hosts';
import { DASH, formatMiB, orDash, withUnit } from '../../components/format';
import { Time } from '../../components/Time';
import { safeLine, safeText } from '../../components/safeText';
import { clockEventReasons } from './health';

export function HostDetail({ host }: { host: Host }) {
  const inv = host.inventory;
  return (
    <div className="host-detail" data-testid={`host-detail-${host.name}`}>
      <dl className="kv">
        <dt>Hostname</dt>
        <dd className="mono">{orDash(inv?.hostname)}</dd>
        <dt>OS</dt>
        <dd>{orDash(inv?.os)}</dd>
        <dt>Kernel</dt>
        <dd className="mono">{orDash(inv?.kernel)}</dd>
        <dt>Driver</dt>
        <dd className="mono">{orDash(inv?.driverVersion)}</dd>
        <dt>Scanned</dt>
        <dd><Time iso={inv?.scannedAt} /></dd>
        <dt>Host key</dt>
        <dd className="mono">
          {host.fingerprint ?? 'not confirmed'} {host.keyType ? `(${safeLine(host.keyType)})` : ''}
        </dd>
        <dt>Enrolled</dt>
        <dd><Time iso={host.addedAt} /></dd>
      </dl>
      {host.lastError ? (
        <div className="error-line error-block">
          <span className="error-message">{safeText(host.lastError)}</span>
        </div>
      ) : null}
      {inv?.gpuError ? (
        <div className="warn-line" data-testid={`host-gpu-error-${host.name}`}>
          GPU inventory unavailable: {safeLine(inv.gpuError)}
        </div>
      ) : null}
      {!inv ? (
        <p className="muted">Not scanned yet.</p>
      ) : inv.gpus.length === 0 ? (
        <p className="muted">No GPUs reported.</p>
      ) : (
        <table className="grid grid-compact" data-testid={`gpu-table-${host.name}`}>
          <thead>
            <tr>
              <th className="num">#</th>
              <th>Name</th>
              <th className="num">Memory used / total</th>
              <th className="num">Util</th>
              <th className="num">Temp</th>
              <th className="num">Power</th>
              <th>ECC</th>
              <th>Persistence</th>
              <th>Clock event reasons</th>
              <th>UUID</th>
            </tr>
          </thead>
          <tbody>
            {inv.gpus.map((g) => (
              <tr key={g.index}>
                <td className="num">{g.index}</td>
                <td>{orDash(g.name)}</td>
                <td className="num">
                  {g.memoryUsedMiB === null && g.memoryTotalMiB === null
                    ? DASH
                    : `${formatMiB(g.memoryUsedMiB)} / ${formatMiB(g.memoryTotalMiB)}`}
                </td>
                <td className="num">{withUnit(g.utilizationPct, ' %')}</td>
                <td className="num">{withUnit(g.temperatureC, ' °C')}</td>
                <td className="num">{withUnit(g.powerDrawW, ' W', 1)}</td>
                <td>{orDash(g.eccMode)}</td>
                <td>{orDash(g.persistenceMode)}</td>
                <td title={safeLine(g.throttleReasons ?? '')} data-testid={`gpu-reasons-${host.name}-${g.index}`}>
                  {clockEventReasons(g.throttleReasons).map((w) => safeLine(w)).join(', ') || DASH}
                </td>
                <td className="mono truncate" title={safeLine(g.uuid ?? '')}>
                  {orDash(g.uuid)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** "8 × NVIDIA A100-SXM4-80GB", models grouped in first-seen order. */
export function gpuSummary(host: Host): string {
  const inv = host.inventory;
  if (!inv) return DASH;
  if (inv.gpus.length === 0) return inv.gpuError ? 'unavailable' : 'none';
  const counts = new Map<string, number>();
  for (const g of inv.gpus) {
    const n = safeLine(g.name) || 'unknown';
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return [...counts].map(([n, c]) => `${c} × ${n}`).join(', ');
}

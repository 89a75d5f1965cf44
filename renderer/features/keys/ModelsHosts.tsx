import { useCallback, useEffect, useState } from 'react';
import type { ModelsStatus } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { DASH } from '../../components/format';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';
import { hostsByVersion } from './history';

type Row = { host: string; status: ModelsStatus | null; error: AirlockErrorShape | null };

const STATE_TEXT: Record<ModelsStatus['state'], string> = {
  unencrypted: 'not encrypted',
  locked: 'locked (key not delivered since the host restarted)',
  unlocked: 'unlocked',
  absent: 'no models directory',
  unsupported: 'cannot be encrypted on this host',
};

/**
 * The `models` domain's hosts per KEK version: which hosts' model-directory keys each version of
 * the models KEK wraps (keys:modelsStatus for every enrolled host, read over SSH, so only when
 * asked and when the page opens). After a rotation every key is rewrapped to the new version; a
 * host still under an older one is what keeps that version from being retired.
 */
export function ModelsHosts({ active, versions }: { active: boolean; versions: number[] }) {
  const { client } = useApp();
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    setBusy(true);
    setError(null);
    const hosts = await client.hosts.list({});
    if (!hosts.ok) {
      setBusy(false);
      return setError(hosts.error);
    }
    const out = await Promise.all(
      hosts.value.map(async (h): Promise<Row> => {
        const r = await client.keys.modelsStatus({ host: h.name });
        return r.ok ? { host: h.name, status: r.value, error: null } : { host: h.name, status: null, error: r.error };
      }),
    );
    setRows(out);
    setBusy(false);
  }, [client]);

  useEffect(() => {
    if (active) void load();
  }, [active, load]);

  const grouped = hostsByVersion((rows ?? []).map((r) => ({ host: r.host, ...(r.status?.kekVersion !== undefined ? { kekVersion: r.status.kekVersion } : {}) })));
  const shownVersions = [...new Set([...versions, ...grouped.versions.keys()])].sort((a, b) => b - a);

  return (
    <section data-testid="keys-models-hosts">
      <div className="panel-head">
        <h3>Hosts per models KEK version</h3>
        <button type="button" className="small" onClick={() => void load()} disabled={busy} data-testid="keys-models-hosts-refresh">
          {busy ? 'Reading the hosts…' : 'Read the hosts again'}
        </button>
      </div>
      <ErrorLine error={error} testId="keys-models-hosts-error" />
      {rows && rows.length === 0 ? (
        <p className="muted" data-testid="keys-models-hosts-none">
          No host is enrolled: a GPU host&apos;s models directory gets its own key when it is protected (keys protect-models HOST).
        </p>
      ) : null}
      {rows && rows.length ? (
        <>
          <ul className="keys-versions" data-testid="keys-models-versions">
            {shownVersions.map((v) => (
              <li key={v} data-testid={`keys-models-v${v}`} data-hosts={(grouped.versions.get(v) ?? []).join(',')}>
                <span className="strong">v{v}</span>: {(grouped.versions.get(v) ?? []).map((h) => safeLine(h)).join(', ') || 'no host'}
              </li>
            ))}
            {grouped.without.length ? (
              <li data-testid="keys-models-without">
                <span className="strong">No models key</span>: {grouped.without.map((h) => safeLine(h)).join(', ')}
              </li>
            ) : null}
          </ul>
          <div className="table-wrap">
            <table className="grid grid-compact" data-testid="keys-models-hosts-table">
              <thead>
                <tr>
                  <th>Host</th>
                  <th>Models directory</th>
                  <th>Key</th>
                  <th className="num">KEK version</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.host} data-testid={`keys-models-host-${r.host}`} data-state={r.status?.state ?? 'error'} data-version={r.status?.kekVersion ?? ''}>
                    <td className="strong">{safeLine(r.host)}</td>
                    <td>
                      {r.status ? (
                        <>
                          <span className="mono">{safeLine(r.status.dir)}</span> {STATE_TEXT[r.status.state]}
                        </>
                      ) : (
                        <ErrorLine error={r.error} />
                      )}
                    </td>
                    <td className="mono">{r.status?.keyId ? safeLine(r.status.keyId) : DASH}</td>
                    <td className="num">{r.status?.kekVersion !== undefined ? `v${r.status.kekVersion}` : DASH}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}

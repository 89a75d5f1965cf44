import type { KeyDomain, KeyStatus } from '../../../shared/contract/keys';
import { DASH } from '../../components/format';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { progressText } from './model';

/**
 * The key hierarchy as the core reports it (keys:status): fingerprints and counts only, never a
 * key. `canRotate` offers a KEK rotation per domain (it needs the root: an unsealed hierarchy).
 */
export function Hierarchy({ status, canRotate, onRotate }: { status: KeyStatus; canRotate: boolean; onRotate(domain: KeyDomain): void }) {
  if (!status.initialised) {
    return (
      <div className="panel panel-warn" data-testid="keys-uninitialised">
        <p className="strong">There is no key hierarchy yet.</p>
        <p>
          A genesis ceremony creates the root key, splits it among the security officers (m of n must come together to open it), creates each
          domain&apos;s KEK and the internal CA. It needs the officers and at least one witness in the room.
        </p>
      </div>
    );
  }
  return (
    <>
      <dl className="kv keys-root" data-testid="keys-root">
        <dt>State</dt>
        <dd>
          {status.sealed ? (
            <span className="badge badge-error" data-testid="keys-seal-state" data-sealed="true">
              sealed
            </span>
          ) : (
            <span className="badge badge-reachable" data-testid="keys-seal-state" data-sealed="false">
              unsealed
            </span>
          )}{' '}
          {!status.sealed && status.unsealedBy.length ? (
            <span data-testid="keys-unsealed-by">
              by {status.unsealedBy.map((n) => safeLine(n)).join(', ')}
              {status.unsealedAt ? (
                <>
                  {' '}
                  at <Time iso={status.unsealedAt} />
                </>
              ) : null}
            </span>
          ) : null}
          {status.unsealing ? (
            <span className="badge badge-unconfirmed" data-testid="keys-unsealing">
              unseal in progress: {progressText(status.unsealing.collected, status.unsealing.threshold)}
            </span>
          ) : null}
        </dd>
        <dt>Root key check value</dt>
        <dd className="mono" data-testid="keys-root-kcv">
          {status.rootKcv ?? DASH}
        </dd>
        <dt>Quorum</dt>
        <dd data-testid="keys-quorum">
          {status.threshold ?? '?'} of {status.count ?? '?'} officers
        </dd>
        <dt>Hierarchy</dt>
        <dd className="mono">{safeLine(status.hierarchyId ?? DASH)}</dd>
      </dl>

      <h3>Officers holding shares</h3>
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="keys-officers">
          <thead>
            <tr>
              <th className="num">Share</th>
              <th>Officer</th>
              <th>Sealing fingerprint</th>
            </tr>
          </thead>
          <tbody>
            {status.officers.map((o) => (
              <tr key={o.index} data-testid={`keys-officer-${o.index}`}>
                <td className="num">{o.index}</td>
                <td className="strong">{safeLine(o.name)}</td>
                <td className="mono">{safeLine(o.fingerprint)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h3>Key-encryption keys</h3>
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="keys-keks">
          <thead>
            <tr>
              <th>Domain</th>
              <th className="num">Current</th>
              <th className="num">Min. decryption</th>
              <th>Versions (key check value, created, data keys)</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {status.domains.map((d) => (
              <tr key={d.domain} data-testid={`keys-kek-${d.domain}`} data-version={d.currentVersion} data-min={d.minDecryptionVersion}>
                <td className="strong">{d.domain}</td>
                <td className="num" data-testid={`keys-kek-version-${d.domain}`}>
                  v{d.currentVersion}
                </td>
                <td className="num">v{d.minDecryptionVersion}</td>
                <td>
                  <ul className="keys-versions">
                    {d.versions.map((v) => (
                      <li key={v.version} data-testid={`keys-kek-${d.domain}-v${v.version}`}>
                        <span className="strong">v{v.version}</span> <span className="mono">{v.kcv}</span> <Time iso={v.createdAt} /> ·{' '}
                        <span data-testid={`keys-kek-${d.domain}-v${v.version}-datakeys`}>
                          {v.dataKeys} data key{v.dataKeys === 1 ? '' : 's'}
                        </span>
                        {v.version < d.minDecryptionVersion ? <span className="muted"> (retired)</span> : null}
                      </li>
                    ))}
                  </ul>
                </td>
                <td className="col-actions">
                  {canRotate ? (
                    <button type="button" className="small" onClick={() => onRotate(d.domain)} data-testid={`keys-rotate-${d.domain}`}>
                      Rotate…
                    </button>
                  ) : (
                    <span className="muted" title={status.sealed ? 'Unseal the hierarchy first: a rotation needs the root key' : undefined}>
                      {DASH}
                    </span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

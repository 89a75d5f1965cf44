import type { KeyStatus } from '../../../shared/contract/keys';
import { DASH } from '../../components/format';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';

const PURPOSE: Record<KeyStatus['ownKeys'][number]['purpose'], string> = {
  'ssh.identity': 'SSH identity (logs in to every host)',
  'audit.signing': 'Audit checkpoint signing',
  'audit.hmac': 'Audit redaction HMAC',
  'attest.signing': 'Attestation signing',
  'policy.signing': 'Gate policy signing',
};

/**
 * Airlock's own keys as entries of the `console` domain (keys:status .ownKeys): purpose,
 * version, algorithm, fingerprint and the console KEK version sealing each. Shown before any
 * genesis too — they exist from first-run setup — and never more than fingerprints.
 */
export function OwnKeys({ keys }: { keys: KeyStatus['ownKeys'] }) {
  if (keys.length === 0) return null;
  const rows = [...keys].sort((a, b) => a.purpose.localeCompare(b.purpose) || b.version - a.version);
  return (
    <div className="keys-own" data-testid="keys-own">
      <h3>Airlock&apos;s own keys (console domain)</h3>
      <table className="table">
        <thead>
          <tr>
            <th>Key</th>
            <th>Version</th>
            <th>Algorithm</th>
            <th>Fingerprint</th>
            <th>Console KEK</th>
            <th>Created</th>
            <th>State</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((k) => (
            <tr key={`${k.purpose}-${k.version}`} data-testid={`keys-own-${k.purpose}`}>
              <td>{PURPOSE[k.purpose]}</td>
              <td>v{k.version}</td>
              <td>{k.algorithm}</td>
              <td className="mono">{k.fingerprint ? safeLine(k.fingerprint) : DASH}</td>
              <td>v{k.kekVersion}</td>
              <td>
                <Time iso={k.createdAt} />
              </td>
              <td>{k.stagedFor ? `staged (rotation ${safeLine(k.stagedFor)})` : k.retiredAt ? 'retired' : 'current'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

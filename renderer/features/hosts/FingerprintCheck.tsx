import { safeLine } from '../../components/safeText';
import { compareCommand } from './hostKey';

/**
 * The moment of trust on first use: the operator compares this fingerprint with
 * the one printed on the host's console (out of band). Everything else Airlock does
 * with the host relies on that comparison.
 */
export function FingerprintCheck({
  address,
  port,
  fingerprint,
  keyType,
  pinned,
  knownHosts,
}: {
  address: string;
  port: number;
  fingerprint: string;
  keyType: string;
  pinned: { host: string; fingerprint: string } | null;
  /** What imported known_hosts files say about this key (hosts:probe). */
  knownHosts: 'none' | 'match' | 'differs' | 'revoked';
}) {
  const changed = pinned !== null && pinned.fingerprint !== fingerprint;
  return (
    <div className="fp-check">
      <div className="fp-label">
        Host key presented by <span className="mono">{safeLine(address)}:{port}</span> ·{' '}
        <span data-testid="enrol-keytype">{safeLine(keyType)}</span>
      </div>
      <div className="fp-big mono" data-testid="enrol-fingerprint">
        {fingerprint}
      </div>
      {changed ? (
        <div className="danger-box" role="alert" data-testid="enrol-pinned-warning">
          <strong>Host key differs from the pinned one.</strong> This address is enrolled as{' '}
          <span className="mono">{safeLine(pinned.host)}</span> with key{' '}
          <span className="mono">{pinned.fingerprint}</span>. Either the host was reinstalled or someone is intercepting
          the connection. Do not confirm unless you have verified the new key on the host itself.
        </div>
      ) : pinned ? (
        <div className="info-line" data-testid="enrol-pinned-same">
          This key is already pinned for host <span className="mono">{safeLine(pinned.host)}</span>.
        </div>
      ) : null}
      {knownHosts === 'revoked' ? (
        <div className="danger-box" role="alert" data-testid="enrol-known-hosts-revoked">
          <strong>This key is revoked.</strong> An imported known_hosts file marks it <span className="mono">@revoked</span>:
          Airlock will not pin it or connect with it.
        </div>
      ) : knownHosts === 'differs' ? (
        <div className="danger-box" role="alert" data-testid="enrol-known-hosts-differs">
          <strong>This key is not the one in the imported known_hosts.</strong> A known_hosts file imported earlier holds a
          different key for <span className="mono">{safeLine(address)}:{port}</span>: the host was reinstalled or someone is
          intercepting the connection.
        </div>
      ) : knownHosts === 'match' ? (
        <div className="info-line" data-testid="enrol-known-hosts-match">
          This key matches the one an imported known_hosts file holds for this address.
        </div>
      ) : null}
      <div className="instructions">
        <p>
          Before confirming, log in to the host by a trusted path (its console, BMC or an existing session) and run:
        </p>
        <pre className="mono command">{compareCommand(keyType)}</pre>
        <p>The SHA256 value it prints must be exactly the one above. If it differs, cancel.</p>
      </div>
    </div>
  );
}

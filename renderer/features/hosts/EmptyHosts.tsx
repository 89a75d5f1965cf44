import { useEffect, useState } from 'react';
import { CopyButton } from '../../components/CopyButton';
import { useApp } from '../../context';

/**
 * No hosts yet: the first thing a host needs is Airlock's public key in the SSH user's
 * authorized_keys, so the empty view shows that line (with a copy button) and links to the
 * Identity view, where the key and its fingerprint live.
 */
export function EmptyHosts({ onOpenIdentity, canEnrol, onEnrol }: { onOpenIdentity: (() => void) | null; canEnrol: boolean; onEnrol: () => void }) {
  const { client, can } = useApp();
  const [publicKey, setPublicKey] = useState<string | null>(null);
  const mayRead = can('identity:show');

  useEffect(() => {
    if (!mayRead) return;
    let live = true;
    void client.identity.show({}).then((r) => {
      if (live && r.ok) setPublicKey(r.value.publicKey.trim());
    });
    return () => {
      live = false;
    };
  }, [client, mayRead]);

  return (
    <div className="panel hosts-empty" data-testid="hosts-empty">
      <h2>Start by giving Airlock a way in</h2>
      <ol>
        <li>
          On each host, append Airlock&apos;s public key to <span className="mono">~/.ssh/authorized_keys</span> of the
          user Airlock logs in as (usually <span className="mono">root</span>):
          {publicKey ? (
            <div className="hosts-empty-key">
              <pre className="mono command" data-testid="hosts-empty-pubkey">
                {publicKey}
              </pre>
              <CopyButton text={publicKey} label="Copy key" className="small" testId="hosts-empty-copy" />
            </div>
          ) : null}
          <div className="hint">
            For example, on the host: <span className="mono">umask 077; mkdir -p ~/.ssh; cat &gt;&gt; ~/.ssh/authorized_keys</span>,
            paste the line, then Ctrl+D.
          </div>
        </li>
        <li>
          {canEnrol ? (
            <button type="button" className="small primary" onClick={onEnrol} data-testid="hosts-empty-enrol">
              Enrol host…
            </button>
          ) : (
            'Enrol it'
          )}{' '}
          — Airlock shows the host&apos;s key for you to compare with the one on its console, pins it, and scans the host.
        </li>
      </ol>
      {onOpenIdentity ? (
        <button type="button" className="link-button" onClick={onOpenIdentity} data-testid="hosts-empty-identity">
          Airlock&apos;s key and its fingerprint are in the Identity view →
        </button>
      ) : null}
    </div>
  );
}

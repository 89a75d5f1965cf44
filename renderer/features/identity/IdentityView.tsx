import './identity.css';
import { useEffect, useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { CopyButton } from '../../components/CopyButton';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';

export function IdentityView() {
  const { client } = useApp();
  const [id, setId] = useState<Out<'identity:show'> | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  useEffect(() => {
    let live = true;
    void client.identity.show({}).then((r) => {
      if (!live) return;
      if (r.ok) setId(r.value);
      else setError(r.error);
    });
    return () => {
      live = false;
    };
  }, [client]);

  return (
    <section className="view view-narrow" data-testid="identity-view">
      <h2>Airlock&apos;s SSH identity</h2>
      <p>
        Airlock logs in to hosts with this key. To let it manage a host, <strong>append this line to{' '}
        <span className="mono">~/.ssh/authorized_keys</span> on each host</strong> for the user you enrol it with
        (usually <span className="mono">root</span>).
      </p>
      <ErrorLine error={error} testId="identity-error" />
      {id ? (
        <>
          <div className="pubkey-row">
            <textarea
              className="mono pubkey"
              readOnly
              value={id.publicKey}
              rows={3}
              spellCheck={false}
              onFocus={(e) => e.currentTarget.select()}
              data-testid="identity-pubkey"
              aria-label="Public key"
            />
            <CopyButton text={id.publicKey} className="primary" testId="identity-copy" />
          </div>
          <dl className="kv">
            <dt>Fingerprint</dt>
            <dd className="mono" data-testid="identity-fingerprint">
              {id.fingerprint}
            </dd>
            <dt>ssh-agent</dt>
            <dd data-testid="identity-agent" data-available={id.agent.available}>
              {id.agent.available ? (
                <>
                  available at <span className="mono">{safeLine(id.agent.socket ?? '')}</span>: keys held by the agent
                  are also offered to hosts.
                </>
              ) : (
                'not available (SSH_AUTH_SOCK not set): only the key above is used.'
              )}
            </dd>
          </dl>
          <p className="hint">
            For example, on the host: <span className="mono">umask 077; mkdir -p ~/.ssh; cat &gt;&gt; ~/.ssh/authorized_keys</span>{' '}
            then paste the line and press Ctrl+D. The private key never leaves Airlock&apos;s vault.
          </p>
        </>
      ) : !error ? (
        <p className="muted">Loading…</p>
      ) : null}
    </section>
  );
}

import { useEffect, useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { Out } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { useApp } from '../../context';
import { FingerprintCheck } from './FingerprintCheck';

/** An imported (ssh_config) host has no pinned key: probe it, have it compared, pin it. */
export function ConfirmKeyDialog({ host, onClose, onConfirmed }: { host: Host; onClose: () => void; onConfirmed: () => void }) {
  const { client } = useApp();
  const [probe, setProbe] = useState<Out<'hosts:probe'> | null>(null);
  const [busy, setBusy] = useState(true);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  useEffect(() => {
    let live = true;
    void client.hosts.probe({ address: host.address, port: host.port }).then((r) => {
      if (!live) return;
      setBusy(false);
      if (r.ok) setProbe(r.value);
      else setError(r.error);
    });
    return () => {
      live = false;
    };
  }, [client, host.address, host.port]);

  async function confirm() {
    if (!probe) return;
    setBusy(true);
    setError(null);
    const r = await client.hosts.confirm({ name: host.name, fingerprint: probe.fingerprint });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onConfirmed();
  }

  return (
    <Modal
      title={`Confirm host key — ${host.name}`}
      onClose={onClose}
      wide
      testId="confirm-key-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} data-testid="confirm-key-cancel">
            Cancel
          </button>
          <button type="button" className="primary" onClick={() => void confirm()} disabled={!probe || busy || probe.knownHosts === 'revoked'} data-testid="confirm-key-submit">
            Confirm and pin
          </button>
        </>
      }
    >
      {!probe && busy ? <p className="muted">Connecting to {host.address}:{host.port}…</p> : null}
      {probe ? (
        <FingerprintCheck
          address={probe.address}
          port={probe.port}
          fingerprint={probe.fingerprint}
          keyType={probe.keyType}
          pinned={probe.pinned}
          knownHosts={probe.knownHosts}
        />
      ) : null}
      <ErrorLine error={error} testId="confirm-key-error" />
    </Modal>
  );
}

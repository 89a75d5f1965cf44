import { useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { useApp } from '../../context';
import { ProbeCheck } from './ProbeCheck';
import { useHostProbe } from './useHostProbe';

/** An imported (ssh_config) host has no pinned key: probe it, have it compared, pin it. */
export function ConfirmKeyDialog({ host, onClose, onConfirmed }: { host: Host; onClose: () => void; onConfirmed: () => void }) {
  const { client } = useApp();
  const { probe, probing, error: probeError } = useHostProbe(host);
  const [acting, setActing] = useState(false);
  const [actError, setActError] = useState<AirlockErrorShape | null>(null);
  // An action needs a probe, so it starts after probing ended: one busy flag and one error line, as before.
  const busy = probing || acting;
  const error = actError ?? probeError;

  async function confirm() {
    if (!probe) return;
    setActing(true);
    setActError(null);
    const r = await client.hosts.confirm({ name: host.name, fingerprint: probe.fingerprint });
    setActing(false);
    if (!r.ok) return setActError(r.error);
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
      {probe ? <ProbeCheck probe={probe} /> : null}
      <ErrorLine error={error} testId="confirm-key-error" />
    </Modal>
  );
}

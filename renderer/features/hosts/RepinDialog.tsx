import { useState } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';
import { ProbeCheck } from './ProbeCheck';
import { useHostProbe } from './useHostProbe';

/**
 * Accept a changed host key: the pinned key and the one the host presents now, side by side, the
 * same out-of-band comparison as enrolment, then hosts:repin with both (the core pins only the key
 * the host still presents, and only if the pin is still the one shown here).
 */
export function RepinDialog({ host, onClose, onPinned }: { host: Host; onClose: () => void; onPinned: (h: Host) => void }) {
  const { client } = useApp();
  const { probe, probing, error: probeError } = useHostProbe(host);
  const [acting, setActing] = useState(false);
  const [actError, setActError] = useState<AirlockErrorShape | null>(null);
  // An action needs a probe, so it starts after probing ended: one busy flag and one error line, as before.
  const busy = probing || acting;
  const error = actError ?? probeError;

  async function accept() {
    if (!probe || !host.fingerprint) return;
    setActing(true);
    setActError(null);
    const r = await client.hosts.repin({ name: host.name, pinned: host.fingerprint, fingerprint: probe.fingerprint });
    setActing(false);
    if (!r.ok) return setActError(r.error);
    onPinned(r.value);
  }

  const same = probe !== null && probe.fingerprint === host.fingerprint;
  return (
    <Modal
      title={`Accept a changed host key — ${host.name}`}
      onClose={onClose}
      busy={busy && probe !== null}
      wide
      testId="repin-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} data-testid="repin-cancel">
            Cancel
          </button>
          <button type="button" className="danger" onClick={() => void accept()} disabled={!probe || busy || same || probe.knownHosts === 'revoked'} data-testid="repin-confirm">
            {busy && probe ? 'Pinning…' : 'Accept the new key'}
          </button>
        </>
      }
    >
      {!probe && busy ? (
        <p className="muted">
          Reading the key {safeLine(host.address)}:{host.port} presents…
        </p>
      ) : null}
      {probe ? (
        <>
          <table className="grid grid-compact fp-compare" data-testid="repin-compare">
            <thead>
              <tr>
                <th />
                <th>Key type</th>
                <th>SHA256 fingerprint</th>
              </tr>
            </thead>
            <tbody>
              <tr data-testid="repin-pinned">
                <th scope="row">Pinned (trusted until now)</th>
                <td className="mono">{safeLine(host.keyType ?? '')}</td>
                <td className="mono" data-testid="repin-pinned-fingerprint">
                  {host.fingerprint}
                </td>
              </tr>
              <tr data-testid="repin-presented">
                <th scope="row">Presented now</th>
                <td className="mono">{safeLine(probe.keyType)}</td>
                <td className="mono strong" data-testid="repin-presented-fingerprint">
                  {probe.fingerprint}
                </td>
              </tr>
            </tbody>
          </table>
          {same ? (
            <div className="info-line" data-testid="repin-same">
              The host presents its pinned key again: there is nothing to accept. Scan it to clear its status.
            </div>
          ) : null}
          <ProbeCheck probe={probe} />
          <p className="hint">
            Accepting replaces the pinned key for <strong>{host.name}</strong> and is recorded in the audit trail with both
            keys. If the host presents yet another key when you accept, nothing is pinned.
          </p>
        </>
      ) : null}
      <ErrorLine error={error} testId="repin-error" />
    </Modal>
  );
}

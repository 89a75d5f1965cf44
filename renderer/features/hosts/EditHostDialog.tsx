import { useState, type FormEvent } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { useApp } from '../../context';
import { endpointProblem } from './fields';

/**
 * Edit a host's address, port and SSH user (hosts:update). The pinned key stays: after a move the
 * next scan must find that key at the new address, else the host shows "key-changed" and its new
 * key is accepted only after comparing (RepinDialog).
 */
export function EditHostDialog({ host, onClose, onSaved }: { host: Host; onClose: () => void; onSaved: (h: Host, moved: boolean) => void }) {
  const { client } = useApp();
  const [address, setAddress] = useState(host.address);
  const [port, setPort] = useState(String(host.port));
  const [user, setUser] = useState(host.user);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  const problem = address === '' ? 'Address: required' : user === '' ? 'User: required' : endpointProblem(address, port, user);
  const moved = address !== host.address || Number(port) !== host.port;
  const changed = moved || user !== host.user;

  async function save(e: FormEvent) {
    e.preventDefault();
    if (problem || !changed || busy) return;
    setBusy(true);
    setError(null);
    const r = await client.hosts.update({
      name: host.name,
      ...(address !== host.address ? { address } : {}),
      ...(Number(port) !== host.port ? { port: Number(port) } : {}),
      ...(user !== host.user ? { user } : {}),
    });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onSaved(r.value, moved);
  }

  return (
    <Modal
      title={`Edit ${host.name}`}
      onClose={onClose}
      busy={busy}
      testId="edit-host-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} disabled={busy} data-testid="edit-host-cancel">
            Cancel
          </button>
          <button type="submit" form="edit-host-form" className="primary" disabled={!!problem || !changed || busy} data-testid="edit-host-save">
            {busy ? 'Saving…' : 'Save'}
          </button>
        </>
      }
    >
      <form id="edit-host-form" className="form-grid" onSubmit={save}>
        <label className="field">
          <span>Address</span>
          <input data-testid="edit-host-address" value={address} onChange={(e) => setAddress(e.target.value.trim())} maxLength={253} required />
        </label>
        <label className="field field-narrow">
          <span>Port</span>
          <input data-testid="edit-host-port" inputMode="numeric" value={port} onChange={(e) => setPort(e.target.value.trim())} />
        </label>
        <label className="field field-narrow">
          <span>SSH user</span>
          <input data-testid="edit-host-user" value={user} onChange={(e) => setUser(e.target.value.trim())} maxLength={32} />
        </label>
      </form>
      <p className="hint" data-testid="edit-host-key-note">
        The pinned host key <span className="mono">{host.fingerprint ?? '(none yet)'}</span> stays. After a change of
        address or port Airlock scans the host: it must present that same key there, or it is refused as
        &quot;key-changed&quot; until you compare and accept its key.
      </p>
      {problem ? (
        <div className="warn-line" data-testid="edit-host-problem">
          {problem}
        </div>
      ) : null}
      <ErrorLine error={error} testId="edit-host-error" />
    </Modal>
  );
}

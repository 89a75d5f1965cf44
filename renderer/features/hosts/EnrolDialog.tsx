import { useState, type FormEvent } from 'react';
import type { Host } from '../../../shared/contract/hosts';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { useApp } from '../../context';
import { ADDR_RE, NAME_RE, USER_RE } from './fields';
import { ProbeCheck } from './ProbeCheck';
import type { HostProbe } from './useHostProbe';

/** Enrol a host: fetch its key, have the operator compare it out of band, pin it. */
export function EnrolDialog({ onClose, onEnrolled }: { onClose: () => void; onEnrolled: (h: Host) => void }) {
  const { client } = useApp();
  const [name, setName] = useState('');
  const [address, setAddress] = useState('');
  const [port, setPort] = useState('22');
  const [user, setUser] = useState('root');
  const [probe, setProbe] = useState<HostProbe | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  const portNum = Number(port);
  const invalid =
    name !== '' && !NAME_RE.test(name)
      ? 'Name: letters, digits, _ . - ; starting with a letter or digit'
      : address !== '' && !ADDR_RE.test(address)
        ? 'Address: a host name or IP address'
        : !Number.isInteger(portNum) || portNum < 1 || portNum > 65535
          ? 'Port: 1–65535'
          : user !== '' && !USER_RE.test(user)
            ? 'User: a POSIX user name'
            : null;
  const ready = name !== '' && address !== '' && user !== '' && !invalid;

  async function fetchKey(e: FormEvent) {
    e.preventDefault();
    if (!ready || busy) return;
    setBusy(true);
    setError(null);
    const r = await client.hosts.probe({ address, port: portNum });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setProbe(r.value);
  }

  async function confirm() {
    if (!probe || busy) return;
    setBusy(true);
    setError(null);
    const r = await client.hosts.add({ name, address, port: portNum, user, fingerprint: probe.fingerprint });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onEnrolled(r.value);
  }

  if (!probe) {
    return (
      <Modal
        title="Enrol host — 1. Address"
        onClose={onClose}
        busy={busy}
        testId="enrol-dialog"
        footer={
          <>
            <button type="button" onClick={onClose} data-testid="enrol-cancel" disabled={busy}>
              Cancel
            </button>
            {/* Keyed: without a key React reuses step 2's Back button as this submit button, and the
                browser's default action for the click on Back then submits the form again. */}
            <button key="probe" type="submit" form="enrol-form" className="primary" disabled={!ready || busy} data-testid="enrol-probe">
              {busy ? 'Connecting…' : 'Fetch host key'}
            </button>
          </>
        }
      >
        <form id="enrol-form" className="form-grid" onSubmit={fetchKey}>
          <label className="field">
            <span>Name in Airlock</span>
            <input data-testid="enrol-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={64} required />
          </label>
          <label className="field">
            <span>Address</span>
            <input
              data-testid="enrol-address"
              value={address}
              onChange={(e) => setAddress(e.target.value.trim())}
              maxLength={253}
              placeholder="10.0.0.11 or gpu-11.lab"
              required
            />
          </label>
          <label className="field field-narrow">
            <span>Port</span>
            <input data-testid="enrol-port" inputMode="numeric" value={port} onChange={(e) => setPort(e.target.value.trim())} />
          </label>
          <label className="field field-narrow">
            <span>SSH user</span>
            <input data-testid="enrol-user" value={user} onChange={(e) => setUser(e.target.value.trim())} maxLength={32} />
          </label>
        </form>
        <p className="hint">
          Airlock connects and reads the host key only: nothing is sent beyond the key exchange until you confirm the
          fingerprint.
        </p>
        {invalid ? <div className="warn-line">{invalid}</div> : null}
        <ErrorLine error={error} testId="enrol-error" />
      </Modal>
    );
  }

  const changed = (probe.pinned !== null && probe.pinned.fingerprint !== probe.fingerprint) || probe.knownHosts === 'differs';
  return (
    <Modal
      title="Enrol host — 2. Verify the host key"
      onClose={onClose}
      busy={busy}
      wide
      testId="enrol-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} data-testid="enrol-cancel" disabled={busy}>
            Cancel
          </button>
          <button key="back" type="button" onClick={() => setProbe(null)} disabled={busy} data-testid="enrol-back">
            Back
          </button>
          <button
            type="button"
            className={changed ? 'danger' : 'primary'}
            onClick={() => void confirm()}
            disabled={busy || probe.knownHosts === 'revoked'}
            data-testid="enrol-confirm"
          >
            {busy ? 'Enrolling…' : 'Confirm and enrol'}
          </button>
        </>
      }
    >
      <p>
        Enrolling <strong className="mono">{name}</strong> as <span className="mono">{user}</span>.
      </p>
      <ProbeCheck probe={probe} />
      <ErrorLine error={error} testId="enrol-error" />
    </Modal>
  );
}

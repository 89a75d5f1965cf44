import { useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';
import { useTextFile } from '../../components/useTextFile';
import { useApp } from '../../context';

export type ImportKind = 'knownHosts' | 'sshConfig';
type Outcome = Out<'hosts:importKnownHosts'>;

const MAX_BYTES = 1024 * 1024;

export function ImportDialog({ kind, onClose, onImported }: { kind: ImportKind; onClose: () => void; onImported: () => void }) {
  const { client } = useApp();
  const [user, setUser] = useState('root');
  const f = useTextFile<Outcome>(MAX_BYTES);
  const { busy, value: outcome } = f;
  const title = kind === 'knownHosts' ? 'Import known_hosts' : 'Import ssh_config';

  async function run() {
    const r = await f.submit((text) => (kind === 'knownHosts' ? client.hosts.importKnownHosts({ text, user }) : client.hosts.importSshConfig({ text })));
    if (r) onImported();
  }

  return (
    <Modal
      title={title}
      onClose={onClose}
      busy={busy}
      wide
      testId="import-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} disabled={busy} data-testid="import-close">
            {outcome ? 'Done' : 'Cancel'}
          </button>
          <button type="button" className="primary" onClick={() => void run()} disabled={!f.file || busy} data-testid="import-submit">
            {busy ? 'Importing…' : 'Import'}
          </button>
        </>
      }
    >
      {kind === 'knownHosts' ? (
        <p className="muted">
          Each entry becomes an enrolled host with its key pinned from the file. Hashed entries (<span className="mono">|1|…</span>,
          as <span className="mono">HashKnownHosts</span> and <span className="mono">ssh-keyscan -H</span> write) are kept: the key is
          pinned when you enrol a host at an address they match. <span className="mono">@revoked</span> keys are refused for every
          host from then on. Only import a known_hosts file you trust: its keys are taken as confirmed.
        </p>
      ) : (
        <p className="muted">
          Each <span className="mono">Host</span> entry becomes an <strong>unconfirmed</strong> host: Airlock will not log in to it
          until you confirm its key with “Confirm key”.
        </p>
      )}
      <div className="form-row">
        <label className="field">
          <span>File</span>
          <input
            type="file"
            data-testid="import-file"
            onChange={(e) => {
              f.pick(e.target.files?.[0] ?? null);
            }}
          />
        </label>
        {kind === 'knownHosts' ? (
          <label className="field field-narrow">
            <span>SSH user for these hosts</span>
            <input value={user} onChange={(e) => setUser(e.target.value.trim())} data-testid="import-user" maxLength={32} />
          </label>
        ) : null}
      </div>
      <ErrorLine error={f.error} testId="import-error" />
      {outcome ? (
        <div className="import-result" data-testid="import-result">
          <h3>
            Added {outcome.added.length} · skipped {outcome.skipped.length}
            {kind === 'knownHosts' ? ` · hashed entries kept ${outcome.kept.length} · revoked ${outcome.revoked.length}` : ''}
          </h3>
          {outcome.added.length > 0 ? (
            <table className="grid grid-compact">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Address</th>
                  <th>Fingerprint</th>
                </tr>
              </thead>
              <tbody>
                {outcome.added.map((a) => (
                  <tr key={a.name}>
                    <td>{a.name}</td>
                    <td className="mono">
                      {a.address}:{a.port}
                    </td>
                    <td className="mono">{a.fingerprint ?? <span className="badge badge-unconfirmed">unconfirmed</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {outcome.kept.length > 0 ? (
            <table className="grid grid-compact" data-testid="import-kept">
              <thead>
                <tr>
                  <th>Line</th>
                  <th>Hashed entry kept: pinned when a host is enrolled at its address</th>
                </tr>
              </thead>
              <tbody>
                {outcome.kept.map((k, i) => (
                  <tr key={i}>
                    <td>{k.line}</td>
                    <td className="mono">
                      {safeLine(k.keyType)} {k.fingerprint}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {outcome.revoked.length > 0 ? (
            <table className="grid grid-compact" data-testid="import-revoked">
              <thead>
                <tr>
                  <th>Line</th>
                  <th>Revoked key: never pinned or accepted</th>
                  <th>Enrolled hosts pinned to it (no longer connected to)</th>
                </tr>
              </thead>
              <tbody>
                {outcome.revoked.map((k, i) => (
                  <tr key={i}>
                    <td>{k.line}</td>
                    <td className="mono">
                      {safeLine(k.keyType)} {k.fingerprint}
                    </td>
                    <td>{k.hosts.length ? k.hosts.map((h) => safeLine(h)).join(', ') : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {outcome.skipped.length > 0 ? (
            <table className="grid grid-compact">
              <thead>
                <tr>
                  <th>Skipped entry</th>
                  <th>Reason</th>
                </tr>
              </thead>
              <tbody>
                {outcome.skipped.map((s, i) => (
                  <tr key={i}>
                    <td className="mono truncate" title={safeLine(s.entry)}>
                      {safeLine(s.entry, 200)}
                    </td>
                    <td>{safeLine(s.reason)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </div>
      ) : null}
    </Modal>
  );
}

import './attest.css';
import { useCallback, useEffect, useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import type { SignedAttestation } from '../../../shared/contract/attest';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { CopyButton } from '../../components/CopyButton';
import { ErrorLine } from '../../components/ErrorLine';
import { useLoaded } from '../../components/useLoaded';
import { TextVerifier } from '../../components/TextVerifier';
import { shortHash } from '../../components/format';
import { Time } from '../../components/Time';
import { Modal } from '../../components/Modal';
import { safeLine, safeText } from '../../components/safeText';
import { useApp } from '../../context';
import { downloadText } from '../../components/download';
import { attestationFileName } from './model';

type KeyInfo = Out<'attest:key'>;

/** This console's attestation key (public): fetched when enabled, again whenever `token` changes. */
export function useAttestKey(enabled = true, token: unknown = null): KeyInfo | null {
  const { client } = useApp();
  const [key, setKey] = useState<KeyInfo | null>(null);
  useEffect(() => {
    if (!enabled) return;
    let live = true;
    void client.attest.key({}).then((r) => {
      if (live && r.ok) setKey(r.value);
    });
    return () => {
      live = false;
    };
  }, [client, enabled, token]);
  return key;
}

/** The file an auditor receives: the signed attestation as JSON (the signature covers its canonical form). */
export function attestationFileText(a: SignedAttestation): string {
  return `${JSON.stringify(a, null, 2)}\n`;
}

/** One attestation: the signed JSON, pretty-printed, its key fingerprint, Export and Copy. */
export function AttestationDialog({ id, host, onClose }: { id: string; host: string; onClose: () => void }) {
  const { client, api } = useApp();
  const key = useAttestKey();
  const [att, setAtt] = useState<SignedAttestation | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    void client.attest.show({ id }).then((r) => {
      if (!live) return;
      if (r.ok) setAtt(r.value);
      else setError(r.error);
    });
    return () => {
      live = false;
    };
  }, [client, id]);

  const text = att ? attestationFileText(att) : '';
  const fileName = attestationFileName(att?.attestation.host.name ?? host, id);
  // After a rotation of the attestation key an older attestation is signed by a retired version this console still trusts.
  const version = att ? key?.versions?.find((v) => v.fingerprint === att.signature.keyFingerprint) : undefined;
  const trusted = att && key?.fingerprint ? att.signature.keyFingerprint === key.fingerprint || version !== undefined : null;

  return (
    <Modal
      title={`Attestation ${id}`}
      onClose={onClose}
      wide
      testId="attestation-dialog"
      footer={
        <>
          {note ? (
            <span className="muted" data-testid="attestation-note">
              {note}
            </span>
          ) : null}
          <CopyButton text={text} label="Copy JSON" disabled={!att} testId="attestation-copy" />
          <button
            type="button"
            className="primary"
            disabled={!att}
            onClick={() => {
              downloadText(fileName, text);
              setNote(`Exported ${fileName}.`);
            }}
            data-testid="attestation-export"
          >
            Export…
          </button>
          <button type="button" onClick={onClose} data-testid="attestation-close">
            Close
          </button>
        </>
      }
    >
      <ErrorLine error={error} testId="attestation-error" />
      {att ? (
        <>
          <dl className="kv" data-testid="attestation-summary">
            <dt>Host</dt>
            <dd data-testid="attestation-host">
              {safeLine(att.attestation.host.name)} <span className="muted mono">{safeLine(`${att.attestation.host.address}:${att.attestation.host.port}`)}</span>
            </dd>
            <dt>Host key</dt>
            <dd className="mono">{att.attestation.host.hostKey.fingerprint}</dd>
            <dt>Playbook</dt>
            <dd>
              {safeLine(att.attestation.playbook.name)} v{safeLine(att.attestation.playbook.version)}{' '}
              <span className="mono muted" title={att.attestation.playbook.digest}>
                playbook digest {shortHash(att.attestation.playbook.digest, 16)}
              </span>
            </dd>
            <dt>Run</dt>
            <dd className="mono">{att.attestation.run}</dd>
            <dt>Operator</dt>
            <dd>{safeLine(att.attestation.operator)}</dd>
            <dt>Created</dt>
            <dd><Time iso={att.attestation.createdAt} /></dd>
            <dt>Signed with</dt>
            <dd className="prov-att-fp">
              <span className="mono" data-testid="attestation-key-fp">
                {att.signature.keyFingerprint}
              </span>{' '}
              ({att.signature.alg}){' '}
              {trusted === true ? (
                <span className="badge prov-tone-ok" data-testid="attestation-key-trusted">
                  {version?.retiredAt ? `this console\u2019s attestation key, version ${version.version} (retired)` : 'this console\u2019s attestation key'}
                </span>
              ) : trusted === false ? (
                <span className="badge prov-tone-bad" data-testid="attestation-key-untrusted">
                  not this console&apos;s key ({key?.fingerprint})
                </span>
              ) : null}
            </dd>
          </dl>
          {/* Focusable: it scrolls, and the keyboard must reach it (axe: scrollable-region-focusable). */}
          <pre className="prov-pre prov-att-json" tabIndex={0} aria-label="Signed attestation (JSON)" data-testid="attestation-json">
            {safeText(text)}
          </pre>
          {api.shell === 'electron' ? (
            <p className="hint" data-testid="attestation-electron-note">
              The desktop window does not save downloads (hardening): use Copy JSON, or{' '}
              <span className="mono">
                airlock attest show {id} --out attestation-{host}-{id}.json
              </span>
              .
            </p>
          ) : null}
          <p className="hint">
            The signature covers the RFC 8785 canonical JSON of <span className="mono">attestation</span>; anyone can check it offline with the public key in the
            file (<span className="mono">airlock attest verify FILE</span>) and compare its fingerprint with the one this console shows.
          </p>
        </>
      ) : !error ? (
        <p className="muted">Loading…</p>
      ) : null}
    </Modal>
  );
}

type AttRow = Out<'attest:list'>[number];
type VerifyReport = Out<'attest:verify'>;

/** Every attestation (newest first), this console's key, and checking an exported file. */
export function AttestationsPanel({ active, onOpen }: { active: boolean; onOpen: (host: string, id: string) => void }) {
  const { client } = useApp();
  const { data: rows, error, refresh } = useLoaded<AttRow[]>(active, () => client.attest.list({}));
  const key = useAttestKey(active, rows);
  const [filter, setFilter] = useState('');

  const q = filter.trim().toLowerCase();
  const shown = (rows ?? []).filter((r) => !q || r.host.toLowerCase().includes(q) || r.id.includes(q) || r.run.includes(q) || r.playbook.includes(q));

  return (
    <div data-testid="prov-attestations">
      <div className="toolbar">
        <button type="button" onClick={() => void refresh()} data-testid="prov-attestations-refresh">
          Refresh
        </button>
        <span className="muted">
          Attestation key:{' '}
          <span className="mono" data-testid="prov-attest-key-fp">
            {key ? (key.fingerprint ?? 'none yet (made on the first apply)') : '…'}
          </span>
        </span>
        {key?.publicKey ? (
          <button type="button" className="small" onClick={() => downloadText('airlock-attestation-key.pem', key.publicKey!, 'application/x-pem-file')} data-testid="prov-attest-key-export">
            Export public key
          </button>
        ) : null}
        <div className="toolbar-spacer" />
        <input className="filter" type="search" placeholder="Filter by host, id, run, playbook" value={filter} onChange={(e) => setFilter(e.target.value)} data-testid="prov-attestations-filter" />
      </div>
      <ErrorLine error={error} testId="prov-attestations-error" />
      <div className="table-wrap">
        <table className="grid" data-testid="prov-attestations-table">
          <thead>
            <tr>
              <th>Host</th>
              <th>Attestation</th>
              <th>Playbook</th>
              <th title="SHA-256 of the attestation body's canonical JSON (the bytes the signature covers)">Body SHA-256</th>
              <th>Run</th>
              <th>Created</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {rows && shown.length === 0 ? (
              <tr>
                <td colSpan={7} className="empty">
                  {rows.length === 0 ? 'No attestation yet: a host gets one when an apply succeeds on it.' : 'No attestation matches the filter.'}
                </td>
              </tr>
            ) : null}
            {shown.map((r) => (
              <tr key={r.id} data-testid={`prov-attestation-row-${r.id}`} data-host={r.host}>
                <td className="strong">{r.host}</td>
                <td className="mono">{r.id}</td>
                <td>
                  {safeLine(r.playbook)}{' '}
                  <span className="mono muted" title={`playbook digest (SHA-256) ${r.playbookDigest}`} data-testid={`prov-attestation-playbook-digest-${r.id}`}>
                    playbook {shortHash(r.playbookDigest)}
                  </span>
                </td>
                <td>
                  <span className="mono muted" title={`SHA-256 of the signed attestation body ${r.digest}`} data-testid={`prov-attestation-body-digest-${r.id}`}>
                    {shortHash(r.digest)}
                  </span>
                </td>
                <td className="mono">{r.run}</td>
                <td><Time iso={r.createdAt} /></td>
                <td className="col-actions">
                  <button type="button" className="small" onClick={() => onOpen(r.host, r.id)} data-testid={`prov-attestation-show-${r.id}`}>
                    Show
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <VerifyFile />
    </div>
  );
}

const MAX_FILE = 4 * 1024 * 1024;

/** Check an exported attestation file against this console's key (attest:verify): the console's one verifier form. */
function VerifyFile() {
  const { client } = useApp();
  return (
    <TextVerifier<VerifyReport>
      title="Verify an exported attestation"
      fileLabel="Exported attestation file (JSON)"
      maxBytes={MAX_FILE}
      verify={(text) => client.attest.verify({ text })}
      validText="Valid: signed by this console’s attestation key"
      testId="prov-verify"
      className="card prov-run"
      details={(report) => (
        <>
          {report.host || report.keyFingerprint ? (
            <div>
              {report.host ? (
                <>
                  Host <strong>{safeLine(report.host)}</strong>
                </>
              ) : null}
              {report.host && report.keyFingerprint ? ' · ' : null}
              {report.keyFingerprint ? (
                <>
                  key <span className="mono">{report.keyFingerprint}</span>
                </>
              ) : null}
            </div>
          ) : null}
          <div className="muted">
            signature {report.signatureValid ? 'valid' : 'INVALID'} · key {report.trustedKey ? 'is this console’s' : 'is not this console’s'}
          </div>
        </>
      )}
    />
  );
}

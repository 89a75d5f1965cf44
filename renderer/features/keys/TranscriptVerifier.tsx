import { useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { useTextFile } from '../../components/useTextFile';
import { useApp } from '../../context';

type Report = Out<'keys:verifyTranscript'>;

/** The contract's bound on a transcript's text (keys:verifyTranscript). */
const MAX_TRANSCRIPT = 1024 * 1024;

/**
 * Checks a ceremony transcript someone hands the officer (a file from removable media, or pasted)
 * against this console's root CA certificate: the same check `airlock keys verify-transcript`
 * makes offline. The text is read in the page; the core never takes a path from the UI.
 */
export function TranscriptVerifier() {
  const { client } = useApp();
  const f = useTextFile<Report>(MAX_TRANSCRIPT);
  const [pasted, setPasted] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [report, setReport] = useState<Report | null>(null);

  async function verifyPasted() {
    setBusy(true);
    setError(null);
    setReport(null);
    const r = await client.keys.verifyTranscript({ text: pasted });
    setBusy(false);
    if (r.ok) setReport(r.value);
    else setError(r.error);
  }

  async function verifyFile() {
    setReport(null);
    setError(null);
    const v = await f.submit((text) => client.keys.verifyTranscript({ text }));
    if (v) setReport(v);
  }

  return (
    <div className="card keys-card" data-testid="keys-verifier">
      <h3>Verify a ceremony transcript</h3>
      <p className="hint">A transcript is valid when its signature chains to this console&apos;s root CA certificate and its content is unchanged.</p>
      <div className="toolbar-form">
        <input type="file" accept=".json,application/json" aria-label="Transcript file (JSON)" onChange={(e) => f.pick(e.target.files?.[0] ?? null)} data-testid="keys-verify-file" />
        <button type="button" onClick={() => void verifyFile()} disabled={!f.file || f.busy} data-testid="keys-verify-file-submit">
          {f.busy ? 'Verifying…' : 'Verify the file'}
        </button>
      </div>
      <label className="field">
        <span>Or paste the transcript</span>
        <textarea className="mono keys-paste" rows={4} value={pasted} onChange={(e) => setPasted(e.target.value)} spellCheck={false} data-testid="keys-verify-text" />
      </label>
      <button type="button" onClick={() => void verifyPasted()} disabled={pasted.trim() === '' || busy} data-testid="keys-verify-submit">
        {busy ? 'Verifying…' : 'Verify the pasted text'}
      </button>
      <ErrorLine error={error ?? f.error} testId="keys-verify-error" />
      {report ? (
        <div className={report.ok ? 'panel panel-ok' : 'panel panel-bad'} role="status" data-testid="keys-verify-result" data-ok={report.ok}>
          <div className="strong">{report.ok ? 'Valid: signed under this console’s root CA' : 'Not valid'}</div>
          <dl className="kv">
            <dt>Ceremony</dt>
            <dd data-testid="keys-verify-kind">{safeLine(report.kind ?? '—')}</dd>
            <dt>Nonce</dt>
            <dd className="mono">{safeLine(report.nonce ?? '—')}</dd>
            <dt>Signed by</dt>
            <dd>{report.signer ? <>{safeLine(report.signer.subject)} <span className="mono">{safeLine(report.signer.fingerprint)}</span></> : '—'}</dd>
          </dl>
          {report.problems.length ? (
            <ul data-testid="keys-verify-problems">
              {report.problems.map((p, i) => (
                <li key={i}>{safeLine(p)}</li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

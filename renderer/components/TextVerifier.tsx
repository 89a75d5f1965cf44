import './verifier.css';
import { useState, type ReactNode } from 'react';
import type { AirlockErrorShape, Result } from '../../shared/domain/errors';
import { ErrorLine } from './ErrorLine';
import { safeLine } from './safeText';
import { useTextFile } from './useTextFile';

/** What every verify channel answers: a verdict and, when it is not valid, why, in the core's words. */
export interface VerifyVerdict {
  ok: boolean;
  problems: string[];
}

/**
 * The one "verify a file someone handed you, or pasted text" form (ceremony transcripts on the Keys
 * page, exported attestations on the Provision page): a file read in the page (the core never takes
 * a path from the UI) or, when `paste` is offered, text pasted from elsewhere, sent to one verify
 * channel; the verdict shown as a valid/not valid panel with the core's problems. What the verdict
 * says beyond that (who signed, which ceremony or host) is the caller's `details`.
 *
 * Test ids derive from `testId` (`<id>-file`, `-text`, `-error`, `-result`, `-problems`); the file's
 * button is `<id>-submit` when it is the only one, `<id>-file-submit` beside the paste button
 * (`<id>-submit`), as the two pages have always named them.
 */
export function TextVerifier<R extends VerifyVerdict>({
  title,
  hint,
  fileLabel,
  accept = '.json,application/json',
  maxBytes,
  paste,
  verify,
  validText,
  details,
  testId,
  rootTestId,
  className = 'card',
}: {
  title: string;
  hint?: ReactNode;
  /** The file input's accessible name ("Transcript file (JSON)"). */
  fileLabel: string;
  accept?: string;
  maxBytes: number;
  /** Offer a paste box too, with this label ("Or paste the transcript"). */
  paste?: string;
  verify(text: string): Promise<Result<R>>;
  /** The headline of a valid verdict ("Valid: signed under this console's root CA"). */
  validText: string;
  details?(report: R): ReactNode;
  testId: string;
  /** The form's own test id (default `<testId>-form`). */
  rootTestId?: string;
  className?: string;
}) {
  const f = useTextFile<R>(maxBytes);
  const [pasted, setPasted] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [report, setReport] = useState<R | null>(null);

  async function verifyPasted() {
    setBusy(true);
    setError(null);
    setReport(null);
    const r = await verify(pasted);
    setBusy(false);
    if (r.ok) setReport(r.value);
    else setError(r.error);
  }

  async function verifyFile() {
    setReport(null);
    setError(null);
    const v = await f.submit(verify);
    if (v) setReport(v);
  }

  const fileSubmitId = paste ? `${testId}-file-submit` : `${testId}-submit`;
  return (
    <div className={className} data-testid={rootTestId ?? `${testId}-form`}>
      <h3>{title}</h3>
      {hint ? <p className="hint">{hint}</p> : null}
      <div className="toolbar-form">
        <input type="file" accept={accept} aria-label={fileLabel} onChange={(e) => f.pick(e.target.files?.[0] ?? null)} data-testid={`${testId}-file`} />
        <button type="button" onClick={() => void verifyFile()} disabled={!f.file || f.busy} data-testid={fileSubmitId}>
          {f.busy ? 'Verifying…' : paste ? 'Verify the file' : 'Verify'}
        </button>
      </div>
      {paste ? (
        <>
          <label className="field">
            <span>{paste}</span>
            <textarea className="mono verifier-paste" rows={4} value={pasted} onChange={(e) => setPasted(e.target.value)} spellCheck={false} data-testid={`${testId}-text`} />
          </label>
          <button type="button" onClick={() => void verifyPasted()} disabled={pasted.trim() === '' || busy} data-testid={`${testId}-submit`}>
            {busy ? 'Verifying…' : 'Verify the pasted text'}
          </button>
        </>
      ) : null}
      <ErrorLine error={error ?? f.error} testId={`${testId}-error`} />
      {report ? (
        <div className={report.ok ? 'panel panel-ok' : 'panel panel-bad'} role="status" data-testid={`${testId}-result`} data-ok={report.ok}>
          <div className="strong">{report.ok ? validText : 'Not valid'}</div>
          {details ? details(report) : null}
          {report.problems.length ? (
            <ul data-testid={`${testId}-problems`}>
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

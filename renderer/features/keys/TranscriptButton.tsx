import { useState } from 'react';
import type { Ceremony } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { downloadText } from '../../components/download';
import { ErrorLine } from '../../components/ErrorLine';
import { useApp } from '../../context';
import { transcriptFileName } from './model';

/**
 * Downloads a completed ceremony's signed transcript as the core holds it (the exact text: the
 * signature covers it), for an auditor to check offline with the root CA certificate.
 */
export function TranscriptButton({
  ceremony,
  className,
  testId,
  quiet,
}: {
  ceremony: Pick<Ceremony, 'id' | 'kind'>;
  className?: string;
  testId: string;
  /** In a table row: no "Saved as" note beside the button (the download is its own feedback). */
  quiet?: boolean;
}) {
  const { client } = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const file = transcriptFileName(ceremony.kind, ceremony.id);

  async function download() {
    setBusy(true);
    setError(null);
    const r = await client.keys.transcript({ ceremony: ceremony.id });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    downloadText(file, r.value.text);
    setNote(`Saved as ${file}.`);
  }

  return (
    <span className="keys-transcript">
      <button type="button" className={className} onClick={() => void download()} disabled={busy} data-testid={testId}>
        {busy ? 'Reading…' : 'Download transcript'}
      </button>
      {note && !quiet ? (
        <span className="muted" role="status">
          {note}
        </span>
      ) : null}
      <ErrorLine error={error} testId={`${testId}-error`} />
    </span>
  );
}

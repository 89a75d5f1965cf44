import { useState } from 'react';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { useApp } from '../../context';

const MAX_BYTES = 256 * 1024;

function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(typeof fr.result === 'string' ? fr.result : '');
    fr.onerror = () => reject(fr.error ?? new Error('read failed'));
    fr.readAsText(file);
  });
}

/**
 * Import an organisation playbook (JSON, `airlock.playbook/v1`): the core validates it against the
 * schema and the step catalogue; it is data, never run blind. Step-up is asked by the console.
 */
export function ImportPlaybook({ onImported }: { onImported: (name: string) => void }) {
  const { client } = useApp();
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);

  async function submit() {
    if (!file) return;
    setError(null);
    setNote(null);
    if (file.size > MAX_BYTES) return setError({ code: 'INVALID_INPUT', message: `${file.name} is larger than 256 KiB` });
    setBusy(true);
    try {
      const r = await client.provision.importPlaybook({ text: await readText(file) });
      if (!r.ok) return setError(r.error);
      setNote(`Imported ${r.value.name} v${r.value.version} (${r.value.steps.length} steps).`);
      onImported(r.value.name);
    } catch (e) {
      setError({ code: 'INVALID_INPUT', message: `Could not read ${file.name}: ${e instanceof Error ? e.message : String(e)}` });
    } finally {
      setBusy(false);
    }
  }

  return (
    <details className="prov-details" data-testid="prov-import-playbook">
      <summary>Import an organisation playbook…</summary>
      <div className="toolbar-form">
        <input type="file" accept=".json,application/json" onChange={(e) => setFile(e.target.files?.[0] ?? null)} data-testid="prov-import-playbook-file" />
        <button type="button" onClick={() => void submit()} disabled={!file || busy} data-testid="prov-import-playbook-submit">
          {busy ? 'Importing…' : 'Import'}
        </button>
      </div>
      <ErrorLine error={error} testId="prov-import-playbook-error" />
      {note ? (
        <div className="info-line" data-testid="prov-import-playbook-result">
          {note}
        </div>
      ) : null}
    </details>
  );
}

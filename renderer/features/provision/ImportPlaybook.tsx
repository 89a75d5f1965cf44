import type { Out } from '../../../shared/contract/index';
import { ErrorLine } from '../../components/ErrorLine';
import { useTextFile } from '../../components/useTextFile';
import { useApp } from '../../context';

const MAX_BYTES = 256 * 1024;

/**
 * Import an organisation playbook (JSON, `airlock.playbook/v1`): the core validates it against the
 * schema and the step catalogue; it is data, never run blind. Step-up is asked by the console.
 */
export function ImportPlaybook({ onImported }: { onImported: (name: string) => void }) {
  const { client } = useApp();
  const f = useTextFile<Out<'provision:importPlaybook'>>(MAX_BYTES);

  async function submit() {
    const pb = await f.submit((text) => client.provision.importPlaybook({ text }));
    if (pb) onImported(pb.name);
  }

  return (
    <details className="prov-details" data-testid="prov-import-playbook">
      <summary>Import an organisation playbook…</summary>
      <div className="toolbar-form">
        <input type="file" accept=".json,application/json" aria-label="Playbook file (JSON)" onChange={(e) => f.pick(e.target.files?.[0] ?? null)} data-testid="prov-import-playbook-file" />
        <button type="button" onClick={() => void submit()} disabled={!f.file || f.busy} data-testid="prov-import-playbook-submit">
          {f.busy ? 'Importing…' : 'Import'}
        </button>
      </div>
      <ErrorLine error={f.error} testId="prov-import-playbook-error" />
      {f.value ? (
        <div className="info-line" data-testid="prov-import-playbook-result">
          Imported {f.value.name} v{f.value.version} ({f.value.steps.length} steps).
        </div>
      ) : null}
    </details>
  );
}

import './store.css';
import { useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import { newRequestId } from '../../api';
import type { AirlockErrorShape, Result } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { useLoaded } from '../../components/useLoaded';
import { formatBytes, shortHash } from '../../components/format';
import { Time } from '../../components/Time';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';

type Store = Out<'store:list'>;

/**
 * The offline store: what was carried in on removable media (.deb packages, model versions),
 * each file checked against the SHA256SUMS beside it. Imports name a directory under one of the
 * configured media roots; the core reads it, the page never uploads anything.
 */
export function StorePanel({ active }: { active: boolean }) {
  const { client, can } = useApp();
  const { data: store, error, refresh } = useLoaded<Store>(active, () => client.store.list({}));

  return (
    <div data-testid="prov-store">
      <div className="toolbar">
        <button type="button" onClick={() => void refresh()} data-testid="prov-store-refresh">
          Refresh
        </button>
        <span className="muted">
          {store ? `${store.debs.length} package(s), ${store.models.length} model version(s)` : 'Loading…'} · nothing is ever downloaded: the store holds only what was imported.
        </span>
      </div>
      <ErrorLine error={error} testId="prov-store-error" />
      {store ? (
        <div className="hint" data-testid="prov-store-roots">
          Media roots (imports must name a directory under one of these; set AIRLOCK_MEDIA_ROOTS to add one):
          <ul className="prov-roots">
            {store.mediaRoots.map((r) => (
              <li key={r} className="mono">
                {safeLine(r)}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {can('store:importDebs') || can('store:importModel') ? (
        <div className="prov-store-forms">
          {can('store:importDebs') ? <ImportDebs roots={store?.mediaRoots ?? []} onDone={() => void refresh()} /> : null}
          {can('store:importModel') ? <ImportModel roots={store?.mediaRoots ?? []} onDone={() => void refresh()} /> : null}
        </div>
      ) : null}

      <h3>Packages</h3>
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="prov-store-debs">
          <thead>
            <tr>
              <th>Package</th>
              <th>Version</th>
              <th>Arch</th>
              <th className="num">Size</th>
              <th>SHA-256</th>
              <th>File</th>
              <th>Imported</th>
            </tr>
          </thead>
          <tbody>
            {store && store.debs.length === 0 ? (
              <tr>
                <td colSpan={7} className="empty">
                  No packages imported.
                </td>
              </tr>
            ) : null}
            {(store?.debs ?? []).map((d) => (
              <tr key={`${d.package}/${d.version}/${d.arch}`} data-testid={`prov-store-deb-${d.package}`} data-version={d.version} data-arch={d.arch}>
                <td className="strong">{safeLine(d.package)}</td>
                <td className="mono">{safeLine(d.version)}</td>
                <td>{safeLine(d.arch)}</td>
                <td className="num">{formatBytes(d.size)}</td>
                <td className="mono" title={d.sha256}>
                  {shortHash(d.sha256, 16)}
                </td>
                <td className="mono truncate" title={safeLine(d.file)}>
                  {safeLine(d.file)}
                </td>
                <td className="nowrap"><Time iso={d.importedAt} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h3 className="prov-run">Models</h3>
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="prov-store-models">
          <thead>
            <tr>
              <th>Model</th>
              <th>Version</th>
              <th className="num">Files</th>
              <th className="num">Size</th>
              <th>Files (SHA-256)</th>
              <th>Imported</th>
            </tr>
          </thead>
          <tbody>
            {store && store.models.length === 0 ? (
              <tr>
                <td colSpan={6} className="empty">
                  No models imported.
                </td>
              </tr>
            ) : null}
            {(store?.models ?? []).map((m) => (
              <tr key={`${m.name}/${m.version}`} data-testid={`prov-store-model-${m.name}-${m.version}`}>
                <td className="strong">{safeLine(m.name)}</td>
                <td className="mono">{safeLine(m.version)}</td>
                <td className="num">{m.files.length}</td>
                <td className="num">{formatBytes(m.size)}</td>
                <td className="mono">
                  {m.files.slice(0, 6).map((f) => (
                    <div key={f.path} title={f.sha256}>
                      {safeLine(f.path)} <span className="muted">{shortHash(f.sha256, 12)}</span>
                    </div>
                  ))}
                  {m.files.length > 6 ? <div className="muted">… and {m.files.length - 6} more</div> : null}
                </td>
                <td className="nowrap"><Time iso={m.importedAt} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function DirField({ value, onChange, roots, testId }: { value: string; onChange: (v: string) => void; roots: string[]; testId: string }) {
  return (
    <label className="field">
      <span>Directory on the media (with its SHA256SUMS)</span>
      <input value={value} onChange={(e) => onChange(e.target.value)} placeholder={`${roots[roots.length - 1] ?? '/media'}/…`} spellCheck={false} data-testid={testId} />
    </label>
  );
}

/** Stops a running import (ops:cancel): the core removes its temporary copy, the store keeps nothing of it. */
function CancelImport({ requestId, onError, testId }: { requestId: string | null; onError: (e: AirlockErrorShape) => void; testId: string }) {
  const { client } = useApp();
  if (!requestId) return null;
  return (
    <button
      type="button"
      onClick={() =>
        void client.ops.cancel({ requestId }).then((r) => {
          if (!r.ok) onError(r.error);
        })
      }
      data-testid={testId}
    >
      Cancel
    </button>
  );
}

/**
 * One import form: a directory on the media (plus whatever else the import needs), a submit that
 * starts the import under a fresh request id (so Cancel can stop it), its error and its result.
 * The two imports differ only in their extra fields, the call they make and how a result reads.
 */
function ImportForm<R>({
  kind,
  title,
  submitLabel,
  roots,
  ready,
  run,
  onDone,
  showResult,
  children,
}: {
  /** `debs`, `model`: the test ids are `prov-import-<kind>-…`. */
  kind: string;
  title: string;
  submitLabel: string;
  roots: string[];
  /** Besides a directory, whether the other fields are filled in. */
  ready: boolean;
  run: (dir: string, requestId: string) => Promise<Result<R>>;
  onDone: () => void;
  showResult: (result: R) => React.ReactNode;
  children?: React.ReactNode;
}) {
  const [dir, setDir] = useState('');
  const [requestId, setRequestId] = useState<string | null>(null);
  const busy = requestId !== null;
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [result, setResult] = useState<R | null>(null);
  const id = `prov-import-${kind}`;

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const rid = newRequestId();
    setRequestId(rid);
    setError(null);
    setResult(null);
    const r = await run(dir.trim(), rid);
    setRequestId(null);
    if (!r.ok) return setError(r.error);
    setResult(r.value);
    onDone();
  }

  return (
    <form className="card" onSubmit={(e) => void submit(e)} data-testid={id}>
      <h3>{title}</h3>
      <DirField value={dir} onChange={setDir} roots={roots} testId={`${id}-dir`} />
      {children}
      <button type="submit" className="primary" disabled={busy || !dir.trim() || !ready} data-testid={`${id}-submit`}>
        {busy ? 'Importing…' : submitLabel}
      </button>
      <CancelImport requestId={requestId} onError={setError} testId={`${id}-cancel`} />
      <ErrorLine error={error} testId={`${id}-error`} />
      {result !== null ? showResult(result) : null}
    </form>
  );
}

function ImportDebs({ roots, onDone }: { roots: string[]; onDone: () => void }) {
  const { client } = useApp();
  return (
    <ImportForm
      kind="debs"
      title="Import .deb packages"
      submitLabel="Import packages"
      roots={roots}
      ready
      run={(dir, requestId) => client.store.importDebs({ dir, requestId })}
      onDone={onDone}
      showResult={(result) => (
        <div className="info-line" data-testid="prov-import-debs-result" data-imported={result.imported.length} data-already={result.already}>
          {result.imported.length} imported
          {result.imported.length ? `: ${result.imported.map((d) => `${d.package} ${d.version} (${d.arch})`).join(', ')}` : ''}
          {result.already ? ` · ${result.already} already in the store` : ''}
        </div>
      )}
    />
  );
}

function ImportModel({ roots, onDone }: { roots: string[]; onDone: () => void }) {
  const { client } = useApp();
  const [name, setName] = useState('');
  const [version, setVersion] = useState('');
  return (
    <ImportForm
      kind="model"
      title="Import a model version"
      submitLabel="Import model"
      roots={roots}
      ready={Boolean(name.trim() && version.trim())}
      run={(dir, requestId) => client.store.importModel({ dir, name: name.trim(), version: version.trim(), requestId })}
      onDone={onDone}
      showResult={(result) => (
        <div className="info-line" data-testid="prov-import-model-result">
          {safeLine(result.name)} {safeLine(result.version)}: {result.files.length} file(s), {formatBytes(result.size)}, every SHA-256 checked
        </div>
      )}
    >
      <div className="form-row">
        <label className="field">
          <span>Model name</span>
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="llama-3-8b" spellCheck={false} data-testid="prov-import-model-name" />
        </label>
        <label className="field">
          <span>Version</span>
          <input value={version} onChange={(e) => setVersion(e.target.value)} placeholder="1" spellCheck={false} data-testid="prov-import-model-version" />
        </label>
      </div>
    </ImportForm>
  );
}

import './models.css';
import { useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { newRequestId } from '../../api';
import { ErrorLine } from '../../components/ErrorLine';
import { formatBytes, shortHash } from '../../components/format';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { useLoaded } from '../../components/useLoaded';
import { useApp } from '../../context';
import type { FeatureProps } from '../feature';
import { actionsFor, CLASSIFICATION_LABELS, lineageSteps, rowsOf, type Version } from './model';

type Detail = Out<'models:show'>;
type Classification = Version['classification'];
const CLASSES: Classification[] = ['public', 'internal', 'confidential', 'phi'];
const ROLES = ['training', 'fine-tuning', 'evaluation'] as const;

export function ClassBadge({ c }: { c: Classification }) {
  return (
    <span className={`badge class-${c}`} data-testid="models-class" data-classification={c}>
      {CLASSIFICATION_LABELS[c]}
    </span>
  );
}

function StatusBadge({ s }: { s: Version['status'] }) {
  return (
    <span className={`badge status-${s}`} data-testid="models-status" data-status={s}>
      {s}
    </span>
  );
}

const keyOf = (v: { model: string; version: string }) => `${v.model}:${v.version}`;

/**
 * The models catalog (issue 13): every version with its classification and status, where it is
 * published; one version's lineage (datasets → base → fine-tune), provenance (every file with its
 * size and SHA-256) and the moves its status allows; the datasets lineage names. Imports name a
 * path under a media root: the core reads the media, the page never uploads anything. Approving
 * a phi version files a two-person request; step-up is asked by the client when the core wants it.
 */
export function ModelsView({ active, open }: FeatureProps) {
  const { client, can } = useApp();
  const catalog = useLoaded(active, () => client.models.list({}));
  const datasets = useLoaded(active, () => client.datasets.list({}));
  const [selected, setSelected] = useState<string | null>(null);
  const [dialog, setDialog] = useState<'import' | 'dataset' | null>(null);
  const rows = rowsOf(catalog.data);
  const refresh = () => {
    void catalog.refresh();
    void datasets.refresh();
  };
  const sel = rows.find((v) => keyOf(v) === selected) ?? null;

  return (
    <div className="models" data-testid="models-view">
      <div className="toolbar">
        {can('models:import') ? (
          <button type="button" className="primary" onClick={() => setDialog('import')} data-testid="models-import-open">
            Import a model version
          </button>
        ) : null}
        {can('datasets:add') ? (
          <button type="button" onClick={() => setDialog('dataset')} data-testid="models-dataset-open">
            Add a dataset
          </button>
        ) : null}
        <button type="button" onClick={refresh} data-testid="models-refresh">
          Refresh
        </button>
        <span className="muted" data-testid="models-registry">
          Registry: {catalog.data?.registry ? safeLine(catalog.data.registry) : 'not set'}
        </span>
      </div>
      <ErrorLine error={catalog.error} testId="models-error" />

      <h2 className="models-h">Catalog</h2>
      <div className="table-wrap">
        <table className="grid" data-testid="models-table">
          <thead>
            <tr>
              <th>Model</th>
              <th>Version</th>
              <th>Classification</th>
              <th>Status</th>
              <th className="num">Files</th>
              <th className="num">Size</th>
              <th>Published</th>
              <th>Imported</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {catalog.data && rows.length === 0 ? (
              <tr>
                <td colSpan={9} className="empty">
                  No model in the catalog yet: import one from removable media.
                </td>
              </tr>
            ) : null}
            {rows.map((v) => (
              <tr key={keyOf(v)} data-testid={`models-row-${v.model}-${v.version}`} className={selected === keyOf(v) ? 'selected' : undefined}>
                <td className="strong">{safeLine(v.model)}</td>
                <td className="mono">{safeLine(v.version)}</td>
                <td>
                  <ClassBadge c={v.classification} />
                </td>
                <td>
                  <StatusBadge s={v.status} />
                </td>
                <td className="num">{v.files}</td>
                <td className="num">{formatBytes(v.totalBytes)}</td>
                <td className="truncate">{v.publications.length ? v.publications.map((p) => `${safeLine(p.repository)}:${safeLine(p.tag)}`).join(', ') : <span className="muted">—</span>}</td>
                <td className="nowrap">
                  <Time iso={v.importedAt} />
                </td>
                <td>
                  <button type="button" onClick={() => setSelected(selected === keyOf(v) ? null : keyOf(v))} aria-expanded={selected === keyOf(v)} data-testid={`models-open-${v.model}-${v.version}`}>
                    {selected === keyOf(v) ? 'Close' : 'Details'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      {sel ? <VersionDetail key={keyOf(sel)} v={sel} active={active} onChanged={refresh} onApprovals={() => open('approvals')} /> : null}

      <h2 className="models-h">Datasets</h2>
      <ErrorLine error={datasets.error} testId="models-datasets-error" />
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="models-datasets">
          <thead>
            <tr>
              <th>Id</th>
              <th>Name</th>
              <th>Classification</th>
              <th>Kept until</th>
              <th>Where</th>
              <th>Owner</th>
            </tr>
          </thead>
          <tbody>
            {datasets.data && datasets.data.length === 0 ? (
              <tr>
                <td colSpan={6} className="empty">
                  No datasets: add the ones your models were trained on, so their lineage names something real.
                </td>
              </tr>
            ) : null}
            {(datasets.data ?? []).map((d) => (
              <tr key={d.id} data-testid={`models-dataset-${d.id}`}>
                <td className="mono">{safeLine(d.id)}</td>
                <td>{safeLine(d.name)}</td>
                <td>
                  <ClassBadge c={d.classification} />
                </td>
                <td className="nowrap">{d.retentionUntil ?? <span className="muted">—</span>}</td>
                <td className="truncate">{safeLine(d.location)}</td>
                <td>{safeLine(d.owner)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      {dialog === 'import' ? (
        <ImportDialog
          roots={catalog.data?.mediaRoots ?? []}
          datasets={datasets.data ?? []}
          bases={rows.filter((v) => v.status === 'approved')}
          onClose={() => setDialog(null)}
          onDone={(v) => {
            setDialog(null);
            setSelected(keyOf(v));
            refresh();
          }}
        />
      ) : null}
      {dialog === 'dataset' ? (
        <DatasetDialog
          onClose={() => setDialog(null)}
          onDone={() => {
            setDialog(null);
            refresh();
          }}
        />
      ) : null}
    </div>
  );
}

type Move = 'approve' | 'deprecate' | 'revoke' | 'publish';

function VersionDetail({ v, active, onChanged, onApprovals }: { v: Version; active: boolean; onChanged: () => void; onApprovals: () => void }) {
  const { client, can } = useApp();
  const detail = useLoaded<Detail>(active, () => client.models.show({ name: v.model, version: v.version }));
  const [move, setMove] = useState<Move | null>(null);
  const allowed = actionsFor(v.status);
  const d = detail.data;
  const steps = d ? lineageSteps(d.version, d.ancestry) : [];

  return (
    <section className="card models-detail" aria-label={`${v.model} ${v.version}`} data-testid="models-detail">
      <div className="models-detail-head">
        <h2>
          {safeLine(v.model)} <span className="mono">{safeLine(v.version)}</span> <ClassBadge c={v.classification} /> <StatusBadge s={v.status} />
        </h2>
        <div className="form-actions">
          {allowed.approve && can('models:approve') ? (
            <button type="button" className="primary" onClick={() => setMove('approve')} data-testid="models-approve">
              {v.classification === 'phi' ? 'Request approval…' : 'Approve…'}
            </button>
          ) : null}
          {allowed.publish && can('models:publish') ? (
            <button type="button" onClick={() => setMove('publish')} data-testid="models-publish">
              Publish…
            </button>
          ) : null}
          {allowed.deprecate && can('models:deprecate') ? (
            <button type="button" onClick={() => setMove('deprecate')} data-testid="models-deprecate">
              Deprecate…
            </button>
          ) : null}
          {allowed.revoke && can('models:revoke') ? (
            <button type="button" className="danger" onClick={() => setMove('revoke')} data-testid="models-revoke">
              Revoke…
            </button>
          ) : null}
        </div>
      </div>
      <ErrorLine error={detail.error} testId="models-detail-error" />
      {d ? (
        <>
          <p className="muted">
            {d.description ? `${safeLine(d.description)} · ` : ''}Owner {safeLine(d.owner)} · licence {safeLine(v.license)} · imported <Time iso={v.importedAt} /> by {safeLine(v.importedBy)} from{' '}
            {safeLine(v.source)} ({v.format}){v.media ? <> · media <span className="mono">{safeLine(v.media.path)}</span></> : null}
          </p>
          <p className="muted" data-testid="models-status-line">
            {v.status} since <Time iso={v.statusAt} /> by {safeLine(v.statusBy)}
            {v.statusReason ? `: ${safeLine(v.statusReason)}` : ''}
          </p>
          <dl className="models-digests">
            <dt>Identity (manifest digest)</dt>
            <dd className="mono" data-testid="models-digest">{v.manifestDigest ?? <span className="muted">fixed when approved; it would be {d.artifactDigest}</span>}</dd>
          </dl>

          <h3>Lineage</h3>
          <ol className="models-lineage" data-testid="models-lineage">
            {steps.map((s, i) => (
              <li key={`${s.kind}-${s.label}-${i}`} className={`lineage-${s.kind}`} data-testid={`models-lineage-${s.kind}`}>
                <span className="lineage-label">{safeLine(s.label)}</span> <ClassBadge c={s.classification} />
                <span className="muted lineage-detail">{s.detail}</span>
              </li>
            ))}
          </ol>

          <h3>Provenance: files</h3>
          <div className="table-wrap">
            <table className="grid grid-compact" data-testid="models-files">
              <thead>
                <tr>
                  <th>Path</th>
                  <th className="num">Size</th>
                  <th>SHA-256</th>
                </tr>
              </thead>
              <tbody>
                {d.files.map((f) => (
                  <tr key={f.path}>
                    <td className="mono">{safeLine(f.path)}</td>
                    <td className="num nowrap">{formatBytes(f.size)}</td>
                    <td className="mono models-hash">{f.sha256}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>

          <h3>Published</h3>
          {v.publications.length === 0 ? (
            <p className="muted" data-testid="models-publications">Not published to a registry.</p>
          ) : (
            <ul className="models-pubs" data-testid="models-publications">
              {v.publications.map((p) => (
                <li key={p.registry}>
                  <span className="mono">
                    {safeLine(p.registry)}/{safeLine(p.repository)}:{safeLine(p.tag)}
                  </span>{' '}
                  <span className="mono muted" title={p.digest}>
                    {shortHash(p.digest, 19)}
                  </span>
                  {p.encrypted ? <span className="badge">encrypted</span> : null}{' '}
                  {p.signature ? <span className="badge" title={`signature ${p.signature}`}>signed</span> : <span className="badge" title="published before the CA existed (genesis)">unsigned</span>} · <Time iso={p.publishedAt} /> by {safeLine(p.publishedBy)}
                </li>
              ))}
            </ul>
          )}
        </>
      ) : null}
      {move && d ? (
        <MoveDialog
          move={move}
          v={v}
          digest={d.artifactDigest}
          onClose={() => setMove(null)}
          onApprovals={onApprovals}
          onDone={() => {
            setMove(null);
            onChanged();
            void detail.refresh();
          }}
        />
      ) : null}
    </section>
  );
}

const MOVE_TITLES: Record<Move, string> = { approve: 'Approve', deprecate: 'Deprecate', revoke: 'Revoke', publish: 'Publish' };

function MoveDialog({ move, v, digest, onClose, onDone, onApprovals }: { move: Move; v: Version; digest: string; onClose: () => void; onDone: () => void; onApprovals: () => void }) {
  const { client } = useApp();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [filed, setFiled] = useState<number | null>(null);
  const phi = move === 'approve' && v.classification === 'phi';
  const needsReason = move === 'deprecate' || move === 'revoke' || phi;
  const ref = { name: v.model, version: v.version };

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const r =
      move === 'approve'
        ? phi
          ? await client.approvals.request({ channel: 'models:approve', input: { ...ref, digest }, reason: reason.trim() })
          : await client.models.approve({ ...ref, digest })
        : move === 'deprecate'
          ? await client.models.deprecate({ ...ref, reason: reason.trim() })
          : move === 'revoke'
            ? await client.models.revoke({ ...ref, reason: reason.trim() })
            : await client.models.publish({ ...ref, requestId: newRequestId() });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    if (phi && 'id' in (r.value as object)) return setFiled((r.value as { id: number }).id);
    onDone();
  }

  return (
    <Modal title={`${MOVE_TITLES[move]} ${v.model} ${v.version}`} onClose={onClose} busy={busy} testId="models-move">
      <form onSubmit={(e) => void submit(e)} data-testid={`models-move-${move}`}>
        {move === 'approve' ? (
          <p>
            Approving fixes the version&apos;s identity to <span className="mono models-hash">{digest}</span>: from then on its files, lineage and classification never change.
            {phi ? ' It is classified PHI: a security officer other than you must approve the request (two-person rule); you then execute it from Approvals.' : ''}
          </p>
        ) : null}
        {move === 'publish' ? <p>Pushes the version to the registry as its OCI artifact, re-reading its files from the media it was imported from{v.classification === 'confidential' || v.classification === 'phi' ? ', its layers encrypted under a models data key (the key hierarchy must be unsealed)' : ''}.</p> : null}
        {move === 'revoke' ? <p>Revocation is final: nothing may be built on this version or pull it again.</p> : null}
        {needsReason ? (
          <label className="field">
            <span>Reason</span>
            <textarea rows={2} value={reason} onChange={(e) => setReason(e.target.value)} data-autofocus data-testid="models-move-reason" />
          </label>
        ) : null}
        <ErrorLine error={error} testId="models-move-error" />
        {filed !== null ? (
          <p className="info-line" data-testid="models-move-filed">
            Filed as request #{filed}. Once a security officer approved it, execute it from{' '}
            <button type="button" className="link-button" onClick={onApprovals} data-testid="models-go-approvals">
              Approvals
            </button>
            .
          </p>
        ) : null}
        <div className="form-actions">
          {filed === null ? (
            <button type="submit" className={move === 'revoke' ? 'danger' : 'primary'} disabled={busy || (needsReason && reason.trim().length < 3)} data-testid="models-move-submit">
              {busy ? 'Working…' : phi ? 'File the approval request' : MOVE_TITLES[move]}
            </button>
          ) : null}
          <button type="button" onClick={filed === null ? onClose : onDone} disabled={busy} data-testid="models-move-close">
            {filed === null ? 'Cancel' : 'Close'}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function ImportDialog({
  roots,
  datasets,
  bases,
  onClose,
  onDone,
}: {
  roots: string[];
  datasets: Out<'datasets:list'>;
  bases: Version[];
  onClose: () => void;
  onDone: (v: Version) => void;
}) {
  const { client } = useApp();
  const [f, setF] = useState({ format: 'directory' as Version['format'], path: '', name: '', version: '', description: '', owner: '', classification: 'internal' as Classification, license: '', source: '', base: '' });
  const [lineage, setLineage] = useState<Record<string, (typeof ROLES)[number] | ''>>({});
  const [requestId, setRequestId] = useState<string | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const set = (k: keyof typeof f) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) => setF({ ...f, [k]: e.target.value });
  const ready = f.path.trim() && f.name.trim() && f.version.trim() && f.owner.trim() && f.license.trim() && f.source.trim();

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const rid = newRequestId();
    setRequestId(rid);
    setError(null);
    const base = bases.find((b) => keyOf(b) === f.base);
    const r = await client.models.import({
      format: f.format,
      path: f.path.trim(),
      name: f.name.trim(),
      version: f.version.trim(),
      owner: f.owner.trim(),
      classification: f.classification,
      license: f.license.trim(),
      source: f.source.trim(),
      ...(f.description.trim() ? { description: f.description.trim() } : {}),
      lineage: Object.entries(lineage)
        .filter(([, role]) => role)
        .map(([dataset, role]) => ({ dataset, role: role as (typeof ROLES)[number] })),
      ...(base ? { base: { name: base.model, version: base.version } } : {}),
      requestId: rid,
    });
    setRequestId(null);
    if (!r.ok) return setError(r.error);
    onDone(r.value);
  }

  return (
    <Modal title="Import a model version" onClose={onClose} busy={requestId !== null} wide testId="models-import">
      <form onSubmit={(e) => void submit(e)} data-testid="models-import-form" className="models-form">
        <p className="hint">
          From removable media mounted under a media root: <span className="mono">{roots.map(safeLine).join(', ') || '(none configured)'}</span>. Every file is hashed; the version is staged until approved.
        </p>
        <div className="models-form-grid">
          <label className="field">
            <span>Format</span>
            <select value={f.format} onChange={set('format')} data-testid="models-import-format">
              <option value="directory">A directory of weight files</option>
              <option value="oci-layout">An OCI image layout</option>
              <option value="modelkit">A ModelKit tarball (KitOps)</option>
            </select>
          </label>
          <label className="field">
            <span>{f.format === 'modelkit' ? 'Tarball on the media' : 'Directory on the media'}</span>
            <input value={f.path} onChange={set('path')} placeholder={`${roots[0] ?? '/media'}/…`} spellCheck={false} data-autofocus data-testid="models-import-path" />
          </label>
          <label className="field">
            <span>Model name</span>
            <input value={f.name} onChange={set('name')} spellCheck={false} data-testid="models-import-name" />
          </label>
          <label className="field">
            <span>Version</span>
            <input value={f.version} onChange={set('version')} spellCheck={false} data-testid="models-import-version" />
          </label>
          <label className="field">
            <span>Classification</span>
            <select value={f.classification} onChange={set('classification')} data-testid="models-import-classification">
              {CLASSES.map((c) => (
                <option key={c} value={c}>
                  {CLASSIFICATION_LABELS[c]}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Owner</span>
            <input value={f.owner} onChange={set('owner')} data-testid="models-import-owner" />
          </label>
          <label className="field">
            <span>Licence</span>
            <input value={f.license} onChange={set('license')} data-testid="models-import-license" />
          </label>
          <label className="field">
            <span>Source (vendor, training run, ticket)</span>
            <input value={f.source} onChange={set('source')} data-testid="models-import-source" />
          </label>
          <label className="field">
            <span>Base model version</span>
            <select value={f.base} onChange={set('base')} data-testid="models-import-base">
              <option value="">None</option>
              {bases.map((b) => (
                <option key={keyOf(b)} value={keyOf(b)}>
                  {b.model} {b.version} ({CLASSIFICATION_LABELS[b.classification]})
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Description (a new model)</span>
            <input value={f.description} onChange={set('description')} data-testid="models-import-description" />
          </label>
        </div>
        <fieldset className="models-lineage-pick">
          <legend>Lineage: the datasets it was trained, fine-tuned or evaluated on</legend>
          {datasets.length === 0 ? <p className="muted">No datasets in the catalog yet.</p> : null}
          {datasets.map((d) => (
            <label key={d.id} className="field-inline">
              <span>
                {safeLine(d.id)} <ClassBadge c={d.classification} />
              </span>
              <select value={lineage[d.id] ?? ''} onChange={(e) => setLineage({ ...lineage, [d.id]: e.target.value as (typeof ROLES)[number] | '' })} data-testid={`models-import-lineage-${d.id}`}>
                <option value="">not used</option>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </label>
          ))}
        </fieldset>
        <ErrorLine error={error} testId="models-import-error" />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={requestId !== null || !ready} data-testid="models-import-submit">
            {requestId ? 'Importing…' : 'Import'}
          </button>
          {requestId ? (
            <button type="button" onClick={() => void client.ops.cancel({ requestId })} data-testid="models-import-cancel">
              Cancel the import
            </button>
          ) : (
            <button type="button" onClick={onClose} data-testid="models-import-close">
              Cancel
            </button>
          )}
        </div>
      </form>
    </Modal>
  );
}

function DatasetDialog({ onClose, onDone }: { onClose: () => void; onDone: () => void }) {
  const { client } = useApp();
  const [f, setF] = useState({ id: '', name: '', classification: 'internal' as Classification, retentionUntil: '', location: '', owner: '', description: '' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const set = (k: keyof typeof f) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setF({ ...f, [k]: e.target.value });

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const r = await client.datasets.add({
      id: f.id.trim(),
      name: f.name.trim(),
      classification: f.classification,
      location: f.location.trim(),
      owner: f.owner.trim(),
      ...(f.retentionUntil ? { retentionUntil: f.retentionUntil } : {}),
      ...(f.description.trim() ? { description: f.description.trim() } : {}),
    });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onDone();
  }

  return (
    <Modal title="Add a dataset" onClose={onClose} busy={busy} testId="models-dataset">
      <form onSubmit={(e) => void submit(e)} data-testid="models-dataset-form" className="models-form">
        <label className="field">
          <span>Id</span>
          <input value={f.id} onChange={set('id')} spellCheck={false} data-autofocus data-testid="models-dataset-id" />
        </label>
        <label className="field">
          <span>Name</span>
          <input value={f.name} onChange={set('name')} data-testid="models-dataset-name" />
        </label>
        <label className="field">
          <span>Classification</span>
          <select value={f.classification} onChange={set('classification')} data-testid="models-dataset-classification">
            {CLASSES.map((c) => (
              <option key={c} value={c}>
                {CLASSIFICATION_LABELS[c]}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Kept until</span>
          <input type="date" value={f.retentionUntil} onChange={set('retentionUntil')} data-testid="models-dataset-retention" />
        </label>
        <label className="field">
          <span>Where it is</span>
          <input value={f.location} onChange={set('location')} data-testid="models-dataset-location" />
        </label>
        <label className="field">
          <span>Owner</span>
          <input value={f.owner} onChange={set('owner')} data-testid="models-dataset-owner" />
        </label>
        <ErrorLine error={error} testId="models-dataset-error" />
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy || !f.id.trim() || !f.name.trim() || !f.location.trim() || !f.owner.trim()} data-testid="models-dataset-submit">
            {busy ? 'Adding…' : 'Add'}
          </button>
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}

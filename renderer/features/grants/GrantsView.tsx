import './grants.css';
import { useState } from 'react';
import type { Grant, HostPolicy, IssuedCredential, Principal } from '../../../shared/contract/access';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { CopyButton } from '../../components/CopyButton';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { useLoaded } from '../../components/useLoaded';
import { useApp } from '../../context';
import type { FeatureProps } from '../feature';
import { expiryBadge, groupGrants, selectorText, stateClass } from './model';

/**
 * Model access (issue 13): the policy and where it is enforced, principals with their
 * credentials (shown once, with copy), and grants by principal or by model with expiry warnings.
 * Every change pushes the policy to every host in the same call; the answer's per-host states
 * replace the table.
 */
export function GrantsView({ active }: FeatureProps) {
  const { client, can } = useApp();
  const status = useLoaded(active, () => client.policy.status({}));
  const principals = useLoaded<Principal[]>(active, () => client.principals.list({}));
  const grants = useLoaded<Grant[]>(active, () => client.grants.list({}));
  const [issued, setIssued] = useState<IssuedCredential[] | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [busy, setBusy] = useState(false);
  const [by, setBy] = useState<'principal' | 'model'>('principal');

  const reload = async () => {
    await Promise.all([status.refresh(), principals.refresh(), grants.refresh()]);
  };
  async function run<T>(p: Promise<{ ok: true; value: T } | { ok: false; error: AirlockErrorShape }>, then?: (v: T) => void) {
    setBusy(true);
    setError(null);
    try {
      const r = await p;
      if (r.ok) then?.(r.value);
      else setError(r.error);
    } finally {
      setBusy(false);
      await reload();
    }
  }

  return (
    <div className="grants-view" data-testid="grants-view">
      <ErrorLine error={error ?? status.error ?? principals.error ?? grants.error} testId="grants-error" />
      {issued ? <CredentialOnce creds={issued} onDone={() => setIssued(null)} /> : null}

      <section className="panel" data-testid="grants-policy">
        <div className="panel-head">
          <h2>Policy</h2>
          <span className="muted" data-testid="grants-policy-summary">
            {status.data ? safeLine(status.data.summary) : '…'}
          </span>
          <div className="toolbar-spacer" />
          <button type="button" disabled={busy} onClick={() => void run(client.policy.status({ check: true }))} data-testid="grants-policy-check">
            Check hosts
          </button>
          {can('policy:push') ? (
            <button type="button" disabled={busy} onClick={() => void run(client.policy.push({}))} data-testid="grants-policy-push">
              Push now
            </button>
          ) : null}
        </div>
        {status.data?.version ? (
          <p className="muted">
            v{status.data.version} issued <Time iso={status.data.issuedAt} /> by <span className="mono">{status.data.issuer}</span>: {status.data.principals} principals, {status.data.grants} grants.
          </p>
        ) : null}
        <HostsTable hosts={status.data?.hosts ?? []} />
      </section>

      <section className="panel" data-testid="grants-principals">
        <div className="panel-head">
          <h2>Principals</h2>
        </div>
        {can('principals:create') ? <NewApplication busy={busy} onCreate={(name, description) => void run(client.principals.create({ kind: 'application', name, ...(description ? { description } : {}) }), (v) => setIssued(v.credentials))} /> : null}
        <table className="grid" data-testid="grants-principals-table">
          <thead>
            <tr>
              <th>Principal</th>
              <th>Kind</th>
              <th>Credential</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(principals.data ?? []).length === 0 ? (
              <tr>
                <td colSpan={4} className="empty">
                  No principals yet: create an application (its credential is shown once).
                </td>
              </tr>
            ) : null}
            {(principals.data ?? []).map((p) => (
              <tr key={p.id} data-testid={`grants-principal-${p.id}`}>
                <td className="mono strong">{p.id}</td>
                <td>{p.kind}</td>
                <td>{p.credentialIssuedAt ? <>#{p.credentialGeneration}, <Time iso={p.credentialIssuedAt} /></> : '—'}</td>
                <td className="col-actions">
                  {p.kind !== 'team' && can('principals:rotateCredential') ? (
                    <button type="button" className="small" disabled={busy} onClick={() => void run(client.principals.rotateCredential({ id: p.id }), (v) => setIssued([v.credential]))} data-testid={`grants-rotate-${p.id}`}>
                      Rotate credential
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section className="panel" data-testid="grants-grants">
        <div className="panel-head">
          <h2>Grants</h2>
          <div className="toolbar-spacer" />
          <fieldset className="grants-by">
            <legend className="sr-only">Group grants</legend>
            <label>
              <input type="radio" name="grants-by" checked={by === 'principal'} onChange={() => setBy('principal')} data-testid="grants-by-principal" /> by principal
            </label>
            <label>
              <input type="radio" name="grants-by" checked={by === 'model'} onChange={() => setBy('model')} data-testid="grants-by-model" /> by model
            </label>
          </fieldset>
        </div>
        {can('grants:add') ? (
          <AddGrant
            busy={busy}
            principals={(principals.data ?? []).filter((p) => !p.disabled)}
            onAdd={(g) => void run(client.grants.add(g))}
          />
        ) : null}
        {groupGrants(grants.data ?? [], by).map(([key, rows]) => (
          <div key={key} className="grants-group" data-testid={`grants-group-${key}`}>
            <h3 className="mono">{key}</h3>
            <table className="grid">
              <thead>
                <tr>
                  <th>Grant</th>
                  <th>{by === 'principal' ? 'Model' : 'Principal'}</th>
                  <th>Version</th>
                  <th>Actions</th>
                  <th>Expiry</th>
                  <th>Status</th>
                  <th className="col-actions">Revoke</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((g) => (
                  <GrantRow key={g.id} g={g} by={by} busy={busy} canRevoke={can('grants:revoke')} onRevoke={(reason) => void run(client.grants.revoke({ id: g.id, reason }))} />
                ))}
              </tbody>
            </table>
          </div>
        ))}
        {grants.data && grants.data.length === 0 ? <p className="empty">No grants yet.</p> : null}
      </section>
    </div>
  );
}

function HostsTable({ hosts }: { hosts: HostPolicy[] }) {
  const v = (n: number | null) => (n === null ? '—' : `v${n}`);
  return (
    <table className="grid" data-testid="grants-hosts">
      <thead>
        <tr>
          <th>Host</th>
          <th>Enclave</th>
          <th>State</th>
          <th>Delivered</th>
          <th>Enforcing</th>
          <th>Last error</th>
        </tr>
      </thead>
      <tbody>
        {hosts.length === 0 ? (
          <tr>
            <td colSpan={6} className="empty">
              No enrolled host yet.
            </td>
          </tr>
        ) : null}
        {hosts.map((h) => (
          <tr key={h.host} data-testid={`grants-host-${h.host}`} data-state={h.state}>
            <td className="strong">{h.host}</td>
            <td>
              {h.enclave}
              {h.phi ? <span className="badge badge-phi">PHI</span> : null}
            </td>
            <td>
              <span className={`badge ${stateClass(h.state)}`}>{h.state}</span> {h.since ? <span className="muted">since <Time iso={h.since} /></span> : null}
            </td>
            <td>{v(h.deliveredVersion)}</td>
            <td>{v(h.enforcingVersion)}</td>
            <td className="muted">{h.lastError ? safeLine(h.lastError, 300) : ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A credential, shown this once: copy it, then say it is stored; it cannot be shown again. */
function CredentialOnce({ creds, onDone }: { creds: IssuedCredential[]; onDone: () => void }) {
  return (
    <div className="panel panel-warn" role="status" data-testid="grants-credential">
      <strong>Store this credential now: it is shown once and cannot be shown again.</strong>
      {creds.map((c) => (
        <div key={c.principal} className="grants-cred">
          <span className="mono">{c.principal}</span>
          <code className="mono" data-testid={`grants-credential-${c.principal}`}>
            {c.credential}
          </code>
          <CopyButton text={c.credential} testId={`grants-credential-copy-${c.principal}`} />
        </div>
      ))}
      <button type="button" onClick={onDone} data-testid="grants-credential-done">
        I have stored it
      </button>
    </div>
  );
}

function NewApplication({ busy, onCreate }: { busy: boolean; onCreate: (name: string, description: string) => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  return (
    <form
      className="toolbar-form"
      onSubmit={(e) => {
        e.preventDefault();
        onCreate(name.trim(), description.trim());
        setName('');
        setDescription('');
      }}
    >
      <label className="field">
        <span>Application name</span>
        <input value={name} onChange={(e) => setName(e.target.value)} data-testid="grants-app-name" />
      </label>
      <label className="field">
        <span>Description</span>
        <input value={description} onChange={(e) => setDescription(e.target.value)} data-testid="grants-app-description" />
      </label>
      <button type="submit" disabled={busy || !name.trim()} data-testid="grants-app-create">
        Create application
      </button>
    </form>
  );
}

function AddGrant({ busy, principals, onAdd }: { busy: boolean; principals: Principal[]; onAdd: (g: Parameters<ReturnType<typeof useApp>['client']['grants']['add']>[0]) => void }) {
  const [principal, setPrincipal] = useState('');
  const [model, setModel] = useState('');
  const [version, setVersion] = useState('');
  const [invoke, setInvoke] = useState(true);
  const [pull, setPull] = useState(false);
  const [expires, setExpires] = useState('');
  const [rpm, setRpm] = useState('');
  const chosen = principal || principals[0]?.id || '';
  const actions = [...(invoke ? (['invoke'] as const) : []), ...(pull ? (['pull'] as const) : [])];
  return (
    <form
      className="form-grid grants-add"
      onSubmit={(e) => {
        e.preventDefault();
        onAdd({
          principal: chosen,
          model: model.trim(),
          version: version.trim() ? { exact: version.trim() } : 'latest-approved',
          actions,
          expiresAt: expires ? new Date(expires).toISOString() : null,
          ...(rpm ? { requestsPerMinute: Number(rpm) } : {}),
        });
      }}
      data-testid="grants-add"
    >
      <label className="field">
        <span>Principal</span>
        <select value={chosen} onChange={(e) => setPrincipal(e.target.value)} data-testid="grants-add-principal">
          {principals.map((p) => (
            <option key={p.id} value={p.id}>
              {p.id}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Model</span>
        <input value={model} onChange={(e) => setModel(e.target.value)} data-testid="grants-add-model" />
      </label>
      <label className="field">
        <span>Version (empty: latest approved)</span>
        <input value={version} onChange={(e) => setVersion(e.target.value)} data-testid="grants-add-version" />
      </label>
      <fieldset className="grants-actions">
        <legend>Actions</legend>
        <label>
          <input type="checkbox" checked={invoke} onChange={(e) => setInvoke(e.target.checked)} data-testid="grants-add-invoke" /> invoke
        </label>
        <label>
          <input type="checkbox" checked={pull} onChange={(e) => setPull(e.target.checked)} data-testid="grants-add-pull" /> pull
        </label>
      </fieldset>
      <label className="field">
        <span>Expires (empty: never)</span>
        <input type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} data-testid="grants-add-expires" />
      </label>
      <label className="field">
        <span>Requests per minute</span>
        <input inputMode="numeric" value={rpm} onChange={(e) => setRpm(e.target.value.replace(/[^0-9]/g, ''))} data-testid="grants-add-rpm" />
      </label>
      <button type="submit" disabled={busy || !chosen || !model.trim() || actions.length === 0} data-testid="grants-add-submit">
        Grant
      </button>
    </form>
  );
}

function GrantRow({ g, by, busy, canRevoke, onRevoke }: { g: Grant; by: 'principal' | 'model'; busy: boolean; canRevoke: boolean; onRevoke: (reason: string) => void }) {
  const [reason, setReason] = useState<string | null>(null);
  const exp = expiryBadge(g);
  return (
    <tr data-testid={`grants-row-${g.id}`} data-status={g.status}>
      <td className="mono">{g.id}</td>
      <td className="mono">{by === 'principal' ? g.model : g.principal}</td>
      <td>
        {selectorText(g)}
        {g.resolved?.classification === 'phi' ? <span className="badge badge-phi">PHI</span> : null}
      </td>
      <td>{g.actions.join(', ')}</td>
      <td>
        {g.expiresAt ? <Time iso={g.expiresAt} /> : 'never'} {exp ? <span className={`badge ${exp.className}`} data-testid={`grants-expiry-${g.id}`}>{exp.text}</span> : null}
      </td>
      <td>
        <span className={`badge ${g.status === 'active' ? 'badge-reachable' : 'badge-unconfirmed'}`}>{g.status}</span>
        {g.why ? <span className="muted"> {safeLine(g.why, 300)}</span> : null}
      </td>
      <td className="col-actions">
        {canRevoke && !g.revokedAt ? (
          reason === null ? (
            <button type="button" className="small" disabled={busy} onClick={() => setReason('')} data-testid={`grants-revoke-${g.id}`}>
              Revoke
            </button>
          ) : (
            <form
              className="grants-revoke"
              onSubmit={(e) => {
                e.preventDefault();
                onRevoke(reason.trim());
              }}
            >
              <label>
                <span className="sr-only">Reason</span>
                <input placeholder="why" value={reason} onChange={(e) => setReason(e.target.value)} data-testid={`grants-revoke-reason-${g.id}`} />
              </label>
              <button type="submit" className="small" disabled={busy || reason.trim().length < 3} data-testid={`grants-revoke-confirm-${g.id}`}>
                Revoke
              </button>
            </form>
          )
        ) : null}
      </td>
    </tr>
  );
}

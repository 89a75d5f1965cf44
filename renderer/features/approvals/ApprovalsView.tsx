import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { ApprovalPolicy, ApprovalRequest } from '../../../shared/contract/approvals';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { DASH } from '../../components/format';
import { Time } from '../../components/Time';
import { safeLine, safeText } from '../../components/safeText';
import { useApp } from '../../context';
import { RoleChecks } from '../../components/RoleChecks';
import { useApprovalsChanged } from './useApprovalsChanged';

const APPROVER_ROLES = ['admin', 'officer'] as const;

type Counts = { pending: number; awaitingMe: number; readyToExecute: number };

/**
 * The two-person queue (re-read when the core pushes approvals:changed; never polled) and the
 * policy table.
 */
export function ApprovalsView() {
  const { api, client, can } = useApp();
  const [requests, setRequests] = useState<ApprovalRequest[] | null>(null);
  const [counts, setCounts] = useState<Counts | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [openId, setOpenId] = useState<number | null>(null);
  const [policy, setPolicy] = useState<ApprovalPolicy[] | null>(null);
  const [policyError, setPolicyError] = useState<AirlockErrorShape | null>(null);
  const [editing, setEditing] = useState<ApprovalPolicy | null>(null);

  const load = useCallback(async () => {
    const r = await client.approvals.list({ limit: 200 });
    if (!r.ok) return setError(r.error);
    setError(null);
    setRequests(r.value.requests);
    setCounts(r.value.counts);
  }, [client]);

  const loadPolicy = useCallback(async () => {
    const r = await client.approvals.policy({});
    if (!r.ok) return setPolicyError(r.error);
    setPolicyError(null);
    setPolicy(r.value);
  }, [client]);

  useApprovalsChanged(api, load);
  useEffect(() => {
    void loadPolicy();
  }, [loadPolicy]);

  const open = requests?.find((r) => r.id === openId) ?? null;

  return (
    <section className="view" data-testid="approvals-view">
      <div className="toolbar">
        <div className="summary-line" data-testid="approvals-counts">
          {counts ? (
            <>
              {counts.pending} pending · <strong>{counts.awaitingMe}</strong> awaiting your decision ·{' '}
              <strong>{counts.readyToExecute}</strong> ready for you to execute
            </>
          ) : (
            'Loading…'
          )}
        </div>
        <div className="toolbar-spacer" />
        {/* The policy too: another person may have changed it (approvals:changed is about the queue only). */}
        <button
          type="button"
          onClick={() => {
            void load();
            void loadPolicy();
          }}
          data-testid="approvals-refresh"
        >
          Refresh
        </button>
      </div>
      <ErrorLine error={error} testId="approvals-error" />
      <div className="table-wrap">
        <table className="grid" data-testid="approvals-table">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>Operation</th>
              <th>Summary</th>
              <th>Requested by</th>
              <th>Requested</th>
              <th>Expires</th>
              <th>Status</th>
              <th>Decided by</th>
            </tr>
          </thead>
          <tbody>
            {requests && requests.length === 0 ? (
              <tr>
                <td colSpan={8} className="empty">
                  No requests.
                </td>
              </tr>
            ) : null}
            {(requests ?? []).map((r) => (
              <tr
                key={r.id}
                className={openId === r.id ? 'row-open clickable' : 'clickable'}
                onClick={() => setOpenId(r.id)}
                data-testid={`approval-row-${r.id}`}
                data-status={r.status}
              >
                <td className="num mono">{r.id}</td>
                <td className="mono">{r.operation}</td>
                <td className="truncate">{safeLine(r.summary)}</td>
                <td>{safeLine(r.requestedBy)}</td>
                <td className="nowrap"><Time iso={r.requestedAt} /></td>
                <td className="nowrap"><Time iso={r.expiresAt} /></td>
                <td>
                  <span className={`badge approval-${r.status}`}>{r.status}</span>
                  {r.canApprove ? <span className="badge badge-warn"> needs you</span> : null}
                  {r.canExecute ? <span className="badge badge-ok"> execute</span> : null}
                </td>
                <td>{r.decidedBy ? safeLine(r.decidedBy) : DASH}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {open ? (
        <RequestDetail
          key={open.id}
          request={open}
          canDecide={can('approvals:approve')}
          onChanged={() => {
            void load();
            void loadPolicy();
          }}
        />
      ) : null}

      <h3>Two-person policy</h3>
      <ErrorLine error={policyError} testId="policy-error" />
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="policy-table">
          <thead>
            <tr>
              <th>Operation</th>
              <th>Description</th>
              <th>Second person</th>
              <th>Approver roles</th>
              <th>Expiry</th>
              <th>Channels</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(policy ?? []).map((p) => (
              <tr key={p.operation} data-testid={`policy-row-${p.operation}`}>
                <td className="mono">{p.operation}</td>
                <td>
                  {safeLine(p.description)}
                  {!p.implemented ? <span className="muted"> (not yet in the product)</span> : null}
                </td>
                <td data-testid={`policy-required-${p.operation}`} data-required={p.required}>
                  {p.required ? 'required' : <span className="badge badge-warn">off</span>}
                </td>
                <td data-testid={`policy-roles-${p.operation}`}>{p.approverRoles.join(', ')}</td>
                <td className="nowrap" data-testid={`policy-expiry-${p.operation}`}>{p.expiryMinutes} min</td>
                <td className="mono">{p.channels.join(', ') || DASH}</td>
                <td className="nowrap" data-testid={`policy-updated-${p.operation}`}>
                  <Time iso={p.updatedAt} /> {p.updatedBy ? `by ${safeLine(p.updatedBy)}` : ''}
                </td>
                <td className="col-actions">
                  {can('approvals:setPolicy') ? (
                    <button type="button" onClick={() => setEditing(p)} data-testid={`policy-edit-${p.operation}`}>
                      Edit…
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {editing ? (
        <PolicyForm
          key={editing.operation}
          row={editing}
          onClose={() => setEditing(null)}
          onChanged={() => {
            void load();
            void loadPolicy();
          }}
        />
      ) : null}
    </section>
  );
}

function RequestDetail({ request: r, canDecide, onChanged }: { request: ApprovalRequest; canDecide: boolean; onChanged: () => void }) {
  const { client } = useApp();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);

  async function act(kind: 'approve' | 'reject' | 'execute' | 'cancel') {
    if (busy) return;
    setBusy(true);
    setError(null);
    setNote(null);
    const res =
      kind === 'approve'
        ? await client.approvals.approve({ id: r.id, reason: reason.trim() })
        : kind === 'reject'
          ? await client.approvals.reject({ id: r.id, reason: reason.trim() })
          : kind === 'execute'
            ? await client.approvals.execute({ id: r.id })
            : await client.approvals.cancel({ id: r.id });
    setBusy(false);
    if (!res.ok) return setError(res.error);
    setNote(kind === 'execute' ? 'Executed.' : kind === 'cancel' ? 'Cancelled.' : kind === 'approve' ? 'Approved.' : 'Rejected.');
    setReason('');
    onChanged();
  }

  const reasonOk = reason.trim().length >= 3;
  return (
    <div className="card" data-testid="approval-detail" data-id={r.id} data-status={r.status}>
      <h3>
        Request #{r.id}: {safeLine(r.summary)}
      </h3>
      <dl className="kv">
        <dt>Operation</dt>
        <dd className="mono">{r.operation}</dd>
        <dt>Channel</dt>
        <dd className="mono">{safeLine(r.channel)}</dd>
        <dt>Input</dt>
        <dd>
          <pre className="mono params">{safeText(JSON.stringify(r.input, null, 2) ?? '')}</pre>
        </dd>
        <dt>Reason</dt>
        <dd data-testid="approval-detail-reason">{safeLine(r.reason)}</dd>
        <dt>Requested</dt>
        <dd>
          {safeLine(r.requestedBy)} at <Time iso={r.requestedAt} />; expires <Time iso={r.expiresAt} />
        </dd>
        <dt>Approver roles</dt>
        <dd>{r.approverRoles.join(', ')}</dd>
        <dt>Status</dt>
        <dd data-testid="approval-detail-status">{r.status}</dd>
        {r.decidedBy ? (
          <>
            <dt>Decision</dt>
            <dd>
              {safeLine(r.decidedBy)} at <Time iso={r.decidedAt} />: {safeLine(r.decisionReason ?? '')}
            </dd>
          </>
        ) : null}
        {r.executedAt ? (
          <>
            <dt>Executed</dt>
            <dd>
              <Time iso={r.executedAt} />
              {r.resultCode ? ` — failed: ${safeLine(r.resultCode)}` : ''}
            </dd>
          </>
        ) : null}
      </dl>
      {r.status === 'pending' && canDecide ? (
        r.canApprove ? (
          <div className="form-grid">
            <label className="field">
              <span>Reason for your decision (audited)</span>
              <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} data-testid="approval-decision-reason" />
            </label>
            <div className="form-actions">
              <button type="button" className="primary" disabled={busy || !reasonOk} onClick={() => void act('approve')} data-testid="approval-approve">
                Approve
              </button>
              <button type="button" className="danger" disabled={busy || !reasonOk} onClick={() => void act('reject')} data-testid="approval-reject">
                Reject
              </button>
            </div>
          </div>
        ) : (
          <div className="warn-line" data-testid="approval-cannot-approve">
            You cannot approve this request: {safeLine(r.cannotApproveReason ?? 'not allowed')}
          </div>
        )
      ) : null}
      <div className="form-actions">
        {r.canExecute ? (
          <button type="button" className="primary" disabled={busy} onClick={() => void act('execute')} data-testid="approval-execute">
            Execute
          </button>
        ) : null}
        {r.canCancel ? (
          <button type="button" disabled={busy} onClick={() => void act('cancel')} data-testid="approval-cancel-request">
            Withdraw request
          </button>
        ) : null}
      </div>
      <ErrorLine error={error} testId="approval-action-error" />
      {note ? (
        <div className="info-line" data-testid="approval-note">
          {note}
        </div>
      ) : null}
    </div>
  );
}

function PolicyForm({ row, onClose, onChanged }: { row: ApprovalPolicy; onClose: () => void; onChanged: () => void }) {
  const { client } = useApp();
  const [roles, setRoles] = useState<Set<'admin' | 'officer'>>(new Set(row.approverRoles));
  const [expiry, setExpiry] = useState(String(row.expiryMinutes));
  const [required, setRequired] = useState(row.required);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    // approvals:setPolicy is itself under the two-person rule: the client wrapper offers to file it.
    const r = await client.approvals.setPolicy({
      operation: row.operation,
      approverRoles: (['admin', 'officer'] as const).filter((x) => roles.has(x)),
      expiryMinutes: Number(expiry),
      required,
    });
    setBusy(false);
    if (!r.ok) {
      setError(r.error);
      if (r.error.code === 'APPROVAL_REQUIRED') onChanged();
      return;
    }
    onChanged();
    onClose();
  }

  return (
    <form className="card form-card" onSubmit={submit} data-testid="policy-form">
      <h3>
        Change policy: <span className="mono">{row.operation}</span>
      </h3>
      <p className="muted">A policy change is itself a two-person request.</p>
      <RoleChecks legend="Approver roles" options={APPROVER_ROLES} roles={roles} setRoles={setRoles} testIdPrefix="policy-role" />
      <label className="field field-narrow">
        <span>Expiry (minutes, 5–10080)</span>
        <input type="number" min={5} max={10080} value={expiry} onChange={(e) => setExpiry(e.target.value)} data-testid="policy-expiry" />
      </label>
      <label className="check">
        <input
          type="checkbox"
          checked={required}
          onChange={(e) => setRequired(e.target.checked)}
          disabled={row.operation === 'approvals:setPolicy'}
          data-testid="policy-required"
        />
        <span>Second person required</span>
      </label>
      <ErrorLine error={error} testId="policy-form-error" />
      <div className="form-actions">
        <button type="submit" className="primary" disabled={busy || roles.size === 0} data-testid="policy-submit">
          Request change
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </form>
  );
}

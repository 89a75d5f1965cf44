import { useCallback, useState } from 'react';
import type { Api } from '../../api';
import { useApp } from '../../context';
import { useApprovalsChanged } from './useApprovalsChanged';

/** The nav badge: requests awaiting one's decision, and approved ones ready to execute. */
export function ApprovalsBadge() {
  const { api, can } = useApp();
  const counts = useApprovalCounts(api, can('approvals:list'));
  return counts && counts.awaitingMe + counts.readyToExecute > 0 ? (
    <span
      className="nav-badge"
      data-testid="approvals-badge"
      data-awaiting={counts.awaitingMe}
      data-ready={counts.readyToExecute}
      title={`${counts.awaitingMe} awaiting your decision, ${counts.readyToExecute} ready to execute`}
    >
      {counts.awaitingMe}
      {counts.readyToExecute ? ` · ${counts.readyToExecute}▶` : ''}
    </span>
  ) : null;
}

/**
 * The approvals badge: read once at sign-in and again only when the core pushes approvals:changed
 * (a request filed, decided, cancelled, executed or expired, in any process): no polling, so an
 * idle console writes nothing to the audit trail. approvals:list is passive (never keeps an idle
 * session alive).
 */
function useApprovalCounts(api: Api, enabled: boolean) {
  const [counts, setCounts] = useState<{ awaitingMe: number; readyToExecute: number } | null>(null);
  const load = useCallback(async () => {
    const r = await api.client.approvals.list({ status: 'open', limit: 1 });
    if (r.ok) setCounts(r.value.counts);
  }, [api]);
  useApprovalsChanged(api, load, enabled);
  return counts;
}

import type { Db } from '../db/db';
import type { Watched } from '../db/watch';

/**
 * The approval queue's state for the core's DataWatch (db/watch.ts), which pushes
 * `approvals:changed` instead of every console polling `approvals:list` (and writing two audit
 * events per poll).
 *
 * The state is a fingerprint: the highest request id, and the id and status of every request still
 * in play (executing, or pending or approved and not past `expires_at`). Expiry is a time, not a
 * write (approvals.ts records it lazily, at the next read), so a request leaves the set when its
 * time is up (`dueAt`: the next expiry), and the later write of 'expired' changes nothing here.
 * Requests out of play never change again, so any filing, decision, cancellation, claim,
 * execution, failure or expiry changes the fingerprint, and nothing else does. One indexed query,
 * read-only.
 */
export function approvalQueueState(db: Db, now: () => Date): () => Watched {
  return () => {
    const row = db
      .prepare(
        `SELECT (SELECT COALESCE(MAX(id), 0) FROM approval_requests) AS top,
                (SELECT group_concat(id || ':' || status, ',')
                   FROM (SELECT id, status FROM approval_requests
                          WHERE status = 'executing' OR (status IN ('pending', 'approved') AND expires_at > @now) ORDER BY id)) AS open,
                (SELECT MIN(expires_at) FROM approval_requests WHERE status IN ('pending', 'approved') AND expires_at > @now) AS next`,
      )
      .get({ now: now().toISOString() }) as { top: number; open: string | null; next: string | null };
    return { state: `${row.top}|${row.open ?? ''}`, dueAt: row.next ? Date.parse(row.next) : undefined };
  };
}

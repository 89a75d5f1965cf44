import type { Migration } from './index';

/** Two-person operations renamed so each carries the domain word of the channel that triggers it. */
export const RENAMED_OPERATIONS: ReadonlyArray<readonly [from: string, to: string]> = [
  // Triggered by provision:disableEgressLockdown (the egress step is provisioning's).
  ['hosts:disableEgressLockdown', 'provision:disableEgressLockdown'],
];

/**
 * Renames operations in the policy and in requests. Requests keep their digest (it covers the
 * channel and input, not the operation name). An open approvals:setPolicy request about a renamed
 * operation cannot run any more (its sealed input names the old operation): it is cancelled, so
 * nobody approves something that would only fail; its requester files it again.
 */
export const m0006: Migration = {
  version: 6,
  name: '0006-operation-names',
  up(db) {
    for (const [from, to] of RENAMED_OPERATIONS) {
      db.prepare('UPDATE approval_policy SET operation = ? WHERE operation = ?').run(to, from);
      db.prepare('UPDATE approval_requests SET operation = ? WHERE operation = ?').run(to, from);
      db.prepare(
        `UPDATE approval_requests SET status = 'cancelled'
          WHERE status IN ('pending', 'approved') AND channel = 'approvals:setPolicy'
            AND json_extract(target, '$.kind') = 'policy' AND json_extract(target, '$.name') = ?`,
      ).run(from);
    }
  },
};

import type { AuditInput } from '../../electron/core/audit/audit';

/** A plausible audit event, numbered: a `hosts:add` request for host gpu-i. */
export const sampleEvent = (i: number): AuditInput => ({
  actor: 'alice',
  roles: ['admin'],
  session: 's1',
  shell: 'cli:test',
  channel: 'hosts:add',
  phase: 'request',
  target: `gpu-${i}`,
  params: { name: `gpu-${i}`, port: 22 },
  outcome: 'pending',
  errorCode: null,
});

import { z } from 'zod';
import type { Out } from '../../../shared/contract/index';
import { ApprovalStatus, ApproverRole } from '../../../shared/contract/approvals';
import { clean } from './io';
import { arg, call, command, opt, type AreaTable } from './spec';

const ID = arg.int('ID', 'the request number (`airlock approvals list`)');
const REASON = opt.string('R', 'why (recorded with the decision)', { required: true });

const showRequest = (q: Out<'approvals:get'>) =>
  `#${q.id}\t${q.status}\t${q.operation}\t${clean(q.summary)}\n` +
  `  requested by ${q.requestedBy} at ${q.requestedAt}: ${clean(q.reason)}\n` +
  `  approvers: ${q.approverRoles.join(' or ')}; expires ${q.expiresAt}\n` +
  (q.decidedBy ? `  ${q.status === 'rejected' ? 'rejected' : 'approved'} by ${q.decidedBy} at ${q.decidedAt}: ${clean(q.decisionReason ?? '')}\n` : '') +
  (q.executedAt ? `  executed at ${q.executedAt}${q.resultCode ? ` (failed: ${q.resultCode})` : ''}\n` : '') +
  (q.status === 'pending' && !q.canApprove && q.cannotApproveReason ? `  you cannot decide it: ${clean(q.cannotApproveReason)}\n` : '');

export const approvals: AreaTable = {
  area: 'approvals',
  about: 'the two-person rule: requests, decisions, the policy',
  commands: [
    call({
      words: 'approvals list',
      channel: 'approvals:list',
      options: { status: opt.string('S', 'only requests with this status: open (pending or approved), or one of ' + ApprovalStatus.options.join(', '), { schema: ApprovalStatus.or(z.literal('open')) }), limit: opt.int('N', 'at most N requests (default 100)') },
      input: (c) => ({ status: c.opts.status as Out<'approvals:get'>['status'] | 'open' | undefined, limit: c.opts.limit ?? 100 }),
      human: ({ requests, counts }) =>
        requests.map((q) => `#${q.id}\t${q.status}\t${q.requestedBy}\t${q.operation}\t${clean(q.summary)}${q.canApprove ? '\t(you may approve)' : ''}`).join('\n') +
        (requests.length ? '\n' : '') +
        `${counts.pending} pending, ${counts.awaitingMe} awaiting your decision, ${counts.readyToExecute} of yours ready to execute\n`,
    }),
    call({
      words: 'approvals show',
      channel: 'approvals:get',
      args: { id: ID },
      input: (c) => ({ id: c.args.id }),
      human: (v) => showRequest(v) + `  input: ${clean(JSON.stringify(v.input))}\n`,
    }),
    call({ words: 'approvals approve', channel: 'approvals:approve', args: { id: ID }, options: { reason: REASON }, input: (c) => ({ id: c.args.id, reason: c.opts.reason }), human: showRequest }),
    call({ words: 'approvals reject', channel: 'approvals:reject', args: { id: ID }, options: { reason: REASON }, input: (c) => ({ id: c.args.id, reason: c.opts.reason }), human: showRequest }),
    call({
      words: 'approvals execute',
      channel: 'approvals:execute',
      args: { id: ID },
      input: (c) => ({ id: c.args.id }),
      human: (v) => `Executed request ${v.request.id}: ${clean(v.request.summary)}\n`,
    }),
    call({ words: 'approvals cancel', channel: 'approvals:cancel', args: { id: ID }, input: (c) => ({ id: c.args.id }), human: showRequest }),
    call({
      words: 'approvals policy',
      channel: 'approvals:policy',
      input: () => ({}),
      human: (v) =>
        v.map((p) => `${p.operation}\t${p.required ? 'required' : 'off'}\t${p.approverRoles.join('|')}\t${p.expiryMinutes} min\t${p.implemented ? p.channels.join(',') : '(no channel yet)'}`).join('\n') + '\n',
    }),
    command({
      words: 'approvals set-policy',
      channel: 'approvals:setPolicy',
      alsoCalls: ['approvals:policy'],
      args: { operation: arg.one('OP', 'the operation (see `airlock approvals policy`)') },
      options: {
        'approver-role': opt.strings('R', 'who may approve: admin, officer (repeat for both); default: unchanged', { schema: ApproverRole }),
        'expiry-minutes': opt.int('N', 'a request must be approved and executed within N minutes; default: unchanged'),
        required: opt.flag('the operation needs a second person'),
        'not-required': opt.flag('the operation runs without a second person (never for approvals:setPolicy)'),
        reason: opt.string('R', 'why: files the change as an approval request (it is itself under the two-person rule)'),
      },
      async run(c) {
        const { operation } = c.args;
        const o = c.opts;
        if (o.required && o['not-required']) c.usage('give --required or --not-required, not both');
        const current = await c.call('approvals:policy', {});
        if (!current.ok) return c.fail(current);
        const row = current.value.find((p) => p.operation === operation);
        if (!row) return c.usage(`unknown operation "${operation}" (see \`airlock approvals policy\`)`);
        const input = {
          operation: row.operation,
          approverRoles: o['approver-role'].length ? (o['approver-role'] as typeof row.approverRoles) : row.approverRoles,
          expiryMinutes: o['expiry-minutes'] ?? row.expiryMinutes,
          required: o['not-required'] ? false : o.required ? true : row.required,
        };
        return await c.guarded('approvals:setPolicy', input, (v) => c.out(`Policy for ${v.operation} updated\n`, v));
      },
    }),
  ],
};

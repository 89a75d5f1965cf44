import type { ChannelName } from '../../../shared/contract/index';
import { AirlockError, type Result } from '../../../shared/domain/errors';
import { toShape, type ApprovedRun, type AreaHandlers } from '../dispatch';
import type { ClientContext } from '../types';
import type { Approvals } from './approvals';

/** The two-person rule: file, decide, cancel and execute requests; the approval policy. */
export function approvalsHandlers(d: {
  approvals: Approvals;
  /** The core's dispatcher: an approved request runs through it as itself. */
  dispatch: (client: ClientContext, channel: ChannelName, input: unknown, run: ApprovedRun) => Promise<Result<unknown>>;
}): AreaHandlers<'approvals'> {
  const { approvals } = d;
  return {
    'approvals:list': (ctx, input) => approvals.list(ctx.viewer(), input),
    'approvals:get': (ctx, input) => approvals.get(ctx.viewer(), input.id),
    'approvals:request': (ctx, input) => approvals.file(ctx.actor(), input.channel, input.input, input.reason),
    'approvals:approve': (ctx, input) => approvals.approve(ctx.viewer(), input.id, input.reason),
    'approvals:reject': (ctx, input) => approvals.reject(ctx.viewer(), input.id, input.reason),
    'approvals:cancel': (ctx, input) => approvals.cancel(ctx.viewer(), input.id),
    'approvals:execute': async (ctx, input) => {
      const actor = ctx.actor();
      const claim = approvals.claim(actor, input.id);
      // Through the dispatcher, so the approved call is checked (role, step-up, exact input) and audited as itself.
      const run: ApprovedRun = { approval: { id: claim.id, channel: claim.channel, digest: claim.digest, target: claim.target }, ran: false };
      let r: Result<unknown>;
      try {
        r = await d.dispatch(ctx.client, claim.channel, claim.input, run);
      } catch (e) {
        r = { ok: false, error: toShape(e) };
      }
      if (run.ran) approvals.finish(claim.id, r.ok ? null : r.error.code);
      else approvals.release(claim.id);
      if (!r.ok) throw new AirlockError(r.error.code, `Request ${claim.id}: ${r.error.message}`);
      return { request: approvals.get(actor, claim.id), value: r.value };
    },
    'approvals:policy': () => approvals.policy(),
    'approvals:setPolicy': (ctx, input) => {
      ctx.approvedTarget();
      return approvals.setPolicy(ctx.viewer(), input);
    },
  };
}

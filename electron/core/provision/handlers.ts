import type { AreaHandlers } from '../dispatch';
import type { Provisioner } from './engine';
import type { Playbooks } from './playbooks';

/** Playbooks, plans, runs (apply, resume), drift and the egress switch. */
export function provisionHandlers(d: { playbooks: Playbooks; provisioner: Provisioner }): AreaHandlers<'provision'> {
  const { playbooks, provisioner } = d;
  return {
    'provision:playbooks': () => playbooks.all().map((p) => playbooks.info(p)),
    'provision:importPlaybook': (ctx, input) => playbooks.info(playbooks.import(input.text, ctx.requireSession().user)),
    'provision:plan': (ctx, input) => provisioner.plan(ctx.caller(), input),
    'provision:apply': (ctx, input) => provisioner.apply(ctx.caller(), input),
    'provision:resume': (ctx, input) => provisioner.resume(ctx.caller(), input.runId, input.concurrency),
    'provision:drift': (ctx, input) => provisioner.drift(ctx.caller(), input.hosts),
    'provision:disableEgressLockdown': (ctx, input) => {
      ctx.approvedTarget();
      return provisioner.disableEgress(ctx.caller(), input.host);
    },
    'provision:status': (_ctx, input) => provisioner.get(input.runId),
    'provision:runs': (_ctx, input) => provisioner.list(input.limit),
  };
}

import type { AreaHandlers, Operations } from '../dispatch';

/** Cancelling a running call of the same client by its requestId. */
export function opsHandlers(d: { ops: Operations }): AreaHandlers<'ops'> {
  return {
    'ops:cancel': (ctx, input) => ({ cancelled: d.ops.cancel(ctx.client, input.requestId) }),
  };
}

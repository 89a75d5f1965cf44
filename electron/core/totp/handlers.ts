import type { AreaHandlers } from '../dispatch';
import type { Identity } from '../session/signin';

/** TOTP enrolment, recovery codes and removal, for the signed-in user's own account. */
export function totpHandlers(d: { signin: Identity }): AreaHandlers<'totp'> {
  const { signin } = d;
  return {
    'totp:begin': (ctx) => signin.totpBegin(ctx.requireSession()),
    'totp:confirm': (ctx, input) => signin.totpConfirm(ctx.requireSession(), input.code),
    'totp:recoveryCodes': (ctx) => signin.regenerateRecoveryCodes(ctx.requireSession()),
    'totp:disable': (ctx) => (signin.totpDisable(ctx.requireSession()), {}),
  };
}

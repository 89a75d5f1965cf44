import type { Approvals } from '../approvals/approvals';
import type { AreaHandlers } from '../dispatch';
import type { Sessions } from '../session/sessions';
import { userKey, type Throttle } from '../session/throttle';
import type { Users } from './users';

/** Accounts: create, roles, disable/enable, credentials reset, unlock, remove. */
export function usersHandlers(d: { users: Users; sessions: Sessions; throttle: Throttle; approvals: Approvals }): AreaHandlers<'users'> {
  const { users, throttle } = d;
  /** A user lost their account or credentials: their sessions here end, their open requests are cancelled. */
  const revoke = (userId: number, opts: { cancelRequests: boolean }) => {
    d.sessions.closeUser(userId);
    if (opts.cancelRequests) d.approvals.cancelOpenBy(userId);
  };
  return {
    'users:list': () => users.list(),
    'users:create': (ctx, input) => {
      ctx.approvedTarget();
      const a = ctx.actor();
      return users.create(a, input.name, input.password, input.roles, a.vaultKey, { mustChangePassword: input.mustChangePassword });
    },
    'users:setRoles': (ctx, input) => users.setRoles(input.name, input.roles, ctx.approvedTarget()),
    'users:disable': (ctx, input) => {
      const v = users.disable(ctx.actor(), input.name);
      revoke(users.row(input.name).id, { cancelRequests: true });
      return v;
    },
    'users:enable': (ctx, input) => users.enable(input.name, input.password, ctx.actor().vaultKey, ctx.approvedTarget()),
    'users:resetPassword': async (ctx, input) => {
      const a = ctx.actor();
      const v = await users.resetPassword(a, input.name, input.password, a.vaultKey);
      revoke(users.row(input.name).id, { cancelRequests: false });
      return v;
    },
    'users:resetTotp': (ctx, input) => {
      const v = users.resetTotp(ctx.actor(), input.name);
      revoke(users.row(input.name).id, { cancelRequests: false });
      return v;
    },
    'users:unlock': (_ctx, input) => {
      const v = users.view(input.name);
      throttle.clear(userKey(input.name));
      // In the browser shell every tab signs in from 127.0.0.1: a source lock there locks everyone
      // out, so an administrator's unlock lifts the loopback sources too (remote sources stay locked).
      throttle.clearLoopbackSources();
      return { ...v, lockedUntil: null };
    },
    'users:remove': (ctx, input) => {
      const id = users.remove(ctx.actor(), input.name);
      revoke(id, { cancelRequests: true });
      throttle.clear(userKey(input.name));
      return {};
    },
  };
}

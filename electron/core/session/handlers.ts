import { AirlockError } from '../../../shared/domain/errors';
import type { Role } from '../../../shared/domain/roles';
import type { AreaHandlers } from '../dispatch';
import type { KeyRegistry } from '../keys/registry';
import type { IdentitySettings } from '../settings/settings';
import type { TerminalService } from '../terminal/service';
import type { ClientContext, ShellKind } from '../types';
import type { Users } from '../users/users';
import type { Sessions } from './sessions';
import type { Identity } from './signin';
import { machineLimit } from './throttle';

/** First-run setup, sign-in, sign-out, step-up and the console's status read. */
export function sessionHandlers(d: {
  shell: ShellKind;
  version: string;
  now: () => Date;
  requireTotpFor: readonly Role[];
  users: Users;
  sessions: Sessions;
  signin: Identity;
  settings: IdentitySettings;
  terminals: TerminalService;
  keys: KeyRegistry;
  audit: { sealAtSetup(vaultKey: Buffer): void; signedIn(vaultKey: Buffer, roles: readonly Role[]): void };
}): AreaHandlers<'session'> {
  const { users, sessions, signin } = d;
  /** A session now holds the vault key: the audit keys are unsealed for the process (see audit/service.ts). */
  const auditSignedIn = (client: ClientContext) => {
    if (client.session) d.audit.signedIn(sessions.vaultKey(client.session.id), client.session.roles);
  };
  return {
    'session:status': (ctx) => {
      // Asking is not activity: a UI polling status must not keep an idle session alive.
      const s = sessions.get(ctx.client.session?.id, { touch: false });
      const times = s ? sessions.times(s.id) : null;
      const set = d.settings.get();
      let user = null;
      if (s && times) {
        const userId = sessions.userId(s.id);
        user = {
          name: s.user,
          roles: s.roles,
          restriction: s.restriction ?? null,
          totp: { enrolled: signin.enrolled(userId), required: signin.totpRequiredFor(s.roles), recoveryCodesLeft: signin.recoveryCodesLeft(userId) },
          stepUpUntil: times.stepUpUntil === null ? null : new Date(times.stepUpUntil).toISOString(),
          lockAt: new Date(times.lockAt).toISOString(),
        };
      }
      return {
        setupRequired: users.count() === 0,
        user,
        shell: d.shell,
        version: d.version,
        now: d.now().toISOString(),
        idleMinutes: set.sessionIdleMinutes,
        stepUpMinutes: set.stepUpMinutes,
        totpPolicy: { requiredFor: [...d.requireTotpFor] },
        // The numbers the throttle runs on (the installation's config), so the Account page states the real rule.
        lockout: {
          ...set.lockout,
          thisMachine: (({ burst, everyMs }) => ({ burst, everySeconds: Math.round(everyMs / 1000) }))(
            machineLimit({ threshold: set.lockout.threshold, baseMs: set.lockout.baseSeconds * 1000, maxMs: set.lockout.maxSeconds * 1000 }),
          ),
        },
      };
    },
    'session:signInLink': (ctx) => {
      ctx.requireSession();
      // Only the browser shell has links to hand out; the desktop app hands over by signing out.
      if (!ctx.client.signInLink) {
        throw new AirlockError('CONFLICT', 'Sign-in links belong to the browser console: here, sign out and let the next person sign in.');
      }
      const link = ctx.client.signInLink();
      // The trail records that a link was handed out and until when, never the link (it is a credential).
      ctx.auditDetail({ expiresAt: link.expiresAt });
      return link;
    },
    'session:setup': async (ctx, input) => {
      // The installation's own keys are minted and sealed in the vault's first transaction.
      const u = await users.createFirst(input.admin, input.password, (vaultKey) => {
        d.keys.mint(vaultKey, 'ssh.identity', { comment: `airlock@${input.admin}` });
        d.audit.sealAtSetup(vaultKey);
      });
      if (ctx.client.session) sessions.close(ctx.client.session.id);
      users.recordLogin(u.id);
      ctx.client.session = sessions.open({ ...u, restriction: signin.restrictionOf(u.id) });
      auditSignedIn(ctx.client);
      return users.view(u.name);
    },
    'session:login': async (ctx, input) => {
      const v = await signin.login(ctx.client, input);
      auditSignedIn(ctx.client);
      return v;
    },
    'session:logout': (ctx) => {
      d.terminals.closeAllFor(ctx.client);
      sessions.close(ctx.requireSession().id);
      ctx.client.session = null;
      return {};
    },
    'session:stepUp': (ctx, input) => signin.stepUp(ctx.client, ctx.requireSession(), input),
    'session:changePassword': async (ctx, input) => {
      await signin.changePassword(ctx.client, ctx.requireSession(), input.oldPassword, input.newPassword);
      return {};
    },
  };
}

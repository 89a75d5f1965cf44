import type { Approvals } from '../approvals/approvals';
import { sessionRef, type CallContext, type CallTools } from '../dispatch';
import type { KeyRegistry } from '../keys/registry';
import type { SshAuth } from '../ssh/connection';
import type { Sessions } from './sessions';

/**
 * The session facts a handler asks its call context for (dispatch.ts `CallTools`), built once per
 * core and given to the dispatcher, which adds them to every call's context: `ctx.actor()`,
 * `ctx.viewer()`, `ctx.sshAuth()`, `ctx.caller()`, `ctx.approvedTarget()`.
 */
export function callTools(d: {
  sessions: Sessions;
  keys: KeyRegistry;
  approvals: Pick<Approvals, 'assertTarget'>;
  sshAgent: string | null;
}): (ctx: Omit<CallContext, keyof CallTools>) => CallTools {
  const { sessions } = d;
  return (ctx) => {
    /** The signed-in user acting in a handler, with the vault key their session holds. */
    const actor = () => {
      const s = ctx.requireSession();
      return { id: sessions.userId(s.id), uid: sessions.uid(s.id), name: s.user, roles: s.roles, vaultKey: sessions.vaultKey(s.id) };
    };
    /** Credentials for SSH: Airlock's own key (unsealed with this session's vault key), and the agent if configured. */
    const sshAuth = (): SshAuth => {
      const key = d.keys.unseal(sessions.vaultKey(ctx.requireSession().id), 'ssh.identity');
      return { privateKey: key?.toString('utf8'), agent: d.sshAgent };
    };
    return {
      actor,
      viewer: () => {
        const s = ctx.requireSession();
        return { id: sessions.userId(s.id), uid: sessions.uid(s.id), name: s.user, roles: s.roles };
      },
      sshAuth,
      /** Who runs a provisioning operation, with what credentials, reporting progress to which client. */
      caller: () => {
        const s = ctx.requireSession();
        return {
          actor: s.user,
          principal: s.uid,
          roles: s.roles,
          sessionRef: sessionRef(s.id),
          shell: `${ctx.client.shell}:${ctx.client.source}`,
          vaultKey: sessions.vaultKey(s.id),
          auth: sshAuth(),
          signal: ctx.signal,
          emit: (event, payload) => ctx.client.emit(event, payload),
        };
      },
      /**
       * An approved run: the object must still be the one approved (checked here, after the request
       * event was written); for accounts, the state is passed on and checked again inside the change's
       * own transaction.
       */
      approvedTarget: () => {
        d.approvals.assertTarget(ctx.approval ?? undefined);
        const t = ctx.approval?.target;
        return t?.kind === 'user' && t.state ? t.state : undefined;
      },
    };
  };
}

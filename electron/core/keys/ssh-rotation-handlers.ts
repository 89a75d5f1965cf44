import type { AreaHandlers } from '../dispatch';
import type { SshRotations } from './ssh-rotation';

type RotationChannels = 'keys:rotateSshIdentity' | 'keys:sshRotations' | 'keys:sshRotation' | 'keys:resumeSshRotation';

/**
 * Rotation of Airlock's own SSH identity (keys/ssh-rotation.ts): start, read, resume. The vault
 * key is the signed-in user's (the next key is sealed with it, both keys are unsealed with it);
 * the audit event of each call names the rotation, the fingerprints and the pending hosts, never a
 * key.
 */
export function sshRotationHandlers(d: { rotations: () => SshRotations }): Pick<AreaHandlers<'keys'>, RotationChannels> {
  const detail = (r: { id: string; status: string; oldFingerprint: string; newFingerprint: string; promoted: boolean; pendingHosts: string[] }) => ({
    rotation: r.id,
    status: r.status,
    oldFingerprint: r.oldFingerprint,
    newFingerprint: r.newFingerprint,
    promoted: r.promoted,
    pendingHosts: r.pendingHosts,
  });
  return {
    'keys:rotateSshIdentity': async (ctx, i) => {
      const a = ctx.actor();
      const r = await d.rotations().start(a.vaultKey, a.name, i.hosts, ctx.signal);
      ctx.auditDetail(detail(r));
      return r;
    },
    'keys:sshRotations': (_ctx, i) => d.rotations().list(i.limit ?? 50),
    'keys:sshRotation': (_ctx, i) => d.rotations().get(i.id),
    'keys:resumeSshRotation': async (ctx, i) => {
      const r = await d.rotations().resume(ctx.actor().vaultKey, i.id, ctx.signal);
      ctx.auditDetail(detail(r));
      return r;
    },
  };
}

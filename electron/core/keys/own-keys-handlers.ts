import { AirlockError } from '../../../shared/domain/errors';
import type { AreaHandlers } from '../dispatch';
import type { OwnKeyRotations } from './own-rotation';

/**
 * On-demand rotation of Airlock's own keys (keys/own-rotation.ts). The vault key is the signed-in
 * user's (the new version is sealed under the console KEK it opens); the audit event of the call
 * names the purpose, the old and new versions and fingerprints and where the handover sits in
 * the trail, never a key.
 */
export function ownKeysHandlers(d: { rotations: (() => OwnKeyRotations) | null }): Pick<AreaHandlers<'keys'>, 'keys:rotateOwnKey'> {
  return {
    'keys:rotateOwnKey': (ctx, i) => {
      if (!d.rotations) throw new AirlockError('INTERNAL', "Rotation of Airlock's own keys is not set up in this console.");
      const r = d.rotations().rotate(ctx.actor().vaultKey, i.purpose);
      ctx.auditDetail({ ...r });
      return r;
    },
  };
}

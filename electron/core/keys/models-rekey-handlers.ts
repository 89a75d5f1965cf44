import type { ModelsRekey } from '../../../shared/contract/keys';
import type { AreaHandlers } from '../dispatch';
import type { ModelsRekeys } from './models-rekey';

type RekeyChannels = 'keys:rekeyModels' | 'keys:modelsRekey' | 'keys:resumeModelsRekey';

/**
 * Re-keying hosts' models directories (keys/models-rekey.ts): start, read, resume. The hosts are
 * reached with the caller's SSH credentials; the audit event of each call names the re-key, its
 * hosts' old and new key ids and the pending hosts, never a key.
 */
export function modelsRekeyHandlers(d: { rekeys: () => ModelsRekeys }): Pick<AreaHandlers<'keys'>, RekeyChannels> {
  const detail = (r: ModelsRekey) => ({
    rekey: r.id,
    status: r.status,
    hosts: r.hosts.map((h) => ({ host: h.host, oldKeyId: h.oldKeyId, newKeyId: h.newKeyId, status: h.status })),
    pendingHosts: r.pendingHosts,
  });
  return {
    'keys:rekeyModels': async (ctx, i) => {
      const r = await d.rekeys().start(ctx.actor().name, i.hosts, ctx.sshAuth(), ctx.signal, i.concurrency !== undefined ? { concurrency: i.concurrency } : {});
      ctx.auditDetail(detail(r));
      return r;
    },
    'keys:modelsRekey': (_ctx, i) => d.rekeys().get(i.id),
    'keys:resumeModelsRekey': async (ctx, i) => {
      const r = await d.rekeys().resume(i.id, ctx.sshAuth(), ctx.signal);
      ctx.auditDetail(detail(r));
      return r;
    },
  };
}

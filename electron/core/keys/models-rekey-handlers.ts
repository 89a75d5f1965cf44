import type { ModelsRekey } from '../../../shared/contract/keys';
import type { AreaHandlers } from '../dispatch';
import type { ModelsRekeys } from './models-rekey';
import type { KeyService } from './service';

type RekeyChannels = 'keys:rekeyModels' | 'keys:modelsRekey' | 'keys:resumeModelsRekey' | 'keys:setMinDecryptionVersion';

/**
 * Re-keying hosts' models directories (keys/models-rekey.ts): start, read, resume. The hosts are
 * reached with the caller's SSH credentials; the audit event of each call names the re-key, its
 * hosts' old and new key ids and the pending hosts, never a key.
 */
export function modelsRekeyHandlers(d: { rekeys: () => ModelsRekeys; keys: Pick<KeyService, 'setMinDecryptionVersion'> }): Pick<AreaHandlers<'keys'>, RekeyChannels> {
  const detail = (r: ModelsRekey) => ({
    rekey: r.id,
    status: r.status,
    hosts: r.hosts.map((h) => ({ host: h.host, oldKeyId: h.oldKeyId, newKeyId: h.newKeyId, status: h.status })),
    pendingHosts: r.pendingHosts,
  });
  return {
    // Retiring old KEK versions here, beside the re-keys: a models KEK version that a host pending
    // in a re-key still holds its key under is never retired (the pending host would lose its key).
    'keys:setMinDecryptionVersion': (_ctx, i) => d.keys.setMinDecryptionVersion(i.domain, i.version, { stillNeeded: i.domain === 'models' ? d.rekeys().stillNeeded() : [] }),
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

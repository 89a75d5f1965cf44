import type { TranscriptReport } from '../../../shared/contract/keys';
import type { z } from 'zod';
import type { AreaHandlers, CallContext } from '../dispatch';
import type { CaChannel } from './ca-handlers';
import type { Ceremonies, CeremonyKeys } from './ceremony';
import type { HostSecretsChannel } from './host-secrets';
import type { ModelsChannel } from './models-handlers';

/** What the key handlers need beyond the ceremonies: seal state, and the CA that signs transcripts. */
export interface KeysHandlerDeps {
  ceremonies: Ceremonies;
  keys: CeremonyKeys & { seal(): void };
  /** The root CA certificate (PEM) and its fingerprint, or nulls before genesis. */
  caCertificate(): { pem: string | null; fingerprint: string | null };
  verifyTranscript(text: string): Promise<z.infer<typeof TranscriptReport>>;
  /**
   * Starts delivering the models keys again to the protected hosts whose directories are locked,
   * with this call's credentials, in the background; returns the hosts it is unlocking.
   */
  unlockAfterUnseal?(ctx: CallContext): string[];
}

/**
 * Customer-managed keys: status, ceremonies and their steps, the key operations (each the
 * automatic step of its ceremony), transcripts. Every call is an audit event (the dispatcher's);
 * a share or passphrase never reaches the trail (the contract marks them secret). The models
 * channels (hosts' encrypted weights) are models-handlers.ts's and the CA's are ca-handlers.ts's, the SSH identity rotation's ssh-rotation-handlers.ts's;
 * createKeysArea joins them.
 */
export function keysHandlers(d: KeysHandlerDeps): Omit<AreaHandlers<'keys'>, ModelsChannel | CaChannel | HostSecretsChannel | 'keys:rotateSshIdentity' | 'keys:sshRotations' | 'keys:sshRotation' | 'keys:resumeSshRotation' | 'keys:rekeyModels' | 'keys:modelsRekey' | 'keys:resumeModelsRekey' | 'keys:setMinDecryptionVersion' | 'keys:rotateOwnKey'> {
  const { ceremonies } = d;
  return {
    'keys:status': () => d.keys.status(),
    'keys:ceremonies': (_ctx, i) => ceremonies.list(i.limit),
    'keys:ceremony': (_ctx, i) => ceremonies.get(i.ceremony),
    'keys:begin': (ctx, i) => {
      const c = ceremonies.begin(
        { kind: i.kind, officers: i.officers, witnesses: i.witnesses, ...(i.threshold !== undefined ? { threshold: i.threshold } : {}), ...(i.domain ? { domain: i.domain } : {}) },
        ctx.requireSession().user,
      );
      ctx.auditDetail({ ceremony: c.id, nonce: c.nonce, kind: c.kind, participants: c.participants });
      return c;
    },
    'keys:beginReshare': (ctx, i) => ceremonies.begin({ kind: 'reshare', ...i }, ctx.requireSession().user),
    'keys:beginRotateRoot': (ctx, i) => ceremonies.begin({ kind: 'rotate-root', ...i }, ctx.requireSession().user),
    'keys:acknowledge': async (ctx, i) => {
      const c = await ceremonies.acknowledge(i.ceremony, i.step, i.by, ctx.requireSession().user, ctx.actor().vaultKey);
      ctx.auditDetail({ step: i.step, by: i.by, title: c.steps.find((s) => s.n === i.step)?.title, status: c.status });
      return c;
    },
    'keys:cancel': (_ctx, i) => ceremonies.cancel(i.ceremony, i.reason),
    'keys:genesis': async (ctx, i) => {
      const out = await ceremonies.genesis(i.ceremony, i.passphrases, ctx.actor().vaultKey);
      ctx.auditDetail({ hierarchyId: out.hierarchyId, rootKcv: out.rootKcv, shares: out.shares.map((s) => ({ index: s.index, officer: s.officer, sealing: s.sealing, fingerprint: s.fingerprint })) });
      return out;
    },
    'keys:issueShare': (ctx, i) => {
      const s = ceremonies.issueShare(i.ceremony, i.officer);
      ctx.auditDetail({ officer: s.officer, index: s.index, fingerprint: s.fingerprint });
      return s;
    },
    'keys:addShare': async (ctx, i) => {
      const p = await ceremonies.addShare(i.ceremony, i.share, i.passphrase);
      // "Airlock unlocks it when the hierarchy is unsealed" (issue 12): asked by the ceremony screen.
      const unlocking = i.unlockModels && p.done && !d.keys.status().sealed && d.unlockAfterUnseal ? d.unlockAfterUnseal(ctx) : [];
      ctx.auditDetail({ collected: p.collected, threshold: p.threshold, done: p.done, contributors: p.contributors, ...(unlocking.length ? { unlocking } : {}) });
      return { ...p, unlocking };
    },
    'keys:seal': () => {
      d.keys.seal();
      return d.keys.status();
    },
    'keys:verifyShares': async (ctx, i) => {
      const out = await ceremonies.verifyShares(i.ceremony, i.shares);
      ctx.auditDetail({ shares: out.report.shares.map((s) => ({ index: s.index, officer: s.officer, ok: s.ok, problem: s.problem })), combines: out.report.combines });
      return out;
    },
    'keys:rotateKek': async (ctx, i) => {
      const out = await ceremonies.rotateKek(i.ceremony, ctx.actor().vaultKey);
      ctx.auditDetail({ domain: out.domain, version: out.version, rewrapped: out.rewrapped });
      return out;
    },
    'keys:reshare': async (ctx, i) => {
      const out = await ceremonies.reshare(i.ceremony, i.passphrases);
      ctx.auditDetail({ shares: out.shares });
      return out;
    },
    'keys:rotateRoot': async (ctx, i) => {
      const out = await ceremonies.rotateRoot(i.ceremony, i.passphrases);
      ctx.auditDetail({ rootKcv: out.rootKcv, shares: out.shares });
      return out;
    },
    'keys:transcript': (_ctx, i) => ({ text: ceremonies.transcript(i.ceremony) }),
    'keys:verifyTranscript': (_ctx, i) => d.verifyTranscript(i.text),
    'keys:caCertificate': () => d.caCertificate(),
  };
}

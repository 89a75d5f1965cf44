import type { OwnKeyRotation, RotatableOwnKey } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import type { AuditInput, AuditTrail } from '../audit/audit';
import { SYSTEM_ACTOR } from '../audit/chain';
import { HANDOVER_CHANNEL } from '../audit/key-chain';
import type { AuditKeys } from '../audit/keys';
import type { KeyPurpose, KeyRegistry } from './registry';

/**
 * On-demand rotation of Airlock's own audit signing, audit HMAC and attestation signing keys
 * (issue 12; docs/keys.md "Rotating Airlock's own keys", docs/security.md "Rotating the audit
 * signing key"). The SSH identity is not rotated here: every host must learn the new key first
 * (keys/ssh-rotation.ts).
 *
 * Each rotation is one database transaction (AuditTrail.handOver): a checkpoint under the audit
 * signing key held, the new version minted by the registry (the old one retired: private part
 * destroyed, public part kept), an `audit:keyHandover` event recording old and new versions and
 * fingerprints (and the new public key), and a checkpoint over that event — signed by the OLD
 * audit key when the audit signing key is the one rotated. A crash leaves the old key current or
 * the new one, never neither; only after the commit does the in-memory holder swap.
 */
export class OwnKeyRotations {
  constructor(
    private readonly deps: {
      registry: KeyRegistry;
      trail: AuditTrail;
      auditKeys: AuditKeys;
      /**
       * TEST-ONLY kill hook (AIRLOCK_TEST_KILL_AT, keys/ssh-rotation.ts killHookFromEnv): 0 inside the
       * transaction after the new version is minted, 1 after the commit before the holder swaps,
       * 2 once audit.head is rewritten. Unset: inert.
       */
      boundary?: (label: string) => void;
    },
  ) {}

  rotate(vaultKey: Buffer, purpose: KeyPurpose): OwnKeyRotation {
    if (purpose === 'ssh.identity') {
      throw new AirlockError(
        'INVALID_INPUT',
        "Airlock's SSH identity is rotated across the fleet, so that no host is left accepting neither key: run `airlock keys rotate-ssh-identity all` (the Keys page: Rotate SSH identity).",
      );
    }
    const { registry, trail, auditKeys } = this.deps;
    // The holder must hold the current audit keys (another process may have rotated them since this one signed in).
    auditKeys.unlock(vaultKey, { create: false });
    if (!auditKeys.unlocked) throw new AirlockError('KEY_UNAVAILABLE', `The audit keys are not unsealed in this console (${auditKeys.lastError ?? 'sign in again'}): nothing was rotated.`);
    const old = registry.current(purpose);
    if (!old) {
      throw new AirlockError(
        'NOT_FOUND',
        purpose === 'attest.signing'
          ? 'There is no attestation key to rotate yet: it is made at the first attestation (a provisioning run that attests a host).'
          : `Airlock has no ${purpose} key to rotate yet: an administrator's sign-in creates it.`,
      );
    }
    const held = auditKeys.versions;
    if ((purpose === 'audit.signing' && held.signing !== old.version) || (purpose === 'audit.hmac' && held.hmac !== old.version)) {
      throw new AirlockError('CONFLICT', `The ${purpose} key held by this console (version ${purpose === 'audit.signing' ? held.signing : held.hmac}) is not the current version ${old.version}: sign in again, then retry. Nothing was rotated.`);
    }

    let minted: { version: number; publicKey: string | null; fingerprint: string | null } | null = null;
    let next: Buffer | null = null;
    let handoverSeq = 0;
    const prepare = (seq: number): AuditInput => {
      handoverSeq = seq;
      const m = registry.mint(vaultKey, purpose);
      minted = m;
      this.deps.boundary?.('minted, inside the transaction');
      // Opened inside the transaction: a new key that cannot be unsealed rolls the whole rotation back.
      if (purpose !== 'attest.signing') next = registry.unseal(vaultKey, purpose);
      if (purpose !== 'attest.signing' && !next) throw new AirlockError('INTERNAL', `The new ${purpose} key does not open: nothing was rotated.`);
      const params: Record<string, unknown> = { purpose, oldVersion: old.version, newVersion: m.version };
      if (purpose === 'audit.hmac') params.fromSeq = seq + 1;
      else Object.assign(params, { oldFingerprint: old.fingerprint, newFingerprint: m.fingerprint, newPublicKey: m.publicKey });
      return { actor: SYSTEM_ACTOR, roles: [], session: null, shell: 'core', channel: HANDOVER_CHANNEL, phase: 'outcome', target: purpose, params, outcome: 'ok', errorCode: null };
    };
    const signOld = (payload: Buffer) => {
      const s = auditKeys.signHeld(payload);
      if (!s) throw new AirlockError('KEY_UNAVAILABLE', 'The audit signing key is sealed: sign in again, then retry. Nothing was rotated.');
      return s;
    };
    let events;
    try {
      events = trail.handOver(signOld, prepare, () => {
        this.deps.boundary?.('committed, before the swap');
        if (purpose === 'audit.signing') auditKeys.adoptSigning(next!, minted!.version);
        else if (purpose === 'audit.hmac') auditKeys.adoptHmac(next!, minted!.version);
        next = null;
      });
    } finally {
      (next as Buffer | null)?.fill(0);
    }
    this.deps.boundary?.('done');
    const m = minted as unknown as { version: number; fingerprint: string | null };
    const covering = events[events.length - 1]!;
    return {
      purpose: purpose as RotatableOwnKey,
      oldVersion: old.version,
      newVersion: m.version,
      oldFingerprint: old.fingerprint,
      newFingerprint: m.fingerprint,
      handoverSeq,
      checkpointSeq: covering.seq,
      ...(purpose === 'audit.hmac' ? { hmacFromSeq: handoverSeq + 1 } : {}),
    };
  }
}


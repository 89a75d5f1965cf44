import { AirlockError } from '../../../shared/domain/errors';
import type { AreaHandlers } from '../dispatch';
import { keyFingerprint } from '../keys/ed25519';
import type { Attestations } from './attest';

/** As-built attestations: list, show, verify a file, and the console's attestation key. */
export function attestHandlers(d: { attestations: Attestations }): AreaHandlers<'attest'> {
  const { attestations } = d;
  return {
    'attest:list': (_ctx, input) => attestations.list(input.host),
    'attest:show': (_ctx, input) => {
      if (input.id) return attestations.get(input.id);
      if (!input.host) throw new AirlockError('INVALID_INPUT', 'Name an attestation id or a host.');
      const a = attestations.latest(input.host);
      if (!a) throw new AirlockError('NOT_FOUND', `No attestation for ${input.host} yet.`);
      return a;
    },
    'attest:verify': (_ctx, input) => attestations.verify(input.text),
    'attest:key': () => {
      const pem = attestations.publicKeyPem();
      return { publicKey: pem, fingerprint: pem ? keyFingerprint(pem) : null, versions: attestations.versions() };
    },
  };
}

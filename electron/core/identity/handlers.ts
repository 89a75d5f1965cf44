import { AirlockError } from '../../../shared/domain/errors';
import type { AreaHandlers } from '../dispatch';
import type { KeyRegistry } from '../keys/registry';
import { fingerprintOfLine } from '../ssh/fingerprint';

/** Airlock's own SSH identity (the key itself is made by keys/registry.ts with identity/ssh-key.ts). */
export function identityHandlers(d: { keys: KeyRegistry; sshAgent: string | null }): AreaHandlers<'identity'> {
  return {
    'identity:show': () => {
      const publicKey = d.keys.publicKey('ssh.identity');
      if (!publicKey) throw new AirlockError('SETUP_REQUIRED', 'Airlock has no SSH identity yet: run the first-run setup.');
      return {
        publicKey,
        fingerprint: fingerprintOfLine(publicKey)?.fingerprint ?? '',
        agent: { available: Boolean(d.sshAgent), socket: d.sshAgent },
      };
    },
  };
}

import { createCore } from '../../core/app';
import { totpPolicyFromEnv } from '../../core/session/policy';
import { mediaRootsFromEnv } from '../../core/store/store';
import type { Core } from '../../core/types';
import { UsageError } from '../cli-files';
import type { CliIo } from './io';

/** The core on a data directory, for the CLI (`shell: 'cli'`) or `airlock serve` (`'browser'`). */
export async function openCore(dataDir: string, io: CliIo, shell: 'cli' | 'browser'): Promise<Core> {
  let requireTotpFor;
  try {
    requireTotpFor = totpPolicyFromEnv(io.env.AIRLOCK_TOTP_POLICY);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return await createCore({
    dataDir,
    shell,
    sshAgent: io.env.SSH_AUTH_SOCK ?? null,
    version: io.version,
    requireTotpFor,
    mediaRoots: mediaRootsFromEnv(io.env),
  });
}

import type { EventPayload } from '../../../shared/contract/index';
import type { SshAuth } from '../ssh/connection';

/** Who runs a provisioning operation, with what credentials, reporting progress to which client. */
export interface Caller {
  actor: string;
  /** The acting account's identity (users.uid), recorded with each step event. */
  principal?: string | null;
  roles: string[];
  /** What the audit trail records for the session and shell (as the dispatcher does). */
  sessionRef: string | null;
  shell: string;
  vaultKey: Buffer;
  auth: SshAuth;
  signal: AbortSignal;
  /** Progress for the client that asked (checked against the contract and flow-controlled by its outbox). */
  emit: (event: 'provision:progress', payload: EventPayload<'provision:progress'>) => void;
}

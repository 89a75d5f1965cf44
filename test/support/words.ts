/**
 * The check behind the message walks (issue 11, "messages in people's words"): what in a message
 * shown to a person names a channel or carries schema jargon. Used by electron/core/messages.test.ts
 * (error codes, channel schemas, the dispatcher) and electron/shells/cli/messages.test.ts (the
 * CLI's usage errors).
 */
import { channelNames } from '../../shared/contract/index';
import { ApprovalOperations } from '../../shared/contract/approvals';
import { SCHEMA_JARGON } from '../../shared/contract/words';

const AREAS = [...new Set(channelNames.map((c) => c.slice(0, c.indexOf(':'))))];
/** A channel name, or anything shaped like one in an area's word (`totp:begin`, `session:stepUp`). */
const CHANNELISH = new RegExp(`\\b(${AREAS.join('|')}):[a-z][A-Za-z]+\\b`);

/**
 * Two-person operations are the rows of the approval policy a person reads and edits by these
 * names (users:grantAdmin, provision:disableEgressLockdown): they may appear; channels may not.
 */
const OPERATIONS = new RegExp(`\\b(${ApprovalOperations.join('|')})\\b`, 'g');

/** What is wrong with a message a person reads: [] when nothing. */
export function problems(message: string): string[] {
  const p: string[] = [];
  const ch = CHANNELISH.exec(message.replace(OPERATIONS, 'an-operation'));
  if (ch) p.push(`names a channel (${ch[0]})`);
  const j = SCHEMA_JARGON.exec(message);
  if (j) p.push(`schema jargon (${j[0]})`);
  return p;
}

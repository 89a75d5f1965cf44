/** ssh2's and the socket's errors as the user sees them: stable codes, sanitised host text. */
import { AirlockError } from '../../../../shared/domain/errors';
import { sanitizeHostText } from '../sanitize';

const UNREACHABLE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is sshd listening on that port?)',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host is down',
  ENOTFOUND: 'name not found',
  EAI_AGAIN: 'name lookup failed',
  EADDRNOTAVAIL: 'address not available',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection broken',
};

export interface Ssh2Error extends Error {
  code?: string;
  level?: string;
}

/** Map an ssh2/socket error to a user-facing one. Server-provided text in messages is sanitised. */
export function mapError(err: unknown, where: string, user?: string): AirlockError {
  if (err instanceof AirlockError) return err;
  const e = (err ?? {}) as Ssh2Error;
  const msg = sanitizeHostText(typeof e.message === 'string' ? e.message : String(err), 300);
  if (e.code && UNREACHABLE_CODES[e.code]) {
    return new AirlockError('HOST_UNREACHABLE', `Cannot reach ${where}: ${UNREACHABLE_CODES[e.code]}.`);
  }
  if (e.code === 'ETIMEDOUT' || e.level === 'client-timeout') {
    return new AirlockError('TIMEOUT', `Timed out talking to ${where}.`);
  }
  if (e.level === 'client-authentication') {
    return new AirlockError(
      'SSH_AUTH_FAILED',
      `Authentication to ${where}${user ? ` as ${user}` : ''} failed: the host did not accept Airlock's key (is it in that user's authorized_keys?).`,
    );
  }
  if (e.level === 'agent') {
    return new AirlockError('SSH_AUTH_FAILED', `Authentication to ${where} failed: the ssh-agent could not be used (${msg}).`);
  }
  if (e.level === 'client-dns') return new AirlockError('HOST_UNREACHABLE', `Cannot reach ${where}: ${msg}.`);
  return new AirlockError('SSH_ERROR', `SSH error with ${where}: ${msg}`);
}

export function cancelled(what: string): AirlockError {
  return new AirlockError('CANCELLED', `${what} was cancelled.`);
}

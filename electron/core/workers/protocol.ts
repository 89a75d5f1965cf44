import { AirlockError, ErrorCodes, type ErrorCode } from '../../../shared/domain/errors';

/**
 * The messages between the pool (main thread) and a worker (entry.ts). Each is structured-clone
 * data; a worker runs one job at a time, and every reply carries the job's id so a late message
 * from a job already settled (cancelled, say) is recognised and dropped.
 */
export interface JobRequest {
  id: number;
  kind: string;
  input: unknown;
}

export type JobReply =
  | { id: number; type: 'progress'; value: unknown }
  | { id: number; type: 'done'; output: unknown }
  | { id: number; type: 'error'; error: SentError };

/** An error as it crosses the thread boundary: what a caller branches on and what a person reads. */
export interface SentError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export function sendableError(e: unknown): SentError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, stack: e.stack, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(e) };
}

/** The worker's error, rebuilt in the main thread: an AirlockError stays one (same code), any other keeps its name, message, code and the worker's stack. */
export function revivedError(s: SentError): Error {
  const e: Error & { code?: string } =
    s.name === 'AirlockError' && (ErrorCodes as readonly string[]).includes(s.code ?? '') ? new AirlockError(s.code as ErrorCode, s.message) : new Error(s.message);
  if (!(e instanceof AirlockError)) {
    e.name = s.name;
    if (s.code !== undefined) e.code = s.code;
  }
  if (s.stack) e.stack = s.stack;
  return e;
}

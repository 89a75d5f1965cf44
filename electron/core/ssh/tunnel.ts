/**
 * HTTP to a service on a host, through an SSH `direct-tcpip` tunnel: an inference server's health
 * and model endpoints, metrics. The service usually listens on the host's loopback only, which the
 * tunnel reaches as the host itself would. The answer is host output: every size is bounded.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { AirlockError } from '../../../shared/domain/errors';
import type { SshConnection } from './connection/types';
import { sanitizeHostText } from './sanitize';

export interface HttpViaSshRequest {
  /** Where the host connects to; default its loopback, `127.0.0.1`. */
  host?: string;
  port: number;
  /** Default GET. */
  method?: string;
  /** Request target, starting with `/`; default `/`. */
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Bounds everything: opening the tunnel, sending, and the whole answer. */
  timeoutMs: number;
  /** Largest body accepted; a longer answer fails with PARSE_ERROR. */
  maxBytes: number;
  signal?: AbortSignal;
}

export interface HttpViaSshResponse {
  status: number;
  /** Lower-case names; repeated headers joined with `, `. Untrusted text from the host. */
  headers: Record<string, string>;
  body: Buffer;
}

/** Response headers are bounded too: Node's parser refuses more than this (status line and headers). */
export const MAX_HEADER_BYTES = 16 * 1024;

/** What node:http needs of a socket beyond a Duplex: no-ops for a tunnel. */
function asSocket(stream: Duplex): Duplex {
  const s = stream as Duplex & Record<string, unknown>;
  const noop = () => s;
  for (const m of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) if (typeof s[m] !== 'function') s[m] = noop;
  if (typeof s.destroySoon !== 'function') s.destroySoon = () => stream.destroy();
  return stream;
}

/**
 * One HTTP/1.1 request through a tunnel on `conn` (`Connection: close`: one tunnel per request).
 * Fails with TIMEOUT, CANCELLED, HOST_UNREACHABLE (nothing listening, or the connection lost),
 * PARSE_ERROR (not HTTP, headers beyond {@link MAX_HEADER_BYTES}, body beyond `maxBytes`) or INVALID_INPUT.
 */
export async function httpRequestViaSsh(conn: SshConnection, req: HttpViaSshRequest): Promise<HttpViaSshResponse> {
  const host = req.host ?? '127.0.0.1';
  const method = req.method ?? 'GET';
  const path = req.path ?? '/';
  if (!/^[A-Z]{1,20}$/.test(method)) throw new AirlockError('INVALID_INPUT', 'An HTTP method is 1–20 capital letters.');
  if (!/^\/[\x21-\x7e]{0,8191}$/.test(path)) throw new AirlockError('INVALID_INPUT', 'An HTTP request path starts with / and has no spaces or control characters.');
  if (!Number.isFinite(req.timeoutMs) || req.timeoutMs <= 0) throw new AirlockError('INVALID_INPUT', 'A request needs a positive timeout.');
  if (!Number.isSafeInteger(req.maxBytes) || req.maxBytes < 0) throw new AirlockError('INVALID_INPUT', 'maxBytes must be a non-negative integer.');
  const where = `${method} http://${host.includes(':') ? `[${host}]` : host}:${req.port}${sanitizeHostText(path, 200)} on ${conn.label}`;
  const started = Date.now();
  if (req.signal?.aborted) throw new AirlockError('CANCELLED', `${where} was cancelled.`);

  const stream = asSocket(await conn.forwardOut(host, req.port, { timeoutMs: req.timeoutMs, signal: req.signal }));

  return new Promise<HttpViaSshResponse>((resolve, reject) => {
    let settled = false;
    let request: http.ClientRequest | null = null;
    const finish = (err: AirlockError | null, value?: HttpViaSshResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      request?.destroy();
      stream.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const onAbort = () => finish(new AirlockError('CANCELLED', `${where} was cancelled.`));
    const remaining = Math.max(1, req.timeoutMs - (Date.now() - started));
    const timer = setTimeout(() => finish(new AirlockError('TIMEOUT', `${where} timed out after ${req.timeoutMs} ms.`)), remaining);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    if (req.signal?.aborted) return onAbort();

    const mapError = (err: unknown): AirlockError => {
      if (conn.closed) return new AirlockError('HOST_UNREACHABLE', `${where} failed: the connection to ${conn.label} was lost.`);
      const e = (err ?? {}) as { code?: unknown; message?: unknown };
      const code = typeof e.code === 'string' ? e.code : '';
      if (code === 'HPE_HEADER_OVERFLOW') return new AirlockError('PARSE_ERROR', `${where}: the answer's headers exceed ${MAX_HEADER_BYTES} bytes.`);
      if (code.startsWith('HPE_')) return new AirlockError('PARSE_ERROR', `${where}: the answer is not valid HTTP/1.1 (${sanitizeHostText(code, 40)}).`);
      if (code === 'ECONNRESET') return new AirlockError('HOST_UNREACHABLE', `${where}: the service closed the connection before answering in full.`);
      return new AirlockError('SSH_ERROR', `${where} failed: ${sanitizeHostText(typeof e.message === 'string' ? e.message : String(err), 200)}`);
    };

    try {
      request = http.request(
        {
          method,
          path,
          host,
          port: req.port,
          headers: { ...req.headers, connection: 'close' },
          // No agent: with one, node:http would open its own TCP connection instead of using ours.
          createConnection: () => stream as unknown as import('node:net').Socket,
          maxHeaderSize: MAX_HEADER_BYTES,
          insecureHTTPParser: false,
        },
        (res) => {
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared > req.maxBytes) {
            return finish(new AirlockError('PARSE_ERROR', `${where}: the answer's body (${declared} bytes announced) exceeds the ${req.maxBytes}-byte limit.`));
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > req.maxBytes) finish(new AirlockError('PARSE_ERROR', `${where}: the answer's body exceeds the ${req.maxBytes}-byte limit.`));
            else chunks.push(c);
          });
          res.on('error', (err) => finish(mapError(err)));
          res.on('aborted', () => finish(mapError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))));
          res.on('end', () => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) {
              if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
            }
            finish(null, { status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks, size) });
          });
        },
      );
    } catch (err) {
      // node:http validates header names and values (no CR/LF smuggling) synchronously.
      const msg = sanitizeHostText(err instanceof Error ? err.message : String(err), 200);
      return finish(new AirlockError('INVALID_INPUT', `${where}: the request is not valid: ${msg}`));
    }
    request.on('error', (err) => finish(mapError(err)));
    request.end(req.body);
  });
}

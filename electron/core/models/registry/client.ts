import crypto from 'node:crypto';
import canonicalize from 'canonicalize';
import fs from 'node:fs';
import path from 'node:path';
import { AirlockError } from '../../../../shared/domain/errors';
import { bearerChallenge } from './challenge';
import { checkDigest, checkReference, checkRepository, ImageIndex, ImageManifest, OCI_INDEX, OCI_MANIFEST } from './oci';

/**
 * A small typed client of the Registry HTTP API V2 (the OCI distribution spec) on `fetch`, written
 * for Debian's docker-registry 2.8.2 and anything that follows the spec. No JS OCI client in npm
 * fits (the candidates are pull-only or need Node 22), so this is Airlock's own, with these rules:
 *
 * - Everything the registry sends is untrusted: manifests are size-bounded and schema-checked,
 *   every blob and manifest is hashed on the way in and refused (HASH_MISMATCH) if it is not the
 *   digest asked for, pulled files land under a temporary name and are renamed only when whole
 *   and verified.
 * - The client never leaves the registry's origin: an upload `Location` or a redirect to another
 *   host is refused (an air-gapped console must not be steered elsewhere by a hostile registry).
 * - Large blobs upload in chunks (PATCH) with progress; 2.8.2 ignores `Content-Range` on PATCH and
 *   returns a new `Location` each time, so the latest one is always followed, and a broken upload
 *   resumes from the offset the registry reports (`GET` on the upload URL → `Range: 0-N`).
 * - Token auth: on a 401 with a Bearer challenge the injected `token` callback is asked for a
 *   token for that realm/service/scope and the request is retried once with it.
 */
export interface TokenRequest {
  realm: string;
  service: string | null;
  scope: string | null;
}

export interface RegistryClientOptions {
  /** `http://10.213.7.240:5000` — scheme, host and port of the registry; the API is under `/v2/`. */
  baseUrl: string;
  /** Returns a bearer token for a challenge (Airlock's own token issuer, or the gate's realm). */
  token?: (req: TokenRequest) => Promise<string>;
  /** Per request (a chunk, a manifest); the whole of a large transfer may take longer. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface UploadProgress {
  /** Bytes the registry has acknowledged. */
  done: number;
  total: number;
}

/** Where a chunked upload stands, to resume it after a crash or a dropped link (persist it as is). */
export interface UploadSession {
  repository: string;
  /** The latest `Location` the registry returned (absolute URL on the registry's origin). */
  location: string;
  /** The blob being uploaded. */
  digest: string;
  size: number;
}

export interface PushBlobOptions {
  chunkBytes?: number;
  onProgress?: (p: UploadProgress) => void;
  /** Called with every new `Location`, so a caller can journal the session and resume it later. */
  onSession?: (s: UploadSession) => void;
  /** Resume this session instead of starting a new upload. */
  resume?: UploadSession;
  signal?: AbortSignal;
}

const MAX_MANIFEST = 4 * 1024 * 1024; // distribution's own limit
const MAX_ERROR_BODY = 64 * 1024;
const DEFAULT_CHUNK = 16 * 1024 * 1024;

export class RegistryClient {
  private readonly origin: string;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  /** Tokens by scope, reused until the registry refuses one. */
  private readonly tokens = new Map<string, string>();

  constructor(private readonly o: RegistryClientOptions) {
    let u: URL;
    try {
      u = new URL(o.baseUrl);
    } catch {
      throw new AirlockError('INVALID_INPUT', `${JSON.stringify(o.baseUrl)} is not a registry URL (http://host:port).`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new AirlockError('INVALID_INPUT', `A registry URL is http:// or https://, not ${u.protocol}`);
    this.origin = u.origin;
    this.fetchFn = o.fetch ?? fetch;
    this.timeoutMs = o.timeoutMs ?? 60_000;
  }

  /** `GET /v2/`: true when the registry answers as a V2 registry (a 401 with a challenge counts: it is there). */
  async ping(): Promise<{ ok: boolean; status: number; auth: TokenRequest | null }> {
    const r = await this.raw('GET', '/v2/', {});
    await drain(r);
    const auth = r.status === 401 ? bearerChallenge(r.headers.get('www-authenticate')) : null;
    return { ok: r.status === 200 || (r.status === 401 && auth !== null), status: r.status, auth };
  }

  /** Whether `repository` has the blob (`HEAD`): its size, or null when it has not. */
  async blobSize(repository: string, digest: string): Promise<number | null> {
    const r = await this.request('HEAD', `/v2/${checkRepository(repository)}/blobs/${checkDigest(digest)}`, { scope: pullScope(repository) });
    await drain(r);
    if (r.status === 404) return null;
    if (r.status !== 200) throw await failure(r, `checking blob ${digest} in ${repository}`);
    return Number(r.headers.get('content-length') ?? '0');
  }

  /** A whole small blob (a config) in one request, verified against its digest. */
  async pushSmallBlob(repository: string, data: Buffer): Promise<{ digest: string; size: number }> {
    const digest = sha256(data);
    if ((await this.blobSize(repository, digest)) !== null) return { digest, size: data.length };
    const start = await this.request('POST', `/v2/${checkRepository(repository)}/blobs/uploads/`, { scope: pushScope(repository) });
    await drain(start);
    if (start.status !== 202) throw await failure(start, `starting an upload to ${repository}`);
    const put = await this.request('PUT', withDigest(this.location(start), digest), { scope: pushScope(repository), body: data, headers: { 'content-type': 'application/octet-stream' } });
    await drain(put);
    if (put.status !== 201) throw await failure(put, `uploading blob ${digest} to ${repository}`);
    return { digest, size: data.length };
  }

  /**
   * Uploads the file at `file` as a blob in chunks, or does nothing if the registry already has
   * it. The digest is computed first (one read) so that the final `PUT` names it and the registry
   * checks it; a session (from `onSession`) resumes from the registry's own offset.
   */
  async pushBlob(repository: string, file: string, opts: PushBlobOptions = {}): Promise<{ digest: string; size: number; uploaded: number }> {
    checkRepository(repository);
    const chunk = opts.chunkBytes ?? DEFAULT_CHUNK;
    if (!Number.isInteger(chunk) || chunk < 1024) throw new AirlockError('INVALID_INPUT', 'Upload chunks are at least 1 KiB.');
    const size = (await fs.promises.stat(file)).size;
    const digest = opts.resume?.digest ?? (await sha256File(file));
    if (opts.resume && opts.resume.size !== size) throw new AirlockError('CONFLICT', `The file changed since the upload began (${opts.resume.size} bytes then, ${size} now): start a new upload.`);
    if ((await this.blobSize(repository, digest)) === size) return { digest, size, uploaded: 0 };

    let location: string;
    let offset = 0;
    if (opts.resume) {
      location = this.sameOrigin(opts.resume.location);
      const st = await this.request('GET', location, { scope: pushScope(repository) });
      await drain(st);
      if (st.status === 404) throw new AirlockError('NOT_FOUND', 'The registry no longer knows this upload (it expired or was cancelled): start a new one.');
      if (st.status !== 204) throw await failure(st, 'asking the registry where the upload stands');
      offset = uploadedBytes(st.headers.get('range'));
      location = this.location(st, location);
    } else {
      const start = await this.request('POST', `/v2/${repository}/blobs/uploads/`, { scope: pushScope(repository) });
      await drain(start);
      if (start.status !== 202) throw await failure(start, `starting an upload to ${repository}`);
      location = this.location(start);
    }
    const session = (loc: string): UploadSession => ({ repository, location: loc, digest, size });
    opts.onSession?.(session(location));
    opts.onProgress?.({ done: offset, total: size });
    const uploadedFrom = offset;
    const fh = await fs.promises.open(file, 'r');
    try {
      const buf = Buffer.allocUnsafe(Math.min(chunk, Math.max(size, 1)));
      while (offset < size) {
        if (opts.signal?.aborted) throw new AirlockError('CONFLICT', 'The upload was stopped; it can be resumed.');
        const n = Math.min(buf.length, size - offset);
        const { bytesRead } = await fh.read(buf, 0, n, offset);
        if (bytesRead !== n) throw new AirlockError('CONFLICT', 'The file was truncated while it was being uploaded.');
        const r = await this.request('PATCH', location, {
          scope: pushScope(repository),
          body: buf.subarray(0, n),
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + n - 1}`, 'content-length': String(n) },
        });
        await drain(r);
        if (r.status !== 202) throw await failure(r, `uploading bytes ${offset}–${offset + n - 1} of ${digest}`);
        const acked = uploadedBytes(r.headers.get('range'));
        // 2.8.2 appends whatever arrives: an acknowledgement that is not exactly our end is a corrupt upload.
        if (acked !== offset + n) throw new AirlockError('CONFLICT', `The registry acknowledged ${acked} bytes where ${offset + n} were sent: the upload is out of step; start a new one.`);
        offset = acked;
        location = this.location(r, location);
        opts.onSession?.(session(location));
        opts.onProgress?.({ done: offset, total: size });
      }
    } finally {
      await fh.close();
    }
    const put = await this.request('PUT', withDigest(location, digest), { scope: pushScope(repository), headers: { 'content-length': '0' } });
    await drain(put);
    if (put.status !== 201) throw await failure(put, `completing the upload of ${digest}`);
    const got = put.headers.get('docker-content-digest');
    if (got !== null && got !== digest) throw new AirlockError('HASH_MISMATCH', `The registry stored ${got} where ${digest} was uploaded.`);
    return { digest, size, uploaded: size - uploadedFrom };
  }

  /** Streams a blob into `dest` (temporary name, fsync, rename), refusing it unless it hashes to `digest` and, if given, has `size`. */
  async pullBlob(repository: string, digest: string, dest: string, opts: { size?: number; onProgress?: (p: UploadProgress) => void; signal?: AbortSignal } = {}): Promise<{ size: number }> {
    const r = await this.request('GET', `/v2/${checkRepository(repository)}/blobs/${checkDigest(digest)}`, { scope: pullScope(repository), stream: true, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (r.status !== 200) throw await failure(r, `fetching blob ${digest} from ${repository}`);
    const declared = r.headers.get('content-length');
    const total = opts.size ?? (declared !== null ? Number(declared) : -1);
    const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${crypto.randomBytes(6).toString('hex')}.part`);
    const fh = await fs.promises.open(tmp, 'wx', 0o600);
    const hash = crypto.createHash('sha256');
    let n = 0;
    try {
      if (!r.body) throw new AirlockError('PARSE_ERROR', 'The registry sent no body for a blob.');
      for await (const part of r.body as AsyncIterable<Uint8Array>) {
        n += part.length;
        if (opts.size !== undefined && n > opts.size) throw new AirlockError('HASH_MISMATCH', `Blob ${digest} is longer than its ${opts.size} bytes: refused.`);
        hash.update(part);
        await fh.write(part);
        opts.onProgress?.({ done: n, total });
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw new AirlockError('HASH_MISMATCH', `Blob ${digest} from ${repository} hashes to ${got}: refused, nothing kept.`);
      if (opts.size !== undefined && n !== opts.size) throw new AirlockError('HASH_MISMATCH', `Blob ${digest} has ${n} bytes, not ${opts.size}.`);
      await fh.sync();
      await fh.close();
      await fs.promises.rename(tmp, dest);
      return { size: n };
    } catch (e) {
      await fh.close().catch(() => {});
      await fs.promises.rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Puts an OCI image manifest under `reference` (a tag, or its own digest); returns its digest.
   * The bytes are the manifest's RFC 8785 canonical JSON, so a manifest built from the same data
   * has the same digest wherever it is built (the catalog's identity of a version relies on it).
   */
  async putManifest(repository: string, reference: string, manifest: ImageManifest): Promise<{ digest: string }> {
    const body = Buffer.from(canonicalize(ImageManifest.parse(manifest))!, 'utf8');
    const digest = sha256(body);
    if (reference.startsWith('sha256:') && reference !== digest) throw new AirlockError('INVALID_INPUT', `The manifest's digest is ${digest}, not ${reference}.`);
    const r = await this.request('PUT', `/v2/${checkRepository(repository)}/manifests/${checkReference(reference)}`, { scope: pushScope(repository), body, headers: { 'content-type': manifest.mediaType ?? OCI_MANIFEST } });
    await drain(r);
    if (r.status !== 201) throw await failure(r, `putting manifest ${reference} in ${repository}`);
    const got = r.headers.get('docker-content-digest');
    if (got !== null && got !== digest) throw new AirlockError('HASH_MISMATCH', `The registry named the manifest ${got}; its bytes hash to ${digest}.`);
    return { digest };
  }

  /**
   * An image manifest by tag or digest: its exact bytes (what its digest covers), parsed and
   * checked. Fetched by tag, the digest is computed from the bytes, never taken from the header.
   */
  async getManifest(repository: string, reference: string): Promise<{ digest: string; manifest: ImageManifest; bytes: Buffer } | null> {
    const r = await this.request('GET', `/v2/${checkRepository(repository)}/manifests/${checkReference(reference)}`, { scope: pullScope(repository), headers: { accept: OCI_MANIFEST }, stream: true });
    if (r.status === 404) {
      await drain(r);
      return null;
    }
    if (r.status !== 200) throw await failure(r, `fetching manifest ${reference} from ${repository}`);
    const bytes = await readBounded(r, MAX_MANIFEST, 'A manifest');
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) throw new AirlockError('HASH_MISMATCH', `Manifest ${reference} from ${repository} hashes to ${digest}: refused.`);
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new AirlockError('PARSE_ERROR', `Manifest ${reference} from ${repository} is not JSON.`);
    }
    const parsed = ImageManifest.safeParse(json);
    if (!parsed.success) throw new AirlockError('PARSE_ERROR', `Manifest ${reference} from ${repository} is not an OCI image manifest: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim());
    return { digest, manifest: parsed.data, bytes };
  }

  /**
   * Puts an OCI image index (what the referrers tag-schema fallback keeps at `sha256-<hex>`): its
   * RFC 8785 canonical bytes, checked against the schema first.
   */
  async putIndex(repository: string, tag: string, index: ImageIndex): Promise<{ digest: string }> {
    const body = Buffer.from(canonicalize(ImageIndex.parse(index))!, 'utf8');
    const digest = sha256(body);
    const r = await this.request('PUT', `/v2/${checkRepository(repository)}/manifests/${checkReference(tag)}`, { scope: pushScope(repository), body, headers: { 'content-type': OCI_INDEX } });
    await drain(r);
    if (r.status !== 201) throw await failure(r, `putting index ${tag} in ${repository}`);
    return { digest };
  }

  /** An OCI image index by tag, or null when the tag does not exist; anything else under the tag is refused. */
  async getIndex(repository: string, tag: string): Promise<{ digest: string; index: ImageIndex } | null> {
    const r = await this.request('GET', `/v2/${checkRepository(repository)}/manifests/${checkReference(tag)}`, { scope: pullScope(repository), headers: { accept: OCI_INDEX }, stream: true });
    if (r.status === 404) {
      await drain(r);
      return null;
    }
    if (r.status !== 200) throw await failure(r, `fetching index ${tag} from ${repository}`);
    const bytes = await readBounded(r, MAX_MANIFEST, 'An index');
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new AirlockError('PARSE_ERROR', `Index ${tag} from ${repository} is not JSON.`);
    }
    const parsed = ImageIndex.safeParse(json);
    if (!parsed.success) throw new AirlockError('PARSE_ERROR', `${tag} in ${repository} is not an OCI image index.`);
    return { digest: sha256(bytes), index: parsed.data };
  }

  /** A small blob (a signature, a statement) in memory, at most `max` bytes, verified against its digest. */
  async getSmallBlob(repository: string, digest: string, max = 1024 * 1024): Promise<Buffer> {
    const r = await this.request('GET', `/v2/${checkRepository(repository)}/blobs/${checkDigest(digest)}`, { scope: pullScope(repository), stream: true });
    if (r.status !== 200) throw await failure(r, `fetching blob ${digest} from ${repository}`);
    const bytes = await readBounded(r, max, 'A blob');
    if (sha256(bytes) !== digest) throw new AirlockError('HASH_MISMATCH', `Blob ${digest} from ${repository} hashes to ${sha256(bytes)}: refused.`);
    return bytes;
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    const r = await this.request('DELETE', `/v2/${checkRepository(repository)}/manifests/${checkDigest(digest)}`, { scope: `repository:${repository}:delete` });
    await drain(r);
    if (r.status !== 202 && r.status !== 404) throw await failure(r, `deleting manifest ${digest} from ${repository}`);
  }

  /** Every tag of `repository`, following the `Link` pagination (bounded: 100,000 tags). */
  async tags(repository: string): Promise<string[]> {
    const out: string[] = [];
    let next: string | null = `/v2/${checkRepository(repository)}/tags/list?n=1000`;
    while (next) {
      const r: Response = await this.request('GET', next, { scope: pullScope(repository), stream: true });
      if (r.status === 404) {
        await drain(r);
        return [];
      }
      if (r.status !== 200) throw await failure(r, `listing the tags of ${repository}`);
      const body = JSON.parse((await readBounded(r, MAX_MANIFEST, 'A tag list')).toString('utf8')) as { tags?: unknown };
      const tags = Array.isArray(body.tags) ? body.tags : [];
      for (const t of tags) if (typeof t === 'string' && t.length <= 128) out.push(t);
      if (out.length > 100_000) throw new AirlockError('PARSE_ERROR', `${repository} lists more than 100,000 tags: refused.`);
      next = nextLink(r.headers.get('link'));
    }
    return out;
  }

  // ---- plumbing ----

  /** A request with the token dance: a 401 Bearer challenge gets one retry with a fresh token. */
  private async request(method: string, urlOrPath: string, o: { scope: string; body?: Buffer; headers?: Record<string, string>; stream?: boolean; signal?: AbortSignal }): Promise<Response> {
    const url = this.sameOrigin(urlOrPath);
    const cached = this.tokens.get(o.scope);
    let r = await this.raw(method, url, { ...o, ...(cached ? { token: cached } : {}) });
    if (r.status !== 401 || !this.o.token) return r;
    const ch = bearerChallenge(r.headers.get('www-authenticate'));
    if (!ch) return r;
    await drain(r);
    const token = await this.o.token({ realm: ch.realm, service: ch.service, scope: ch.scope ?? o.scope });
    this.tokens.set(o.scope, token);
    r = await this.raw(method, url, { ...o, token });
    if (r.status === 401) this.tokens.delete(o.scope);
    return r;
  }

  private async raw(method: string, urlOrPath: string, o: { body?: Buffer; headers?: Record<string, string>; token?: string; signal?: AbortSignal }): Promise<Response> {
    const url = this.sameOrigin(urlOrPath);
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(this.timeoutMs)]) : AbortSignal.timeout(this.timeoutMs);
    try {
      return await this.fetchFn(url, { method, headers, ...(o.body ? { body: o.body } : {}), redirect: 'manual', signal });
    } catch (e) {
      const why = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
      throw new AirlockError(e instanceof Error && e.name === 'TimeoutError' ? 'TIMEOUT' : 'HOST_UNREACHABLE', `The registry at ${this.origin} did not answer ${method} ${new URL(url).pathname}: ${why}.`);
    }
  }

  /** An absolute URL on the registry's origin, or a refusal: a path is resolved against the origin. */
  private sameOrigin(urlOrPath: string): string {
    const u = new URL(urlOrPath, this.origin);
    if (u.origin !== this.origin) throw new AirlockError('FORBIDDEN', `The registry pointed the console at ${u.origin}, which is not ${this.origin}: refused.`);
    return u.toString();
  }

  /** The upload URL a response names (`Location`), checked to be on this registry. */
  private location(r: Response, fallback?: string): string {
    const l = r.headers.get('location');
    if (l === null) {
      if (fallback) return fallback;
      throw new AirlockError('PARSE_ERROR', 'The registry did not say where to upload (no Location header).');
    }
    return this.sameOrigin(l);
  }
}

const pullScope = (repository: string) => `repository:${repository}:pull`;
const pushScope = (repository: string) => `repository:${repository}:pull,push`;

export function sha256(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

export async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const part of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(part as Buffer);
  return `sha256:${h.digest('hex')}`;
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

/** `Range: 0-N` of an upload: N+1 bytes received (`0-0` with nothing sent yet is 0 in 2.8.2's answer to GET). */
function uploadedBytes(range: string | null): number {
  if (range === null) return 0;
  const m = /^(?:bytes=)?0-(\d{1,15})$/.exec(range.trim());
  if (!m) throw new AirlockError('PARSE_ERROR', `The registry sent an upload range ${JSON.stringify(range.slice(0, 40))} that is not "0-N".`);
  const end = Number(m[1]);
  return end === 0 ? 0 : end + 1;
}

/** The `rel="next"` target of a `Link` header (RFC 8288), as distribution sends it for tag lists. */
function nextLink(link: string | null): string | null {
  if (!link) return null;
  const m = /<([^>]{1,2048})>\s*;\s*rel="?next"?/i.exec(link);
  return m ? m[1]! : null;
}

async function drain(r: Response): Promise<void> {
  try {
    await r.body?.cancel();
  } catch {
    /* already consumed */
  }
}

async function readBounded(r: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(r.headers.get('content-length') ?? '-1');
  if (declared > max) {
    await drain(r);
    throw new AirlockError('PARSE_ERROR', `${what} of ${declared} bytes is over the ${max}-byte limit: refused.`);
  }
  const parts: Buffer[] = [];
  let n = 0;
  if (r.body) {
    for await (const part of r.body as AsyncIterable<Uint8Array>) {
      n += part.length;
      if (n > max) throw new AirlockError('PARSE_ERROR', `${what} is over the ${max}-byte limit: refused.`);
      parts.push(Buffer.from(part));
    }
  }
  return Buffer.concat(parts);
}

/** The registry's error (its `errors[0]` code and message when it sends the spec's JSON), as an AirlockError. */
async function failure(r: Response, doing: string): Promise<AirlockError> {
  let detail = '';
  try {
    const text = (await readBounded(r, MAX_ERROR_BODY, 'An error body')).toString('utf8');
    const j = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    const e = j.errors?.[0];
    if (e) detail = `${String(e.code ?? '').slice(0, 64)}: ${String(e.message ?? '').slice(0, 300)}`;
  } catch {
    /* not the spec's JSON */
  }
  const code = r.status === 401 ? 'BAD_CREDENTIALS' : r.status === 403 ? 'FORBIDDEN' : r.status === 404 ? 'NOT_FOUND' : r.status === 400 && /DIGEST_INVALID/.test(detail) ? 'HASH_MISMATCH' : 'CONFLICT';
  return new AirlockError(code, `The registry refused ${doing}: HTTP ${r.status}${detail ? ` (${detail.replace(/[\x00-\x1f\x7f]/g, ' ')})` : ''}.`);
}

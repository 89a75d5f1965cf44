/**
 * The registry client's refusals against a hostile registry: a real HTTP server on loopback that
 * answers what a compromised or broken registry might (a Location on another host, a manifest
 * whose bytes are not its digest, an oversized manifest, a broken range), plus the
 * WWW-Authenticate parser and the token retry.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../../shared/domain/errors';
import { bearerChallenge, parseChallenges } from './challenge';
import { RegistryClient, sha256 } from './client';
import { checkRepository, referrersTag } from './oci';

let server: http.Server | null = null;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
});

async function hostile(handler: http.RequestListener): Promise<string> {
  server = http.createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (e instanceof AirlockError ? e.code : String(e)));

describe('WWW-Authenticate', () => {
  it('parses Bearer challenges with quoted commas and escapes, and refuses the malformed', () => {
    expect(bearerChallenge('Bearer realm="http://10.0.0.1/token",service="registry",scope="repository:a/b:pull,push"')).toEqual({ realm: 'http://10.0.0.1/token', service: 'registry', scope: 'repository:a/b:pull,push' });
    expect(parseChallenges('Basic realm="x", Bearer realm="http://h/t", error="insufficient_scope"')).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'http://h/t', error: 'insufficient_scope' } },
    ]);
    expect(parseChallenges('Bearer realm="a\\"b"')?.[0]?.params.realm).toBe('a"b');
    for (const bad of ['Bearer realm="unterminated', 'Bearer realm="a" realm="b"', 'Bearer realm="a",realm="b"', '=x']) expect(parseChallenges(bad), bad).toBeNull();
    expect(bearerChallenge('Bearer realm="file:///etc/passwd"')).toBeNull();
    expect(bearerChallenge('Bearer service="x"')).toBeNull();
  });

  it('never throws on any header', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const r = parseChallenges(s);
        expect(r === null || Array.isArray(r)).toBe(true);
      }),
    );
  });
});

describe('names', () => {
  it('accepts distribution repository names and refuses others', () => {
    for (const ok of ['models/llama-med', 'a', 'a__b/c.d', 'x-y--z']) expect(checkRepository(ok)).toBe(ok);
    for (const bad of ['Models/x', '/a', 'a/', 'a//b', '../x', 'a b', 'a..b', 'a'.repeat(256)]) expect(() => checkRepository(bad), bad).toThrow(AirlockError);
    expect(referrersTag(`sha256:${'ab'.repeat(32)}`)).toBe(`sha256-${'ab'.repeat(32)}`);
  });
});

describe('a hostile registry', () => {
  it('is not followed to another host by an upload Location', async () => {
    const url = await hostile((req, res) => {
      if (req.method === 'HEAD') return res.writeHead(404).end();
      res.writeHead(202, { location: 'http://10.99.0.1:5000/v2/x/blobs/uploads/1' }).end();
    });
    expect(await code(new RegistryClient({ baseUrl: url }).pushSmallBlob('x', Buffer.from('a')))).toBe('FORBIDDEN');
  });

  it('refuses a manifest whose bytes are not the digest asked for, and one over the size limit', async () => {
    const body = JSON.stringify({ schemaVersion: 2, config: { mediaType: 'a/b', digest: `sha256:${'0'.repeat(64)}`, size: 2 }, layers: [] });
    const url = await hostile((req, res) => {
      if (req.url?.includes('/manifests/big')) return res.writeHead(200, { 'content-length': String(5 * 1024 * 1024) }).end();
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': `sha256:${'1'.repeat(64)}` }).end(body);
    });
    const c = new RegistryClient({ baseUrl: url });
    expect(await code(c.getManifest('x', `sha256:${'1'.repeat(64)}`))).toBe('HASH_MISMATCH');
    // By tag the digest comes from the bytes, never from the header.
    expect((await c.getManifest('x', 'v1'))?.digest).toBe(sha256(Buffer.from(body)));
    expect(await code(c.getManifest('x', 'big'))).toBe('PARSE_ERROR');
  });

  it('refuses an upload acknowledgement out of step with what was sent', async () => {
    const url = await hostile((req, res) => {
      if (req.method === 'HEAD') return res.writeHead(404).end();
      if (req.method === 'POST') return res.writeHead(202, { location: '/v2/x/blobs/uploads/u1' }).end();
      req.resume();
      req.on('end', () => res.writeHead(202, { location: '/v2/x/blobs/uploads/u2', range: '0-9' }).end());
    });
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-reg-')), 'b');
    fs.writeFileSync(f, Buffer.alloc(4096, 7));
    try {
      expect(await code(new RegistryClient({ baseUrl: url }).pushBlob('x', f, { chunkBytes: 1024 }))).toBe('CONFLICT');
    } finally {
      fs.rmSync(path.dirname(f), { recursive: true, force: true });
    }
  });

  it('asks for a token on a Bearer challenge and retries once with it', async () => {
    const seen: (string | undefined)[] = [];
    const url = await hostile((req, res) => {
      seen.push(req.headers.authorization);
      if (req.headers.authorization !== 'Bearer t0k') return res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:x:pull"` }).end();
      res.writeHead(404).end();
    });
    const asked: unknown[] = [];
    const c = new RegistryClient({ baseUrl: url, token: async (r) => (asked.push(r), 't0k') });
    expect(await c.blobSize('x', `sha256:${'2'.repeat(64)}`)).toBeNull();
    expect(asked).toEqual([{ realm: 'http://127.0.0.1:1/token', service: 'reg', scope: 'repository:x:pull' }]);
    expect(seen).toEqual([undefined, 'Bearer t0k']);
    // The token is reused for the same scope.
    await c.blobSize('x', `sha256:${'3'.repeat(64)}`);
    expect(asked).toHaveLength(1);
  });
});

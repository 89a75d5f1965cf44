/**
 * Registry tokens issued by Airlock, verified by the real registry: Debian's docker-registry
 * 2.8.2 in the lab, configured with distribution's `auth.token`. The token's signer is a
 * `registry-token` certificate from the internal CA (ES256, `x5c` chain), and the registry's
 * `rootcertbundle` pins that certificate itself, not the Airlock root: every host's TLS key is
 * also under the root, and a stolen host key must not mint registry tokens. Shown: no token →
 * 401; a pull token pulls and cannot push; a token for another repository, an expired one, one
 * whose `aud` is an array (2.8.2 rejects it), one signed by another CA and one signed by a host
 * TLS certificate of the same CA are all refused.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuingCa, createRootCa, issueCertificate } from '../../electron/core/keys/ca';
import { RegistryClient } from '../../electron/core/models/registry/client';
import { parseScope, signRegistryToken, type RegistryAccess, type TokenSigner } from '../../electron/core/models/registry/token';
import { AirlockError } from '../../shared/domain/errors';
import { configureRegistry, labDown, labUp, type Lab } from '../lab/lab';

const random = (n: number) => crypto.randomBytes(n);
let lab: Lab;
let signer: TokenSigner;
let stranger: TokenSigner;
let hostKey: TokenSigner;
const SERVICE = 'airlock-lab-registry';
const ISSUER = 'airlock';

async function ca(name: string): Promise<{ signer: TokenSigner; host: TokenSigner }> {
  const now = new Date();
  const root = await createRootCa({ commonName: `${name} Root`, validityDays: 30, now, random });
  const issuing = await createIssuingCa(root, { commonName: `${name} Issuing`, validityDays: 20, now, random });
  const leaf = await issueCertificate(issuing, { profile: 'registry-token', commonName: `${name} registry tokens`, validityDays: 10, now, random });
  const host = await issueCertificate(issuing, { profile: 'host-tls', commonName: 'gpu-07', dnsNames: ['gpu-07'], validityDays: 10, now, random });
  return {
    signer: { certPem: leaf.certPem, chainPems: [issuing.certPem], privateKeyPkcs8: leaf.privateKeyPkcs8! },
    host: { certPem: host.certPem, chainPems: [issuing.certPem], privateKeyPkcs8: host.privateKeyPkcs8! },
  };
}

/** A token signed by any key, bypassing signRegistryToken's own check of the profile (what a thief of a host key would do). */
function forged(by: TokenSigner, access: RegistryAccess[]): string {
  const b64 = (x: string | Buffer) => Buffer.from(x).toString('base64url');
  const der = (pem: string) => Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64').toString('base64');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [by.certPem, ...by.chainPems].map(der) }))}.${b64(JSON.stringify({ iss: ISSUER, sub: 'thief', aud: SERVICE, exp: now + 60, nbf: now - 1, iat: now, jti: 'x', access }))}`;
  const key = crypto.createPrivateKey({ key: by.privateKeyPkcs8, format: 'der', type: 'pkcs8' });
  return `${input}.${crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

beforeAll(async () => {
  lab = await labUp({ id: 'regtok', hosts: 1, registry: true, replace: true });
  const mine = await ca('Airlock');
  signer = mine.signer;
  hostKey = mine.host;
  stranger = (await ca('Stranger')).signer;
  await configureRegistry(lab, { auth: { realm: `http://${lab.registry!.address}:1/token`, service: SERVICE, issuer: ISSUER, rootCertBundlePem: signer.certPem } });
}, 120_000);
afterAll(async () => {
  await labDown({ id: 'regtok' });
});

/** A client whose tokens grant exactly `allow` (what the caller's grants would say), whatever the registry's challenge asks. */
function client(allow: (asked: RegistryAccess[]) => RegistryAccess[], o: { with?: TokenSigner; ttl?: number; now?: () => Date } = {}) {
  return new RegistryClient({
    baseUrl: lab.registry!.url,
    token: async (req) => signRegistryToken({ signer: o.with ?? signer, issuer: ISSUER, service: req.service ?? SERVICE, subject: 'airlock-console', access: allow(parseScope(req.scope ?? '')), ...(o.ttl ? { ttlSeconds: o.ttl } : {}), now: o.now?.() ?? new Date(), random }).token,
  });
}
const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof AirlockError ? e.code : String(e)));

describe('registry tokens from Airlock, enforced by docker-registry 2.8.2', () => {
  it('refuses requests without a token and with tokens it must not trust', async () => {
    const anon = new RegistryClient({ baseUrl: lab.registry!.url });
    const ping = await anon.ping();
    expect(ping).toMatchObject({ ok: true, status: 401, auth: { service: SERVICE } });
    expect(await codeOf(anon.pushSmallBlob('models/a', Buffer.from('x')))).toBe('BAD_CREDENTIALS');
    // Signed by a certificate that does not chain to the registry's bundle.
    expect(await codeOf(client((a) => a, { with: stranger }).pushSmallBlob('models/a', Buffer.from('x')))).toBe('BAD_CREDENTIALS');
    // Expired (issued ten minutes ago, five-minute life: past the registry's 60 s leeway).
    expect(await codeOf(client((a) => a, { now: () => new Date(Date.now() - 600_000) }).pushSmallBlob('models/a', Buffer.from('x')))).toBe('BAD_CREDENTIALS');
  });

  it('a push token pushes; a pull-only token pulls and cannot push; another repository is not covered', async () => {
    const pusher = client((asked) => asked);
    const blob = await pusher.pushSmallBlob('models/granted', Buffer.from('weights of a granted model'));
    const puller = client((asked) => asked.map((a) => ({ ...a, actions: a.actions.filter((x) => x === 'pull') })).filter((a) => a.actions.length > 0));
    expect(await puller.blobSize('models/granted', blob.digest)).toBe(blob.size);
    expect(await codeOf(puller.pushSmallBlob('models/granted', Buffer.from('an attempt to overwrite')))).toBe('BAD_CREDENTIALS');
    const wrongRepo = client(() => [{ type: 'repository', name: 'models/other', actions: ['pull'] }]);
    expect(await codeOf(wrongRepo.blobSize('models/granted', blob.digest))).toBe('BAD_CREDENTIALS');
  });

  it('refuses a token signed with a host TLS key of the same CA: the bundle pins the token certificate', async () => {
    const access: RegistryAccess[] = [{ type: 'repository', name: 'models/granted', actions: ['pull'] }];
    const tags = (token: string) => fetch(`${lab.registry!.url}/v2/models/granted/tags/list`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await tags(forged(hostKey, access))).toBe(401);
    expect(await tags(forged(signer, access))).not.toBe(401); // the same forgery path with the pinned key works: the refusal above is the pin's
  });

  it('rejects a token whose aud is an array, as 2.8.2 does', async () => {
    const { token } = signRegistryToken({ signer, issuer: ISSUER, service: SERVICE, subject: 'x', access: [{ type: 'repository', name: 'models/granted', actions: ['pull'] }], now: new Date(), random });
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    claims.aud = [SERVICE];
    const input = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const key = crypto.createPrivateKey({ key: signer.privateKeyPkcs8, format: 'der', type: 'pkcs8' });
    const arrayAud = `${input}.${crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    expect(s.length).toBeGreaterThan(0);
    const r = await fetch(`${lab.registry!.url}/v2/models/granted/tags/list`, { headers: { authorization: `Bearer ${arrayAud}` } });
    expect(r.status).toBe(401);
    const good = await fetch(`${lab.registry!.url}/v2/models/granted/tags/list`, { headers: { authorization: `Bearer ${token}` } });
    expect(good.status).not.toBe(401);
  });

  it('refuses to sign a token longer than five minutes or with a malformed scope', async () => {
    expect(() => signRegistryToken({ signer, issuer: ISSUER, service: SERVICE, subject: 'x', access: [], ttlSeconds: 301, now: new Date(), random })).toThrow(/1 to 300 seconds/);
    expect(() => parseScope('registry:catalog:*')).toThrow(AirlockError);
    expect(() => parseScope('repository:models/a:pull,admin')).toThrow(AirlockError);
    expect(() => signRegistryToken({ signer: { ...signer, certPem: signer.chainPems[0]! }, issuer: ISSUER, service: SERVICE, subject: 'x', access: [], now: new Date(), random })).toThrow(/registry-token certificate/);
  });
});

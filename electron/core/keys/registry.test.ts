import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Attestations, verifyAttestationText } from '../attest/attest';
import { AuditKeys } from '../audit/keys';
import { migrate } from '../db/db';
import { meta } from '../db/meta';
import { migrations } from '../db/migrations';
import { identityHandlers } from '../identity/handlers';
import { fingerprintOfPrivateKey, generateIdentity, publicKeyOf } from '../identity/ssh-key';
import { Vault } from '../vault/vault';
import { ed25519FromSeed, keyFingerprint } from './ed25519';
import { ConsoleKeyStore } from './console-keys';
import { KeyRegistry, OWN_KEYS, type KeyPurpose, type MintedKey } from './registry';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };

/** A deterministic random source: SHA-256 in counter mode over a label. */
function seeded(label: string) {
  let n = 0;
  return (bytes: number) => {
    const out: Buffer[] = [];
    let have = 0;
    while (have < bytes) {
      const b = crypto.createHash('sha256').update(`${label}/${n++}`).digest();
      out.push(b);
      have += b.length;
    }
    return Buffer.concat(out).subarray(0, bytes);
  };
}

function setup(random: (n: number) => Buffer = crypto.randomBytes) {
  const db = new Database(':memory:');
  migrate(db, migrations);
  const vault = new Vault({ db, kdf: KDF, random: crypto.randomBytes, now: () => new Date().toISOString() });
  return { db, vault, vaultKey: crypto.randomBytes(32), keys: new KeyRegistry({ db, vault, random }) };
}

const PURPOSES = Object.keys(OWN_KEYS) as KeyPurpose[];

const attestationBody = (operator: string) => ({
  format: 'airlock.attestation/v1' as const,
  id: `att-${crypto.randomBytes(8).toString('hex')}`,
  host: { name: 'gpu-1', address: '10.0.0.1', port: 22, hostKey: { fingerprint: `SHA256:${'A'.repeat(43)}`, type: 'ssh-ed25519' } },
  playbook: { name: 'base', version: '1', digest: '0'.repeat(64) },
  run: `run-${crypto.randomBytes(8).toString('hex')}`,
  operator,
  createdAt: new Date().toISOString(),
  facts: {},
});

describe('the key registry (one minting path for Airlock’s own keys)', () => {
  it('builds Ed25519 keys from 32 random bytes exactly as RFC 8032 does (test vector 1)', () => {
    const key = ed25519FromSeed(Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'));
    const spki = crypto.createPublicKey(key).export({ format: 'der', type: 'spki' });
    expect(spki.subarray(-32).toString('hex')).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const sig = crypto.sign(null, Buffer.alloc(0), key).toString('hex');
    expect(sig).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('mints the same keys from the same random source (the OpenSSH file differs only in its random check word)', () => {
    const a = setup(seeded('install'));
    const b = setup(seeded('install'));
    const minted = new Map<KeyPurpose, MintedKey>();
    for (const p of PURPOSES) {
      const ka = a.keys.mint(a.vaultKey, p, { comment: 'airlock@alice' });
      minted.set(p, ka);
      const kb = b.keys.mint(b.vaultKey, p, { comment: 'airlock@alice' });
      expect(kb).toEqual(ka);
      expect(ka.alg).toBe(OWN_KEYS[p].alg);
      if (OWN_KEYS[p].format === 'pkcs8' || OWN_KEYS[p].format === 'secret') {
        expect(b.keys.unseal(b.vaultKey, p)).toEqual(a.keys.unseal(a.vaultKey, p));
      }
    }
    // A different source, different keys.
    const c = setup(seeded('another install'));
    expect(c.keys.mint(c.vaultKey, 'audit.signing').fingerprint).not.toBe(minted.get('audit.signing')!.fingerprint);
    // The SSH identity: same public key and fingerprint, a private key ssh2 loads.
    const ssh = a.keys.unseal(a.vaultKey, 'ssh.identity')!.toString('utf8');
    expect(ssh).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(publicKeyOf(ssh)).toBe(a.keys.publicKey('ssh.identity'));
    expect(publicKeyOf(ssh)).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+ airlock@alice$/);
    expect(minted.get('ssh.identity')!.fingerprint).toBe(fingerprintOfPrivateKey(ssh));
    expect(minted.get('ssh.identity')!.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('seals in the formats the older code wrote: PKCS#8 DER as Node exports it, SPKI PEM in meta, 32 HMAC bytes', () => {
    const { db, vaultKey, keys } = setup();
    const minted = keys.mint(vaultKey, 'audit.signing');
    const der = keys.unseal(vaultKey, 'audit.signing')!;
    const priv = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    expect(priv.export({ format: 'der', type: 'pkcs8' })).toEqual(der);
    expect(der.length).toBe(crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' }).length);
    const pem = db.prepare("SELECT value FROM meta WHERE key = 'audit.signing.public'").pluck().get() as string;
    expect(pem).toBe(crypto.createPublicKey(priv).export({ format: 'pem', type: 'spki' }).toString());
    expect(minted).toEqual({ purpose: 'audit.signing', alg: 'ed25519', publicKey: pem, fingerprint: keyFingerprint(pem), version: 1 });
    expect(keys.mint(vaultKey, 'audit.hmac')).toEqual({ purpose: 'audit.hmac', alg: 'hmac-sha256', publicKey: null, fingerprint: null, version: 1 });
    expect(keys.unseal(vaultKey, 'audit.hmac')!.length).toBe(32);
    // Entries of the console domain, no vault secrets.
    expect(db.prepare('SELECT purpose, version, kek_version AS kek FROM console_keys ORDER BY purpose').all()).toEqual([
      { purpose: 'audit.hmac', version: 1, kek: 1 },
      { purpose: 'audit.signing', version: 1, kek: 1 },
    ]);
    expect(db.prepare('SELECT count(*) FROM secrets').pluck().get()).toBe(0);
  });

  it('mints inside the caller’s transaction: rolled back with it, nothing half-written', () => {
    const { db, vaultKey, keys } = setup();
    expect(() =>
      db.transaction(() => {
        keys.mint(vaultKey, 'attest.signing');
        throw new Error('setup failed');
      })(),
    ).toThrow('setup failed');
    expect(keys.unseal(vaultKey, 'attest.signing')).toBeNull();
    expect(keys.publicKey('attest.signing')).toBeNull();
  });

  it('loads keys a database got from the code before the registry (SSH identity, audit keys, attestation key)', () => {
    const { db, vault, vaultKey, keys } = setup();
    const raw = (k: string, v: string) =>
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(k, v);
    // What session:setup wrote (app.ts before): generateIdentity's OpenSSH text sealed, the line in meta.
    const id = generateIdentity('airlock@alice');
    vault.putSecret(vaultKey, 'ssh.identity.private', Buffer.from(id.privateKey, 'utf8'));
    raw('ssh.identity.public', id.publicKey);
    // What AuditKeys.seal wrote: Node's own Ed25519 key as PKCS#8 DER, 32 random HMAC bytes, the PEM in meta.
    const audit = crypto.generateKeyPairSync('ed25519');
    vault.putSecret(vaultKey, 'audit.signing.private', audit.privateKey.export({ format: 'der', type: 'pkcs8' }));
    vault.putSecret(vaultKey, 'audit.hmac.key', crypto.randomBytes(32));
    const auditPem = audit.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    raw('audit.signing.public', auditPem);
    // What Attestations wrote at its first attestation.
    const att = crypto.generateKeyPairSync('ed25519');
    vault.putSecret(vaultKey, 'attest.signing.private', att.privateKey.export({ format: 'der', type: 'pkcs8' }));
    const attPem = att.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    raw('attest.signing.public', attPem);

    // The SSH identity: shown and unsealed as it was.
    expect(keys.unseal(vaultKey, 'ssh.identity')!.toString('utf8')).toBe(id.privateKey);
    const shown = identityHandlers({ keys, sshAgent: null })['identity:show']({} as never, {}) as { publicKey: string; fingerprint: string };
    expect(shown).toMatchObject({ publicKey: id.publicKey, fingerprint: id.fingerprint });
    // The audit keys: unlocked, not replaced, signing with the key on record.
    const ak = new AuditKeys({ db, vault, registry: keys });
    expect(ak.unlock(vaultKey, { create: true })).toBe('loaded');
    expect(ak.keyFingerprint).toBe(keyFingerprint(auditPem));
    const sig = ak.sign(Buffer.from('head'))!;
    expect(crypto.verify(null, Buffer.from('head'), audit.publicKey, Buffer.from(sig.signature, 'base64'))).toBe(true);
    // The attestation key: the next attestation is signed with it, not a new one.
    const attestations = new Attestations({ db, keys, now: () => new Date().toISOString() });
    const signed = attestations.create(attestationBody('alice'), vaultKey);
    expect(signed.signature.keyFingerprint).toBe(keyFingerprint(attPem));
    expect(verifyAttestationText(JSON.stringify(signed), attPem)).toMatchObject({ ok: true, trustedKey: true });
    expect(meta(db).get('attest.signing.public')).toBe(attPem);
  });

  it('mints the attestation key at the first attestation, through the injected random source', () => {
    const a = setup(seeded('att'));
    const b = setup(seeded('att'));
    const sa = new Attestations({ db: a.db, keys: a.keys, now: () => 'now' }).create(attestationBody('alice'), a.vaultKey);
    const sb = new Attestations({ db: b.db, keys: b.keys, now: () => 'now' }).create(attestationBody('bob'), b.vaultKey);
    expect(sa.signature.keyFingerprint).toBe(sb.signature.keyFingerprint);
    expect(a.keys.publicKey('attest.signing')).toBe(b.keys.publicKey('attest.signing'));
  });

  it('keeps every version: current() is the newest, versions() lists the retired ones with their public part and retirement time', () => {
    const { db, keys, vaultKey } = setup();
    expect(keys.current('attest.signing')).toBeNull();
    expect(keys.versions('attest.signing')).toEqual([]);
    const v1 = keys.mint(vaultKey, 'attest.signing');
    const v2 = keys.mint(vaultKey, 'attest.signing');
    const v3 = keys.mint(vaultKey, 'attest.signing');
    expect(keys.current('attest.signing')).toMatchObject({ version: 3, fingerprint: v3.fingerprint, publicKey: v3.publicKey });
    const all = keys.versions('attest.signing');
    expect(all.map((v) => [v.version, v.fingerprint, v.retiredAt !== null])).toEqual([
      [1, v1.fingerprint, true],
      [2, v2.fingerprint, true],
      [3, v3.fingerprint, false],
    ]);
    // A retired version keeps its public part (old signatures verify), and its private part does not open any more.
    expect(all[0]!.publicKey).toBe(v1.publicKey);
    expect(keyFingerprint(all[1]!.publicKey!)).toBe(v2.fingerprint);
    expect(new ConsoleKeyStore(db).entries('attest.signing').map((e) => e.sealed === null)).toEqual([true, true, false]);
    // The HMAC key: versions without anything public.
    keys.mint(vaultKey, 'audit.hmac');
    keys.mint(vaultKey, 'audit.hmac');
    expect(keys.versions('audit.hmac').map((v) => [v.version, v.publicKey, v.fingerprint, v.retiredAt !== null])).toEqual([
      [1, null, null, true],
      [2, null, null, false],
    ]);
  });
});

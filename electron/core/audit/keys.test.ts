import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { migrate } from '../db/db';
import { migrations } from '../db/migrations';
import { Vault } from '../vault/vault';
import { AUDIT_PUBLIC_META, AuditKeys, auditPublicKeys, keyFingerprint } from './keys';

function setup() {
  const db = new Database(':memory:');
  migrate(db, migrations);
  const vault = new Vault({ db, kdf: { alg: 'argon2id', memoryKiB: 1024, iterations: 1, parallelism: 1 }, random: crypto.randomBytes, now: () => new Date().toISOString() });
  return { db, vault, vaultKey: crypto.randomBytes(32) };
}

describe('audit keys', () => {
  it('seals the signing and HMAC keys as console-domain entries (no vault secrets any more), the public key in the clear', () => {
    const { db, vault, vaultKey } = setup();
    new AuditKeys({ db, vault }).seal(vaultKey);
    expect(db.prepare('SELECT name FROM secrets').pluck().all()).toEqual([]);
    expect(db.prepare('SELECT purpose FROM console_keys ORDER BY purpose').pluck().all()).toEqual(['audit.hmac', 'audit.signing']);
    const pem = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(AUDIT_PUBLIC_META) as string;
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(Object.keys(auditPublicKeys(db))).toEqual([keyFingerprint(pem)]);
    expect(keyFingerprint(pem)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    // Nothing secret in the clear: the sealed blobs do not contain the raw HMAC key's hex or the PKCS#8 header.
    const blobs = db.prepare('SELECT sealed FROM console_keys').pluck().all() as Buffer[];
    expect(blobs).toHaveLength(2);
    for (const b of blobs) expect(b.includes(Buffer.from('302e020100300506032b6570', 'hex'))).toBe(false);
  });

  it('unlocks with the vault key, signs verifiably and HMACs stably; wipe forgets both', () => {
    const { db, vault, vaultKey } = setup();
    new AuditKeys({ db, vault }).seal(vaultKey);
    const k = new AuditKeys({ db, vault });
    expect(k.hmac('x')).toBeNull();
    expect(k.sign(Buffer.from('x'))).toBeNull();
    expect(k.unlock(vaultKey, { create: false })).toBe('loaded');
    const s = k.sign(Buffer.from('head'))!;
    const pem = Object.values(auditPublicKeys(db))[0]!;
    expect(crypto.verify(null, Buffer.from('head'), crypto.createPublicKey(pem), Buffer.from(s.signature, 'base64'))).toBe(true);
    expect(s.keyFingerprint).toBe(keyFingerprint(pem));
    const other = new AuditKeys({ db, vault });
    other.unlock(vaultKey, { create: false });
    expect(k.hmac('same secret value')).toBe(other.hmac('same secret value'));
    k.wipe();
    expect(k.unlocked).toBe(false);
    expect(k.hmac('x')).toBeNull();
  });

  it('creates missing keys only when asked (an admin signs in to an older database), once', () => {
    const { db, vault, vaultKey } = setup();
    const officer = new AuditKeys({ db, vault });
    expect(officer.unlock(vaultKey, { create: false })).toBe('absent');
    const admin = new AuditKeys({ db, vault });
    expect(admin.unlock(vaultKey, { create: true })).toBe('created');
    const again = new AuditKeys({ db, vault });
    expect(again.unlock(vaultKey, { create: true })).toBe('loaded');
    expect(again.keyFingerprint).toBe(admin.keyFingerprint);
  });

  it('never throws at sign-in: a wrong vault key leaves the keys sealed', () => {
    const { db, vault, vaultKey } = setup();
    new AuditKeys({ db, vault }).seal(vaultKey);
    const k = new AuditKeys({ db, vault });
    expect(k.unlock(crypto.randomBytes(32), { create: true })).toBe('absent');
    expect(k.lastError).toMatch(/does not open with this vault key/);
    // And it did not replace the real keys.
    expect(new AuditKeys({ db, vault }).unlock(vaultKey, { create: false })).toBe('loaded');
  });
});

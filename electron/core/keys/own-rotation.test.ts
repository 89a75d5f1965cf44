import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADMIN, TEST_KDF, testCore } from '../../../test/support/core';
import { Attestations } from '../attest/attest';
import { canonical } from '../audit/canonical';
import { keyFingerprint } from './ed25519';
import { KeyRegistry } from './registry';
import { Vault } from '../vault/vault';

/**
 * `keys:rotateOwnKey` through the whole core (dispatcher, roles, step-up, audit): each rotatable
 * own key, the SSH identity refused with the way to its fleet rotation, every version in
 * `keys:status`, and an attestation signed before a rotation still verifying after it.
 */
const body = () => ({
  format: 'airlock.attestation/v1' as const,
  id: `att-${crypto.randomBytes(8).toString('hex')}`,
  host: { name: 'gpu-1', address: '10.0.0.1', port: 22, hostKey: { fingerprint: `SHA256:${'A'.repeat(43)}`, type: 'ssh-ed25519' } },
  playbook: { name: 'base', version: '1', digest: '0'.repeat(64) },
  run: `run-${crypto.randomBytes(8).toString('hex')}`,
  operator: 'alice',
  createdAt: new Date().toISOString(),
  facts: {},
});

describe('keys:rotateOwnKey', () => {
  it('rotates the audit signing, HMAC and attestation keys, audited with both versions; refuses the SSH identity and an auditor', async () => {
    const t = await testCore({ auditCheckpointEvery: 5 });
    try {
      const a = t.client();
      await a.ok('session:setup', ADMIN);
      // An attestation signed by version 1 (the app signs them at the end of a provisioning run; here directly, on the same file).
      const db = new Database(path.join(t.dir, 'airlock.db'));
      const vault = new Vault({ db, kdf: { alg: 'argon2id', parallelism: 1, ...TEST_KDF }, random: crypto.randomBytes, now: () => new Date().toISOString() });
      const vk = await vault.unlock(db.prepare('SELECT id FROM users WHERE name = ?').pluck().get(ADMIN.admin) as number, ADMIN.password);
      const att = new Attestations({ db, keys: new KeyRegistry({ db, vault, random: crypto.randomBytes }), now: () => new Date().toISOString() });
      const old = att.create(body(), vk);
      db.close();

      const ssh = await a.call('keys:rotateOwnKey', { purpose: 'ssh.identity' });
      expect(ssh).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT', message: expect.stringMatching(/rotate-ssh-identity all/) } });

      const sig = await a.ok('keys:rotateOwnKey', { purpose: 'audit.signing' });
      expect(sig).toMatchObject({ purpose: 'audit.signing', oldVersion: 1, newVersion: 2 });
      const hmac = await a.ok('keys:rotateOwnKey', { purpose: 'audit.hmac' });
      expect(hmac).toMatchObject({ purpose: 'audit.hmac', oldVersion: 1, newVersion: 2, hmacFromSeq: hmac.handoverSeq + 1 });
      const at = await a.ok('keys:rotateOwnKey', { purpose: 'attest.signing' });
      expect(at).toMatchObject({ purpose: 'attest.signing', oldVersion: 1, newVersion: 2, oldFingerprint: old.signature.keyFingerprint });

      // The outcome events carry old and new versions and fingerprints, never a key.
      const events = (await a.ok('audit:list', { channel: 'keys:rotateOwnKey', limit: 50 })).events.filter((e) => e.phase === 'outcome');
      const details = events.map((e) => (e.params as { detail?: Record<string, unknown> }).detail);
      expect(details).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ purpose: 'audit.signing', oldFingerprint: sig.oldFingerprint, newFingerprint: sig.newFingerprint, oldVersion: 1, newVersion: 2 }),
          expect.objectContaining({ purpose: 'attest.signing', oldFingerprint: at.oldFingerprint, newFingerprint: at.newFingerprint }),
          expect.objectContaining({ purpose: 'audit.hmac', oldVersion: 1, newVersion: 2 }),
        ]),
      );
      expect(JSON.stringify(events)).not.toMatch(/BEGIN (PRIVATE|PUBLIC) KEY/);

      // Every version in the status, the old ones retired.
      const own = (await a.ok('keys:status', {})).ownKeys.filter((k) => k.purpose !== 'ssh.identity');
      for (const p of ['audit.signing', 'audit.hmac', 'attest.signing']) {
        expect(own.filter((k) => k.purpose === p).map((k) => [k.version, k.retiredAt !== null])).toEqual([
          [1, true],
          [2, false],
        ]);
      }

      // The trail verifies across the rotation, from the original key; an attestation made before verifies after, one made now uses v2.
      const v = await a.ok('audit:verify', {});
      expect(v, JSON.stringify(v.firstBad)).toMatchObject({ ok: true, keyFingerprint: sig.oldFingerprint, keyFingerprints: [sig.oldFingerprint, sig.newFingerprint] });
      const shown = await a.ok('attest:show', { id: old.attestation.id });
      expect(shown.signature.keyFingerprint).toBe(old.signature.keyFingerprint);
      expect(await a.ok('attest:verify', { text: JSON.stringify(old) })).toMatchObject({ ok: true, trustedKey: true, keyFingerprint: at.oldFingerprint });
      expect((await a.ok('attest:key', {})).fingerprint).toBe(at.newFingerprint);

      // An attestation key row added to the file without a handover: an attestation it signed is not trusted.
      const evil = crypto.generateKeyPairSync('ed25519');
      const evilPem = evil.publicKey.export({ format: 'pem', type: 'spki' }).toString();
      const raw = new Database(path.join(t.dir, 'airlock.db'));
      raw
        .prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, public, fingerprint, staged_for, created_at, retired_at) VALUES ('attest.signing', 9, 1, NULL, ?, ?, NULL, '2030-01-01T00:00:00.000Z', '2030-01-02T00:00:00.000Z')")
        .run(evilPem, keyFingerprint(evilPem));
      raw.close();
      const forged = body();
      const doc = {
        attestation: forged,
        signature: {
          alg: 'Ed25519',
          publicKey: evil.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
          keyFingerprint: keyFingerprint(evilPem),
          value: crypto.sign(null, Buffer.from(canonical(forged), 'utf8'), evil.privateKey).toString('base64'),
        },
      };
      const fv = await a.ok('attest:verify', { text: JSON.stringify(doc) });
      expect(fv).toMatchObject({ ok: false, signatureValid: true, trustedKey: false });
      expect(fv.problems.join('\n')).toMatch(/not by any of this console's attestation key versions/);

      // An auditor may not rotate; step-up is required (app.test.ts's STEP_UP_SAMPLES checks the expiry).
      await a.ok('users:create', { name: 'audra', password: 'a long enough password', roles: ['auditor'] });
      const au = t.client();
      await au.ok('session:login', { name: 'audra', password: 'a long enough password' });
      expect(await au.call('keys:rotateOwnKey', { purpose: 'audit.signing' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    } finally {
      await t.close();
    }
  });
});

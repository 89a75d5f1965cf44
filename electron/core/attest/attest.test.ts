import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { attest } from '../../../shared/contract/attest';
import { canonical } from '../audit/canonical';
import { migrate } from '../db/db';
import { migrations } from '../db/migrations';
import { KeyRegistry } from '../keys/registry';
import { Vault } from '../vault/vault';
import { Attestations } from './attest';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };

describe('attest:list names each digest', () => {
  it('carries the playbook digest from the body and the SHA-256 of the signed body, each under its own name', () => {
    const db = new Database(':memory:');
    migrate(db, migrations);
    const vault = new Vault({ db, kdf: KDF, random: crypto.randomBytes, now: () => new Date().toISOString() });
    const atts = new Attestations({ db, keys: new KeyRegistry({ db, vault, random: crypto.randomBytes }), now: () => new Date().toISOString() });
    const playbookDigest = 'ab'.repeat(32);
    const signed = atts.create(
      {
        format: 'airlock.attestation/v1',
        id: 'att-0123456789abcdef',
        host: { name: 'gpu-1', address: '10.0.0.1', port: 22, hostKey: { fingerprint: `SHA256:${'A'.repeat(43)}`, type: 'ssh-ed25519' } },
        playbook: { name: 'base', version: '1', digest: playbookDigest },
        run: 'run-0123456789abcdef',
        operator: 'alice',
        createdAt: '2026-12-03T12:00:00.000Z',
        facts: {},
      },
      crypto.randomBytes(32),
    );
    const rows = attest['attest:list'].out.parse(atts.list());
    expect(rows).toHaveLength(1);
    expect(rows[0]!.playbookDigest).toBe(playbookDigest);
    expect(rows[0]!.digest).toBe(crypto.createHash('sha256').update(canonical(signed.attestation)).digest('hex'));
    expect(rows[0]!.digest).not.toBe(playbookDigest);
    expect(attest['attest:list'].out.parse(atts.list('gpu-1'))[0]!.playbookDigest).toBe(playbookDigest);
  });
});

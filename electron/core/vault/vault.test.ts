import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../db/db';
import { Vault } from './vault';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function setup(): { db: Db; vault: Vault } {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-vault-'));
  dirs.push(d);
  const db = openDatabase(path.join(d, 'airlock.db'));
  for (const [id, name] of [[1, 'alice'], [2, 'bob'], [3, 'carol']] as const) {
    db.prepare("INSERT INTO users (id, name, roles, password_hash, created_at) VALUES (?, ?, '[\"admin\"]', 'h', 'now')").run(id, name);
  }
  return { db, vault: new Vault({ db, kdf: KDF, random: (n) => crypto.randomBytes(n), now: () => 'now' }) };
}

describe('the vault', () => {
  it('gives each user a slot; destroying one leaves the others able to unlock', async () => {
    const { vault } = setup();
    const key = vault.newVaultKey();
    for (const [id, pw] of [[1, 'alice password'], [2, 'bob password!'], [3, 'carol password']] as const) vault.storeSlot(id, await vault.prepareSlot(pw, key));
    vault.destroySlot(2);
    expect(vault.hasSlot(2)).toBe(false);
    await expect(vault.unlock(2, 'bob password!')).rejects.toMatchObject({ code: 'BAD_CREDENTIALS' });
    expect((await vault.unlock(1, 'alice password')).equals(key)).toBe(true);
    expect((await vault.unlock(3, 'carol password')).equals(key)).toBe(true);
  });

  it('re-wraps a slot for a new password: the old one stops working', async () => {
    const { vault } = setup();
    const key = vault.newVaultKey();
    vault.storeSlot(1, await vault.prepareSlot('first password', key));
    vault.storeSlot(1, await vault.prepareSlot('second password', key));
    await expect(vault.unlock(1, 'first password')).rejects.toMatchObject({ code: 'BAD_CREDENTIALS' });
    expect((await vault.unlock(1, 'second password')).equals(key)).toBe(true);
  });

  it('binds sealed values to their context and key', () => {
    const { vault } = setup();
    const key = vault.newVaultKey();
    const sealed = vault.sealValue(key, 'totp:1', Buffer.from('JBSWY3DPEHPK3PXP'));
    expect(sealed.toString('latin1')).not.toContain('JBSWY3DPEHPK3PXP');
    expect(vault.openValue(key, 'totp:1', sealed)?.toString()).toBe('JBSWY3DPEHPK3PXP');
    expect(vault.openValue(key, 'totp:2', sealed)).toBeNull();
    expect(vault.openValue(vault.newVaultKey(), 'totp:1', sealed)).toBeNull();
    const flipped = Buffer.from(sealed);
    flipped[20]! ^= 1;
    expect(vault.openValue(key, 'totp:1', flipped)).toBeNull();
  });

  it('derives separate HMAC keys per purpose from the vault key', () => {
    const { vault } = setup();
    const key = vault.newVaultKey();
    expect(vault.hmacKey(key, 'approvals')).toHaveLength(32);
    expect(vault.hmacKey(key, 'approvals').equals(vault.hmacKey(key, 'approvals'))).toBe(true);
    expect(vault.hmacKey(key, 'approvals').equals(vault.hmacKey(key, 'audit'))).toBe(false);
    expect(vault.hmacKey(key, 'approvals').equals(key)).toBe(false);
  });
});

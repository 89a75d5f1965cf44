import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, testCore, type TestCore } from '../../../test/support/core';
import { AirlockError } from '../../../shared/domain/errors';
import { DB_FILE } from '../app';
import { AuditKeys, auditPublicKeys } from '../audit/keys';
import { openDatabase, type Db } from '../db/db';
import { identityHandlers } from '../identity/handlers';
import { Vault } from '../vault/vault';
import { ConsoleKeyStore, openConsoleKek, openEntry } from './console-keys';
import { KeyRegistry, nextSshSecret, OWN_KEYS, type KeyPurpose } from './registry';
import { KeyService, type OfficerInput } from './service';

/**
 * Airlock's own keys as entries of the `console` domain (issue 12): made before any genesis, open
 * after a restart with only a sign-in, adopted by genesis (the root opens them too), moved along
 * by a console KEK rotation, never in the clear in the database file, and migrated byte for byte
 * from the vault secrets older databases hold. Real SQLite files throughout.
 */

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const PURPOSES = Object.keys(OWN_KEYS) as KeyPurpose[];
const OFFICERS: OfficerInput[] = [{ name: 'ann' }, { name: 'ben' }, { name: 'cat' }];
const dirs: string[] = [];
const dbs: Db[] = [];
const cores: TestCore[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
  for (const d of dbs.splice(0)) if (d.open) d.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-console-keys-'));
  dirs.push(d);
  return d;
}

/** A console over a database file: registry and key service as the composition root builds them; `restart` opens the same file anew. */
function consoleAt(file: string) {
  const db = openDatabase(file);
  dbs.push(db);
  const vault = new Vault({ db, kdf: KDF, random: crypto.randomBytes, now: () => new Date().toISOString() });
  return { db, vault, registry: new KeyRegistry({ db, vault, random: crypto.randomBytes, now: () => new Date() }), service: new KeyService({ db, random: crypto.randomBytes, now: () => new Date(), kdf: KDF }) };
}
function setup() {
  const file = path.join(tempDir(), 'airlock.db');
  const vaultKey = crypto.randomBytes(32);
  return { file, vaultKey, ...consoleAt(file) };
}
function mintAll(registry: KeyRegistry, vaultKey: Buffer) {
  return new Map(PURPOSES.map((p) => [p, registry.mint(vaultKey, p, { comment: 'airlock@alice' })]));
}
const privates = (registry: KeyRegistry, vaultKey: Buffer) => new Map(PURPOSES.map((p) => [p, registry.unseal(vaultKey, p)!]));

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<AirlockError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    return e as AirlockError;
  }
  throw new Error('expected a refusal');
}

describe("Airlock's own keys as console-domain entries", () => {
  it('exist before any genesis: console KEK v1 wrapped under the vault key, one entry per purpose, status shows them with the hierarchy not initialised', () => {
    const s = setup();
    const minted = mintAll(s.registry, s.vaultKey);
    expect(s.db.prepare('SELECT version FROM console_keks').pluck().all()).toEqual([1]);
    expect(s.db.prepare("SELECT count(*) FROM kek_domains WHERE domain = 'console'").pluck().get()).toBe(0);
    const st = s.service.status();
    expect(st.initialised).toBe(false);
    expect(st.ownKeys.map((k) => [k.purpose, k.version, k.algorithm, k.fingerprint, k.kekVersion, k.retiredAt])).toEqual(
      [...PURPOSES].sort().map((p) => [p, 1, OWN_KEYS[p].alg, minted.get(p)!.fingerprint, 1, null]),
    );
    // A wrong vault key opens nothing, and says why.
    expect(refusalSync(() => s.registry.unseal(crypto.randomBytes(32), 'audit.signing')).message).toMatch(/does not open with this vault key/);
  });

  it('mints a new version by retiring the old one: its fingerprint stays on record, its private part is destroyed', () => {
    const s = setup();
    const v1 = s.registry.mint(s.vaultKey, 'attest.signing');
    const v2 = s.registry.mint(s.vaultKey, 'attest.signing');
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(v2.fingerprint).not.toBe(v1.fingerprint);
    const rows = new ConsoleKeyStore(s.db).entries('attest.signing');
    expect(rows.map((r) => [r.version, r.fingerprint, r.sealed === null, r.retiredAt !== null])).toEqual([
      [1, v1.fingerprint, true, true],
      [2, v2.fingerprint, false, false],
    ]);
    expect(s.registry.publicKey('attest.signing')).toBe(v2.publicKey);
    expect(crypto.createPublicKey(crypto.createPrivateKey({ key: s.registry.unseal(s.vaultKey, 'attest.signing')!, format: 'der', type: 'pkcs8' })).export({ format: 'pem', type: 'spki' })).toBe(v2.publicKey);
  });

  it('open after a restart with only the vault key of a sign-in, the hierarchy sealed', async () => {
    const s = setup();
    mintAll(s.registry, s.vaultKey);
    await s.service.genesis({ threshold: 2, officers: OFFICERS, vaultKey: s.vaultKey });
    const before = privates(s.registry, s.vaultKey);
    s.service.seal();
    s.db.close();
    const again = consoleAt(s.file);
    expect(again.service.isSealed()).toBe(true);
    const after = privates(again.registry, s.vaultKey);
    for (const p of PURPOSES) expect(after.get(p)!.equals(before.get(p)!), p).toBe(true);
  });

  it('genesis adopts the console KEK: the root-wrapped version opens the same entries, with no vault key (recovery)', async () => {
    const s = setup();
    mintAll(s.registry, s.vaultKey);
    const kcv = s.db.prepare('SELECT kcv FROM console_keks WHERE version = 1').pluck().get();
    // Without a vault key genesis cannot adopt the console KEK: refused before any share is issued.
    const r = await refusal(s.service.genesis({ threshold: 2, officers: OFFICERS }));
    expect(r.code).toBe('KEY_UNAVAILABLE');
    expect(r.message).toMatch(/signed-in session/);
    expect(s.service.status().initialised).toBe(false);

    await s.service.genesis({ threshold: 2, officers: OFFICERS, vaultKey: s.vaultKey });
    expect(s.db.prepare("SELECT version, kcv FROM kek_versions WHERE domain = 'console'").all()).toEqual([{ version: 1, kcv }]);
    const kek = s.service.consoleKek(1);
    const store = new ConsoleKeyStore(s.db);
    for (const p of PURPOSES) {
      const viaRoot = openEntry(kek, store.current(p)!);
      expect(viaRoot.equals(s.registry.unseal(s.vaultKey, p)!), p).toBe(true);
    }
    kek.fill(0);
  });

  it('a genesis on a database with no own keys yet makes the console KEK and wraps it under the vault key too', async () => {
    const s = setup();
    await s.service.genesis({ threshold: 2, officers: OFFICERS, vaultKey: s.vaultKey });
    const minted = s.registry.mint(s.vaultKey, 'audit.signing');
    expect(minted.version).toBe(1);
    const kek = s.service.consoleKek(1);
    expect(crypto.createPrivateKey({ key: openEntry(kek, new ConsoleKeyStore(s.db).current('audit.signing')!), format: 'der', type: 'pkcs8' })).toBeTruthy();
    kek.fill(0);
  });

  it('a console KEK rotation wraps the new version under the vault key and moves every entry to it; refused without a vault key or with a wrong one', async () => {
    const s = setup();
    mintAll(s.registry, s.vaultKey);
    const before = privates(s.registry, s.vaultKey);
    await s.service.genesis({ threshold: 2, officers: OFFICERS, vaultKey: s.vaultKey });
    const none = await refusal(s.service.rotateKek('console'));
    expect(none.code).toBe('KEY_UNAVAILABLE');
    expect(none.message).toMatch(/vault key/);
    expect((await refusal(s.service.rotateKek('console', { vaultKey: crypto.randomBytes(32) }))).message).toMatch(/does not open with this vault key/);
    expect(s.db.prepare("SELECT current_version FROM kek_domains WHERE domain = 'console'").pluck().get()).toBe(1);

    expect(await s.service.rotateKek('console', { vaultKey: s.vaultKey })).toMatchObject({ domain: 'console', version: 2 });
    expect(s.db.prepare('SELECT DISTINCT kek_version FROM console_keys').pluck().all()).toEqual([2]);
    expect(s.service.status().ownKeys.every((k) => k.kekVersion === 2)).toBe(true);
    // The same keys, through the vault key and, after a restart, through the root's version 2.
    const kek2 = s.service.consoleKek(2);
    for (const p of PURPOSES) {
      expect(s.registry.unseal(s.vaultKey, p)!.equals(before.get(p)!), p).toBe(true);
      expect(openEntry(kek2, new ConsoleKeyStore(s.db).current(p)!).equals(before.get(p)!), p).toBe(true);
    }
    kek2.fill(0);
    s.service.seal();
    s.db.close();
    const again = consoleAt(s.file);
    for (const p of PURPOSES) expect(again.registry.unseal(s.vaultKey, p)!.equals(before.get(p)!), p).toBe(true);
    // New entries go under the newest version.
    expect(again.registry.mint(s.vaultKey, 'attest.signing').version).toBe(2);
    expect(new ConsoleKeyStore(again.db).current('attest.signing')!.kekVersion).toBe(2);
  });

  it('the database file holds no private key byte in the clear: no key, seed, HMAC key or console KEK', async () => {
    const s = setup();
    mintAll(s.registry, s.vaultKey);
    await s.service.genesis({ threshold: 2, officers: OFFICERS, vaultKey: s.vaultKey });
    const secrets: Array<[string, Buffer]> = [];
    for (const [p, plain] of privates(s.registry, s.vaultKey)) {
      secrets.push([p, plain]);
      if (OWN_KEYS[p].format === 'pkcs8') secrets.push([`${p} seed`, plain.subarray(-32)]);
      if (OWN_KEYS[p].format === 'openssh') {
        const text = plain.toString('utf8');
        // The base64 body holds the private seed; its first line is header bytes common to every key, so the body from its second line on.
        const body = text.split('\n').slice(2, -2).join('');
        secrets.push([`${p} body`, Buffer.from(body, 'utf8')]);
      }
    }
    secrets.push(['console KEK', s.service.consoleKek(1)]);
    s.service.seal();
    s.db.close();
    const bytes = Buffer.concat([fs.readFileSync(s.file), ...['-wal', '-shm'].filter((x) => fs.existsSync(s.file + x)).map((x) => fs.readFileSync(s.file + x))]);
    expect(bytes.length).toBeGreaterThan(0);
    for (const [what, secret] of secrets) {
      expect(secret.length, what).toBeGreaterThanOrEqual(32);
      expect(bytes.includes(secret), what).toBe(false);
      expect(bytes.includes(Buffer.from(secret.toString('hex'))), `${what} (hex)`).toBe(false);
      expect(bytes.includes(Buffer.from(secret.toString('base64'))), `${what} (base64)`).toBe(false);
    }
  });

  it('migrates keys sealed the old way (vault secrets, a staged SSH identity) into entries byte for byte, in one go, and deletes the secrets', () => {
    const s = setup();
    const legacy = new Map<string, Buffer>();
    // What the code before entries wrote: each private part a vault secret, public parts in meta.
    const seed = new KeyRegistry({ db: s.db, vault: s.vault, random: crypto.randomBytes });
    const minted = mintAll(seed, s.vaultKey);
    const next = seed.mintNextSsh(s.vaultKey, 'rot-1');
    for (const p of PURPOSES) legacy.set(OWN_KEYS[p].secret, seed.unseal(s.vaultKey, p)!);
    legacy.set(nextSshSecret('rot-1'), seed.unsealNextSsh(s.vaultKey, 'rot-1')!);
    s.db.exec('DELETE FROM console_keys; DELETE FROM console_keks;');
    for (const [name, value] of legacy) s.vault.putSecret(s.vaultKey, name, value);
    // A checkpoint-style signature and an HMAC made with the old keys.
    const signed = crypto.sign(null, Buffer.from('head'), crypto.createPrivateKey({ key: legacy.get('audit.signing.private')!, format: 'der', type: 'pkcs8' }));
    const mac = crypto.createHmac('sha256', legacy.get('audit.hmac.key')!).update('secret value').digest('hex');
    s.db.close();

    const again = consoleAt(s.file);
    // Readable without a session before the migration: the public parts on record, the staged key.
    expect(again.registry.publicKey('audit.signing')).toBe(minted.get('audit.signing')!.publicKey);
    expect(again.registry.hasNextSsh('rot-1')).toBe(true);
    // A sign-in: the audit keys unlock through the registry, which migrates everything.
    const audit = new AuditKeys({ db: again.db, vault: again.vault, registry: again.registry });
    expect(audit.unlock(s.vaultKey, { create: true })).toBe('loaded');
    expect(again.db.prepare('SELECT count(*) FROM secrets').pluck().get()).toBe(0);
    for (const p of PURPOSES) expect(again.registry.unseal(s.vaultKey, p)!.equals(legacy.get(OWN_KEYS[p].secret)!), p).toBe(true);
    expect(again.registry.unsealNextSsh(s.vaultKey, 'rot-1')!.equals(legacy.get(nextSshSecret('rot-1'))!)).toBe(true);
    expect(again.registry.hasNextSsh('rot-1')).toBe(true);
    // Same fingerprints, and what the old keys signed and HMACed still checks.
    const st = again.service.status();
    for (const p of PURPOSES) expect(st.ownKeys.find((k) => k.purpose === p && !k.stagedFor)?.fingerprint, p).toBe(minted.get(p)!.fingerprint);
    expect(st.ownKeys.find((k) => k.stagedFor === 'rot-1')?.fingerprint).toBe(next.fingerprint);
    expect(audit.keyFingerprint).toBe(minted.get('audit.signing')!.fingerprint);
    const pem = auditPublicKeys(again.db)[audit.keyFingerprint!]!;
    expect(crypto.verify(null, Buffer.from('head'), crypto.createPublicKey(pem), signed)).toBe(true);
    expect(audit.hmac('secret value')).toBe(`hmac-sha256:${mac}`);
    // The staged SSH identity promotes as before.
    again.registry.promoteNextSsh(s.vaultKey, 'rot-1', next.publicKey);
    expect(again.registry.publicKey('ssh.identity')).toBe(next.publicKey);
    expect(identityHandlers({ keys: again.registry, sshAgent: null })['identity:show']({} as never, {})).toMatchObject({ fingerprint: next.fingerprint });
  });
});

describe("Airlock's own keys in a running console", () => {
  it('an old database (keys as vault secrets) keeps its audit chain and SSH identity across the migration at sign-in; keys:status shows the fingerprints identity:show and the checkpoints show', async () => {
    const dir = tempDir();
    const a = await testCore({ dataDir: dir, auditCheckpointEvery: 3 });
    cores.push(a);
    const alice = a.client();
    await alice.ok('session:setup', ADMIN);
    for (let i = 0; i < 7; i++) await alice.ok('hosts:list', {});
    const shown = (await alice.ok('identity:show', {})) as { fingerprint: string };
    const verified = (await alice.ok('audit:verify', {})) as { ok: boolean; keyFingerprint: string };
    expect(verified.ok).toBe(true);
    await cores.pop()!.close();

    // Rewrite the database the way the code before entries left it: vault secrets, no entries.
    const raw = new Database(path.join(dir, DB_FILE));
    const vault = new Vault({ db: raw, kdf: KDF, random: crypto.randomBytes, now: () => new Date().toISOString() });
    const userId = raw.prepare('SELECT id FROM users WHERE name = ?').pluck().get(ADMIN.admin) as number;
    const vaultKey = await vault.unlock(userId, ADMIN.password);
    const store = new ConsoleKeyStore(raw);
    const before = new Map<string, Buffer>();
    for (const p of PURPOSES) {
      const row = store.current(p);
      if (!row) continue;
      const kek = openConsoleKek(vaultKey, store.kek(row.kekVersion)!);
      const plain = openEntry(kek, row);
      kek.fill(0);
      before.set(p, plain);
      vault.putSecret(vaultKey, OWN_KEYS[p].secret, plain);
    }
    expect([...before.keys()].sort()).toEqual(['audit.hmac', 'audit.signing', 'ssh.identity']);
    raw.exec('DELETE FROM console_keys; DELETE FROM console_keks;');
    raw.close();

    const b = await testCore({ dataDir: dir, auditCheckpointEvery: 3 });
    cores.push(b);
    const again = b.client();
    await again.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    for (let i = 0; i < 4; i++) await again.ok('hosts:list', {});
    expect(((await again.ok('identity:show', {})) as { fingerprint: string }).fingerprint).toBe(shown.fingerprint);
    const v = (await again.ok('audit:verify', {})) as { ok: boolean; keyFingerprint: string; checkpoints: number };
    expect(v).toMatchObject({ ok: true, keyFingerprint: verified.keyFingerprint });
    const st = (await again.ok('keys:status', {})) as { ownKeys: Array<{ purpose: string; fingerprint: string | null; version: number }> };
    expect(st.ownKeys.find((k) => k.purpose === 'ssh.identity')).toMatchObject({ fingerprint: shown.fingerprint, version: 1 });
    expect(st.ownKeys.find((k) => k.purpose === 'audit.signing')).toMatchObject({ fingerprint: verified.keyFingerprint, version: 1 });
    await cores.pop()!.close();
    const check = new Database(path.join(dir, DB_FILE), { readonly: true });
    const v2 = new Vault({ db: check, kdf: KDF, random: crypto.randomBytes, now: () => new Date().toISOString() });
    const reg = new KeyRegistry({ db: check, vault: v2, random: crypto.randomBytes });
    expect(check.prepare('SELECT count(*) FROM secrets WHERE name IN (?, ?, ?)').pluck().get(OWN_KEYS['ssh.identity'].secret, OWN_KEYS['audit.signing'].secret, OWN_KEYS['audit.hmac'].secret)).toBe(0);
    for (const [p, plain] of before) expect(reg.unseal(vaultKey, p as KeyPurpose)!.equals(plain), p).toBe(true);
    check.close();
  });
});

function refusalSync(fn: () => unknown): AirlockError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    return e as AirlockError;
  }
  throw new Error('expected a refusal');
}

import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sampleEvent } from '../../../test/support/audit';
import { migrate } from '../db/db';
import { migrations } from '../db/migrations';
import { keyFingerprint } from '../keys/ed25519';
import { OwnKeyRotations } from '../keys/own-rotation';
import { KeyRegistry } from '../keys/registry';
import { Vault } from '../vault/vault';
import { AuditTrail, readHighWater } from './audit';
import { verifyBundleFile } from './bundle';
import { canonical } from './canonical';
import { CHECKPOINT_CHANNEL, chainHash, checkpointPayload, SYSTEM_ACTOR } from './chain';
import { exportAudit } from './export';
import { HANDOVER_CHANNEL } from './key-chain';
import { AuditKeys, auditPublicKeys, trustedAuditKeys } from './keys';
import { verifyAudit } from './verify';

/**
 * Rotation of the audit signing key (keys/own-rotation.ts, AuditTrail.handOver) and the trust
 * rule every verifier applies (audit/key-chain.ts): a key version is trusted only along the
 * chain of handovers signed by its predecessor, each key within its part of the chain.
 */
function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-keychain-'));
  const db = new Database(path.join(dir, 'airlock.db'));
  migrate(db, migrations);
  onTestFinished(() => {
    if (db.open) db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const vault = new Vault({ db, kdf: { alg: 'argon2id', memoryKiB: 1024, iterations: 1, parallelism: 1 }, random: crypto.randomBytes, now: () => new Date().toISOString() });
  const vaultKey = crypto.randomBytes(32);
  const registry = new KeyRegistry({ db, vault, random: crypto.randomBytes });
  const keys = new AuditKeys({ db, vault, registry });
  keys.seal(vaultKey);
  expect(keys.unlock(vaultKey, { create: false })).toBe('loaded');
  let t = Date.parse('2026-01-01T00:00:00.000Z');
  const headFile = path.join(dir, 'audit.head');
  const trail = new AuditTrail(db, () => new Date((t += 1000)), { signer: keys, checkpointEvery: 4, checkpointSeconds: 3600, headFile });
  const rotations = new OwnKeyRotations({ registry, trail, auditKeys: keys });
  let n = 0;
  const events = (k: number) => {
    for (let i = 0; i < k; i++) trail.append(sampleEvent(++n));
  };
  return { dir, db, vault, vaultKey, registry, keys, trail, rotations, events, headFile };
}

type Setup = ReturnType<typeof setup>;

/** Appends a row the way an attacker holding the file would: correctly chained, no key needed. */
function appendRaw(db: Database.Database, ev: Record<string, unknown>): { seq: number; hash: string; ts: string } {
  const last = db.prepare('SELECT seq, hash, ts FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string; ts: string };
  const seq = last.seq + 1;
  const ts = new Date(Date.parse(last.ts) + 1000).toISOString();
  const body = canonical({ ...ev, seq, ts });
  const hash = chainHash(last.hash, body);
  db.prepare('INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)').run(seq, ts, ev.actor, ev.channel, body, last.hash, hash);
  return { seq, hash, ts };
}

const checkpointBy = (db: Database.Database, key: crypto.KeyObject) => {
  const head = db.prepare('SELECT seq, hash, ts FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string; ts: string };
  const fp = keyFingerprint(crypto.createPublicKey(key));
  return appendRaw(db, {
    actor: SYSTEM_ACTOR,
    roles: [],
    session: null,
    shell: 'core',
    channel: CHECKPOINT_CHANNEL,
    phase: 'outcome',
    target: null,
    params: { headSeq: head.seq, headHash: head.hash, headTs: head.ts, signature: crypto.sign(null, checkpointPayload(head), key).toString('base64'), keyFingerprint: fp },
    outcome: 'ok',
    errorCode: null,
  });
};

const verify = (s: Setup, trust?: string) => verifyAudit({ db: s.db, dbFile: null, headFile: s.headFile, trust: trust ?? null });

describe('rotating the audit signing key', () => {
  it('hands over in one transaction: a checkpoint and the handover event, covered by a checkpoint signed by the OLD key; the new key signs after', async () => {
    const s = setup();
    s.events(6);
    const v1 = keyFingerprint(s.registry.publicKey('audit.signing')!);
    const r = s.rotations.rotate(s.vaultKey, 'audit.signing');
    expect(r).toMatchObject({ purpose: 'audit.signing', oldVersion: 1, newVersion: 2, oldFingerprint: v1 });
    expect(r.newFingerprint).not.toBe(v1);
    expect(s.keys.keyFingerprint).toBe(r.newFingerprint);
    const row = (seq: number) => JSON.parse(s.db.prepare('SELECT body FROM audit_events WHERE seq = ?').pluck().get(seq) as string);
    // Before the handover: a checkpoint over what was not yet covered, by the old key.
    expect(row(r.handoverSeq - 1)).toMatchObject({ channel: CHECKPOINT_CHANNEL, params: { keyFingerprint: v1, headSeq: r.handoverSeq - 2 } });
    expect(row(r.handoverSeq)).toMatchObject({
      channel: HANDOVER_CHANNEL,
      actor: SYSTEM_ACTOR,
      params: { purpose: 'audit.signing', oldFingerprint: v1, oldVersion: 1, newFingerprint: r.newFingerprint, newVersion: 2, newPublicKey: s.registry.publicKey('audit.signing') },
    });
    expect(r.checkpointSeq).toBe(r.handoverSeq + 1);
    expect(row(r.checkpointSeq)).toMatchObject({ channel: CHECKPOINT_CHANNEL, params: { keyFingerprint: v1, headSeq: r.handoverSeq } });
    // The old version is retired (private part destroyed, public part kept); the new one current.
    expect(s.registry.versions('audit.signing').map((v) => [v.version, v.retiredAt !== null])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(s.db.prepare("SELECT sealed FROM console_keys WHERE purpose = 'audit.signing' AND version = 1").pluck().get()).toBeNull();
    // audit.head is signed by the new key now; later checkpoints too.
    expect(readHighWater(s.headFile)).toMatchObject({ seq: r.checkpointSeq, keyFingerprint: r.newFingerprint });
    s.events(8);
    const later = s.db.prepare('SELECT body FROM audit_events WHERE channel = ? AND seq > ?').pluck().all(CHECKPOINT_CHANNEL, r.checkpointSeq) as string[];
    expect(later.length).toBeGreaterThan(0);
    for (const b of later) expect(JSON.parse(b).params.keyFingerprint).toBe(r.newFingerprint);
    // Every version on record; verify trusts the chain v1 → v2 and reports the original fingerprint.
    expect(Object.keys(auditPublicKeys(s.db)).sort()).toEqual([v1, r.newFingerprint!].sort());
    const rep = await verify(s);
    expect(rep, JSON.stringify(rep.firstBad)).toMatchObject({ ok: true, keyFingerprint: v1, keyFingerprints: [v1, r.newFingerprint] });
    expect(rep.warnings?.join('\n')).toMatch(/audit signing key was rotated/);
    // Pinning the new key trusts it from its handover on, never its predecessor (trust does not flow backwards).
    const pinnedNew = await verifyAudit({ db: s.db, dbFile: null, headFile: s.headFile, trust: r.newFingerprint });
    expect(pinnedNew.firstBad).toMatchObject({ kind: 'bad-signature', reason: expect.stringMatching(/a key before the pinned one .*pin the original audit key/) });
    expect(await verifyAudit({ db: s.db, dbFile: null, headFile: s.headFile, trust: r.newFingerprint, fromSeq: r.checkpointSeq + 1 })).toMatchObject({ ok: true });
    // And twice more: v1 → v2 → v3 → v4, pinned at the original.
    s.rotations.rotate(s.vaultKey, 'audit.signing');
    s.events(3);
    const r4 = s.rotations.rotate(s.vaultKey, 'audit.signing');
    s.events(5);
    const again = await verify(s, v1);
    expect(again, JSON.stringify(again.firstBad)).toMatchObject({ ok: true, keyFingerprint: v1 });
    expect(again.keyFingerprints).toHaveLength(4);
    expect(again.keyFingerprints![3]).toBe(r4.newFingerprint);
  });

  it('rolls back the whole rotation when a step fails: the old key stays current and nothing is written', () => {
    const s = setup();
    s.events(3);
    const before = s.db.prepare('SELECT count(*) FROM audit_events').pluck().get();
    const fp = s.keys.keyFingerprint;
    expect(() =>
      s.trail.handOver(
        (p) => s.keys.signHeld(p)!,
        () => {
          s.registry.mint(s.vaultKey, 'audit.signing');
          throw new Error('disk full');
        },
        () => {},
      ),
    ).toThrow(/could not be written/);
    expect(s.db.prepare('SELECT count(*) FROM audit_events').pluck().get()).toBe(before);
    expect(s.registry.versions('audit.signing')).toHaveLength(1);
    expect(s.keys.keyFingerprint).toBe(fp);
  });

  it('refuses a key row added to the database without a handover signed by its predecessor', async () => {
    const s = setup();
    s.events(5);
    // The attacker holds the file: retires v1, adds their own key as v2 (and mirrors it), and signs checkpoints with it.
    const attacker = crypto.generateKeyPairSync('ed25519');
    const pem = attacker.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    s.db.prepare("UPDATE console_keys SET sealed = NULL, retired_at = '2026-01-02T00:00:00.000Z' WHERE purpose = 'audit.signing'").run();
    s.db
      .prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, public, fingerprint, staged_for, created_at) VALUES ('audit.signing', 2, 1, ?, ?, ?, NULL, '2026-01-02T00:00:00.000Z')")
      .run(crypto.randomBytes(60), pem, keyFingerprint(pem));
    s.db.prepare("UPDATE meta SET value = ? WHERE key = 'audit.signing.public'").run(JSON.stringify(pem));
    for (let i = 0; i < 3; i++) appendRaw(s.db, { ...sampleEvent(100 + i), seq: undefined });
    const cp = checkpointBy(s.db, attacker.privateKey);
    const rep = await verifyAudit({ db: s.db, dbFile: null, headFile: null });
    expect(rep.ok).toBe(false);
    expect(rep.firstBad).toMatchObject({ seq: cp.seq, kind: 'bad-signature', reason: expect.stringMatching(/no handover signed by its predecessor introduces: not trusted/) });
    expect(trustedAuditKeys(s.db).chain).toEqual([keyFingerprint(s.registry.versions('audit.signing')[0]!.publicKey!)]);
  });

  it('refuses a forged handover (not signed by the old key), and a retired key signing after its handover', async () => {
    const s = setup();
    s.events(5);
    const oldDer = s.registry.unseal(s.vaultKey, 'audit.signing')!;
    const oldKey = crypto.createPrivateKey({ key: oldDer, format: 'der', type: 'pkcs8' });
    const v1 = keyFingerprint(crypto.createPublicKey(oldKey));

    // A forged handover to the attacker's key, covered by a checkpoint the attacker signs.
    const forged = setupCopy(s);
    const attacker = crypto.generateKeyPairSync('ed25519');
    const apem = attacker.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const h = appendRaw(forged, {
      actor: SYSTEM_ACTOR,
      roles: [],
      session: null,
      shell: 'core',
      channel: HANDOVER_CHANNEL,
      phase: 'outcome',
      target: 'audit.signing',
      params: { purpose: 'audit.signing', oldFingerprint: v1, oldVersion: 1, newFingerprint: keyFingerprint(apem), newVersion: 2, newPublicKey: apem },
      outcome: 'ok',
      errorCode: null,
    });
    checkpointBy(forged, attacker.privateKey);
    const rf = await verifyAudit({ db: forged, dbFile: null, headFile: null });
    expect(rf.firstBad).toMatchObject({ seq: h.seq, kind: 'bad-signature', reason: expect.stringMatching(/the checkpoint after it does not cover it with the key it hands over from|not signed by/) });
    forged.close();

    // A genuine rotation; then someone who kept the old private key signs a checkpoint after the handover.
    const r = s.rotations.rotate(s.vaultKey, 'audit.signing');
    s.events(2);
    const late = checkpointBy(s.db, oldKey);
    const rl = await verifyAudit({ db: s.db, dbFile: null, headFile: null });
    expect(rl.firstBad).toMatchObject({ seq: late.seq, kind: 'bad-signature', reason: expect.stringMatching(new RegExp(`handed over to its successor at event ${r.handoverSeq}: a retired key signs nothing after its handover`)) });
  });

  it('a process holding a key another process rotated stops signing until its next sign-in reads the new one', () => {
    const s = setup();
    const other = new AuditKeys({ db: s.db, vault: s.vault, registry: s.registry });
    expect(other.unlock(s.vaultKey, { create: false })).toBe('loaded');
    s.events(2);
    s.rotations.rotate(s.vaultKey, 'audit.signing');
    expect(other.sign(Buffer.from('x'))).toBeNull();
    expect(other.hmac('a secret value of some length')).not.toBeNull(); // the HMAC key was not rotated
    expect(other.unlock(s.vaultKey, { create: false })).toBe('loaded');
    expect(other.sign(Buffer.from('x'))?.keyFingerprint).toBe(s.keys.keyFingerprint);
  });

  it('rotates the HMAC key: the handover names the first event tagged with the new key; the old key is destroyed', async () => {
    const s = setup();
    s.events(3);
    const secret = 'a secret value long enough to be tagged';
    const before = s.keys.hmac(secret);
    const r = s.rotations.rotate(s.vaultKey, 'audit.hmac');
    expect(r).toMatchObject({ purpose: 'audit.hmac', oldVersion: 1, newVersion: 2, oldFingerprint: null, newFingerprint: null, hmacFromSeq: r.handoverSeq + 1 });
    const after = s.keys.hmac(secret);
    expect(after).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(after).not.toBe(before);
    const body = JSON.parse(s.db.prepare('SELECT body FROM audit_events WHERE seq = ?').pluck().get(r.handoverSeq) as string);
    expect(body).toMatchObject({ channel: HANDOVER_CHANNEL, params: { purpose: 'audit.hmac', oldVersion: 1, newVersion: 2, fromSeq: r.handoverSeq + 1 } });
    expect(s.db.prepare("SELECT sealed FROM console_keys WHERE purpose = 'audit.hmac' AND version = 1").pluck().get()).toBeNull();
    // Not the signing key: the chain has one key, and the checkpoint after the handover is by it.
    s.events(2);
    expect(await verify(s)).toMatchObject({ ok: true, keyFingerprints: [s.keys.keyFingerprint] });
  });

  it('a bundle across rotations verifies offline with only the original fingerprint pinned; another pin, or an edit, fails', async () => {
    const s = setup();
    s.events(5);
    const v1 = s.keys.keyFingerprint!;
    s.rotations.rotate(s.vaultKey, 'audit.signing');
    s.events(6);
    s.rotations.rotate(s.vaultKey, 'audit.signing');
    s.events(6);
    s.trail.checkpointNow();
    const out = await exportAudit({ db: s.db, dataDir: s.dir, format: 'bundle', now: () => new Date(), random: crypto.randomBytes });
    const ok = await verifyBundleFile(out.file, v1);
    expect(ok, JSON.stringify(ok.firstBad)).toMatchObject({ ok: true, fromSeq: 1, firstBad: null });
    expect(ok.keyFingerprints).toHaveLength(3);
    expect(ok.checkpoints).toBeGreaterThan(4);

    // A fingerprint that is not on the chain: nothing verifies.
    const stranger = keyFingerprint(crypto.generateKeyPairSync('ed25519').publicKey);
    expect(await verifyBundleFile(out.file, stranger)).toMatchObject({ ok: false, firstBad: { kind: 'bad-signature', reason: expect.stringMatching(/no public key with the pinned fingerprint/) } });

    // An edited event (re-hashed and re-chained, as in a forged file): caught at the first checkpoint over it.
    const lines = fs.readFileSync(out.file, 'utf8').trimEnd().split('\n');
    const e3 = JSON.parse(lines[3]!);
    e3.target = 'gpu-evil';
    lines[3] = JSON.stringify(e3);
    const edited = path.join(s.dir, 'edited.bundle');
    fs.writeFileSync(edited, lines.join('\n') + '\n');
    const bad = await verifyBundleFile(edited, v1);
    expect(bad).toMatchObject({ ok: false, firstBad: { seq: 3, kind: 'edited' } });

    // A partial range after the rotations still verifies from the original pin (the header carries the earlier handovers).
    const part = await exportAudit({ db: s.db, dataDir: s.dir, format: 'bundle', fromSeq: 15, now: () => new Date(), random: crypto.randomBytes });
    const pr = await verifyBundleFile(part.file, v1);
    expect(pr, JSON.stringify(pr.firstBad)).toMatchObject({ ok: true, fromSeq: 15 });
    expect(pr.warnings.join('\n')).toMatch(/starts at event 15/);
  });
});

/** A second connection on a copy of the database file (the attacker's own file). */
function setupCopy(s: Setup): Database.Database {
  const file = path.join(s.dir, `copy-${crypto.randomBytes(4).toString('hex')}.db`);
  s.db.exec(`VACUUM INTO '${file}'`);
  return new Database(file);
}

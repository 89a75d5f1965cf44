import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { AuditTrail, type AuditInput } from '../../electron/core/audit/audit';
import { AUDIT_PUBLIC_META, keyFingerprint } from '../../electron/core/audit/keys';
import { verifyAudit } from '../../electron/core/audit/verify';
import { migrate, openDatabase } from '../../electron/core/db/db';
import { migrations } from '../../electron/core/db/migrations';

/** A plausible audit event, numbered: a `hosts:add` request for host gpu-i. */
export const sampleEvent = (i: number): AuditInput => ({
  actor: 'alice',
  roles: ['admin'],
  session: 's1',
  shell: 'cli:test',
  channel: 'hosts:add',
  phase: 'request',
  target: `gpu-${i}`,
  params: { name: `gpu-${i}`, port: 22 },
  outcome: 'pending',
  errorCode: null,
});

/** A signer with a fresh Ed25519 key whose public half is on record in meta, as the core's is; lock() makes it refuse (a sealed vault). */
export function auditSigner(db: Database.Database) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(AUDIT_PUBLIC_META, pem);
  const fp = keyFingerprint(pem);
  let unlocked = true;
  return {
    publicKey,
    fp,
    lock: () => (unlocked = false),
    unlock: () => (unlocked = true),
    sign: (payload: Buffer) => (unlocked ? { signature: crypto.sign(null, payload, privateKey).toString('base64'), keyFingerprint: fp } : null),
  };
}

/**
 * An audit trail for one test: in memory, or in a file in a temp dir (with its high-water file);
 * a clock that moves 1 s per event; closed and removed when the test ends. `batches` records the
 * size of every group commit.
 */
export function testTrail(opts: { file?: boolean; every?: number; seconds?: number; signed?: boolean } = {}) {
  let db: Database.Database;
  let dir: string | null = null;
  if (opts.file) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-audit-'));
    db = openDatabase(path.join(dir, 'airlock.db'));
  } else {
    db = new Database(':memory:');
    migrate(db, migrations);
  }
  onTestFinished(() => {
    if (db.open) db.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  let t = Date.UTC(2026, 0, 1);
  const clock = { advance: (ms: number) => (t += ms) };
  const signer = opts.signed ? auditSigner(db) : null;
  const headFile = dir ? path.join(dir, 'audit.head') : null;
  const batches: number[] = [];
  const audit = new AuditTrail(db, () => new Date((t += 1000)), {
    signer,
    checkpointEvery: opts.every ?? 1000,
    checkpointSeconds: opts.seconds ?? 1e9,
    headFile,
    onBatch: (n) => batches.push(n),
  });
  const verify = (range: { fromSeq?: number; toSeq?: number } = {}, workers = false) =>
    verifyAudit({ db, dbFile: workers ? path.join(dir!, 'airlock.db') : null, headFile, workerThreshold: 0, ...range });
  return { db, audit, signer, clock, dir, headFile, batches, verify };
}

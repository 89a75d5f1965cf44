import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';
import type { Role } from '../../../shared/domain/roles';
import type { Db } from '../db/db';
import { meta } from '../db/meta';
import type { KeyRegistry } from '../keys/registry';
import type { CoreConfig } from '../types';
import type { Vault } from '../vault/vault';
import { sharedPool } from '../workers/pool';
import { AuditAlarms } from './alarm';
import { AuditTrail } from './audit';
import { AuditForwarder } from './forward';
import { auditHandlers } from './handlers';
import { AuditKeys } from './keys';
import { scansBodies, type ListOptions } from './query';

export const HIGH_WATER_FILE = 'audit.head';

/**
 * The audit trail with everything around it, built by the composition root: the key holder
 * (unsealed at sign-in, wiped at close), signed checkpoints (every N events or T seconds), the
 * high-water file, verification in the worker pool, exports and the syslog forwarder.
 */
export function createAuditService(o: {
  db: Db;
  dbFile: string;
  dataDir: string;
  vault: Vault;
  registry: KeyRegistry;
  clock: () => Date;
  random: (n: number) => Buffer;
  config: CoreConfig;
}) {
  const { db, config } = o;
  const keys = new AuditKeys({ db, vault: o.vault, registry: o.registry });
  const headFile = path.join(o.dataDir, HIGH_WATER_FILE);
  const seconds = config.auditCheckpointSeconds ?? 300;
  const trail = new AuditTrail(db, o.clock, {
    signer: keys,
    checkpointEvery: config.auditCheckpointEvery ?? 1000,
    checkpointSeconds: seconds,
    headFile,
  });
  const forwarder = new AuditForwarder({ db, headSeq: () => trail.head().seq, tuning: config.auditForwarding });
  trail.onCommit(() => forwarder.kick());
  forwarder.start();
  // The trusted head (audit.head, then what this process writes): checked now, before any checkpoint, and at each unseal.
  const alarms = new AuditAlarms({ db, trail, keys, headFile, clock: o.clock, alert: (a) => forwarder.alert(a) });
  alarms.inspect();
  // Time-based checkpoints for a console that is idle after some activity.
  const timer = setInterval(() => trail.checkpointIfDue(), Math.min(30_000, Math.max(1000, (seconds * 1000) / 4)));
  timer.unref();

  const workerThreshold = config.auditWorkerThreshold ?? 20_000;
  /** A search through event bodies of a large trail would stall the event loop: it runs in a worker. */
  const list = async (opts: ListOptions) => {
    if (scansBodies(opts) && trail.head().seq >= workerThreshold) {
      try {
        return await sharedPool().run('audit.list', { dbFile: o.dbFile, options: opts });
      } catch {
        // No worker (or it refused the input): answer here, with the same code and errors.
      }
    }
    return trail.list(opts);
  };

  const handlers = auditHandlers({ db, dbFile: o.dbFile, dataDir: o.dataDir, headFile, workerThreshold, clock: o.clock, random: o.random, trail, alarms, forwarder, list });

  return {
    trail,
    keys,
    handlers,
    /** AUDIT_ALARM for a channel that may not run while an audit alarm is open (the dispatcher asks before it audits the request). */
    gate: (channel: string) => alarms.gate(channel),
    alarms,
    /** HMAC of secret parameters (null while the keys are sealed). */
    hmac: (value: string) => keys.hmac(value),
    /** First-run setup: generate and seal the audit keys in the vault's first transaction. */
    sealAtSetup: (vaultKey: Buffer) => keys.seal(vaultKey),
    /** Someone signed in: unseal the keys for the process (an admin creates them if missing), then write a due checkpoint. */
    signedIn(vaultKey: Buffer, roles: readonly Role[]) {
      keys.unlock(vaultKey, { create: roles.includes('admin') });
      alarms.unlocked();
      trail.checkpointIfDue();
    },
    async close() {
      clearInterval(timer);
      trail.flush(); // group-committed events still queued, before the database closes
      await forwarder.stop();
      keys.wipe();
    },
  };
}

/**
 * Opens the database, or refuses clearly: Airlock does not run on a database it cannot write,
 * because every action must first be written to the audit trail (fail-closed).
 */
export function openAuditedDatabase(file: string, open: (file: string) => Db): Db {
  let db: Db | null = null;
  try {
    db = open(file);
    // SQLite opens a file it may not write read-only without a word; a write rolled back at once
    // (no disk space needed) tells, before anything is attempted.
    const probe = db;
    probe.transaction(() => {
      meta(probe).set('airlock.write-probe', '');
      throw new RollBack();
    })();
    return db;
  } catch (e) {
    if (e instanceof RollBack) return db!;
    db?.close();
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^SQLITE_(CANTOPEN|READONLY|FULL|IOERR|PERM|AUTH)/.test(code)) {
      throw new AirlockError(
        'AUDIT_UNAVAILABLE',
        `The audit trail cannot be written: ${file} is read-only, on a full or read-only file system, or not accessible (${code}: ${(e as Error).message}). ` +
          'Airlock refuses to run without a writable audit trail; nothing was changed.',
      );
    }
    throw e;
  }
}

class RollBack extends Error {}

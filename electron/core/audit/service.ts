import path from 'node:path';
import { AirlockError } from '../../../shared/domain/errors';
import type { Role } from '../../../shared/domain/roles';
import type { Db } from '../db/db';
import type { Handlers } from '../dispatch';
import type { CoreConfig } from '../types';
import type { Vault } from '../vault/vault';
import { sharedPool } from '../workers/pool';
import { AuditAlarms } from './alarm';
import { AuditTrail } from './audit';
import { exportAudit } from './export';
import { AuditForwarder } from './forward';
import { AuditKeys } from './keys';
import { scansBodies, type ListOptions } from './query';
import { verifyAudit } from './verify';

export const HIGH_WATER_FILE = 'audit.head';

type AuditChannel =
  | 'audit:list'
  | 'audit:verify'
  | 'audit:export'
  | 'audit:getForwarding'
  | 'audit:setForwarding'
  | 'audit:alarmStatus'
  | 'audit:acknowledgeAlarm';

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
  clock: () => Date;
  random: (n: number) => Buffer;
  config: CoreConfig;
}) {
  const { db, config } = o;
  const keys = new AuditKeys({ db, vault: o.vault, random: o.random });
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

  const handlers: Pick<Handlers, AuditChannel> = {
    'audit:list': async (ctx, input) => {
      const r = await list(input);
      // Who looked at what: the range returned is part of the outcome event.
      ctx.auditDetail({ events: r.events.length, newestSeq: r.events[0]?.seq ?? null, oldestSeq: r.events[r.events.length - 1]?.seq ?? null });
      return r;
    },
    'audit:verify': async (ctx, input) => {
      const r = await verifyAudit({
        db,
        dbFile: o.dbFile,
        headFile,
        fromSeq: input.fromSeq,
        toSeq: input.toSeq,
        workerThreshold,
        onProgress: (checked, total) => ctx.client.emit('audit:verify-progress', { checked, total }),
      });
      if (alarms.status().active) ctx.auditDetail({ alarm: alarms.status().active?.id });
      ctx.auditDetail({ ok: r.ok, checked: r.checked, checkpoints: r.checkpoints, firstBadSeq: r.firstBad?.seq ?? null, kind: r.firstBad?.kind ?? null });
      return r;
    },
    'audit:export': async (ctx, input) => {
      const r = await exportAudit({ db, dataDir: o.dataDir, format: input.format, fromSeq: input.fromSeq, toSeq: input.toSeq, now: o.clock, random: o.random });
      ctx.auditDetail({ file: path.basename(r.file), events: r.events, sha256: r.sha256, fromSeq: r.fromSeq, toSeq: r.toSeq });
      return r;
    },
    'audit:getForwarding': () => forwarder.status(),
    'audit:setForwarding': (ctx, input) => {
      if ('off' in input) forwarder.configure(null, 0);
      else {
        // By default forwarding starts with the request that turned it on.
        const from = input.fromSeq ?? ctx.requestSeq ?? trail.head().seq + 1;
        forwarder.configure({ host: input.host, port: input.port, tls: input.tls, caPem: input.caPem ?? null }, from);
      }
      return forwarder.status();
    },
    'audit:alarmStatus': () => alarms.status(),
    'audit:acknowledgeAlarm': (ctx, input) => {
      const r = alarms.acknowledge(ctx.requireSession().user, input.id, input.reason, ctx.requestSeq);
      ctx.auditDetail({ alarm: input.id, anchorSeq: r.alarms.find((a) => a.id === input.id)?.acknowledged?.anchorSeq ?? null });
      return r;
    },
  };

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
      probe.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('airlock.write-probe', '')").run();
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

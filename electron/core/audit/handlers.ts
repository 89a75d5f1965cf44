import path from 'node:path';
import type { Db } from '../db/db';
import type { AreaHandlers } from '../dispatch';
import type { AuditAlarms } from './alarm';
import type { AuditTrail } from './audit';
import { verifyBundleLines } from './bundle';
import { exportAudit } from './export';
import type { AuditForwarder } from './forward';
import type { ListOptions, listEvents } from './query';
import { verifyAudit } from './verify';

/** Reading, verifying and exporting the trail, syslog forwarding, the audit alarm (built by audit/service.ts). */
export function auditHandlers(d: {
  db: Db;
  dbFile: string;
  dataDir: string;
  headFile: string;
  workerThreshold: number;
  clock: () => Date;
  random: (n: number) => Buffer;
  trail: AuditTrail;
  alarms: AuditAlarms;
  forwarder: AuditForwarder;
  /** audit:list's search, in a worker on a large trail. */
  list: (opts: ListOptions) => Promise<ReturnType<typeof listEvents>>;
}): AreaHandlers<'audit'> {
  return {
    'audit:list': async (ctx, input) => {
      const r = await d.list(input);
      // Who looked at what: the range returned is part of the outcome event.
      ctx.auditDetail({ events: r.events.length, newestSeq: r.events[0]?.seq ?? null, oldestSeq: r.events[r.events.length - 1]?.seq ?? null });
      return r;
    },
    'audit:verify': async (ctx, input) => {
      const r = await verifyAudit({
        db: d.db,
        dbFile: d.dbFile,
        headFile: d.headFile,
        fromSeq: input.fromSeq,
        toSeq: input.toSeq,
        trust: input.trust ?? null,
        workerThreshold: d.workerThreshold,
        onProgress: (checked, total) => ctx.client.emit('audit:verify-progress', { checked, total }),
      });
      if (d.alarms.status().active) ctx.auditDetail({ alarm: d.alarms.status().active?.id });
      ctx.auditDetail({ ok: r.ok, checked: r.checked, checkpoints: r.checkpoints, firstBadSeq: r.firstBad?.seq ?? null, kind: r.firstBad?.kind ?? null });
      return r;
    },
    'audit:export': async (ctx, input) => {
      const r = await exportAudit({ db: d.db, dataDir: d.dataDir, format: input.format, fromSeq: input.fromSeq, toSeq: input.toSeq, now: d.clock, random: d.random });
      ctx.auditDetail({ file: path.basename(r.file), events: r.events, sha256: r.sha256, fromSeq: r.fromSeq, toSeq: r.toSeq });
      return r;
    },
    'audit:verifyBundle': async (ctx, input) => {
      const r = await verifyBundleLines(input.text.split('\n'), input.trust);
      ctx.auditDetail({ ok: r.ok, events: r.events, fromSeq: r.fromSeq, toSeq: r.toSeq, firstBadSeq: r.firstBad?.seq ?? null, keyFingerprints: r.keyFingerprints });
      return r;
    },
    'audit:getForwarding': () => d.forwarder.status(),
    'audit:setForwarding': (ctx, input) => {
      if ('off' in input) d.forwarder.configure(null, 0);
      else {
        // By default forwarding starts with the request that turned it on.
        const from = input.fromSeq ?? ctx.requestSeq ?? d.trail.head().seq + 1;
        d.forwarder.configure({ host: input.host, port: input.port, tls: input.tls, caPem: input.caPem ?? null }, from);
      }
      return d.forwarder.status();
    },
    'audit:alarmStatus': () => d.alarms.status(),
    'audit:acknowledgeAlarm': (ctx, input) => {
      const r = d.alarms.acknowledge(ctx.requireSession().user, input.id, input.reason, ctx.requestSeq);
      ctx.auditDetail({ alarm: input.id, anchorSeq: r.alarms.find((a) => a.id === input.id)?.acknowledged?.anchorSeq ?? null });
      return r;
    },
  };
}

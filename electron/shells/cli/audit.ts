import fs from 'node:fs';
import path from 'node:path';
import type { Out } from '../../../shared/contract/index';
import { ExportFormat } from '../../../shared/contract/audit';
import type { BundleReport } from '../../../shared/contract/audit';
import { verifyBundleFile } from '../../core/audit/bundle';
import { FILE_LIMITS, readTextFile } from '../cli-files';
import { clean } from './io';
import { arg, call, command, opt, type AreaTable } from './spec';

const FROM = opt.int('N', 'from this event (sequence number)');
const TO = opt.int('N', 'up to this event');

const showAlarms = (v: Out<'audit:alarmStatus'>) => {
  const show = (a: Out<'audit:alarmStatus'>['alarms'][number]) =>
    `#${a.id}\t${a.acknowledged ? 'acknowledged' : 'OPEN'}\t${a.kind} at event ${a.firstBadSeq}\traised ${a.raisedAt}\n  ${clean(a.reason)}\n` +
    (a.acknowledged ? `  acknowledged by ${clean(a.acknowledged.by)} at ${a.acknowledged.at}: ${clean(a.acknowledged.reason)}; re-anchored at event ${a.acknowledged.anchorSeq}\n` : '');
  const head = v.active
    ? `AUDIT ALARM #${v.active.id} is open: writes are refused until an officer runs \`airlock audit acknowledge ${v.active.id} --reason R\`.\n`
    : 'No audit alarm is open.\n';
  return head + v.alarms.map(show).join('');
};

export const audit: AreaTable = {
  area: 'audit',
  about: 'the signed, hash-chained audit trail',
  commands: [
    call({
      words: 'audit list',
      channel: 'audit:list',
      options: { limit: opt.int('N', 'the newest N events (default 50)') },
      input: (c) => ({ limit: c.opts.limit ?? 50 }),
      human: (v) =>
        v.events
          .map((e) => `${e.seq}\t${e.ts}\t${clean(e.actor)}\t${e.channel}\t${e.phase}\t${clean(e.target ?? '-')}\t${e.outcome}${e.errorCode ? ' ' + e.errorCode : ''}`)
          .join('\n') + '\n',
    }),
    call({
      words: 'audit verify',
      channel: 'audit:verify',
      options: { from: FROM, to: TO, trust: opt.string('FP', 'trust begins at this audit key fingerprint (noted at setup) instead of the oldest version on record') },
      notes: [
        'verify the chain and every checkpoint signature; exit 1 names the first bad event and what happened to it',
        'after rotations of the audit key, each version verifies only its part of the chain, reached by handovers its predecessor signed',
      ],
      failsWhen: 'the chain is broken (the first bad event is named)',
      input: (c) => ({ fromSeq: c.opts.from, toSeq: c.opts.to, ...(c.opts.trust ? { trust: c.opts.trust } : {}) }),
      human: (v) => {
        const notes = (v.warnings ?? []).map((w) => `warning: ${w}\n`).join('');
        return v.ok
          ? `Audit chain OK: ${v.checked} events (${v.fromSeq ?? 1}–${v.toSeq ?? v.headSeq}), ${v.checkpoints} checkpoint signature(s) verified` +
              `${v.keyFingerprint ? ` with ${(v.keyFingerprints?.length ?? 0) > 1 ? v.keyFingerprints!.join(' → ') : v.keyFingerprint}` : ''}, head ${v.headSeq} ${v.headHash}\n${notes}`
          : `Audit chain BROKEN at event ${v.firstBad?.seq} (${v.firstBad?.kind}): ${clean(v.firstBad?.reason)} (${v.checked} events verified before it)\n${notes}`;
      },
      exit: (v) => (v.ok ? 0 : 1),
    }),
    command({
      words: 'audit export',
      channel: 'audit:export',
      options: {
        format: opt.string('jsonl|csv|bundle', 'the file format (bundle: JSONL with the audit keys and their handovers, for `audit verify-bundle`)', { required: true, schema: ExportFormat }),
        from: FROM,
        to: TO,
        out: opt.string('FILE', "also copy the export here (it is always written to the data directory's exports/)"),
      },
      async run(c) {
        const o = c.opts;
        const r = await c.call('audit:export', { format: o.format as 'jsonl' | 'csv' | 'bundle', fromSeq: o.from, toSeq: o.to });
        if (!r.ok) return c.fail(r);
        let file = r.value.file;
        if (o.out) {
          fs.copyFileSync(r.value.file, o.out);
          file = path.resolve(o.out);
        }
        c.out(`Exported ${r.value.events} events (${r.value.fromSeq ?? '-'}–${r.value.toSeq ?? '-'}) to ${file}\nsha256 ${r.value.sha256}\n`, { ...r.value, file });
        return 0;
      },
    }),
    command({
      words: 'audit verify-bundle',
      // Always offline: the file and the pinned fingerprint are all an auditor needs (the console's own check is the same code).
      channel: 'audit:verifyBundle',
      args: { file: arg.one('FILE', 'an audit bundle (`audit export --format bundle`)') },
      options: { trust: opt.string('FP', 'the audit key fingerprint noted at setup (`audit verify` prints it)', { required: true }) },
      summary: 'Verify an audit bundle offline (no data directory, no sign-in): every event, every checkpoint, across rotations of the audit key from the one pinned',
      failsWhen: 'the bundle is not verified (the first bad event is named)',
      needs: 'nothing',
      async run(c) {
        let v: BundleReport;
        try {
          v = await verifyBundleFile(c.args.file, c.opts.trust);
        } catch (e) {
          return c.usage(`cannot read ${c.args.file}: ${(e as Error).message}`);
        }
        const notes = v.warnings.map((w) => `warning: ${w}\n`).join('');
        c.out(
          v.ok
            ? `Audit bundle OK: ${v.events} events (${v.fromSeq}–${v.toSeq}), ${v.checkpoints} checkpoint signature(s) verified with ${v.keyFingerprints.join(' → ')}\n${notes}`
            : `Audit bundle NOT VERIFIED at event ${v.firstBad?.seq} (${v.firstBad?.kind}): ${clean(v.firstBad?.reason)}\n${notes}`,
          v,
        );
        return v.ok ? 0 : 1;
      },
    }),
    command({
      words: 'audit forward',
      channel: 'audit:setForwarding',
      alsoCalls: ['audit:getForwarding'],
      options: {
        host: opt.string('H', 'the syslog receiver'),
        port: opt.int('P', 'its TCP port (with --host)'),
        tls: opt.flag('over TLS'),
        ca: opt.string('FILE', 'the CA certificate (PEM) the receiver must chain to (with --tls)'),
        off: opt.flag('stop forwarding'),
      },
      summary: 'Show, set or stop syslog forwarding of every audit event (RFC 5424 over TCP, optionally TLS); with no option: show',
      async run(c) {
        const o = c.opts;
        let r;
        if (o.off) r = await c.call('audit:setForwarding', { off: true });
        else if (o.host !== undefined) {
          if (o.port === undefined) return c.usage('audit forward needs --port P with --host H');
          if (o.ca && !o.tls) c.usage('--ca goes with --tls');
          const caPem = o.ca ? readTextFile(o.ca, FILE_LIMITS.pem) : undefined;
          r = await c.call('audit:setForwarding', { host: o.host, port: o.port, tls: o.tls, ...(caPem ? { caPem } : {}) });
        } else r = await c.call('audit:getForwarding', {});
        if (!r.ok) return c.fail(r);
        const f = r.value;
        c.out(
          f.enabled
            ? `Forwarding audit events to ${f.host}:${f.port}${f.tls ? ` over TLS${f.caFingerprint ? ` (CA ${f.caFingerprint})` : ''}` : ' (plain TCP)'}; ` +
                `sent up to event ${f.forwardedSeq} of ${f.headSeq}${f.lastError ? `; last error: ${clean(f.lastError)}` : ''}\n`
            : 'Audit forwarding is off.\n',
          f,
        );
        return 0;
      },
    }),
    call({
      words: 'audit alarm',
      channel: 'audit:alarmStatus',
      notes: ['writes are refused while an alarm is open'],
      failsWhen: 'an alarm is open',
      input: () => ({}),
      human: showAlarms,
      exit: (v) => (v.active ? 1 : 0),
    }),
    call({
      words: 'audit acknowledge',
      channel: 'audit:acknowledgeAlarm',
      args: { id: arg.int('ID', 'the open alarm (`airlock audit alarm`)') },
      options: { reason: opt.string('R', 'why it is safe to go on (recorded)', { required: true }) },
      input: (c) => ({ id: c.args.id, reason: c.opts.reason }),
      human: showAlarms,
    }),
  ],
};

import type { Run, StepRecord } from '../../../shared/contract/provision';
import { FILE_LIMITS, readJsonFile, readTextFile, UsageError } from '../cli-files';
import { clean } from './io';
import { arg, call, command, opt, type AreaTable } from './spec';

/** Provisioning commands: playbooks, plan, apply, resume, runs, drift. */

const HOSTS = opt.strings('SELECTOR', 'host names, all, or label:L (repeat, or separate with commas)', { required: true });
const CONCURRENCY = opt.int('N', 'hosts at a time');
const selectors = (hosts: string[]) => hosts.flatMap((h) => h.split(',')).filter(Boolean);

/** `--params FILE` (JSON {step: {param: value}}) and `--set step.param=JSON` on top. */
function overrides(o: { params?: string | undefined; set: string[] }): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const usage = (m: string): never => {
    throw new UsageError(m);
  };
  const file = o.params;
  if (file) {
    const v = readJsonFile(file, FILE_LIMITS.params);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) usage('--params FILE must hold a JSON object {"step": {"param": value}}');
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x !== 'object' || x === null || Array.isArray(x)) usage(`--params FILE: "${k}" must hold an object {"param": value}`);
      out[k] = { ...(x as Record<string, unknown>) };
    }
  }
  for (const s of o.set) {
    const m = /^([a-z0-9][a-z0-9_-]*)\.([A-Za-z0-9_]+)=(.*)$/s.exec(s) ?? usage(`--set ${s}: expected STEP.PARAM=JSON`);
    let value: unknown;
    try {
      value = JSON.parse(m[3]!);
    } catch {
      value = m[3]; // a bare string
    }
    (out[m[1]!] ??= {})[m[2]!] = value;
  }
  return out;
}

const mark: Record<StepRecord['status'], string> = {
  pending: '·',
  running: '…',
  ok: 'ok',
  changed: 'changed',
  'would-change': 'would change',
  failed: 'FAILED',
  cancelled: 'cancelled',
  interrupted: 'INTERRUPTED',
  skipped: 'skipped',
};

export function formatRun(r: Run): string {
  const lines = [`${r.kind} ${r.id} — ${r.playbook} ${r.playbookVersion} — ${r.status}${r.attempts > 1 ? ` (attempt ${r.attempts})` : ''}`];
  for (const h of r.hosts) {
    lines.push(`  ${h.host}: ${h.status}${h.message ? ` — ${clean(h.message, 300)}` : ''}${h.attestationId ? ` — attestation ${h.attestationId}` : ''}`);
    for (const s of h.steps) {
      const t = s.transfer ? ` [${s.transfer.done}/${s.transfer.total} bytes, ${s.transfer.sent} sent]` : '';
      const d = s.durationMs !== null ? ` ${s.durationMs} ms` : '';
      lines.push(`    ${String(s.idx + 1).padStart(2)}. ${s.stepId} (${s.type}): ${mark[s.status]}${d}${t}${s.message ? ` — ${clean(s.message, 500)}` : ''}`);
      for (const ch of s.changes) lines.push(`        ${ch.kind} ${clean(ch.target, 200)}: ${clean(ch.from ?? '(none)', 120)} → ${clean(ch.to ?? '(none)', 120)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Progress lines while a run goes (human mode only). */
export function progressPrinter(write: (s: string) => void) {
  const last = new Map<string, string>();
  return (event: string, payload: unknown) => {
    if (event !== 'provision:progress') return;
    const p = payload as { host: string; step: StepRecord | null; hostStatus: string };
    const s = p.step;
    const line = s ? `${p.host} ${s.stepId}: ${s.phase ?? ''} ${mark[s.status]}${s.transfer ? ` ${Math.floor((100 * s.transfer.done) / Math.max(1, s.transfer.total))}%` : ''}` : `${p.host}: ${p.hostStatus}`;
    const k = s ? `${p.host}/${s.idx}` : p.host;
    if (last.get(k) === line) return;
    last.set(k, line);
    write(`${clean(line, 300)}\n`);
  };
}

const runExit = (r: Run) => (r.status === 'succeeded' ? 0 : 1);
const RUN_OPTIONS = {
  playbook: opt.string('NAME', 'the playbook (`airlock provision playbooks`)', { required: true }),
  hosts: HOSTS,
  params: opt.string('FILE', 'parameters: a JSON object {"step": {"param": value}}'),
  set: opt.strings('STEP.PARAM=JSON', 'one parameter, on top of --params (a bare string when not JSON)'),
  concurrency: CONCURRENCY,
};
const SELECTOR_NOTE = 'SELECTOR: host names, all, label:L';

/** `provision plan` and `provision apply`: the same options, input and output; only what they do differs. */
function runCommand(kind: 'plan' | 'apply', does: string, failsWhen: string) {
  return call({
    words: `provision ${kind}`,
    channel: `provision:${kind}`,
    options: RUN_OPTIONS,
    notes: [SELECTOR_NOTE, does],
    failsWhen,
    input: (c) => ({ playbook: c.opts.playbook, hosts: selectors(c.opts.hosts), params: overrides(c.opts), concurrency: c.opts.concurrency }),
    human: formatRun,
    exit: runExit,
  });
}

export const provision: AreaTable = {
  area: 'provision',
  about: 'playbooks: plan, apply, resume, drift',
  commands: [
    call({
      words: 'provision playbooks',
      channel: 'provision:playbooks',
      input: () => ({}),
      human: (v) =>
        v
          .map((p) => `${p.name} ${p.version} (${p.source}, sha256 ${p.digest.slice(0, 16)}…)\n  ${clean(p.description, 500)}\n${p.steps.map((s, i) => `  ${i + 1}. ${s.id}: ${s.title} [${s.type}]${s.needs.store.length ? ` needs ${s.needs.store.join(', ')}` : ''}\n`).join('')}`)
          .join('\n'),
    }),
    call({
      words: 'provision import-playbook',
      channel: 'provision:importPlaybook',
      args: { file: arg.one('FILE', 'the playbook (JSON, airlock.playbook/v1)') },
      notes: ['validated against the schema and the step catalogue, never run blind'],
      input: (c) => ({ text: readTextFile(c.args.file, FILE_LIMITS.playbook) }),
      human: (v) => `Imported ${v.name} ${v.version} (${v.steps.length} steps, sha256 ${v.digest})\n`,
    }),
    runCommand('plan', 'plan changes nothing', 'the plan did not succeed on every host'),
    runCommand('apply', 'apply runs check → apply → verify per step and attests each host it finishes; progress goes to stderr', 'the run did not succeed on every host'),
    call({
      words: 'provision resume',
      channel: 'provision:resume',
      args: { run: arg.one('RUN', 'the run id (`airlock provision runs`)') },
      options: { concurrency: CONCURRENCY },
      failsWhen: 'the run did not succeed on every host',
      input: (c) => ({ runId: c.args.run, concurrency: c.opts.concurrency }),
      human: formatRun,
      exit: runExit,
    }),
    call({
      words: 'provision status',
      channel: 'provision:status',
      args: { run: arg.one('RUN', 'the run id') },
      input: (c) => ({ runId: c.args.run }),
      human: formatRun,
    }),
    call({
      words: 'provision runs',
      channel: 'provision:runs',
      options: { limit: opt.int('N', 'the newest N runs (default 50)') },
      input: (c) => ({ limit: c.opts.limit ?? 50 }),
      human: (v) => v.map((x) => `${x.id}\t${x.kind}\t${x.playbook}\t${x.status}\t${x.hostCount} host(s)\t${x.failedHosts} failed\t${x.startedAt}\t${x.actor}\n`).join(''),
    }),
    command({
      words: 'provision disable-egress',
      channel: 'provision:disableEgressLockdown',
      args: { host: arg.one('HOST', 'the host whose egress lockdown is removed') },
      options: { reason: opt.string('R', 'why: the two-person rule files the call as an approval request (exit 3); another person approves, then `approvals execute`') },
      notes: ['removes the nftables egress lockdown the egress step installed; needs a second person (policy provision:disableEgressLockdown)'],
      run: (c) =>
        c.guarded('provision:disableEgressLockdown', { host: c.args.host }, (v) =>
          c.out(v.removed ? `Removed the egress lockdown of ${v.host}\n` : `${v.host} had no egress lockdown: nothing to remove\n`, v),
        ),
    }),
    call({
      words: 'provision drift',
      channel: 'provision:drift',
      options: { hosts: HOSTS },
      notes: ['compares hosts with their last attestation'],
      failsWhen: 'a host drifted or could not be checked',
      input: (c) => ({ hosts: selectors(c.opts.hosts) }),
      human: (v) =>
        v
          .map(
            (d) =>
              `${d.host}: ${d.error ? `error — ${clean(d.error, 300)}` : d.drifted ? `DRIFTED from ${d.attestationId}` : `as attested (${d.attestationId})`}\n` +
              d.items.map((i) => `  ${i.stepId} ${clean(i.path, 200)}: attested ${clean(JSON.stringify(i.attested), 200)}, now ${clean(JSON.stringify(i.now), 200)}\n`).join(''),
          )
          .join(''),
      exit: (v) => (v.some((d) => d.drifted || d.error) ? 1 : 0),
    }),
  ],
};

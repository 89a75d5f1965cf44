import crypto from 'node:crypto';
import fs from 'node:fs';
import type { ChannelName, Out } from '../../shared/contract/index';
import type { Run, StepRecord } from '../../shared/contract/provision';
import type { Result } from '../../shared/domain/errors';
import { verifyAttestationText } from '../core/attest/attest';
import { sanitizeHostText } from '../core/ssh/sanitize';
import { FILE_LIMITS, readJsonFile, readTextFile } from './cli-files';

/** Provisioning, offline store and attestation commands of the CLI. */
export const PROVISION_COMMANDS = [
  'provision playbooks',
  'provision import-playbook',
  'provision plan',
  'provision apply',
  'provision resume',
  'provision status',
  'provision runs',
  'provision drift',
  'store list',
  'store import-debs',
  'store import-model',
  'attest list',
  'attest show',
  'attest verify',
  'attest key',
  'hosts label',
] as const;

export const PROVISION_HELP = `  hosts label NAME [--label L...]        set a host's labels (selectors: label:L)
  provision playbooks                    playbooks, their steps and parameters
  provision import-playbook FILE         add an organisation playbook (validated, never run blind)
  provision plan|apply --playbook NAME --hosts SELECTOR [--hosts ...] [--params FILE]
                 [--set STEP.PARAM=JSON ...] [--concurrency N]
                                         SELECTOR: host names, all, label:L. plan changes nothing;
                                         apply runs check → apply → verify per step and attests
  provision resume RUN | provision status RUN | provision runs [--limit N]
  provision drift --hosts SELECTOR       compare hosts with their last attestation
  store list | store import-debs DIR | store import-model DIR --name N --version V
                                         the offline store (DIR holds SHA256SUMS; under a media root)
  attest list [--host H] | attest show ID|--host H [--out FILE]
  attest key                             this console's attestation public key (PEM)
  attest verify FILE [--key PUBLIC.pem]  with --key: offline, no sign-in; else against this console's key
`;

export const PROVISION_OPTIONS = {
  playbook: { type: 'string' },
  hosts: { type: 'string', multiple: true },
  params: { type: 'string' },
  set: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  name: { type: 'string' },
  version: { type: 'string' },
  label: { type: 'string', multiple: true },
  key: { type: 'string' },
} as const;

export interface ProvisionCliCtx {
  key: string;
  rest: string[];
  o: Record<string, unknown>;
  json: boolean;
  call: <C extends ChannelName>(channel: C, input: unknown) => Promise<Result<Out<C>>>;
  out: (human: string, value: unknown) => void;
  fail: (r: Extract<Result<unknown>, { ok: false }>) => number;
  usage: (msg: string) => never;
  int: (name: string, v: string | undefined) => number | undefined;
}

const clean = (s: unknown, n = 4096) => sanitizeHostText(s ?? '', n);

/** `--params FILE` (JSON {step: {param: value}}) and `--set step.param=JSON` on top. */
function overrides(c: ProvisionCliCtx): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const file = c.o.params as string | undefined;
  if (file) {
    const v = readJsonFile(file, FILE_LIMITS.params);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) c.usage('--params FILE must hold a JSON object {"step": {"param": value}}');
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x !== 'object' || x === null || Array.isArray(x)) c.usage(`--params FILE: "${k}" must hold an object {"param": value}`);
      out[k] = { ...(x as Record<string, unknown>) };
    }
  }
  for (const s of (c.o.set as string[] | undefined) ?? []) {
    const m = /^([a-z0-9][a-z0-9_-]*)\.([A-Za-z0-9_]+)=(.*)$/s.exec(s);
    if (!m) c.usage(`--set ${s}: expected STEP.PARAM=JSON`);
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

/**
 * An import hashes and copies gigabytes: Ctrl-C cancels it through ops:cancel, so the core stops
 * and removes its temporary copy (the store keeps nothing of it). A second Ctrl-C kills as usual.
 */
async function cancellableImport<T>(c: ProvisionCliCtx, run: (requestId: string) => Promise<T>): Promise<T> {
  const requestId = `cli-import-${crypto.randomBytes(8).toString('hex')}`;
  const onInterrupt = () => void c.call('ops:cancel', { requestId });
  process.once('SIGINT', onInterrupt);
  try {
    return await run(requestId);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

/** Runs one provisioning/store/attest command; returns the exit code. */
export async function provisionCommand(c: ProvisionCliCtx): Promise<number> {
  const { key, rest, o, call, out, fail } = c;
  const runExit = (r: Run) => (r.status === 'succeeded' ? 0 : 1);
  switch (key) {
    case 'hosts label': {
      const name = rest[0] ?? c.usage('hosts label needs a NAME');
      const r = await call('hosts:setLabels', { name, labels: (o.label as string[] | undefined) ?? [] });
      if (!r.ok) return fail(r);
      out(`${r.value.name}: ${r.value.labels.join(', ') || '(no labels)'}\n`, r.value);
      return 0;
    }
    case 'provision playbooks': {
      const r = await call('provision:playbooks', {});
      if (!r.ok) return fail(r);
      out(
        r.value
          .map((p) => `${p.name} ${p.version} (${p.source}, sha256 ${p.digest.slice(0, 16)}…)\n  ${clean(p.description, 500)}\n${p.steps.map((s, i) => `  ${i + 1}. ${s.id}: ${s.title} [${s.type}]${s.needs.store.length ? ` needs ${s.needs.store.join(', ')}` : ''}\n`).join('')}`)
          .join('\n'),
        r.value,
      );
      return 0;
    }
    case 'provision import-playbook': {
      const file = rest[0] ?? c.usage('provision import-playbook needs a FILE');
      const r = await call('provision:importPlaybook', { text: readTextFile(file, FILE_LIMITS.playbook) });
      if (!r.ok) return fail(r);
      out(`Imported ${r.value.name} ${r.value.version} (${r.value.steps.length} steps, sha256 ${r.value.digest})\n`, r.value);
      return 0;
    }
    case 'provision plan':
    case 'provision apply': {
      const playbook = (o.playbook as string | undefined) ?? c.usage(`${key} needs --playbook NAME`);
      const hosts = (o.hosts as string[] | undefined) ?? c.usage(`${key} needs --hosts SELECTOR`);
      const input = { playbook, hosts: hosts.flatMap((h) => h.split(',')).filter(Boolean), params: overrides(c), concurrency: c.int('concurrency', o.concurrency as string | undefined) };
      const r = await call(key === 'provision plan' ? 'provision:plan' : 'provision:apply', input);
      if (!r.ok) return fail(r);
      out(formatRun(r.value), r.value);
      return runExit(r.value);
    }
    case 'provision resume': {
      const runId = rest[0] ?? c.usage('provision resume needs a RUN id');
      const r = await call('provision:resume', { runId, concurrency: c.int('concurrency', o.concurrency as string | undefined) });
      if (!r.ok) return fail(r);
      out(formatRun(r.value), r.value);
      return runExit(r.value);
    }
    case 'provision status': {
      const runId = rest[0] ?? c.usage('provision status needs a RUN id');
      const r = await call('provision:status', { runId });
      if (!r.ok) return fail(r);
      out(formatRun(r.value), r.value);
      return 0;
    }
    case 'provision runs': {
      const r = await call('provision:runs', { limit: c.int('limit', o.limit as string | undefined) ?? 50 });
      if (!r.ok) return fail(r);
      out(r.value.map((x) => `${x.id}\t${x.kind}\t${x.playbook}\t${x.status}\t${x.hostCount} host(s)\t${x.failedHosts} failed\t${x.startedAt}\t${x.actor}\n`).join(''), r.value);
      return 0;
    }
    case 'provision drift': {
      const hosts = (o.hosts as string[] | undefined) ?? c.usage('provision drift needs --hosts SELECTOR');
      const r = await call('provision:drift', { hosts: hosts.flatMap((h) => h.split(',')).filter(Boolean) });
      if (!r.ok) return fail(r);
      out(
        r.value
          .map(
            (d) =>
              `${d.host}: ${d.error ? `error — ${clean(d.error, 300)}` : d.drifted ? `DRIFTED from ${d.attestationId}` : `as attested (${d.attestationId})`}\n` +
              d.items.map((i) => `  ${i.stepId} ${clean(i.path, 200)}: attested ${clean(JSON.stringify(i.attested), 200)}, now ${clean(JSON.stringify(i.now), 200)}\n`).join(''),
          )
          .join(''),
        r.value,
      );
      return r.value.some((d) => d.drifted || d.error) ? 1 : 0;
    }
    case 'store list': {
      const r = await call('store:list', {});
      if (!r.ok) return fail(r);
      out(
        `Packages:\n${r.value.debs.map((d) => `  ${d.package} ${d.version} ${d.arch}\t${d.size} bytes\tsha256 ${d.sha256}\n`).join('') || '  (none)\n'}` +
          `Models:\n${r.value.models.map((m) => `  ${m.name} ${m.version}\t${m.files.length} file(s), ${m.size} bytes\n`).join('') || '  (none)\n'}` +
          `Media roots: ${r.value.mediaRoots.join(', ')}\n`,
        r.value,
      );
      return 0;
    }
    case 'store import-debs': {
      const dir = rest[0] ?? c.usage('store import-debs needs a DIR');
      const r = await cancellableImport(c, (requestId) => call('store:importDebs', { dir, requestId }));
      if (!r.ok) return fail(r);
      out(`Imported ${r.value.imported.length} package(s)${r.value.already ? `, ${r.value.already} already in the store` : ''}:\n${r.value.imported.map((d) => `  ${d.package} ${d.version} ${d.arch}\n`).join('')}`, r.value);
      return 0;
    }
    case 'store import-model': {
      const dir = rest[0] ?? c.usage('store import-model needs a DIR');
      const name = o.name ?? c.usage('--name N');
      const version = o.version ?? c.usage('--version V');
      const r = await cancellableImport(c, (requestId) => call('store:importModel', { dir, name, version, requestId }));
      if (!r.ok) return fail(r);
      out(`Imported model ${r.value.name} ${r.value.version}: ${r.value.files.length} file(s), ${r.value.size} bytes\n`, r.value);
      return 0;
    }
    case 'attest list': {
      const r = await call('attest:list', { host: o.host });
      if (!r.ok) return fail(r);
      out(r.value.map((a) => `${a.id}\t${a.host}\t${a.playbook}\t${a.createdAt}\t${a.run}\n`).join(''), r.value);
      return 0;
    }
    case 'attest show': {
      const r = await call('attest:show', rest[0] ? { id: rest[0] } : { host: o.host ?? c.usage('attest show needs an ID or --host H') });
      if (!r.ok) return fail(r);
      const text = JSON.stringify(r.value, null, 2) + '\n';
      if (o.out) {
        fs.writeFileSync(o.out as string, text, { mode: 0o644 });
        out(`Wrote ${r.value.attestation.id} to ${o.out as string}\n`, { file: o.out, id: r.value.attestation.id });
      } else out(text, r.value);
      return 0;
    }
    case 'attest key': {
      const r = await call('attest:key', {});
      if (!r.ok) return fail(r);
      out(r.value.publicKey ? `${r.value.fingerprint}\n${r.value.publicKey}` : 'No attestation has been signed yet.\n', r.value);
      return 0;
    }
    case 'attest verify': {
      const file = rest[0] ?? c.usage('attest verify needs a FILE');
      const r = await call('attest:verify', { text: readTextFile(file, FILE_LIMITS.attestation) });
      if (!r.ok) return fail(r);
      out(formatVerify(r.value), r.value);
      return r.value.ok ? 0 : 1;
    }
    default:
      return c.usage(`unknown command "${key}"`);
  }
}

/** `attest verify FILE --key PEM`: offline, no data directory, no sign-in. */
export function verifyOffline(file: string, keyFile: string) {
  return verifyAttestationText(readTextFile(file, FILE_LIMITS.attestation), readTextFile(keyFile, FILE_LIMITS.pem));
}

export function formatVerify(v: { ok: boolean; keyFingerprint: string | null; host: string | null; problems: string[] }): string {
  return v.ok
    ? `OK: attestation for ${clean(v.host, 80)} signed by ${v.keyFingerprint}\n`
    : `NOT VERIFIED${v.host ? ` (attestation for ${clean(v.host, 80)})` : ''}:\n${v.problems.map((p) => `  - ${clean(p, 500)}\n`).join('')}`;
}

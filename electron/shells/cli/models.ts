import crypto from 'node:crypto';
import type { z } from 'zod';
import { CatalogName, CatalogVersion, Classification, ModelFormat, type ModelVersion } from '../../../shared/contract/models';
import { drive, must, SHARES, UNSEAL_CALLS, withShares } from './keys';
import { arg, call, command, opt, type AreaTable, type Ctx } from './spec';

/**
 * `airlock models …`: the catalog (issue 13). An import hashes gigabytes: Ctrl-C cancels it
 * through ops:cancel. `approve` of a phi version is under the two-person rule: with --reason it is
 * filed as an approval request (exit 3); an officer approves it, then `airlock approvals execute ID`.
 */

const NAME = arg.one('NAME', 'the model (lowercase; also its registry repository models/NAME)', { schema: CatalogName });
const VERSION = arg.one('VERSION', 'the version (also its registry tag)', { schema: CatalogVersion });
const FORMAT = opt.string('F', 'directory, oci-layout or modelkit (default: directory on import; the format it was imported from otherwise)', { schema: ModelFormat });
const MEDIA = opt.string('P', 'the media path (default: where the version was imported from)');
const REASON_REQUIRED = opt.string('R', 'why (at least 3 characters): recorded with the status', { required: true });
const REASON = opt.string('R', 'why: with it, approving a phi version is filed as an approval request (exit 3)');

type V = z.output<typeof ModelVersion>;
const bytes = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} B`);
const line = (v: V) =>
  `${v.model} ${v.version}\t${v.classification}\t${v.status}\t${v.files} file(s), ${bytes(v.totalBytes)}${v.manifestDigest ? `\t${v.manifestDigest}` : ''}${v.publications.length ? `\tpublished: ${v.publications.map((p) => `${p.registry}/${p.repository}:${p.tag}`).join(', ')}` : ''}\n`;
const said = (v: V) => `${v.model} ${v.version} is ${v.status}${v.manifestDigest ? ` (${v.manifestDigest})` : ''}${v.statusReason ? `: ${v.statusReason}` : ''}\n`;

/** `--dataset ID:ROLE` → a lineage entry. */
function lineageOf(c: Ctx, values: string[]): { dataset: string; role: 'training' | 'fine-tuning' | 'evaluation' }[] {
  return values.map((s) => {
    const m = /^([^:]+):(training|fine-tuning|evaluation)$/.exec(s);
    if (!m) c.usage(`--dataset ${s}: write ID:ROLE, ROLE one of training, fine-tuning, evaluation`);
    return { dataset: m![1]!, role: m![2] as 'training' | 'fine-tuning' | 'evaluation' };
  });
}

export const models: AreaTable = {
  area: 'models',
  about: 'the models catalog: versions imported from removable media, their lineage, approval and publishing',
  commands: [
    call({
      words: 'models list',
      channel: 'models:list',
      input: () => ({}),
      human: (v) => (v.models.flatMap((m) => m.versions.map(line)).join('') || '(no models in the catalog)\n') + `Registry: ${v.registry ?? '(not set)'}\n`,
    }),
    call({
      words: 'models show',
      channel: 'models:show',
      args: { name: NAME, version: VERSION },
      input: (c) => ({ name: c.args.name, version: c.args.version }),
      human: (v) =>
        line(v.version) +
        `Owner: ${v.owner}\n${v.description ? `Description: ${v.description}\n` : ''}License: ${v.version.license}\nImported: ${v.version.importedAt} by ${v.version.importedBy} (${v.version.format}) from ${v.version.source}\n` +
        `Status: ${v.version.status} since ${v.version.statusAt} by ${v.version.statusBy}${v.version.statusReason ? ` — ${v.version.statusReason}` : ''}\n` +
        `Artifact digest: ${v.artifactDigest}\n` +
        `Lineage:\n${v.version.lineage.map((l) => `  ${l.role}: ${l.dataset} (${l.classification}${l.retentionUntil ? `, kept until ${l.retentionUntil}` : ''})\n`).join('') || '  (none)\n'}` +
        `Base: ${v.ancestry.map((a) => `${a.model} ${a.version} (${a.classification}, ${a.status})`).join(' ← ') || '(none)'}\n` +
        `Files:\n${v.files.map((f) => `  ${f.sha256}  ${f.size}\t${f.path}\n`).join('')}` +
        `Published:\n${v.version.publications.map((p) => `  ${p.registry}/${p.repository}:${p.tag}@${p.digest}${p.encrypted ? ' (encrypted)' : ''} on ${p.publishedAt} by ${p.publishedBy}\n`).join('') || '  (nowhere)\n'}`,
    }),
    command({
      words: 'models import',
      channel: 'models:import',
      alsoCalls: ['ops:cancel'],
      args: { name: NAME, version: VERSION, path: arg.one('PATH', 'on removable media, under a media root: a directory of weight files or an OCI image layout, or a ModelKit tarball') },
      options: {
        format: FORMAT,
        owner: opt.string('O', 'who answers for the model', { required: true }),
        classification: opt.string('C', 'public, internal, confidential or phi', { required: true, schema: Classification }),
        license: opt.string('L', 'its licence (SPDX id or the contract)', { required: true }),
        source: opt.string('S', 'where it came from (vendor, training run, ticket)', { required: true }),
        description: opt.string('D', 'what the model is for (a new model only)'),
        dataset: opt.strings('ID:ROLE', 'a dataset of its lineage and its role: training, fine-tuning or evaluation (repeat)'),
        base: opt.string('NAME:VERSION', 'the base model version it was fine-tuned from'),
      },
      notes: ['Ctrl-C cancels the import (ops:cancel): nothing is recorded'],
      async run(c) {
        const o = c.opts;
        const base = o.base ? /^([^:]+):(.+)$/.exec(o.base) : null;
        if (o.base && !base) c.usage(`--base ${o.base}: write NAME:VERSION`);
        const requestId = `cli-import-${crypto.randomBytes(8).toString('hex')}`;
        const onInterrupt = () => void c.call('ops:cancel', { requestId });
        process.once('SIGINT', onInterrupt);
        try {
          const r = await c.call('models:import', {
            format: (o.format ?? 'directory') as z.output<typeof ModelFormat>,
            path: c.args.path,
            name: c.args.name,
            version: c.args.version,
            owner: o.owner,
            classification: o.classification as z.output<typeof Classification>,
            license: o.license,
            source: o.source,
            ...(o.description ? { description: o.description } : {}),
            lineage: lineageOf(c as unknown as Ctx, o.dataset),
            ...(base ? { base: { name: base[1]!, version: base[2]! } } : {}),
            requestId,
          });
          if (!r.ok) return c.fail(r);
          c.out(`Imported ${r.value.model} ${r.value.version} (${r.value.classification}): ${r.value.files} file(s), ${bytes(r.value.totalBytes)}; it is staged until approved\n`, r.value);
          return 0;
        } finally {
          process.removeListener('SIGINT', onInterrupt);
        }
      },
    }),
    command({
      words: 'models approve',
      channel: 'models:approve',
      args: { name: NAME, version: VERSION },
      options: { digest: opt.string('D', 'the artifact digest you reviewed (models show): refused if the version is no longer that'), reason: REASON },
      notes: ['A version classified phi needs a second person: with --reason the approval is filed (exit 3); a security officer approves it, then approvals execute ID'],
      run: (c) => c.guarded('models:approve', { name: c.args.name, version: c.args.version, ...(c.opts.digest ? { digest: c.opts.digest } : {}) }, (v) => c.out(said(v), v)),
    }),
    call({
      words: 'models deprecate',
      channel: 'models:deprecate',
      args: { name: NAME, version: VERSION },
      options: { reason: REASON_REQUIRED },
      input: (c) => ({ name: c.args.name, version: c.args.version, reason: c.opts.reason }),
      human: said,
    }),
    call({
      words: 'models revoke',
      channel: 'models:revoke',
      args: { name: NAME, version: VERSION },
      options: { reason: REASON_REQUIRED },
      input: (c) => ({ name: c.args.name, version: c.args.version, reason: c.opts.reason }),
      human: said,
    }),
    call({
      words: 'models verify',
      channel: 'models:verify',
      args: { name: NAME, version: VERSION },
      options: { path: MEDIA, format: FORMAT },
      failsWhen: 'a file is missing, extra or changed',
      input: (c) => ({ name: c.args.name, version: c.args.version, ...(c.opts.path ? { path: c.opts.path } : {}), ...(c.opts.format ? { format: c.opts.format as z.output<typeof ModelFormat> } : {}) }),
      human: (v, c) =>
        v.ok
          ? `${c.args.name} ${c.args.version}: every file matches the catalog\n`
          : `${c.args.name} ${c.args.version} does NOT match the catalog:\n${v.missing.map((f) => `  missing  ${f}\n`).join('')}${v.extra.map((f) => `  extra    ${f}\n`).join('')}${v.changed.map((f) => `  changed  ${f}\n`).join('')}`,
      exit: (v) => (v.ok ? 0 : 1),
    }),
    command({
      words: 'models publish',
      channel: 'models:publish',
      alsoCalls: [...UNSEAL_CALLS],
      args: { name: NAME, version: VERSION },
      options: { path: MEDIA, format: FORMAT, share: SHARES },
      notes: ["a confidential or phi version goes into the registry encrypted under a models data key: give the officers' shares with --share to unseal the key hierarchy for this command"],
      run: (c) =>
        drive(c as unknown as Ctx, (log) =>
          withShares(c as unknown as Ctx, c.opts.share, log, async () => {
            const p = await must(
              c.call('models:publish', { name: c.args.name, version: c.args.version, ...(c.opts.path ? { path: c.opts.path } : {}), ...(c.opts.format ? { format: c.opts.format as z.output<typeof ModelFormat> } : {}) }),
            );
            return { human: `Published to ${p.registry}/${p.repository}:${p.tag}@${p.digest}${p.encrypted ? ' (layers encrypted)' : ''}\n`, value: p };
          }),
        ),
    }),
    call({
      words: 'models registry',
      channel: 'models:registry',
      input: () => ({}),
      human: (r) => (r.url ? `${r.url} (set ${r.updatedAt} by ${r.updatedBy})\n` : '(no registry set: models set-registry URL)\n'),
    }),
    call({
      words: 'models set-registry',
      channel: 'models:setRegistry',
      args: { url: arg.one('URL', 'http(s)://host:port of the registry') },
      input: (c) => ({ url: c.args.url }),
      human: (r) => `Model versions are published to ${r.url}\n`,
    }),
  ],
};

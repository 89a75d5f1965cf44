import type { z } from 'zod';
import { Classification, DatasetId } from '../../../shared/contract/models';
import { arg, call, opt, type AreaTable } from './spec';

/** `airlock datasets …`: the datasets model lineage names (issue 13). */

const ID = arg.one('ID', 'the dataset id (lowercase letters, digits, . _ -)', { schema: DatasetId });

export const datasets: AreaTable = {
  area: 'datasets',
  about: 'datasets of the catalog: classification, retention and where they are, for model lineage',
  commands: [
    call({
      words: 'datasets add',
      channel: 'datasets:add',
      args: { id: ID },
      options: {
        name: opt.string('N', 'what people call it', { required: true }),
        classification: opt.string('C', 'public, internal, confidential or phi', { required: true, schema: Classification }),
        location: opt.string('L', 'where it is (a vault, a share, a system of record)', { required: true }),
        owner: opt.string('O', 'who answers for it', { required: true }),
        retention: opt.string('YYYY-MM-DD', 'kept until'),
        description: opt.string('D', 'what it holds'),
      },
      input: (c) => ({
        id: c.args.id,
        name: c.opts.name,
        classification: c.opts.classification as z.output<typeof Classification>,
        location: c.opts.location,
        owner: c.opts.owner,
        ...(c.opts.retention ? { retentionUntil: c.opts.retention } : {}),
        ...(c.opts.description ? { description: c.opts.description } : {}),
      }),
      human: (d) => `Added dataset ${d.id} (${d.classification}${d.retentionUntil ? `, kept until ${d.retentionUntil}` : ''})\n`,
    }),
    call({
      words: 'datasets list',
      channel: 'datasets:list',
      input: () => ({}),
      human: (v) => v.map((d) => `${d.id}\t${d.classification}\t${d.retentionUntil ?? '-'}\t${d.name}\t${d.location}\n`).join('') || '(no datasets)\n',
    }),
    call({
      words: 'datasets show',
      channel: 'datasets:show',
      args: { id: ID },
      input: (c) => ({ id: c.args.id }),
      human: (v) =>
        `${v.dataset.id}: ${v.dataset.name} (${v.dataset.classification})\nOwner: ${v.dataset.owner}\nLocation: ${v.dataset.location}\nRetention: ${v.dataset.retentionUntil ?? '(none set)'}\n${v.dataset.description ? `Description: ${v.dataset.description}\n` : ''}` +
        `Used by:\n${v.usedBy.map((u) => `  ${u.model} ${u.version} (${u.role}, ${u.status})\n`).join('') || '  (no model version)\n'}`,
    }),
  ],
};

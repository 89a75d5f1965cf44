import crypto from 'node:crypto';
import { arg, call, command, opt, type AreaTable, type Ctx } from './spec';

/**
 * An import hashes and copies gigabytes: Ctrl-C cancels it through ops:cancel, so the core stops
 * and removes its temporary copy (the store keeps nothing of it). A second Ctrl-C kills as usual.
 */
async function cancellableImport<T>(c: Pick<Ctx, 'call'>, run: (requestId: string) => Promise<T>): Promise<T> {
  const requestId = `cli-import-${crypto.randomBytes(8).toString('hex')}`;
  const onInterrupt = () => void c.call('ops:cancel', { requestId });
  process.once('SIGINT', onInterrupt);
  try {
    return await run(requestId);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

const DIR = arg.one('DIR', 'a directory on removable media (under a media root, AIRLOCK_MEDIA_ROOTS) holding SHA256SUMS');
const CTRL_C = 'Ctrl-C cancels the import (ops:cancel): the store keeps nothing of it';

export const store: AreaTable = {
  area: 'store',
  about: 'the offline store: .deb packages and model weights from removable media',
  commands: [
    call({
      words: 'store list',
      channel: 'store:list',
      input: () => ({}),
      human: (v) =>
        `Packages:\n${v.debs.map((d) => `  ${d.package} ${d.version} ${d.arch}\t${d.size} bytes\tsha256 ${d.sha256}\n`).join('') || '  (none)\n'}` +
        `Models:\n${v.models.map((m) => `  ${m.name} ${m.version}\t${m.files.length} file(s), ${m.size} bytes\n`).join('') || '  (none)\n'}` +
        `Media roots: ${v.mediaRoots.join(', ')}\n`,
    }),
    command({
      words: 'store import-debs',
      channel: 'store:importDebs',
      alsoCalls: ['ops:cancel'],
      args: { dir: DIR },
      notes: [CTRL_C],
      async run(c) {
        const r = await cancellableImport(c, (requestId) => c.call('store:importDebs', { dir: c.args.dir, requestId }));
        if (!r.ok) return c.fail(r);
        c.out(`Imported ${r.value.imported.length} package(s)${r.value.already ? `, ${r.value.already} already in the store` : ''}:\n${r.value.imported.map((d) => `  ${d.package} ${d.version} ${d.arch}\n`).join('')}`, r.value);
        return 0;
      },
    }),
    command({
      words: 'store import-model',
      channel: 'store:importModel',
      alsoCalls: ['ops:cancel'],
      args: { dir: DIR },
      options: { name: opt.string('N', 'the model name', { required: true }), version: opt.string('V', 'its version', { required: true }) },
      notes: [CTRL_C],
      async run(c) {
        const { name, version } = c.opts;
        const r = await cancellableImport(c, (requestId) => c.call('store:importModel', { dir: c.args.dir, name, version, requestId }));
        if (!r.ok) return c.fail(r);
        c.out(`Imported model ${r.value.name} ${r.value.version}: ${r.value.files.length} file(s), ${r.value.size} bytes\n`, r.value);
        return 0;
      },
    }),
  ],
};

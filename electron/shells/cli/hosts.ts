import type { Out } from '../../../shared/contract/index';
import { Address, Fingerprint, HostName, Port, SshUser } from '../../../shared/contract/common';
import type { ScanOutcome } from '../../../shared/contract/hosts';
import { FILE_LIMITS, readTextFile } from '../cli-files';
import { EXIT } from './exit';
import { clean } from './io';
import { arg, call, command, opt, type AreaTable, type Ctx } from './spec';

const PORT = opt.int('P', 'SSH port (default 22)', { schema: Port });
/** On `hosts add` and `hosts import-known-hosts`, --user is the SSH login, as in OpenSSH. */
const SSH_USER = opt.string('U', 'the SSH login user on the host (default root), as in OpenSSH; the acting Airlock user then comes from --as NAME or AIRLOCK_USER', {
  schema: SshUser,
});
const FINGERPRINT = opt.string('SHA256:...', "the host key's fingerprint, as compared with the host (`hosts probe`); without it, the key an imported known_hosts holds, else shown and asked on a terminal", {
  schema: Fingerprint,
});

const sshUserOpt = (o: { user?: string | undefined }) => (o.user ? { user: o.user } : {});

function formatHosts(hosts: Out<'hosts:list'>): string {
  if (hosts.length === 0) return 'No hosts enrolled. Add one with `airlock hosts add NAME --address A`.\n';
  return (
    hosts
      .map((h) => {
        const inv = h.inventory;
        const gpus = inv ? (inv.gpus.length ? `${inv.gpus.length}x ${clean(inv.gpus[0]!.name)} (driver ${clean(inv.driverVersion)})` : `no GPU${inv.gpuError ? ': ' + clean(inv.gpuError) : ''}`) : '-';
        return [h.name, `${h.address}:${h.port}`, h.user, h.status, h.fingerprint ?? 'unconfirmed', clean(inv?.os ?? '-'), gpus, h.lastError ? clean(h.lastError) : ''].join('\t');
      })
      .join('\n') + '\n'
  );
}

/**
 * `hosts add` and `hosts confirm`: pin a fingerprint the operator compared, the one an imported
 * known_hosts holds, or — on a terminal — the one the host shows, after an explicit "yes".
 */
async function pin(
  c: Ctx,
  verb: 'add' | 'confirm',
  name: string,
  o: { address?: string | undefined; port?: number | undefined; user?: string | undefined; fingerprint?: string | undefined },
): Promise<number> {
  const { io, json } = c;
  let address = o.address;
  let port = o.port ?? 22;
  if (verb === 'confirm') {
    const list = await c.call('hosts:list', {});
    if (!list.ok) return c.fail(list);
    const h = list.value.find((x) => x.name === name);
    if (!h) return c.fail({ ok: false, error: { code: 'NOT_FOUND', message: `No host named "${name}".` } });
    address = h.address;
    port = h.port;
  } else if (!address) c.usage('hosts add needs --address A');
  let fingerprint = o.fingerprint;
  if (!fingerprint) {
    // A key imported from known_hosts (hashed or not) for this address is pinned without asking.
    const imported = verb === 'confirm' ? await c.call('hosts:confirm', { name }) : await c.call('hosts:add', { name, address: address!, port, ...sshUserOpt(o) });
    if (imported.ok) {
      c.out(`Pinned ${imported.value.name} (${imported.value.address}:${imported.value.port}) ${imported.value.fingerprint} from the imported known_hosts\n`, imported.value);
      return EXIT.ok;
    }
    if (imported.error.code !== 'HOST_KEY_UNCONFIRMED') return c.fail(imported);
    const probe = await c.call('hosts:probe', { address: address!, port });
    if (!probe.ok) return c.fail(probe);
    const fp = probe.value.fingerprint;
    if (json || !io.prompt) {
      // A script must pin what a person compared, never whatever the network presented.
      return c.fail({
        ok: false,
        error: {
          code: 'HOST_KEY_UNCONFIRMED',
          message: `The host at ${address}:${port} presents ${probe.value.keyType} ${fp}. Compare it with the host's key and re-run with --fingerprint ${fp}.`,
        },
      });
    }
    io.stderr(`The host at ${address}:${port} presents this ${probe.value.keyType} key:\n  ${fp}\n`);
    if (probe.value.pinned && probe.value.pinned.fingerprint !== fp) {
      io.stderr(`WARNING: ${address}:${port} is pinned as "${probe.value.pinned.host}" with ${probe.value.pinned.fingerprint}.\n`);
    }
    const answer = (await io.prompt('Is this the host key you expect? Type "yes" to pin it: ')).trim();
    if (answer !== 'yes') {
      io.stderr('Not pinned; nothing was changed.\n');
      return EXIT.failed;
    }
    fingerprint = fp;
  }
  const r = verb === 'confirm' ? await c.call('hosts:confirm', { name, fingerprint }) : await c.call('hosts:add', { name, address: address!, port, fingerprint, ...sshUserOpt(o) });
  if (!r.ok) return c.fail(r);
  c.out(`Pinned ${r.value.name} (${r.value.address}:${r.value.port}) ${r.value.fingerprint}\n`, r.value);
  return EXIT.ok;
}

/**
 * `hosts repin`: accept a changed host key. Both keys are shown side by side; the new one is pinned
 * only with --fingerprint (what the person compared on the host) or, on a terminal, after "yes".
 */
async function repin(c: Ctx, name: string, o: { fingerprint?: string | undefined }): Promise<number> {
  const { io, json } = c;
  const list = await c.call('hosts:list', {});
  if (!list.ok) return c.fail(list);
  const h = list.value.find((x) => x.name === name);
  if (!h) return c.fail({ ok: false, error: { code: 'NOT_FOUND', message: `No host named "${name}".` } });
  if (!h.fingerprint) return c.fail({ ok: false, error: { code: 'HOST_KEY_UNCONFIRMED', message: `${name} has no pinned key yet: run \`airlock hosts confirm ${name}\`.` } });
  const probe = await c.call('hosts:probe', { address: h.address, port: h.port });
  if (!probe.ok) return c.fail(probe);
  const presented = probe.value.fingerprint;
  let fingerprint = o.fingerprint;
  if (!fingerprint) {
    const both = `pinned:    ${h.keyType ?? '?'} ${h.fingerprint}\npresented: ${probe.value.keyType} ${presented}`;
    if (json || !io.prompt) {
      return c.fail({
        ok: false,
        error: { code: 'HOST_KEY_UNCONFIRMED', message: `${name} (${h.address}:${h.port}):\n${both}\nCompare the presented key with the host's own and re-run with --fingerprint ${presented}.` },
      });
    }
    io.stderr(`${name} (${h.address}:${h.port}):\n${both}\n`);
    const answer = (await io.prompt('Is the presented key the one the host shows on its console? Type "yes" to pin it: ')).trim();
    if (answer !== 'yes') {
      io.stderr('Not pinned; nothing was changed.\n');
      return EXIT.failed;
    }
    fingerprint = presented;
  }
  const r = await c.call('hosts:repin', { name, pinned: h.fingerprint, fingerprint });
  if (!r.ok) return c.fail(r);
  c.out(`Pinned ${r.value.name} (${r.value.address}:${r.value.port}) ${r.value.fingerprint}, replacing ${h.fingerprint}\n`, r.value);
  return EXIT.ok;
}

/** The models directory's state on a scan line (only for hosts whose directory Airlock encrypted). */
function modelsWords(m: ScanOutcome['models']): string {
  if (!m) return '';
  if (m.error) return `\tmodels: ${m.error.code}: ${clean(m.error.message)}`;
  if (m.unlocked) return '\tmodels: unlocked by this scan';
  if (m.state === 'locked') return '\tmodels: LOCKED (unseal the key hierarchy, or keys unlock-models)';
  return `\tmodels: ${m.state ?? 'unknown'}`;
}

function formatImport(v: Out<'hosts:importKnownHosts'>): string {
  return (
    v.added.map((a) => `added\t${a.name}\t${a.address}:${a.port}\t${a.fingerprint ?? 'unconfirmed: run `airlock hosts confirm ' + a.name + '`'}`).join('\n') +
    (v.added.length ? '\n' : '') +
    v.skipped.map((s) => `skipped\t${clean(s.entry)}\t${clean(s.reason)}`).join('\n') +
    (v.skipped.length ? '\n' : '') +
    v.kept.map((k) => `kept\tline ${k.line}: hashed\t${k.keyType} ${k.fingerprint}: pinned by \`airlock hosts add NAME --address A\``).join('\n') +
    (v.kept.length ? '\n' : '') +
    v.revoked.map((k) => `revoked\tline ${k.line}\t${k.keyType} ${k.fingerprint}${k.hosts.length ? `: refused for ${k.hosts.map((h) => clean(h)).join(', ')}` : ''}`).join('\n') +
    (v.revoked.length ? '\n' : '')
  );
}

export const hosts: AreaTable = {
  area: 'hosts',
  about: 'enrolled hosts: host keys, inventory, labels',
  commands: [
    call({
      words: 'hosts list',
      channel: 'hosts:list',
      input: () => ({}),
      human: formatHosts,
    }),
    call({
      words: 'hosts probe',
      channel: 'hosts:probe',
      args: { address: arg.optional('ADDRESS', 'the host name or IP address to connect to') },
      options: { address: opt.string('A', 'the address (instead of ADDRESS)', { schema: Address }), port: PORT },
      input: (c) => ({ address: c.args.address ?? c.opts.address ?? c.usage('hosts probe needs an ADDRESS'), port: c.opts.port ?? 22 }),
      human: (v) => `${v.address}:${v.port} ${v.keyType} ${v.fingerprint}\n`,
    }),
    command({
      words: 'hosts add',
      channel: 'hosts:add',
      alsoCalls: ['hosts:probe'],
      args: { name: arg.one('NAME', "the host's name in Airlock", { schema: HostName }) },
      options: { address: opt.string('A', 'host name or IP address', { required: true, schema: Address }), port: PORT, user: SSH_USER, fingerprint: FINGERPRINT },
      notes: ['without --fingerprint: a key imported from known_hosts for the address is pinned; else the host\'s fingerprint is shown and, on a terminal, pinned only on "yes"; under --json (or with no terminal) the command refuses and prints the fingerprint to compare'],
      run: (c) => pin(c as unknown as Ctx, 'add', c.args.name, c.opts),
    }),
    command({
      words: 'hosts confirm',
      channel: 'hosts:confirm',
      alsoCalls: ['hosts:list', 'hosts:probe'],
      args: { name: arg.one('NAME', 'an imported, unconfirmed host', { schema: HostName }) },
      options: { fingerprint: FINGERPRINT },
      run: (c) => pin(c as unknown as Ctx, 'confirm', c.args.name, c.opts),
    }),
    command({
      words: 'hosts repin',
      channel: 'hosts:repin',
      alsoCalls: ['hosts:list', 'hosts:probe'],
      args: { name: arg.one('NAME', 'a host whose key changed', { schema: HostName }) },
      options: { fingerprint: opt.string('SHA256:...', 'the new key, as compared with the host; without it, both keys are shown and, on a terminal, the new one is pinned only on "yes"', { schema: Fingerprint }) },
      run: (c) => repin(c as unknown as Ctx, c.args.name, c.opts),
    }),
    call({
      words: 'hosts edit',
      channel: 'hosts:update',
      args: { name: arg.one('NAME', 'the host', { schema: HostName }) },
      options: { address: opt.string('A', 'new host name or IP address', { schema: Address }), port: PORT, user: SSH_USER },
      notes: ['the pinned key stays: the next connection must present it at the new address (else accept the new key with `hosts repin`)'],
      input: (c) => {
        const change = { ...(c.opts.address !== undefined ? { address: c.opts.address } : {}), ...(c.opts.port !== undefined ? { port: c.opts.port } : {}), ...sshUserOpt(c.opts) };
        if (!Object.keys(change).length) c.usage('hosts edit needs --address A, --port P or --user U');
        return { name: c.args.name, ...change };
      },
      human: (v) => `${v.name}\t${v.address}:${v.port}\t${v.user}\t${v.status}\t${v.fingerprint ?? 'unconfirmed'}\n`,
    }),
    call({
      words: 'hosts remove',
      channel: 'hosts:remove',
      args: { name: arg.one('NAME', 'the host') },
      input: (c) => ({ name: c.args.name }),
      human: (_v, c) => `Removed ${c.args.name}\n`,
      json: (_v, c) => ({ removed: c.args.name }),
    }),
    call({
      words: 'hosts scan',
      channel: 'hosts:scan',
      args: { names: arg.rest('NAME', 'hosts to scan (all when none named)') },
      options: { 'timeout-ms': opt.int('N', 'per-host timeout in milliseconds') },
      input: (c) => ({ names: c.args.names.length ? c.args.names : undefined, timeoutMs: c.opts['timeout-ms'] }),
      human: (v) =>
        v
          .map((s) =>
            s.ok
              ? `${s.name}\treachable\t${clean(s.inventory?.os)}\t${s.inventory?.gpus.length ?? 0} GPU(s)${s.inventory?.gpus[0] ? ' ' + clean(s.inventory.gpus[0].name) : ''}\t${s.ms} ms${modelsWords(s.models)}`
              : `${s.name}\t${s.status}\t${s.error?.code}: ${clean(s.error?.message)}`,
          )
          .join('\n') + '\n',
      failsWhen: 'a host could not be scanned (each host has its line, with its error)',
      exit: (v) => (v.every((s) => s.ok) ? 0 : 1),
    }),
    call({
      words: 'hosts import-known-hosts',
      channel: 'hosts:importKnownHosts',
      args: { file: arg.one('FILE', 'an OpenSSH known_hosts file') },
      options: { user: SSH_USER },
      input: (c) => ({ text: readTextFile(c.args.file, FILE_LIMITS.sshText), ...sshUserOpt(c.opts) }),
      human: formatImport,
    }),
    call({
      words: 'hosts import-ssh-config',
      channel: 'hosts:importSshConfig',
      args: { file: arg.one('FILE', 'an OpenSSH client config (ssh_config)') },
      input: (c) => ({ text: readTextFile(c.args.file, FILE_LIMITS.sshText) }),
      human: formatImport,
    }),
    call({
      words: 'hosts label',
      channel: 'hosts:setLabels',
      args: { name: arg.one('NAME', 'the host') },
      options: { label: opt.strings('L', 'a label (repeat for several; none clears them); provisioning selects hosts by label:L') },
      input: (c) => ({ name: c.args.name, labels: c.opts.label }),
      human: (v) => `${v.name}: ${v.labels.join(', ') || '(no labels)'}\n`,
    }),
  ],
};

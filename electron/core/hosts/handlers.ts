import type { AreaHandlers } from '../dispatch';
import type { HostsService } from './service';

/** The inventory: probe, pin, confirm, re-pin a changed key, edit, label, scan, import known_hosts and ssh_config. */
export function hostsHandlers(d: { hosts: HostsService }): AreaHandlers<'hosts'> {
  const { hosts } = d;
  return {
    'hosts:probe': (ctx, input) => hosts.probe(input.address, input.port, ctx.signal),
    'hosts:add': (ctx, input) => hosts.add(input, ctx.signal),
    'hosts:confirm': (ctx, input) => hosts.confirm(input.name, input.fingerprint, ctx.signal),
    'hosts:repin': (ctx, input) => hosts.repin(input.name, input.pinned, input.fingerprint, ctx.signal, ctx.auditDetail),
    'hosts:update': (ctx, { name, ...change }) => hosts.update(name, change, ctx.auditDetail),
    'hosts:remove': (_ctx, input) => (hosts.remove(input.name), {}),
    'hosts:list': () => hosts.list(),
    'hosts:setLabels': (_ctx, input) => hosts.setLabels(input.name, input.labels),
    'hosts:scan': (ctx, input) => hosts.scan(input.names, ctx.sshAuth(), ctx.signal, input.timeoutMs),
    'hosts:importKnownHosts': (_ctx, input) => hosts.importKnownHosts(input.text, input.user),
    'hosts:importSshConfig': (_ctx, input) => hosts.importSshConfig(input.text),
  };
}

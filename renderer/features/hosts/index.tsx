import { useApp } from '../../context';
import { rolesFor, type Feature, type FeatureProps } from '../feature';
import { HostsView } from './HostsView';

/** "Terminal" on a host row opens the terminal feature on that host, for those who may open one; the empty view links to Identity. */
function Hosts({ open }: FeatureProps) {
  const { can } = useApp();
  return <HostsView onOpenTerminal={can('terminal:open') ? (name) => open('terminal', name) : null} onOpenIdentity={can('identity:show') ? () => open('identity') : null} />;
}

export const hosts: Feature = {
  id: 'hosts',
  label: 'Hosts',
  roles: rolesFor('hosts:list'),
  component: Hosts,
  // Run by HostsView (useCommand): the dialog and the scan's progress are its state.
  commands: [
    { id: 'hosts.enrol', label: 'Enrol a host', channel: 'hosts:add', keywords: 'add new host key fingerprint' },
    { id: 'hosts.scanAll', label: 'Scan all hosts', channel: 'hosts:scan', keywords: 'refresh gpu inventory health' },
  ],
};

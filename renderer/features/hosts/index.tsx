import { useApp } from '../../context';
import { rolesFor, type Feature, type FeatureProps } from '../feature';
import { HostsView } from './HostsView';

/** "Terminal" on a host row opens the terminal feature on that host, for those who may open one; the empty view links to Identity. */
function Hosts({ open }: FeatureProps) {
  const { can } = useApp();
  return <HostsView onOpenTerminal={can('terminal:open') ? (name) => open('terminal', name) : null} onOpenIdentity={can('identity:show') ? () => open('identity') : null} />;
}

export const hosts: Feature = { id: 'hosts', label: 'Hosts', roles: rolesFor('hosts:list'), component: Hosts };

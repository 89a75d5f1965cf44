import { rolesFor, type Feature } from '../feature';
import { GrantsView } from './GrantsView';

export const grants: Feature = {
  id: 'grants',
  label: 'Grants',
  roles: rolesFor('grants:list'),
  component: GrantsView,
};

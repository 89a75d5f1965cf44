import { rolesFor, type Feature } from '../feature';
import { KeysView } from './KeysView';

export const keys: Feature = {
  id: 'keys',
  label: 'Keys',
  roles: rolesFor('keys:status'),
  component: KeysView,
  // Run by KeysView (useCommand): offered only while the hierarchy is unsealed.
  commands: [{ id: 'keys.seal', label: 'Seal the key hierarchy', channel: 'keys:seal', keywords: 'keys root kek lock close' }],
};

import { rolesFor, type Feature } from '../feature';
import { ProvisionView } from './ProvisionView';

// The store and attestation panels (features/store, features/attest) are tabs of this page.
export const provision: Feature = {
  id: 'provision',
  label: 'Provisioning',
  roles: rolesFor('provision:runs'),
  component: ProvisionView,
  keepMounted: true,
  // Run by ProvisionView (useCommand): the plan form is its state.
  commands: [{ id: 'provision.plan', label: 'Plan a playbook', channel: 'provision:plan', keywords: 'provision apply run deploy' }],
};

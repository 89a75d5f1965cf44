import { rolesFor, type Feature } from '../feature';
import { IdentityView } from './IdentityView';

export const identity: Feature = { id: 'identity', label: 'Identity', roles: rolesFor('identity:show'), component: IdentityView };

import { rolesFor, type Feature } from '../feature';
import { AccountView } from './AccountView';

// One's own account: the password (session:changePassword) with the TOTP card (features/totp)
// and, for admins, the settings form (features/settings) composed into one page.
export const account: Feature = { id: 'account', label: 'My account', roles: rolesFor('session:changePassword'), component: AccountView };

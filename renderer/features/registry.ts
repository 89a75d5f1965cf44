import type { Role } from '../../shared/domain/roles';
import { approvals } from './approvals';
import { audit } from './audit';
import { sees, type Feature } from './feature';
import { grants } from './grants';
import { hosts } from './hosts';
import { identity } from './identity';
import { keys } from './keys';
import { models } from './models';
import { provision } from './provision';
import { account } from './session';
import { terminal } from './terminal';
import { users } from './users';

/** Every feature of the console, in nav order. A new feature is one folder and one line here. */
export const features: readonly Feature[] = [hosts, terminal, provision, audit, approvals, keys, models, grants, identity, users, account];

/** The nav a user with these roles sees. */
export function navFor(roles: readonly Role[]): Feature[] {
  return features.filter((f) => sees(roles, f));
}

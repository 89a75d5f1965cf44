import { rolesFor, type Feature } from '../feature';
import { UsersView } from './UsersView';

export const users: Feature = { id: 'users', label: 'Users', roles: rolesFor('users:list'), component: UsersView };

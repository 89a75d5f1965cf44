import { rolesFor, type Feature } from '../feature';
import { AuditView } from './AuditView';

export const audit: Feature = { id: 'audit', label: 'Audit', roles: rolesFor('audit:list'), component: AuditView };

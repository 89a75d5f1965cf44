import { rolesFor, type Feature } from '../feature';
import { AuditView } from './AuditView';

export const audit: Feature = {
  id: 'audit',
  label: 'Audit',
  roles: rolesFor('audit:list'),
  component: AuditView,
  // Run by AuditView's verify panel (useCommand).
  commands: [{ id: 'audit.verify', label: 'Verify the audit trail', channel: 'audit:verify', keywords: 'chain integrity check' }],
};

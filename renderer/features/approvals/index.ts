import { rolesFor, type Feature } from '../feature';
import { ApprovalsBadge } from './ApprovalsBadge';
import { ApprovalsView } from './ApprovalsView';

export const approvals: Feature = { id: 'approvals', label: 'Approvals', roles: rolesFor('approvals:list'), component: ApprovalsView, badge: ApprovalsBadge };

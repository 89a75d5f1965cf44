import { rolesFor, type Feature } from '../feature';
import { TerminalView } from './TerminalView';

export const terminal: Feature = { id: 'terminal', label: 'Terminal', roles: rolesFor('terminal:open'), component: TerminalView, keepMounted: true };

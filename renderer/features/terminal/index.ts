import { rolesFor, type Feature } from '../feature';
import { TAB_KEYS, TerminalView } from './TerminalView';

const onTerminal = (shown: string) => shown === 'terminal';

export const terminal: Feature = {
  id: 'terminal',
  label: 'Terminal',
  roles: rolesFor('terminal:open'),
  component: TerminalView,
  keepMounted: true,
  commands: [
    {
      id: 'terminal.new',
      label: 'New terminal to {choice}',
      channel: 'terminal:open',
      keywords: 'ssh shell session tab open',
      // Hosts with a confirmed key: the only ones a terminal opens to.
      choices: async ({ client }) => {
        const r = await client.hosts.list({});
        if (!r.ok) return [];
        return r.value.filter((h) => h.fingerprint !== null).map((h) => ({ value: h.name, label: h.name, detail: `${h.user}@${h.address}:${h.port}` }));
      },
      run: (ctx, host) => host && ctx.open('terminal', host),
    },
    // Electron passes Ctrl+PageUp/PageDown to the page; a browser keeps them for its own tabs,
    // so Alt+PageUp/PageDown do the same there.
    { id: 'terminal.next', label: 'Next terminal tab', keys: 'Ctrl+PageDown / Alt+PageDown', when: onTerminal },
    { id: 'terminal.previous', label: 'Previous terminal tab', keys: 'Ctrl+PageUp / Alt+PageUp', when: onTerminal },
    { id: 'terminal.closeTab', label: 'Close this terminal tab', keywords: 'session disconnect', when: onTerminal },
  ],
  shortcuts: [
    { keys: `${TAB_KEYS[0]} … ${TAB_KEYS[8]}`, what: 'Terminal tab 1 to 9' },
    { keys: 'Ctrl+Shift+C / Ctrl+Shift+V', what: 'Copy the selection / paste, in a terminal' },
  ],
};

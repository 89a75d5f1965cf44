import { UserName } from '../../../shared/contract/common';
import { initPassword } from './passwords';
import { command, opt, type AreaTable } from './spec';

/** First run. Not a channel area: `init` is one word and needs no sign-in (there is nobody yet). */
export const init: AreaTable = {
  area: 'init',
  about: 'first run',
  commands: [
    command({
      words: 'init',
      channel: 'session:setup',
      alsoCalls: ['identity:show', 'session:status'],
      needs: 'core',
      options: {
        admin: opt.string('NAME', 'the first administrator', { required: true, schema: UserName }),
        'new-password-file': opt.string('F', "the administrator's password, from a file (or AIRLOCK_NEW_PASSWORD; else --password-file/AIRLOCK_PASSWORD, it is their own; else typed twice on a terminal)"),
        'generate-password': opt.flag('refused: choose the first administrator\'s password', { hidden: true }),
      },
      notes: ["prints Airlock's SSH public key, for each host's ~/.ssh/authorized_keys"],
      async run(c) {
        const password = await initPassword(c.opts, c.io);
        const r = await c.call('session:setup', { admin: c.opts.admin, password });
        if (!r.ok) return c.fail(r);
        const id = await c.call('identity:show', {});
        const status = await c.call('session:status', {});
        const restriction = status.ok ? (status.value.user?.restriction ?? null) : null;
        c.out(
          `Created administrator ${r.value.name}, the vault and Airlock's SSH identity.\n` +
            (id.ok ? `Put this public key in each host's ~/.ssh/authorized_keys:\n${id.value.publicKey}\n` : '') +
            (restriction === 'totp-enrolment'
              ? `Administrators must use TOTP: enrol now with \`airlock totp enrol --user ${r.value.name}\`, then \`airlock totp confirm CODE\`.\n`
              : ''),
          { user: r.value, identity: id.ok ? id.value : null, restriction },
        );
        return 0;
      },
    }),
  ],
};

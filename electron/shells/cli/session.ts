import { UsageError } from '../cli-files';
import { NEW_PASSWORD_FILE, newPasswordFrom } from './passwords';
import { command, opt, type AreaTable } from './spec';

export const session: AreaTable = {
  area: 'session',
  about: 'your own sign-in: your password',
  commands: [
    command({
      words: 'session passwd',
      aliases: ['users passwd'],
      channel: 'session:changePassword',
      options: {
        'new-password-file': NEW_PASSWORD_FILE,
        'generate-password': opt.flag('refused: choose your own password', { hidden: true }),
      },
      notes: ['the old password is the one you sign in with (--password-file, AIRLOCK_PASSWORD or the prompt)'],
      async run(c) {
        if (c.opts['generate-password']) throw new UsageError(`${c.words}: choose your own password (--new-password-file F, AIRLOCK_NEW_PASSWORD, or typed on a terminal)`);
        const next = await newPasswordFrom(c.opts['new-password-file'], c.io.env.AIRLOCK_NEW_PASSWORD, c.io, 'New password: ');
        const r = await c.call('session:changePassword', { oldPassword: c.password, newPassword: next });
        if (!r.ok) return c.fail(r);
        c.out('Password changed; your vault key slot was re-wrapped and your other sessions ended.\n', { changed: true });
        return 0;
      },
    }),
  ],
};

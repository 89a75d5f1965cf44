import { RoleSchema } from '../../../shared/contract/common';
import { UsageError } from '../cli-files';
import { accountPassword, GENERATE_PASSWORD, NEW_PASSWORD_FILE, NEWPW_NOTE, oneTimeNote } from './passwords';
import { arg, call, command, opt, type AreaTable } from './spec';

const NAME = arg.one('NAME', 'the user');
const ROLES = opt.strings('R', 'a role: admin, officer or auditor (repeat for several)', { required: true, schema: RoleSchema });
const REASON = opt.string('R', 'why: with it, a call the two-person rule refuses is filed as an approval request (exit 3)');
const PASSWORD_OPTIONS = { 'new-password-file': NEW_PASSWORD_FILE, 'generate-password': GENERATE_PASSWORD };

/** users disable, remove, reset-totp, unlock: a NAME in, one sentence out. */
const byName = (words: string, channel: 'users:disable' | 'users:remove' | 'users:resetTotp' | 'users:unlock', said: (name: string) => string) =>
  call({
    words,
    channel,
    args: { name: NAME },
    input: (c) => ({ name: c.args.name }),
    human: (_v, c) => `${said(c.args.name)}\n`,
  });

export const users: AreaTable = {
  area: 'users',
  about: 'local accounts and their roles (administrators)',
  commands: [
    call({
      words: 'users list',
      channel: 'users:list',
      input: () => ({}),
      human: (v) => v.map((u) => `${u.name}\t${u.roles.join(',')}${u.disabled ? '\tdisabled' : ''}`).join('\n') + '\n',
    }),
    command({
      words: 'users create',
      channel: 'users:create',
      args: { name: arg.one('NAME', 'the new user') },
      options: { role: ROLES, 'no-password-change': opt.flag('the user keeps this password (by default they choose their own at first sign-in)'), ...PASSWORD_OPTIONS, reason: REASON },
      notes: [NEWPW_NOTE],
      async run(c) {
        const name = c.args.name;
        if (c.opts['generate-password'] && c.opts['no-password-change']) throw new UsageError('a generated password is one-time: --generate-password cannot go with --no-password-change');
        const pw = await accountPassword(c.opts, c.io, name);
        const input = { name, password: pw.password, roles: c.opts.role as Array<'admin' | 'officer' | 'auditor'>, mustChangePassword: !c.opts['no-password-change'] };
        const note = oneTimeNote(pw, name);
        return await c.guarded(
          'users:create',
          input,
          (v) => c.out(`Created ${v.name} (${v.roles.join(', ')})${v.mustChangePassword ? '; they choose their own password at first sign-in' : ''}\n${note.human}`, { ...v, ...note.json }),
          note,
        );
      },
    }),
    command({
      words: 'users set-roles',
      channel: 'users:setRoles',
      args: { name: NAME },
      options: { role: ROLES, reason: REASON },
      run: (c) =>
        c.guarded('users:setRoles', { name: c.args.name, roles: c.opts.role as Array<'admin' | 'officer' | 'auditor'> }, (v) => c.out(`${v.name} now has the roles ${v.roles.join(', ')}\n`, v)),
    }),
    byName('users disable', 'users:disable', (n) => `Disabled ${n}: their sessions ended and their vault key slot was destroyed`),
    command({
      words: 'users enable',
      channel: 'users:enable',
      args: { name: NAME },
      options: { ...PASSWORD_OPTIONS, reason: REASON },
      notes: [NEWPW_NOTE],
      async run(c) {
        const pw = await accountPassword(c.opts, c.io, c.args.name);
        const note = oneTimeNote(pw, c.args.name);
        return await c.guarded(
          'users:enable',
          { name: c.args.name, password: pw.password },
          (v) => c.out(`Enabled ${v.name} with a new password (a new vault key slot); they choose their own at first sign-in\n${note.human}`, { ...v, ...note.json }),
          note,
        );
      },
    }),
    byName('users remove', 'users:remove', (n) => `Removed ${n} and their vault key slot`),
    command({
      words: 'users reset-password',
      channel: 'users:resetPassword',
      args: { name: NAME },
      options: PASSWORD_OPTIONS,
      notes: [NEWPW_NOTE],
      async run(c) {
        const pw = await accountPassword(c.opts, c.io, c.args.name);
        const note = oneTimeNote(pw, c.args.name);
        const r = await c.call('users:resetPassword', { name: c.args.name, password: pw.password });
        if (!r.ok) return c.fail(r);
        c.out(`Set a new password for ${r.value.name} (new vault key slot); their sessions ended and they choose their own at next sign-in\n${note.human}`, { ...r.value, ...note.json });
        return 0;
      },
    }),
    byName('users reset-totp', 'users:resetTotp', (n) => `Removed ${n}'s TOTP and recovery codes; they enrol again at next sign-in`),
    byName('users unlock', 'users:unlock', (n) => `Cleared the sign-in lockout of ${n}`),
  ],
};

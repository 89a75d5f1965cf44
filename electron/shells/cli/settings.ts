import type { Out } from '../../../shared/contract/index';
import { call, opt, type AreaTable } from './spec';

const show = (v: Out<'settings:get'>) =>
  `idle lock: ${v.sessionIdleMinutes} min\nstep-up window: ${v.stepUpMinutes} min\n` +
  `lockout: after ${v.lockout.threshold} failures, ${v.lockout.baseSeconds} s doubling up to ${v.lockout.maxSeconds} s\n` +
  `TOTP required for: ${v.totpRequiredFor.length ? v.totpRequiredFor.join(', ') : 'nobody (AIRLOCK_TOTP_POLICY=off: lab/test setting)'}\n`;

export const settings: AreaTable = {
  area: 'settings',
  about: 'identity settings: idle lock, step-up window, lockout, TOTP policy',
  commands: [
    call({ words: 'settings show', channel: 'settings:get', input: () => ({}), human: show }),
    call({
      words: 'settings set',
      channel: 'settings:set',
      options: { 'idle-minutes': opt.int('N', 'sign out after N idle minutes'), 'step-up-minutes': opt.int('N', 'a sign-in or step-up covers sensitive operations for N minutes') },
      input: (c) => ({ sessionIdleMinutes: c.opts['idle-minutes'], stepUpMinutes: c.opts['step-up-minutes'] }),
      human: show,
    }),
  ],
};

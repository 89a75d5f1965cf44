import QRCode from 'qrcode';
import { arg, call, command, type AreaTable } from './spec';

const codes = (list: string[]) => list.map((c) => `  ${c}`).join('\n');

export const totp: AreaTable = {
  area: 'totp',
  about: 'your TOTP second factor',
  commands: [
    command({
      words: 'totp enrol',
      channel: 'totp:begin',
      notes: ['the QR code is drawn in the terminal; then confirm with `airlock totp confirm CODE` within 15 minutes'],
      async run(c) {
        const r = await c.call('totp:begin', {});
        if (!r.ok) return c.fail(r);
        const qr = await QRCode.toString(r.value.uri, { type: 'utf8', errorCorrectionLevel: 'M', margin: 2 });
        c.out(
          `Scan this QR code with an authenticator app, or type the secret (shown once):\n\n${qr}\n` +
            `Secret: ${r.value.secret}\nURI:    ${r.value.uri}\n\nThen confirm with \`airlock totp confirm CODE\` within 15 minutes.\n`,
          r.value,
        );
        return 0;
      },
    }),
    call({
      words: 'totp confirm',
      channel: 'totp:confirm',
      args: { code: arg.one('CODE', 'the code your authenticator shows') },
      input: (c) => ({ code: c.args.code.replace(/\s+/g, '') }),
      human: (v) => `TOTP is enrolled. Recovery codes (each works once instead of a code; store them offline, they are not shown again):\n${codes(v.recoveryCodes)}\n`,
    }),
    call({
      words: 'totp recovery-codes',
      channel: 'totp:recoveryCodes',
      input: () => ({}),
      human: (v) => `New recovery codes (the old ones no longer work):\n${codes(v.recoveryCodes)}\n`,
    }),
    call({
      words: 'totp disable',
      channel: 'totp:disable',
      input: () => ({}),
      human: () => 'TOTP removed from your account.\n',
      json: () => ({ disabled: true }),
    }),
  ],
};

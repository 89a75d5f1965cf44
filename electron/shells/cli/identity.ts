import { call, type AreaTable } from './spec';

export const identity: AreaTable = {
  area: 'identity',
  about: "Airlock's own SSH key, which hosts authorize",
  commands: [
    call({
      words: 'identity show',
      channel: 'identity:show',
      notes: ["put the line in each host's ~/.ssh/authorized_keys"],
      input: () => ({}),
      human: (v) => `${v.publicKey}\n`,
    }),
  ],
};

import { startServe } from '../serve';
import { openCore } from './core';
import { command, opt, type AreaTable } from './spec';

/** The browser shell. Not a channel: it serves every channel to one browser tab. */
export const serve: AreaTable = {
  area: 'serve',
  about: 'the browser shell',
  commands: [
    command({
      words: 'serve',
      channel: null,
      summary: 'The browser shell on 127.0.0.1: prints a one-time URL (it works once, within 5 minutes); Ctrl+C stops it',
      needs: 'nothing',
      options: {
        port: opt.int('N', 'the port on 127.0.0.1 (default 0: any free one)'),
        open: opt.flag('accepted, does nothing: open the printed URL yourself', { hidden: true }),
      },
      async run(c) {
        const core = await openCore(c.dataDir, c.io, 'browser');
        try {
          // Refusals and cut-off sockets go to stderr, one line each (the URL in them is the client's: shown escaped).
          const log = (line: string) => c.io.stderr(`${new Date().toISOString()} airlock serve: ${line}\n`);
          const handle = await startServe(core, { port: c.opts.port ?? 0, rendererDir: c.io.rendererDir, log });
          if (c.json) c.io.stdout(JSON.stringify({ url: handle.url, port: handle.port, dataDir: c.dataDir }) + '\n');
          else c.io.stdout(`Airlock is serving ${c.dataDir}\nOpen this one-time URL in a browser on this machine (it works once, within 5 minutes): ${handle.url}\nPress Ctrl+C to stop.\n`);
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
          await handle.close();
          return 0;
        } finally {
          await core.close();
        }
      },
    }),
  ],
};

import readline from 'node:readline';
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
      summary:
        'The browser shell on 127.0.0.1: prints a one-time URL (it works once, within 5 minutes); Enter or SIGUSR1 prints another, for a second person; Ctrl+C stops it',
      needs: 'nothing',
      options: {
        port: opt.int('N', 'the port on 127.0.0.1 (default 0: any free one)'),
        open: opt.flag('accepted, does nothing: open the printed URL yourself', { hidden: true }),
      },
      notes: [
        'each link signs in one window or browser, once, within 5 minutes: for a second person, press Enter here (a terminal in the foreground) or send SIGUSR1 (kill -USR1 PID), or use "Let someone else sign in" on the Account page of a signed-in console',
        'with --json every link is one JSON line {"url", "expiresAt"} (the first one also has "port", "dataDir" and "pid")',
      ],
      async run(c) {
        // Our own SIGUSR1 listener before anything else: Node's default for SIGUSR1 opens its
        // inspector (code execution for any local user on 127.0.0.1:9229). Installed only after
        // the first link was printed, a signal sent as soon as the link is read could still open
        // it. A signal before the server is up asks for a link once it is.
        let another: ((why: string) => void) | null = null;
        let early = false;
        const onUsr1 = () => {
          if (another) another('SIGUSR1');
          else early = true;
        };
        process.on('SIGUSR1', onUsr1);
        const core = await openCore(c.dataDir, c.io, 'browser').catch((e: unknown) => {
          process.off('SIGUSR1', onUsr1);
          throw e;
        });
        try {
          // Refusals and cut-off sockets go to stderr, one line each (the URL in them is the client's: shown escaped).
          const log = (line: string) => c.io.stderr(`${new Date().toISOString()} airlock serve: ${line}\n`);
          const handle = await startServe(core, { port: c.opts.port ?? 0, rendererDir: c.io.rendererDir, log });
          if (c.json) c.io.stdout(JSON.stringify({ url: handle.url, expiresAt: handle.expiresAt, port: handle.port, dataDir: c.dataDir, pid: process.pid }) + '\n');
          else {
            c.io.stdout(
              `Airlock is serving ${c.dataDir}\nOpen this one-time URL in a browser on this machine (it works once, within 5 minutes): ${handle.url}\n` +
                `For another person: press Enter here, or kill -USR1 ${process.pid}, for a new link. Press Ctrl+C to stop.\n`,
            );
          }
          // A new link goes where the first one went: this process's stdout, which only whoever
          // started it reads. Anyone able to signal the process could read its stdout anyway.
          const newLink = (why: string) => {
            const link = handle.newLink();
            log(`a new one-time link (${why})`);
            if (c.json) c.io.stdout(JSON.stringify(link) + '\n');
            else c.io.stdout(`New one-time URL (once, until ${link.expiresAt}): ${link.url}\n`);
          };
          another = newLink;
          if (early) newLink('SIGUSR1');
          const keys = enterForLinks(() => newLink('Enter'));
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
          another = null;
          keys?.close();
          await handle.close();
          return 0;
        } finally {
          process.off('SIGUSR1', onUsr1);
          await core.close();
        }
      },
    }),
  ],
};

/**
 * Enter on the terminal prints another link. Only when stdin is a terminal; a background job
 * reading its terminal would be stopped by SIGTTIN (and so would the console): ignoring that signal
 * turns the read into an error, which ends listening for Enter and nothing else.
 */
function enterForLinks(onEnter: () => void): { close(): void } | null {
  if (!process.stdin.isTTY) return null;
  const ignoreTtin = () => {};
  process.on('SIGTTIN', ignoreTtin);
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on('line', onEnter);
  process.stdin.on('error', () => rl.close());
  return {
    close() {
      rl.close();
      process.stdin.pause();
      process.off('SIGTTIN', ignoreTtin);
    },
  };
}

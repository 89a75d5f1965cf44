import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, terminalPrompt, unexpected } from './cli';

declare const __AIRLOCK_VERSION__: string;

/** Entry of the bundled CLI (dist/node/cli.mjs); the renderer sits beside it in dist/renderer. */
export async function main(argv: string[]): Promise<number> {
  // Before anything opens the data directory: every file this process creates (the database, its
  // -wal and -shm, audit.head, exports, `airlock serve`'s files) is readable by its owner only.
  process.umask(0o077);
  // The last resort, for what escapes runCli (an 'error' event nobody listened to): one line, no stack.
  const last = (e: unknown) => {
    process.stderr.write(unexpected(e, process.env));
    process.exit(1);
  };
  process.on('uncaughtException', last);
  process.on('unhandledRejection', last);
  const here = path.dirname(fileURLToPath(import.meta.url));
  try {
    return await runCli(argv, {
      stdout: (s) => process.stdout.write(s),
      stderr: (s) => process.stderr.write(s),
      env: process.env,
      prompt: terminalPrompt(),
      rendererDir: process.env.AIRLOCK_RENDERER_DIR ?? path.resolve(here, '../renderer'),
      version: typeof __AIRLOCK_VERSION__ === 'string' ? __AIRLOCK_VERSION__ : '0.0.0-dev',
    });
  } catch (e) {
    process.stderr.write(unexpected(e, process.env));
    return 1;
  }
}

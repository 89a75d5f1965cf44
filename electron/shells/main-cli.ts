import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, terminalPrompt } from './cli';

declare const __AIRLOCK_VERSION__: string;

/** Entry of the bundled CLI (dist/node/cli.mjs); the renderer sits beside it in dist/renderer. */
export async function main(argv: string[]): Promise<number> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return runCli(argv, {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    env: process.env,
    prompt: terminalPrompt(),
    rendererDir: process.env.AIRLOCK_RENDERER_DIR ?? path.resolve(here, '../renderer'),
    version: typeof __AIRLOCK_VERSION__ === 'string' ? __AIRLOCK_VERSION__ : '0.0.0-dev',
  });
}

#!/usr/bin/env node
// The `airlock` command. The CLI itself is bundled into dist/node/cli.mjs by scripts/build.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The repository is found from this file, never from the working directory: run through a
// symbolic link on PATH (README: "The CLI"), Node resolves the link, so import.meta.url is the
// real bin/airlock.mjs wherever `airlock` is started from.
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cli = join(root, 'dist', 'node', 'cli.mjs');
if (!existsSync(cli)) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) process.exit(1);
}
const { main } = await import(cli);
process.exitCode = await main(process.argv.slice(2));

/**
 * A console process for the SSH rotation kill test (keys-ssh-rotation.test.ts): the `airlock` CLI
 * as the bundled command runs it, on the data directory and with the arguments given. The test
 * sets AIRLOCK_TEST_KILL_AT to have it SIGKILL itself at a step boundary (keys/ssh-rotation.ts).
 */
import { runCli } from '../../electron/shells/cli';

process.umask(0o077);
void runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  prompt: null,
  rendererDir: process.cwd(),
  version: 'test',
}).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exit(70);
  },
);

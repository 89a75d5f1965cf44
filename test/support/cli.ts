import { runCli } from '../../electron/shells/cli';

/** The first admin's password in CLI tests (the `init --admin alice` they start with). */
export const ALICE = 'correct horse battery staple';
/** The environment that signs a CLI invocation in as olga, the officer the two-person tests create. */
export const asOlga = { AIRLOCK_USER: 'olga', AIRLOCK_PASSWORD: 'olga own password' };

/**
 * The `airlock` CLI run in-process (the same runCli the bundled command runs) on the data dir
 * `data()` names at call time: every invocation is its own sign-in, as in a shell, as alice unless
 * `env` says otherwise, with no prompt (a command that would ask fails instead).
 */
export function inProcessCli(data: () => string) {
  return async function airlock(args: string[], env: Record<string, string | undefined> = {}) {
    let stdout = '';
    let stderr = '';
    const code = await runCli([...args, '--data', data()], {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      env: { AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, AIRLOCK_TOTP_POLICY: 'off', ...env },
      prompt: null,
      rendererDir: data(),
      version: 'test',
    });
    return { code, stdout, stderr, json: <T = Record<string, unknown>>() => JSON.parse(stdout) as T };
  };
}

import readline from 'node:readline';
import { revealHidden } from '../../../shared/domain/visible-text';
import { sanitizeHostText } from '../../core/ssh/sanitize';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Interactive prompts; null when stdin is not a terminal. */
  prompt: ((question: string, opts?: { secret?: boolean }) => Promise<string>) | null;
  rendererDir: string;
  version: string;
}

/** Text from hosts (and from the trail) never reaches the operator's terminal with its escape sequences. */
export const clean = (s: unknown, n = 4096): string => sanitizeHostText(s ?? '', n);

/**
 * JSON for scripts: faithful, but 8-bit controls and bidi/invisible characters are written as
 * \u escapes (JSON.stringify leaves them raw), so no byte on stdout can steer a terminal.
 */
export const toJson = (value: unknown, indent?: number): string =>
  revealHidden(JSON.stringify(value, null, indent), { keep: '\n', escape: (c) => Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('') });

/**
 * Everything the CLI writes to the terminal — host text, names from the database, and the
 * operator's own input echoed back ("unknown command", bad option values, file names) — has its
 * control and invisible characters made visible (shared/domain/visible-text.ts): no byte the CLI
 * prints can steer the terminal or make one name look like another. TAB and LF lay out tables.
 */
export function visibleOutput(io: CliIo): CliIo {
  const shown = (s: string) => revealHidden(s, { keep: '\t\n' });
  const prompt = io.prompt;
  return {
    ...io,
    stdout: (s) => io.stdout(shown(s)),
    stderr: (s) => io.stderr(shown(s)),
    prompt: prompt ? (question, opts) => prompt(shown(question), opts) : null,
  };
}

/**
 * The last resort: an exception nobody expected is one line — its kind and first line, without
 * the stack or the install paths in it (AIRLOCK_DEBUG=1 shows everything) — and exit 1.
 */
export function unexpected(e: unknown, env: NodeJS.ProcessEnv): string {
  if (env.AIRLOCK_DEBUG) return `airlock: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
  const name = e instanceof Error ? e.name : typeof e;
  const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
  const noPaths = first.replace(/(?:file:\/\/)?(?:\/[^\s'"():]+)+(?::\d+)*/g, (p) => (p.split('/').length > 2 ? '…' : p));
  return `airlock: unexpected error (${name}): ${noPaths} (AIRLOCK_DEBUG=1 for details)\n`;
}

/** Terminal prompts; secrets are read without echo. */
export function terminalPrompt(): CliIo['prompt'] {
  if (!process.stdin.isTTY) return null;
  return (question, opts) =>
    new Promise((resolve) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      if (opts?.secret) {
        const out = rl as unknown as { _writeToOutput: (s: string) => void };
        out._writeToOutput = (s: string) => {
          if (s.startsWith(question)) process.stderr.write(question);
        };
      }
      rl.question(question, (answer) => {
        rl.close();
        if (opts?.secret) process.stderr.write('\n');
        resolve(answer);
      });
    });
}

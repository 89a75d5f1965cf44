import crypto from 'node:crypto';
import { z } from 'zod';
import { AirlockError } from '../../../shared/domain/errors';
import type { ExecResult, SshConnection } from '../ssh/connection';
import { shellQuote as q, shCommand } from '../ssh/quote';

/** POSIX single-quote escaping (refuses NUL, CR, LF): the one quoting (ssh/quote.ts), under a short name for scripts. */
export { q };

const MAX_HOST_PATH = 1024;

/**
 * Why `p` is not an acceptable path on a host, or null when it is. The one rule for every path a
 * step takes (a destination, a binary, a key file, a cache directory, a drop-in): applied when a
 * playbook is imported and on every run's overrides (through {@link HostPath}, the steps' schema
 * type), and again where the path is used ({@link checkHostPath}). A normalised absolute path:
 * `/` then segments of letters, digits and `._+@:-`, single slashes, no `.` or `..` segment, no
 * trailing slash; so no spaces, quotes, `$`, `;`, backticks, globs or control characters, whatever
 * quoting a script applies later.
 */
export function hostPathProblem(p: string): string | null {
  if (p.length > MAX_HOST_PATH) return `must be at most ${MAX_HOST_PATH} characters`;
  if (!p.startsWith('/')) return 'must be an absolute path (starting with /)';
  if (p === '/') return 'must name something below /';
  for (const seg of p.slice(1).split('/')) {
    if (seg === '') return 'must not contain an empty segment (// or a trailing /)';
    if (seg === '.' || seg === '..') return 'must not contain a . or .. segment';
    if (seg.length > 255) return 'must not have a segment longer than 255 characters';
    if (!/^[A-Za-z0-9._+@:-]+$/.test(seg)) return 'may contain only letters, digits and ._+@:- between single slashes (no spaces, quotes, shell metacharacters or control characters)';
  }
  return null;
}

/** A path as quoted in a message: printable ASCII kept, anything else escaped, bounded. */
function quotedPath(p: string): string {
  const s = p.length > 80 ? `${p.slice(0, 80)}…` : p;
  return `"${s.replace(/[^\x20-\x7e]|["\\]/gu, (c) => (c === '"' || c === '\\' ? `\\${c}` : `\\u{${c.codePointAt(0)!.toString(16)}}`))}"`;
}

/** Throws INVALID_INPUT naming `what` unless `p` passes {@link hostPathProblem}. */
export function checkHostPath(p: string, what: string): string {
  const why = hostPathProblem(p);
  if (why) throw new AirlockError('INVALID_INPUT', `${what} ${why} (got ${quotedPath(p)}).`);
  return p;
}

/** The schema type of every path parameter of every step: {@link hostPathProblem}, as a zod check. */
export const HostPath = z.string().superRefine((p, ctx) => {
  const why = hostPathProblem(p);
  if (why) ctx.addIssue({ code: 'custom', message: `${why} (got ${quotedPath(p)})` });
});

export interface RunOpts {
  timeoutMs?: number;
  /** Called with each chunk of stdout/stderr as it arrives (the step's live log). */
  onOutput?: (chunk: string) => void;
  stdin?: string;
  maxOutputBytes?: number;
}

/**
 * A host as a step sees it: one SSH connection, commands run as root (directly when the login
 * user is root, else through `sudo -n`, which must be configured not to ask for a password),
 * always through `/bin/sh -c` so the login shell does not matter.
 */
export class Remote {
  constructor(
    readonly conn: SshConnection,
    readonly asRoot: boolean,
    private readonly signal: AbortSignal,
    private readonly defaultTimeoutMs: number,
  ) {}

  /** Run a POSIX sh script; returns the result whatever the exit code. */
  async sh(script: string, opts: RunOpts = {}): Promise<ExecResult> {
    const cmd = `${this.asRoot ? '' : 'sudo -n '}${shCommand(script)}`;
    return this.conn.exec(cmd, {
      timeoutMs: opts.timeoutMs ?? this.defaultTimeoutMs,
      signal: this.signal,
      stdin: opts.stdin,
      maxOutputBytes: opts.maxOutputBytes,
      onStdout: opts.onOutput ? (b: Buffer) => opts.onOutput!(b.toString('utf8')) : undefined,
      onStderr: opts.onOutput ? (b: Buffer) => opts.onOutput!(b.toString('utf8')) : undefined,
    });
  }

  /** Run and require exit 0; a failure names what was being done and carries the output's tail. */
  async must(script: string, what: string, opts: RunOpts = {}): Promise<ExecResult> {
    const r = await this.sh(script, opts);
    if (r.code !== 0) {
      const why = r.stderr.trim().split('\n').pop()?.slice(0, 200);
      throw new StepFailure(`${what} failed (exit ${r.code ?? r.signal ?? '?'}${why ? `: ${why}` : ''})`, r.code, `${r.stdout}${r.stderr}`);
    }
    return r;
  }

  /**
   * Several read-only scripts in one SSH exec (each in its own subshell, stderr dropped): a check
   * that needs four facts costs one session on the host instead of four. Returns each part's exit
   * code and stdout.
   */
  async batch(scripts: string[], opts: RunOpts = {}): Promise<Array<{ code: number; stdout: string }>> {
    const mark = `__airlock_part_${crypto.randomBytes(6).toString('hex')}__`;
    const body = scripts.map((x, i) => `(\n${x}\n) 2>/dev/null; printf '\\n${mark} ${i} %s\\n' "$?"`).join('\n');
    const r = await this.sh(body, opts);
    const out: Array<{ code: number; stdout: string }> = [];
    let buf = '';
    for (const line of r.stdout.split('\n')) {
      const m = line.startsWith(mark) ? /^\S+ (\d+) (\d+)$/.exec(line) : null;
      if (m && Number(m[1]) === out.length) {
        out.push({ code: Number(m[2]), stdout: buf.endsWith('\n') ? buf.slice(0, -1) : buf });
        buf = '';
      } else buf += `${line}\n`;
    }
    if (out.length !== scripts.length) throw new StepFailure(`the host answered ${out.length} of ${scripts.length} checks`, r.code, r.stderr);
    return out;
  }

  /** The script for {@link batch} that prints a file, or exits 44 when there is none. */
  static cat(path: string, maxBytes = 1024 * 1024): string {
    return `if [ -f ${q(path)} ]; then head -c ${maxBytes} ${q(path)}; else exit 44; fi`;
  }

  /** A file's content, or null when it does not exist. Bounded. */
  async readFile(path: string, maxBytes = 1024 * 1024): Promise<string | null> {
    const r = await this.sh(`if [ -f ${q(path)} ]; then head -c ${maxBytes} ${q(path)}; else exit 44; fi`);
    if (r.code === 44) return null;
    if (r.code !== 0) throw new StepFailure(`reading ${path} failed (exit ${r.code ?? r.signal ?? '?'}${r.stderr ? `: ${r.stderr.trim().split('\n')[0]!.slice(0, 200)}` : ''})`, r.code, r.stderr);
    return r.stdout;
  }

  /** Write a file atomically (temp name in the same directory, then rename), with a mode. */
  async writeFile(path: string, content: string, mode = '0644'): Promise<void> {
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    const tmp = `${path}.airlock-tmp`;
    await this.must(
      `set -e; mkdir -p ${q(dir)}; umask 077; cat > ${q(tmp)}; chmod ${mode} ${q(tmp)}; mv -f ${q(tmp)} ${q(path)}`,
      `writing ${path}`,
      { stdin: content },
    );
  }
}

/** A step went wrong on the host: the message is for people, the output is the host's (untrusted). */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null = null,
    readonly output = '',
    readonly code: string = 'STEP_FAILED',
  ) {
    super(message);
    this.name = 'StepFailure';
  }
}

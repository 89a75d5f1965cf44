import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as fss from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import type { ProcRef } from './state';

// ---------------------------------------------------------------------------------------------
// Small process helpers
// ---------------------------------------------------------------------------------------------

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a command to completion. Never throws for a non-zero exit; `code` is -1 on spawn error. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          stderr += `\n[lab] timed out after ${opts.timeoutMs} ms`;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : null;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {});
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(err) });
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : -1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command and throws with its stderr when it fails. */
export async function must(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`lab: \`${[cmd, ...args].join(' ')}\` failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function readStat(pid: number): { state: string; ppid: number; start: string } | null {
  try {
    const s = fss.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '?', ppid: Number(f[1]), start: f[19] ?? '' };
  } catch {
    return null;
  }
}

/** Alive = exists, same start time (not a recycled pid), and not a zombie. */
export function alive(ref: ProcRef | null | undefined): boolean {
  if (!ref) return false;
  const s = readStat(ref.pid);
  return !!s && s.start === ref.start && s.state !== 'Z' && s.state !== 'X';
}

export function procRef(pid: number): ProcRef | null {
  const s = readStat(pid);
  return s ? { pid, start: s.start } : null;
}

export function allPids(): number[] {
  return fss
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** `pids` plus every descendant of them. */
export function withDescendants(pids: number[]): Set<number> {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const s = readStat(pid);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(pid);
    children.set(s.ppid, list);
  }
  const out = new Set<number>();
  const queue = [...pids];
  while (queue.length) {
    const p = queue.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

export function nsLink(pid: number, kind: 'mnt' | 'net'): string | null {
  try {
    return fss.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return null;
  }
}

/** Never signalled, whatever a caller computes: init, kthreadd, this process and its ancestors. */
export function protectedPids(): Set<number> {
  const out = new Set<number>([0, 1, 2, process.pid]);
  let p = process.pid;
  for (let i = 0; i < 64; i++) {
    const s = readStat(p);
    if (!s || s.ppid <= 1) break;
    out.add(s.ppid);
    p = s.ppid;
  }
  return out;
}

/** SIGKILLs `pids` (never this process) and waits until they are gone or zombies. */
export async function killAll(pids: Iterable<number>, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const keep = protectedPids();
  const targets = [...new Set(pids)].filter((p) => !keep.has(p) && readStat(p)?.ppid !== 2);
  for (const p of targets) {
    try {
      process.kill(p, signal);
    } catch {
      /* already gone */
    }
  }
  if (signal !== 'SIGKILL') return;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const left = targets.filter((p) => {
      const s = readStat(p);
      return s && s.state !== 'Z' && s.state !== 'X';
    });
    if (left.length === 0) return;
    await sleep(20);
  }
}

/**
 * Starts a long-running process detached from us (own session), output appended to `logFile`.
 * It survives the CLI process that started it; `labDown` finds and kills it.
 */
export async function spawnDaemon(argv: string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<ProcRef> {
  const fd = fss.openSync(logFile, 'a');
  try {
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], env: env ?? process.env, cwd: '/' });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    child.unref();
    const ref = procRef(child.pid!);
    if (!ref) throw new Error(`lab: ${argv.join(' ')} exited immediately; see ${logFile}`);
    return ref;
  } finally {
    fss.closeSync(fd);
  }
}

export async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Resolves with the first bytes a TCP server sends, or rejects (refused, timeout). */
export function readBanner(address: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    sock.once('data', (d) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(d.toString('utf8'));
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    });
    sock.once('end', () => {
      clearTimeout(timer);
      reject(new Error('closed'));
    });
  });
}

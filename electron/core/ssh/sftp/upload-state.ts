/**
 * What an upload keeps on the host beside its target (the part file and its JSON sidecar), how it
 * reads the host's state before it starts, and the host commands and SFTP bookkeeping around it.
 */
import { AirlockError } from '../../../../shared/domain/errors';
import { SFTP_OPEN, type ExecResult, type SftpSession, type SshConnection } from '../connection/types';
import { sanitizeHostText } from '../sanitize';
import { HASHER, HASH_MS_PER_BYTE, parseDigest } from './remote-hash';
import { shCommand as sh, shellQuote } from '../quote';

/** The suffixes of the files an upload works with beside its target. */
export const PART_SUFFIX = '.airlock-part';
export const SIDECAR_SUFFIX = '.airlock-part.json';
export const SIDECAR_MAX = 4096;

export interface Sidecar {
  sha256: string;
  size: number;
  committed: number | null;
}

/** What the host has before an upload: the target, a part file, its sidecar, free space. */
export interface RemoteState {
  final: { kind: 'none' | 'dir' | 'other' } | { kind: 'file'; size: number };
  partSize: number | null;
  avail: number;
  /** The nearest existing directory at or above the target's directory (where `avail` was measured). */
  spaceDir: string;
  sidecar: Sidecar | null;
}

export function checkRemotePath(p: string): string {
  if (typeof p !== 'string' || /[\0\r\n]/.test(p)) {
    throw new AirlockError('INVALID_INPUT', 'The remote path contains a NUL, CR or newline character.');
  }
  const base = p.slice(p.lastIndexOf('/') + 1);
  if (!p.startsWith('/') || p.length > 4000 || base === '' || base === '.' || base === '..') {
    throw new AirlockError('INVALID_INPUT', `The remote path must be an absolute path to a file (got ${JSON.stringify(sanitizeHostText(p, 80))}).`);
  }
  return p;
}

export function dirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function parseSidecar(text: string): Sidecar | null {
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    if (j === null || typeof j !== 'object' || j.v !== 1) return null;
    const { sha256, size, committed } = j;
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return null;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return null;
    if (committed !== null && (typeof committed !== 'number' || !Number.isSafeInteger(committed) || committed < 0)) return null;
    return { sha256, size, committed: committed as number | null };
  } catch {
    return null;
  }
}

export function sidecarText(s: Sidecar): string {
  return JSON.stringify({ v: 1, sha256: s.sha256, size: s.size, committed: s.committed });
}

/** Host commands of one upload, through its first connection. */
export class Host {
  constructor(
    readonly conn: SshConnection,
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  get label(): string {
    return this.conn.label;
  }

  /** Run a script with /bin/sh; `uncancellable` for the bookkeeping that follows a cancellation. */
  async run(script: string, what: string, opts: { stdin?: string; timeoutMs?: number; okCodes?: number[]; uncancellable?: boolean } = {}): Promise<ExecResult> {
    const r = await this.conn.exec(sh(script), {
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
      signal: opts.uncancellable ? undefined : this.signal,
      stdin: opts.stdin,
      maxOutputBytes: 64 * 1024,
    });
    if (!(opts.okCodes ?? [0]).includes(r.code ?? -1)) {
      const detail = sanitizeHostText(r.stderr.trim().split('\n').slice(-3).join(' / ') || r.stdout.trim().slice(-200), 300);
      throw new AirlockError('SSH_ERROR', `${what} on ${this.label} failed (${r.code === null ? `signal ${r.signal ?? '?'}` : `exit ${r.code}`})${detail ? `: ${detail}` : '.'}`);
    }
    return r;
  }

  async state(remotePath: string): Promise<RemoteState> {
    const f = shellQuote(remotePath);
    const script = [
      `f=${f}; p=${shellQuote(remotePath + PART_SUFFIX)}; s=${shellQuote(remotePath + SIDECAR_SUFFIX)}; d=${shellQuote(dirOf(remotePath))}`,
      `sz() { stat -c %s -- "$1" 2>/dev/null || wc -c < "$1"; }`,
      `if [ -d "$f" ]; then echo "final dir"; elif [ -f "$f" ]; then echo "final $(sz "$f")"; elif [ -e "$f" ] || [ -L "$f" ]; then echo "final other"; else echo "final none"; fi`,
      `if [ -f "$p" ]; then echo "part $(sz "$p")"; else echo "part none"; fi`,
      `a=$d; while [ ! -d "$a" ]; do a=$(dirname -- "$a"); done`,
      `v=$(df -B1 --output=avail -- "$a" 2>/dev/null | tail -n 1 | tr -d ' ')`,
      `case $v in ''|*[!0-9]*) v=$(df -Pk -- "$a" 2>/dev/null | awk 'NR==2 {printf "%.0f", $4 * 1024}') ;; esac`,
      `echo "avail $v"`,
      `printf 'dir %s\\n' "$a"`,
      `echo side`,
      `if [ -f "$s" ]; then head -c ${SIDECAR_MAX} -- "$s"; fi`,
    ].join('\n');
    const r = await this.run(script, `Looking at ${remotePath}`);
    const [head, side = ''] = splitOnce(r.stdout, '\nside\n');
    const line = (key: string) => new RegExp(`^${key} (.*)$`, 'm').exec(head)?.[1] ?? null;
    const fin = line('final');
    const part = line('part');
    const avail = line('avail');
    const spaceDir = line('dir');
    const int = (v: string | null) => (v !== null && /^\d{1,17}$/.test(v) ? Number(v) : null);
    if (fin === null || part === null || int(avail) === null || spaceDir === null) {
      throw new AirlockError('PARSE_ERROR', `Could not read the state of ${remotePath} on ${this.label} (free space, sizes): unexpected output from the host.`);
    }
    const finalSize = int(fin);
    return {
      final: finalSize !== null ? { kind: 'file', size: finalSize } : { kind: fin === 'dir' ? 'dir' : fin === 'other' ? 'other' : 'none' },
      partSize: part === 'none' ? null : int(part),
      avail: int(avail)!,
      spaceDir: sanitizeHostText(spaceDir, 300),
      sidecar: side ? parseSidecar(side.slice(0, SIDECAR_MAX)) : null,
    };
  }

  /** SHA-256 of a whole file on the host, or null when it could not be computed. */
  async sha256(path: string, size: number): Promise<string | null> {
    // Through stdin: sha256sum escapes odd file names in its output, and then the line starts with a backslash.
    const r = await this.run(`${HASHER}\nh < ${shellQuote(path)}`, `Hashing ${path}`, {
      timeoutMs: this.timeoutMs + Math.ceil(size * HASH_MS_PER_BYTE),
      okCodes: [0, 1, 2],
    });
    return r.code === 0 ? parseDigest(r.stdout) : null;
  }
}

export function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)];
}

/** `mkdir -p` over SFTP: the directories below `existing` (the nearest one the host reported). */
export async function mkdirs(s: SftpSession, dir: string, existing: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const d = `/${parts.slice(0, i).join('/')}`;
    if (existing === '/' ? false : existing === d || existing.startsWith(`${d}/`)) continue;
    try {
      await s.mkdir(d);
    } catch (err) {
      // Already there (made meanwhile, or the reported directory was not this path's ancestor).
      if ((await s.stat(d).catch(() => null))?.isDirectory) continue;
      throw err;
    }
  }
}

/** Replace the sidecar atomically: a temporary file renamed over it. */
export async function writeSidecar(s: SftpSession, remotePath: string, side: Sidecar): Promise<void> {
  const file = remotePath + SIDECAR_SUFFIX;
  const data = Buffer.from(sidecarText(side));
  const h = await s.open(`${file}.tmp`, SFTP_OPEN.WRITE | SFTP_OPEN.CREAT | SFTP_OPEN.TRUNC, 0o600);
  try {
    await new Promise<void>((resolve, reject) => s.write(h, data, 0, data.length, 0, (err) => (err ? reject(err) : resolve())));
  } finally {
    await s.close(h);
  }
  await s.rename(`${file}.tmp`, file);
}

export async function removeQuietly(host: Host, remotePath: string): Promise<void> {
  await host
    .run(`rm -f -- ${shellQuote(remotePath + PART_SUFFIX)} ${shellQuote(remotePath + SIDECAR_SUFFIX)}`, `Removing ${remotePath}${PART_SUFFIX}`, { uncancellable: true })
    .catch(() => {});
}

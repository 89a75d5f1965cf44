/**
 * Helpers for the lab's own tests: run a program, and a throwaway OpenSSH client identity that
 * talks to lab hosts with the real `ssh` (host keys pinned from the lab, checked strictly).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { LabHost } from './lab';

export interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (killed after `timeoutMs`); never throws for a failure. */
export function exec(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Out> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(e) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A throwaway client identity and known_hosts, like an operator's ~/.ssh. */
export class SshClient {
  private constructor(
    readonly dir: string,
    readonly key: string,
  ) {}

  static async create(): Promise<SshClient> {
    const dir = await mkdtemp(path.join(tmpdir(), 'airlock-lab-client-'));
    const key = path.join(dir, 'id_ed25519');
    const r = await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lab-test', '-f', key]);
    if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    return new SshClient(dir, key);
  }

  get knownHosts(): string {
    return path.join(this.dir, 'known_hosts');
  }

  publicKey(): string {
    return readFileSync(`${this.key}.pub`, 'utf8').trim();
  }

  /** known_hosts from the host keys the lab wrote (what the operator would have pinned). */
  async pin(hosts: LabHost[]): Promise<void> {
    const lines = hosts.map((h) => {
      const pub = readFileSync(path.join(h.dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
      return `${h.port === 22 ? h.address : `[${h.address}]:${h.port}`} ${pub}`;
    });
    await writeFile(this.knownHosts, lines.join('\n') + '\n');
  }

  /** Runs a command on a host with the real OpenSSH client, host key checked strictly. */
  ssh(h: LabHost, command: string, opts: { connectTimeout?: number; input?: string; timeoutMs?: number } = {}): Promise<Out> {
    const connectTimeout = opts.connectTimeout ?? 5;
    return exec(
      'ssh',
      [
        '-F', '/dev/null',
        '-i', this.key,
        '-o', 'IdentitiesOnly=yes',
        '-o', 'BatchMode=yes',
        '-o', 'StrictHostKeyChecking=yes',
        '-o', `UserKnownHostsFile=${this.knownHosts}`,
        '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', `ConnectTimeout=${connectTimeout}`,
        '-o', 'LogLevel=ERROR',
        '-p', String(h.port),
        `${h.user}@${h.address}`,
        command,
      ],
      { timeoutMs: opts.timeoutMs ?? (connectTimeout + 25) * 1000, input: opts.input },
    );
  }

  /** Retries `ssh` until it works (sshd re-executing after a SIGHUP refuses for a moment). */
  async sshWhenUp(h: LabHost, command: string, waitMs = 5000): Promise<Out> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const r = await this.ssh(h, command);
      if (r.code !== 255 || Date.now() > deadline) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Live (non-zombie) pids among `pids`. */
export function livePids(pids: number[]): number[] {
  return pids.filter((p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  });
}

import { promises as fs } from 'node:fs';
import * as fss from 'node:fs';
import * as path from 'node:path';
import { HOST_KEY_IN_HOST, HOST_PATH, SSHD } from './constants';
import { hostKeyFiles } from './host-fs';
import { type RunResult, alive, killAll, nsLink, readBanner, run, sleep, spawnDaemon, tail, withDescendants } from './processes';
import type { HostState, LabState, ProcRef } from './state';

// ---------------------------------------------------------------------------------------------
// Processes: host namespaces, sshd and decoy
// ---------------------------------------------------------------------------------------------

/**
 * Starts the process that makes an isolated host and holds its mount and UTS namespaces (its
 * `enter.sh`, inside the host's netns), and waits until the host's filesystem is built.
 */
export async function launchHolder(st: LabState, h: HostState, timeoutMs = 15_000): Promise<void> {
  const ready = path.join(h.dir, 'holder.ready');
  const log = path.join(h.dir, 'holder.log');
  await fs.rm(ready, { force: true });
  const enter = ['unshare', '--uts', '--mount', '--propagation', 'private', '--', '/bin/sh', path.join(h.dir, 'enter.sh')];
  const ref = await spawnDaemon(h.netns ? ['ip', 'netns', 'exec', h.netns, ...enter] : enter, log, { PATH: HOST_PATH, LANG: 'C' });
  h.holder = ref;
  const deadline = Date.now() + timeoutMs;
  while (!fss.existsSync(ready)) {
    if (!alive(ref)) throw new Error(`lab: ${h.name}'s namespaces could not be set up:\n${await tail(log)}`);
    if (Date.now() > deadline) throw new Error(`lab: ${h.name}'s namespaces were not ready after ${timeoutMs} ms:\n${await tail(log)}`);
    await sleep(10);
  }
  h.mntNs = nsLink(ref.pid, 'mnt');
}

/** The holder of an isolated host, (re)started if it is gone. */
export async function ensureHolder(st: LabState, h: HostState): Promise<ProcRef> {
  if (h.holder === undefined) {
    throw new Error(`lab "${st.id}" was started by an older lab.ts (no namespace holder for ${h.name}); take it down and up again`);
  }
  if (!alive(h.holder)) await launchHolder(st, h);
  return h.holder!;
}

/** Runs `argv` inside an isolated host's namespaces (its holder must be alive). */
export function execInHost(h: HostState, holder: ProcRef, argv: string[], opts: { input?: string; timeoutMs?: number }): Promise<RunResult> {
  const env = { PATH: HOST_PATH, HOME: '/root', USER: 'root', LOGNAME: 'root', LANG: 'C.UTF-8', TERM: 'dumb' };
  const nsArgs = ['-t', String(holder.pid), '-m', '-u', ...(h.netns ? ['-n'] : []), '--'];
  return run('nsenter', [...nsArgs, ...argv], { input: opts.input, timeoutMs: opts.timeoutMs ?? 30_000, env, cwd: '/' });
}

/** Puts the host key of `<host dir>` where an isolated host's sshd reads it. */
export async function installHostKey(st: LabState, h: HostState): Promise<void> {
  const holder = await ensureHolder(st, h);
  const { key, pub } = await hostKeyFiles(h);
  for (const [file, text, umask] of [
    [HOST_KEY_IN_HOST, key, '077'],
    [`${HOST_KEY_IN_HOST}.pub`, pub, '022'],
  ] as const) {
    const r = await execInHost(h, holder, ['/bin/sh', '-c', `umask ${umask} && cat > "$1.new" && mv -f "$1.new" "$1"`, 'sh', file], { input: text });
    if (r.code !== 0) throw new Error(`lab: writing ${file} on ${h.name} failed: ${r.stderr.trim()}`);
  }
}

export function sshdArgv(st: LabState, h: HostState): string[] {
  const log = path.join(h.dir, 'sshd.log');
  if (!st.isolation) return [SSHD, '-D', '-f', path.join(h.dir, 'sshd_config'), '-h', path.join(h.dir, 'ssh_host_ed25519_key'), '-E', log];
  // Inside the host, sshd reads the host's own /etc/ssh/sshd_config. nsenter execs (no fork).
  return ['nsenter', '-t', String(h.holder!.pid), '-m', '-u', ...(h.netns ? ['-n'] : []), '--', SSHD, '-D', '-E', log];
}

/** Starts the host's sshd and waits until it sends its SSH banner. Updates `h` in place. */
export async function launchSshd(st: LabState, h: HostState, timeoutMs = 20_000): Promise<void> {
  const log = path.join(h.dir, 'sshd.log');
  if (st.isolation) await ensureHolder(st, h);
  // `nsenter` (or nothing) execs: the pid we get is the sshd listener's. A SIGHUP makes sshd
  // re-execute itself with the same argv: same pid, same start time, still ours.
  const ref = await spawnDaemon(sshdArgv(st, h), log, { PATH: HOST_PATH, LANG: 'C' });
  h.sshd = ref;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive(ref)) throw new Error(`lab: sshd for ${h.name} exited during start:\n${await tail(log)}`);
    try {
      const banner = await readBanner(h.address, h.port, 1000);
      if (banner.startsWith('SSH-')) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`lab: sshd for ${h.name} did not answer on ${h.address}:${h.port}:\n${await tail(log)}`);
    await sleep(25);
  }
}

export async function stopSshd(h: HostState, sessions: boolean): Promise<void> {
  if (!alive(h.sshd)) {
    h.sshd = null;
    return;
  }
  const ref = h.sshd!;
  await killAll(sessions ? withDescendants([ref.pid]) : [ref.pid]);
  h.sshd = null;
}

export const DECOY_JS = `// The lab's decoy "outside world": answers every TCP connection with "decoy\\n" and logs it.
import net from 'node:net';
import fs from 'node:fs';
const [address, port, log] = process.argv.slice(2);
net
  .createServer((s) => {
    fs.appendFileSync(log, JSON.stringify({ at: new Date().toISOString(), from: s.remoteAddress, port: s.remotePort }) + '\\n');
    s.on('error', () => {});
    s.end('decoy\\n');
  })
  .listen(Number(port), address, () => console.log('decoy listening on ' + address + ':' + port));
`;

export async function launchDecoy(st: LabState): Promise<void> {
  const dir = path.join(st.dir, 'decoy');
  await fs.mkdir(dir, { recursive: true });
  const script = path.join(dir, 'decoy.mjs');
  const log = path.join(dir, 'decoy.log');
  await fs.writeFile(script, DECOY_JS);
  await fs.writeFile(path.join(dir, 'connections.log'), '');
  const node = await fs.realpath(process.execPath);
  const cmd = [node, script, st.decoy.address, String(st.decoy.port), path.join(dir, 'connections.log')];
  const argv = st.decoy.netns ? ['ip', 'netns', 'exec', st.decoy.netns, ...cmd] : cmd;
  st.decoy.proc = await spawnDaemon(argv, log);
  // Wait for its own "listening" line rather than connecting: a probe would show up in the
  // decoy's connection log, which lockdown tests read.
  const deadline = Date.now() + 15_000;
  while (!(await fs.readFile(log, 'utf8').catch(() => '')).includes('decoy listening')) {
    if (!alive(st.decoy.proc)) throw new Error(`lab: decoy exited during start:\n${await tail(log)}`);
    if (Date.now() > deadline) throw new Error(`lab: decoy did not start:\n${await tail(log)}`);
    await sleep(25);
  }
}

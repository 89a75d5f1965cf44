import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { type GpuProfile } from '../gpu/profiles';
import { HOST_PATH, labStateRoot } from './constants';
import { ensureHolder, execInHost, installHostKey, launchSshd, stopSshd } from './daemons';
import { keyLines, keygen, nodeForHosts, shQuote } from './host-fs';
import { updateState } from './locking';
import { alive, killAll, must, readBanner, run, sleep, withDescendants } from './processes';
import { type HostState, findHost, loadLab } from './state';
import type { Lab } from './types';

// ---------------------------------------------------------------------------------------------
// Public API: keys, faults, commands
// ---------------------------------------------------------------------------------------------

/** Adds a public key line to every host's `authorized_keys` (no duplicate if already there). */
export async function authorizeKey(lab: Lab, publicKeyLine: string): Promise<void> {
  const [line] = keyLines([publicKeyLine]);
  if (!line) throw new Error('lab: empty public key');
  const st = await loadLab(lab);
  await Promise.all(
    st.hosts.map(async (h) => {
      const file = path.join(h.dir, 'fs', 'root', '.ssh', 'authorized_keys');
      const cur = await fs.readFile(file, 'utf8').catch(() => '');
      if (!cur.split('\n').some((l) => l.trim() === line)) {
        await fs.writeFile(file, cur + (cur && !cur.endsWith('\n') ? '\n' : '') + line + '\n', { mode: 0o600 });
      }
    }),
  );
}

/** Stop/continue a loopback host's sshd and sessions: the nearest thing to a cut cable there. */
export async function freezeLoopbackHost(h: HostState, frozen: boolean): Promise<void> {
  if (!alive(h.sshd)) return;
  await killAll(withDescendants([h.sshd!.pid]), frozen ? 'SIGSTOP' : 'SIGCONT');
}

/**
 * Cuts a host's link: its veth in the root namespace goes down, so new connections time out or
 * get "no route to host" and open sessions hang. (Loopback mode: the host's sshd and its sessions
 * are stopped with SIGSTOP, so connections hang the same way.)
 */
export async function cutLink(lab: Lab, host: string): Promise<void> {
  await updateState(lab.dir, async (st) => {
    const h = findHost(st, host);
    if (st.mode === 'netns') await must('ip', ['link', 'set', h.veth!, 'down']);
    else await freezeLoopbackHost(h, true);
    h.linkCut = true;
  });
}

/** Undoes {@link cutLink}, {@link slowLink} and {@link throttleLink}; returns once the host's sshd answers again (if running). */
export async function restoreLink(lab: Lab, host: string): Promise<void> {
  const st = await updateState(lab.dir, async (s) => {
    const h = findHost(s, host);
    if (s.mode === 'netns') {
      await run('tc', ['qdisc', 'del', 'dev', h.veth!, 'root']);
      await run('tc', ['-n', h.netns!, 'qdisc', 'del', 'dev', 'eth0', 'root']);
      await must('ip', ['link', 'set', h.veth!, 'up']);
    } else await freezeLoopbackHost(h, false);
    h.linkCut = false;
    h.slowed = false;
  });
  const h = findHost(st, host);
  if (!alive(h.sshd)) return;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      if ((await readBanner(h.address, h.port, 1000)).startsWith('SSH-')) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error(`lab: ${host} does not answer after restoring its link`);
}

/**
 * Slows a host's link with `tc netem`: `delayMs` (± `jitterMs`) added in each direction, and
 * `lossPercent` of packets dropped each way. netns mode only. {@link restoreLink} undoes it.
 */
export async function slowLink(lab: Lab, host: string, opts: { delayMs: number; jitterMs?: number; lossPercent?: number }): Promise<void> {
  await updateState(lab.dir, async (st) => {
    if (st.mode !== 'netns') throw new Error('lab: slowLink needs netns mode');
    const h = findHost(st, host);
    const netem = ['netem', 'delay', `${opts.delayMs}ms`];
    if (opts.jitterMs) netem.push(`${opts.jitterMs}ms`);
    if (opts.lossPercent) netem.push('loss', `${opts.lossPercent}%`);
    const probe = await run('tc', ['qdisc', 'replace', 'dev', h.veth!, 'root', ...netem]);
    if (probe.code !== 0) {
      throw new Error(
        /unknown/i.test(probe.stderr)
          ? 'lab: this kernel has no netem qdisc (sch_netem), so links cannot be slowed here'
          : `lab: tc netem on ${h.veth} failed: ${probe.stderr.trim()}`,
      );
    }
    await must('tc', ['-n', h.netns!, 'qdisc', 'replace', 'dev', 'eth0', 'root', ...netem]);
    h.slowed = true;
  });
}

/**
 * Caps what reaches a host over its link at `mbit` megabits/s (`tc tbf` on Airlock's side of the
 * veth, so uploads to the host slow down; tbf needs no netem). For fault tests that must act in
 * the middle of a transfer however fast the machine is. netns mode only. {@link restoreLink}
 * undoes it.
 */
export async function throttleLink(lab: Lab, host: string, opts: { mbit: number }): Promise<void> {
  if (!(opts.mbit > 0)) throw new Error('lab: throttleLink needs a positive rate');
  await updateState(lab.dir, async (st) => {
    if (st.mode !== 'netns') throw new Error('lab: throttleLink needs netns mode');
    const h = findHost(st, host);
    await must('tc', ['qdisc', 'replace', 'dev', h.veth!, 'root', 'tbf', 'rate', `${opts.mbit}mbit`, 'burst', '256kb', 'latency', '400ms']);
    h.slowed = true;
  });
}

/**
 * SIGKILLs the host's sshd listener: new connections are refused. Open sessions survive (as
 * with a real sshd crash) unless `opts.sessions` is true.
 */
export async function killSshd(lab: Lab, host: string, opts: { sessions?: boolean } = {}): Promise<void> {
  await updateState(lab.dir, (st) => stopSshd(findHost(st, host), !!opts.sessions));
}

/** Starts the host's sshd again (no-op if running); returns when it answers. */
export async function startSshd(lab: Lab, host: string): Promise<void> {
  await updateState(lab.dir, async (st) => {
    const h = findHost(st, host);
    if (alive(h.sshd)) return;
    if (h.linkCut) throw new Error(`lab: ${host}'s link is cut; restore it before starting sshd`);
    await launchSshd(st, h);
  });
}

/**
 * Gives the host a new ed25519 host key and (re)starts its sshd with it; open sessions are kept.
 * Returns the new fingerprint (`SHA256:…`).
 */
export async function replaceHostKey(lab: Lab, host: string): Promise<string> {
  const st = await updateState(lab.dir, async (s) => {
    const h = findHost(s, host);
    if (h.linkCut) throw new Error(`lab: ${host}'s link is cut; restore it before replacing its key`);
    await stopSshd(h, false);
    h.fingerprint = await keygen(path.join(h.dir, 'ssh_host_ed25519_key'), `root@${h.name}`);
    if (s.isolation) await installHostKey(s, h);
    await launchSshd(s, h);
  });
  return findHost(st, host).fingerprint;
}

/**
 * Runs `argv` on the host as root, in the host's network, mount and UTS namespaces — what a
 * command run through ssh would see (also while its sshd is down) — without going through ssh.
 * For test assertions. (A host without a system of its own: `argv` runs on this machine with the
 * host's PATH and HOME.)
 */
export async function runOnHost(
  lab: Lab,
  host: string,
  argv: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  if (argv.length === 0) throw new Error('lab: runOnHost needs a command');
  const st = await loadLab(lab);
  const h = findHost(st, host);
  const runOpts = { input: opts.input, timeoutMs: opts.timeoutMs ?? 30_000 };
  if (!st.isolation) {
    const bin = path.join(h.dir, 'fs', 'usr-local-bin');
    const home = path.join(h.dir, 'fs', 'root');
    return run(argv[0]!, argv.slice(1), { ...runOpts, cwd: home, env: { ...process.env, PATH: `${bin}:${HOST_PATH}`, HOME: home } });
  }
  let holder = h.holder;
  if (!alive(holder)) {
    // Someone killed the host's namespace holder: make the host again (its files are kept).
    const fresh = await updateState(lab.dir, async (s) => {
      await ensureHolder(s, findHost(s, host));
    });
    holder = findHost(fresh, host).holder;
  }
  return execInHost(h, holder!, argv, runOpts);
}

// A byte flipper that runs inside the host (node is there: the machine's /usr, or the lab's copy).
export const CORRUPT_JS = `
const fs = require('fs');
const [file, off, mask] = process.argv.slice(1);
const fd = fs.openSync(file, 'r+');
const size = fs.fstatSync(fd).size;
let o = Number(off);
if (o < 0) o += size;
if (!Number.isInteger(o) || o < 0 || o >= size) { console.error('offset ' + off + ' is outside ' + file + ' (' + size + ' bytes)'); process.exit(2); }
const b = Buffer.alloc(1);
fs.readSync(fd, b, 0, 1, o);
const before = b[0];
b[0] = before ^ Number(mask);
fs.writeSync(fd, b, 0, 1, o);
fs.fsyncSync(fd);
fs.closeSync(fd);
console.log(JSON.stringify({ offset: o, before, after: b[0] }));
`;

/**
 * Flips one byte of a file inside a host's filesystem (XOR `mask`, default 0xff: every bit of it),
 * for fault tests — a model file or a package damaged after it was checked. `offset` counts from
 * the start of the file, or from its end when negative. It runs inside the host, so a file the host
 * sees through its overlay is copied up first: only the host's copy changes, never the machine's.
 * Returns where the byte was and its value before and after. A host without a system of its own
 * only allows files under its own directory (`LabHost.dir`).
 */
export async function corruptFile(
  lab: Lab,
  host: string,
  file: string,
  offset: number,
  mask = 0xff,
): Promise<{ offset: number; before: number; after: number }> {
  if (!Number.isInteger(offset)) throw new Error(`lab: corruptFile needs an integer offset, not ${offset}`);
  if (!Number.isInteger(mask) || mask < 1 || mask > 0xff) throw new Error('lab: corruptFile mask must be 1..255');
  if (!path.isAbsolute(file)) throw new Error(`lab: corruptFile needs an absolute path inside the host, not ${file}`);
  const st = await loadLab(lab);
  const h = findHost(st, host);
  if (!st.isolation && !path.resolve(file).startsWith(h.dir + '/')) {
    throw new Error(`lab: ${host} has no filesystem of its own (no isolation); corruptFile only touches files under ${h.dir}`);
  }
  const node = await nodeForHosts(labStateRoot(), st.isolation);
  const r = await runOnHost(lab, host, [node, '-e', CORRUPT_JS, file, String(offset), String(mask)]);
  if (r.code !== 0) throw new Error(`lab: corrupting ${file} on ${host} failed: ${(r.stderr || r.stdout).trim()}`);
  return JSON.parse(r.stdout) as { offset: number; before: number; after: number };
}

/** Connections the decoy has received so far (each: time, source address and port). */
export async function decoyConnections(lab: Lab): Promise<Array<{ at: string; from: string; port: number }>> {
  const text = await fs.readFile(path.join(lab.dir, 'decoy', 'connections.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { at: string; from: string; port: number });
}

/**
 * Makes the host's login shell print `text` and exit 1 before running the command of a
 * non-interactive session (such as Airlock's inventory exec), as a broken or hostile `~/.bashrc`
 * would; `null` undoes it. Interactive shells (the terminal) are not affected. For tests of how
 * Airlock shows output it never asked for (a scan fails, quoting it). Needs bash as root's shell.
 */
export async function setLoginText(lab: Lab, host: string, text: string | null): Promise<void> {
  const st = await loadLab(lab);
  const h = findHost(st, host);
  const textFile = path.join(h.dir, 'fs', 'var-lib-airlock-host', 'login-text');
  // The path as the host's shell sees it: its private /var/lib/airlock-host, or the real one.
  const seen = st.isolation ? '/var/lib/airlock-host/login-text' : textFile;
  const rc = path.join(h.dir, 'fs', 'root', '.bashrc');
  const hook =
    '# Written by the lab (setLoginText): a non-interactive session prints the login text and fails.\n' +
    `case $- in *i*) ;; *) if [ -f ${shQuote(seen)} ]; then cat ${shQuote(seen)}; exit 1; fi ;; esac\n`;
  const cur = await fs.readFile(rc, 'utf8').catch(() => '');
  if (!cur.includes(hook)) await fs.writeFile(rc, cur + hook);
  if (text === null) await fs.rm(textFile, { force: true });
  else await fs.writeFile(textFile, text);
}

/** Rewrites a host's GPU profile (the JSON its nvidia-smi reads on every call). */
export async function setGpuProfile(lab: Lab, host: string, edit: (profile: GpuProfile) => void): Promise<void> {
  const st = await loadLab(lab);
  const h = findHost(st, host);
  const file = path.join(h.dir, 'gpu.json');
  const profile = JSON.parse(await fs.readFile(file, 'utf8')) as GpuProfile;
  edit(profile);
  await fs.writeFile(`${file}.tmp`, JSON.stringify(profile, null, 2) + '\n');
  await fs.rename(`${file}.tmp`, file);
  // A new cache generation for the nvidia-smi front end (written after the profile: an answer
  // cached under the new generation was computed from the new profile). Old ones go with the lab.
  const gen = path.join(h.dir, 'smi-cache', 'gen');
  await fs.mkdir(path.dirname(gen), { recursive: true });
  const cur = Number((await fs.readFile(gen, 'utf8').catch(() => '0')).trim()) || 0;
  await fs.writeFile(`${gen}.tmp`, `${cur + 1}\n`);
  await fs.rename(`${gen}.tmp`, gen);
}

/**
 * The lab: a small simulated GPU cluster on this machine, for integration tests, e2e tests and
 * demos (DESIGN.md §7).
 *
 * Each host is a Linux network namespace with an address on a private /24, a veth into a lab
 * bridge in the root namespace, and its own mount and UTS namespaces, held open by a small holder
 * process, in which a real OpenSSH `sshd` runs. In the host's mount namespace, the machine's
 * `/etc`, `/usr` and `/var` are overlays with per-host upper directories (so `dpkg -i`, units in
 * /etc/systemd/system or sshd drop-ins change that host only), `/run` is a directory of its own, and
 * `/root`, `/srv`, `/opt`, `/var/lib/airlock-host`, `/tmp` and `/usr/local/bin` are the host's own
 * directories; `hostname` is the host's name. `/usr/local/bin/nvidia-smi` is an emulator
 * answering in the real output formats from a per-host GPU profile; `/usr/local/bin/systemctl`
 * (+ `journalctl`) simulates systemd, which cannot run in a lab host (host/systemctl.mjs), and
 * `/usr/local/bin/airlock-inference-sim` is a vLLM-shaped inference server (host/airlock-inference-sim.mjs).
 *
 * The lab is sealed: host namespaces have only the connected route to the lab subnet, and an nft
 * table of the lab's own in the root namespace drops anything forwarded to or from the lab bridge,
 * so no lab packet can reach an address that is not the lab's. The "outside world" for lockdown
 * tests is a decoy namespace of the lab's own.
 *
 * Without root (or when `ip netns add` fails, or with `AIRLOCK_LAB_MODE=loopback`) the lab falls
 * back to sshd processes on 127.213.X.Y addresses ("loopback" mode).
 *
 * State lives in `/run/airlock-lab/<id>/` (root) or `$TMPDIR/airlock-lab-<uid>/<id>/`, override
 * with `AIRLOCK_LAB_STATE`. It is deliberately not under /tmp for root: /tmp is one of the
 * directories each host gets its own copy of, so the sshd config must live elsewhere.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as fss from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GPU_PROFILE_NAMES, GPU_PROFILE_ROTATION, makeGpuProfile, type GpuProfile } from './gpu/profiles';

export { GPU_PROFILE_NAMES, GPU_PROFILE_ROTATION, type GpuProfile } from './gpu/profiles';
export * from './gpu/hostile';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** One simulated GPU host. */
export interface LabHost {
  /** `host1`, `host2`, … — also the host's `hostname` (netns mode). */
  name: string;
  /** Address Airlock connects to (a lab subnet address, or 127.213.X.Y in loopback mode). */
  address: string;
  /** sshd port: 22 in netns mode, 2200 + host number in loopback mode. */
  port: number;
  /** Login user: `root` in netns mode, the current user in loopback mode when not root. */
  user: string;
  /** Host key fingerprint exactly as `ssh-keygen -lf` prints it (`SHA256:` + 43 base64 chars). */
  fingerprint: string;
  /** Network namespace name (netns mode), else null. */
  netns: string | null;
  /** The host's state directory (keys, sshd_config, logs, and `fs/` = its private filesystem). */
  dir: string;
  /** GPU profile name this host's nvidia-smi answers from (`a100`, `h100`, `t4`, `none`, `absent`, `hostile`). */
  gpuProfile: string;
  /** Only filled by {@link labStatus}: whether the host's sshd process is alive. */
  sshdRunning?: boolean;
  /** Only filled by {@link labStatus}: whether the host's link is cut ({@link cutLink}). */
  linkCut?: boolean;
}

/** A running lab. Plain data: it can be serialised and handed to another process. */
export interface Lab {
  id: string;
  /** `netns`: real namespaces (root). `loopback`: fallback on 127.213.X.Y addresses. */
  mode: 'netns' | 'loopback';
  /** The lab's /24, e.g. `10.213.7.0/24` (`127.213.7.0/24` in loopback mode). */
  subnet: string;
  /** The lab's state directory (contains state.json). */
  dir: string;
  hosts: LabHost[];
  /** The decoy "outside world": a TCP listener answering `decoy\n`, in a namespace of its own. */
  decoy: { address: string; port: number };
  /**
   * Whether each host has a system of its own: private `/etc`, `/usr`, `/var` (overlays) and
   * `/run`, so that installing packages, writing units or sshd drop-ins on a host changes that
   * host only. Only then may a test change system state on a host (netns mode always; loopback
   * mode as root). Without it a host shares this machine's files.
   */
  privateSystem: boolean;
  /** Set when the lab had to fall back to loopback mode: why, for the user. */
  notice?: string;
}

/** Options for {@link labUp}. */
export interface LabUpOptions {
  /** Lab id (letters, digits, `-`, `_`; at most 24 chars). Default `demo`. */
  id?: string;
  /** Number of hosts, 1–200. */
  hosts: number;
  /** `authorized_keys` lines to install on every host. */
  authorize?: string[];
  /**
   * GPU profile per host (cycled when shorter than the host list). Default: the rotation
   * a100, h100, t4, none. Known: a100, h100, t4, none (driver not loaded), absent (no nvidia-smi),
   * hostile (attack text in every field, a hostile hostname and os-release: gpu/hostile.ts).
   */
  gpuProfiles?: string[];
  /** Tear down an existing lab with the same id first instead of refusing. */
  replace?: boolean;
  /**
   * The lab outlives the calling process (the CLI sets this). Otherwise the lab belongs to the
   * calling process: once that process is gone (say a test run crashed before its `afterAll`),
   * the lab counts as stale and the next `labUp` with the same id replaces it instead of refusing.
   */
  persistent?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Naming and constants
// ---------------------------------------------------------------------------------------------

/** Default lab id. */
export const DEFAULT_LAB_ID = 'demo';
/** Every lab namespace is named `airlock-lab.<id>.<host|decoy>`. */
export const NETNS_PREFIX = 'airlock-lab.';
/** Every lab interface in the root namespace is `airlb<slot>` (bridge) or `airlv<slot>…` (veth). */
const IF_RE = /^airl[bv]\d+/;
const NFT_TABLE_PREFIX = 'airlock_lab_';
const SUBNET_PREFIX = '10.213';
const LOOPBACK_PREFIX = '127.213';
const HOST_OFFSET = 10; // host N is .(10+N)
const DECOY_OCTET = 250;
const DECOY_PORT = 8080;
const LOOPBACK_PORT_BASE = 2200;
const MAX_HOSTS = 200;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$/;
/** Directories every host gets its own copy of (mount targets inside the host's mount ns). */
const PRIVATE_DIRS: ReadonlyArray<[target: string, sub: string]> = [
  ['/root', 'root'],
  ['/srv', 'srv'],
  ['/opt', 'opt'],
  ['/var/lib/airlock-host', 'var-lib-airlock-host'],
  ['/usr/local/bin', 'usr-local-bin'],
  ['/tmp', 'tmp'],
];
/** The machine's directories each isolated host sees through an overlay with upper dirs of its own. */
const SYSTEM_OVERLAYS = ['/etc', '/usr', '/var'] as const;
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => fss.existsSync(p)) ?? '/usr/sbin/sshd';
const EMULATOR_SRC = fileURLToPath(new URL('./gpu/nvidia-smi.mjs', import.meta.url));
const SYSTEMCTL_SRC = fileURLToPath(new URL('./host/systemctl.mjs', import.meta.url));
const INFERENCE_SIM_SRC = fileURLToPath(new URL('./host/airlock-inference-sim.mjs', import.meta.url));
/** Inside an isolated host (private /run), sshd's pid file is where Debian keeps it. */
const HOST_SSHD_PIDFILE = '/run/sshd.pid';
/** Inside an isolated host, the host key sshd serves (a copy of `<host dir>/ssh_host_ed25519_key`). */
const HOST_KEY_IN_HOST = '/etc/ssh/ssh_host_ed25519_key';

/** Root of all labs' state directories. */
export function labStateRoot(): string {
  if (process.env.AIRLOCK_LAB_STATE) return path.resolve(process.env.AIRLOCK_LAB_STATE);
  if (isRoot()) return '/run/airlock-lab';
  return path.join(os.tmpdir(), `airlock-lab-${process.getuid?.() ?? 'user'}`);
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

// ---------------------------------------------------------------------------------------------
// Internal state (state.json)
// ---------------------------------------------------------------------------------------------

/** A process we started: pid plus its start time, so a recycled pid is never killed. */
interface ProcRef {
  pid: number;
  start: string;
}

interface HostState extends LabHost {
  veth: string | null;
  sshd: ProcRef | null;
  /**
   * Isolated hosts: the process holding the host's mount and UTS namespaces (its `enter.sh`),
   * which sshd and {@link runOnHost} enter. Absent in labs started by an older lab.ts.
   */
  holder?: ProcRef | null;
  /** Inode of the sshd's mount namespace (`mnt:[…]`), to find every process of the host. */
  mntNs: string | null;
  linkCut: boolean;
  slowed: boolean;
}

interface LabState {
  version: 1;
  id: string;
  mode: 'netns' | 'loopback';
  /** Private mount + UTS namespaces per host (always in netns mode; in loopback mode when root). */
  isolation: boolean;
  slot: number;
  subnet: string;
  dir: string;
  status: 'starting' | 'up';
  createdAt: string;
  /** The process the lab belongs to (null: persistent, started from the CLI). */
  owner: ProcRef | null;
  bridge: string | null;
  bridgeAddress: string | null;
  nftTable: string | null;
  notice?: string;
  hosts: HostState[];
  decoy: { address: string; port: number; netns: string | null; veth: string | null; proc: ProcRef | null };
}

function statePath(dir: string): string {
  return path.join(dir, 'state.json');
}

async function readState(dir: string): Promise<LabState | null> {
  try {
    return JSON.parse(await fs.readFile(statePath(dir), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

async function writeState(st: LabState): Promise<void> {
  const tmp = `${statePath(st.dir)}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(st, null, 2) + '\n');
  await fs.rename(tmp, statePath(st.dir));
}

/** Read-modify-write of a lab's state under that lab's lock. */
async function updateState(dir: string, fn: (st: LabState) => void | Promise<void>): Promise<LabState> {
  return withLock(dir, async () => {
    const st = await readState(dir);
    if (!st) throw new Error(`lab state ${statePath(dir)} is gone (was the lab taken down?)`);
    await fn(st);
    await writeState(st);
    return st;
  });
}

function toPublic(st: LabState): Lab {
  const lab: Lab = {
    id: st.id,
    mode: st.mode,
    subnet: st.subnet,
    dir: st.dir,
    hosts: st.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      fingerprint: h.fingerprint,
      netns: h.netns,
      dir: h.dir,
      gpuProfile: h.gpuProfile,
    })),
    decoy: { address: st.decoy.address, port: st.decoy.port },
    privateSystem: st.isolation,
  };
  if (st.notice) lab.notice = st.notice;
  return lab;
}

async function loadLab(lab: Lab): Promise<LabState> {
  const st = await readState(lab.dir);
  if (!st) throw new Error(`lab "${lab.id}" is not up (no ${statePath(lab.dir)})`);
  return st;
}

function findHost(st: LabState, name: string): HostState {
  const h = st.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`lab "${st.id}" has no host "${name}" (hosts: ${st.hosts.map((x) => x.name).join(', ')})`);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Small process helpers
// ---------------------------------------------------------------------------------------------

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a command to completion. Never throws for a non-zero exit; `code` is -1 on spawn error. */
function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
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
async function must(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`lab: \`${[cmd, ...args].join(' ')}\` failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function readStat(pid: number): { state: string; ppid: number; start: string } | null {
  try {
    const s = fss.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '?', ppid: Number(f[1]), start: f[19] ?? '' };
  } catch {
    return null;
  }
}

/** Alive = exists, same start time (not a recycled pid), and not a zombie. */
function alive(ref: ProcRef | null | undefined): boolean {
  if (!ref) return false;
  const s = readStat(ref.pid);
  return !!s && s.start === ref.start && s.state !== 'Z' && s.state !== 'X';
}

function procRef(pid: number): ProcRef | null {
  const s = readStat(pid);
  return s ? { pid, start: s.start } : null;
}

function allPids(): number[] {
  return fss
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** `pids` plus every descendant of them. */
function withDescendants(pids: number[]): Set<number> {
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

function nsLink(pid: number, kind: 'mnt' | 'net'): string | null {
  try {
    return fss.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return null;
  }
}

/** Never signalled, whatever a caller computes: init, kthreadd, this process and its ancestors. */
function protectedPids(): Set<number> {
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
async function killAll(pids: Iterable<number>, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
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
async function spawnDaemon(argv: string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<ProcRef> {
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

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Resolves with the first bytes a TCP server sends, or rejects (refused, timeout). */
function readBanner(address: string, port: number, timeoutMs: number): Promise<string> {
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

// ---------------------------------------------------------------------------------------------
// Locking and allocation
// ---------------------------------------------------------------------------------------------

/** A mkdir-based lock (atomic on every filesystem), broken when its owner is dead. */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.lock');
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await fs.mkdir(lock);
      await fs.writeFile(path.join(lock, 'owner'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(await fs.readFile(path.join(lock, 'owner'), 'utf8').catch(() => '0'));
      const st = await fs.stat(lock).catch(() => null);
      const ownerDead = owner > 0 && !readStat(owner);
      if (ownerDead || (st && Date.now() - st.mtimeMs > 30_000)) {
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`lab: timed out waiting for lock ${lock} (held by pid ${owner})`);
      await sleep(30 + Math.random() * 50);
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

async function listStates(root: string): Promise<LabState[]> {
  let names: string[] = [];
  try {
    names = await fs.readdir(root);
  } catch {
    return [];
  }
  const out: LabState[] = [];
  for (const n of names) {
    if (n.startsWith('.')) continue;
    const st = await readState(path.join(root, n));
    if (st) out.push(st);
  }
  return out;
}

/** Slots (the X of 10.213.X.0/24) already in use: by a lab's state, an interface, or a route. */
async function usedSlots(root: string, mode: 'netns' | 'loopback'): Promise<Set<number>> {
  const used = new Set<number>();
  for (const st of await listStates(root)) used.add(st.slot);
  // A lab dir without state.json yet is still being created: its name is not a slot, but its
  // state is written under the same lock that allocates, so nothing is missed.
  if (mode === 'netns') {
    const links = await run('ip', ['-o', 'link', 'show']);
    for (const m of links.stdout.matchAll(/^\d+:\s+airl[bv](\d+)/gm)) used.add(Number(m[1]));
    const addrs = await run('ip', ['-4', '-o', 'addr', 'show']);
    const routes = await run('ip', ['-4', 'route', 'show', 'table', 'all']);
    const re = new RegExp(`\\b${SUBNET_PREFIX.replace('.', '\\.')}\\.(\\d+)\\.`, 'g');
    for (const m of (addrs.stdout + routes.stdout).matchAll(re)) used.add(Number(m[1]));
  }
  return used;
}

// ---------------------------------------------------------------------------------------------
// Mode detection
// ---------------------------------------------------------------------------------------------

async function commandWorks(cmd: string, args: string[]): Promise<boolean> {
  return (await run(cmd, args, { timeoutMs: 5000 })).code === 0;
}

/**
 * Whether this machine can give hosts a system of their own: a private mount namespace in which
 * an overlay can be mounted with its upper directory under the lab state root.
 */
async function canIsolateHosts(root: string): Promise<boolean> {
  if (!isRoot() || process.env.AIRLOCK_LAB_NO_UNSHARE) return false;
  const probe = path.join(root, `.probe-${process.pid}`);
  try {
    await Promise.all(['l', 'u', 'w', 'm'].map((d) => fs.mkdir(path.join(probe, d), { recursive: true })));
    const [l, u, w, m] = ['l', 'u', 'w', 'm'].map((d) => path.join(probe, d));
    return await commandWorks('unshare', [
      '--uts', '--mount', '--propagation', 'private', '--',
      'mount', '-t', 'overlay', 'airlock-lab-probe', '-o', `lowerdir=${l},upperdir=${u},workdir=${w}`, m!,
    ]);
  } finally {
    await fs.rm(probe, { recursive: true, force: true });
  }
}

async function chooseMode(root: string): Promise<{ mode: 'netns' | 'loopback'; isolation: boolean; notice?: string }> {
  const forced = process.env.AIRLOCK_LAB_MODE;
  if (forced && forced !== 'netns' && forced !== 'loopback') {
    throw new Error(`AIRLOCK_LAB_MODE must be "netns" or "loopback", not "${forced}"`);
  }
  // AIRLOCK_LAB_NO_UNSHARE=1 simulates a machine without usable mount namespaces (for testing the
  // unprivileged fallback while root).
  const canIsolate = await canIsolateHosts(root);
  if (forced === 'loopback') {
    return {
      mode: 'loopback',
      isolation: canIsolate,
      notice: 'LOOPBACK MODE (AIRLOCK_LAB_MODE=loopback): hosts are sshd processes on 127.213.X.Y addresses, not sealed.',
    };
  }
  let why = '';
  if (!isRoot()) why = 'not running as root';
  else if (!canIsolate) why = '`unshare --uts --mount` or an overlay mount does not work here';
  else {
    const probe = `${NETNS_PREFIX}probe-${process.pid}`;
    const r = await run('ip', ['netns', 'add', probe]);
    await run('ip', ['netns', 'del', probe]);
    if (r.code !== 0) why = `\`ip netns add\` failed: ${r.stderr.trim()}`;
  }
  if (!why) return { mode: 'netns', isolation: true };
  if (forced === 'netns') throw new Error(`lab: AIRLOCK_LAB_MODE=netns but network namespaces are unavailable (${why})`);
  return {
    mode: 'loopback',
    isolation: canIsolate,
    notice:
      `LOOPBACK FALLBACK: network namespaces are unavailable (${why}). Hosts are sshd processes on ` +
      `127.213.X.Y addresses of this machine: not sealed, no per-host firewall, and a cut link is ` +
      `simulated by stopping the host's sshd.` +
      (canIsolate ? '' : ' Hosts share this machine\'s files: no provisioning tests (packages, units, sshd drop-ins) here.'),
  };
}

// ---------------------------------------------------------------------------------------------
// Host preparation
// ---------------------------------------------------------------------------------------------

async function keygen(keyFile: string, comment: string): Promise<string> {
  await fs.rm(keyFile, { force: true });
  await fs.rm(`${keyFile}.pub`, { force: true });
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', keyFile]);
  return fingerprintOf(`${keyFile}.pub`);
}

/** `SHA256:…` of a public key file, as printed by `ssh-keygen -lf`. */
async function fingerprintOf(pubFile: string): Promise<string> {
  // What ssh-keygen -lf computes: SHA-256 of the key blob, unpadded base64 (no process to start).
  const blob = (await fs.readFile(pubFile, 'utf8')).trim().split(/\s+/)[1] ?? '';
  const fp = `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
  if (!blob || !/^SHA256:[A-Za-z0-9+/]{43}$/.test(fp)) throw new Error(`lab: ${pubFile} is not a public key file`);
  return fp;
}

/** The node binary the emulator's shebang names; copied out of the way if a host would hide it. */
async function nodeForHosts(root: string, isolation: boolean): Promise<string> {
  const real = await fs.realpath(process.execPath);
  if (!isolation || !PRIVATE_DIRS.some(([t]) => real === t || real.startsWith(t + '/'))) return real;
  const copy = path.join(root, '.node-bin', 'node');
  const [a, b] = await Promise.all([fs.stat(real), fs.stat(copy).catch(() => null)]);
  if (!b || b.size !== a.size) {
    await fs.mkdir(path.dirname(copy), { recursive: true });
    await fs.copyFile(real, `${copy}.tmp`);
    await fs.chmod(`${copy}.tmp`, 0o755);
    await fs.rename(`${copy}.tmp`, copy);
  }
  return copy;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A host's overlay upper and work directories for one of {@link SYSTEM_OVERLAYS}. */
function overlayDirs(h: HostState, sys: string): { upper: string; work: string } {
  const name = sys.slice(1);
  return { upper: path.join(h.dir, 'system', 'upper', name), work: path.join(h.dir, 'system', 'work', name) };
}

function overlayOf(p: string): (typeof SYSTEM_OVERLAYS)[number] | null {
  return SYSTEM_OVERLAYS.find((d) => p === d || p.startsWith(d + '/')) ?? null;
}

/** Where a file an isolated host sees at `p` (under /etc, /usr or /var) lives in its upper dir. */
function upperPath(h: HostState, p: string): string {
  const sys = overlayOf(p);
  if (!sys) throw new Error(`lab: ${p} is not under ${SYSTEM_OVERLAYS.join(', ')}`);
  return path.join(overlayDirs(h, sys).upper, path.relative(sys, p));
}

/**
 * `mkdir -p`, synchronous and cheap: node's own recursive mkdir costs milliseconds per call, which
 * adds up over a lab's hosts.
 */
function mkdirp(p: string, mode = 0o755): void {
  try {
    fss.mkdirSync(p, { mode });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT') throw e;
    mkdirp(path.dirname(p));
    fss.mkdirSync(p, { mode });
  }
}

/** Copies a machine directory's mode and owner onto its upper-dir counterpart (what the host sees). */
function mirrorDirAttrs(lower: string, upper: string): void {
  const st = fss.statSync(lower, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return;
  fss.chmodSync(upper, st.mode & 0o7777);
  fss.chownSync(upper, st.uid, st.gid);
}

/**
 * Makes the directories leading to `p` (inclusive) in the host's upper dir, with the machine's
 * modes. (The host-system helpers are synchronous: many small calls, cheaper than the thread pool.)
 */
function mkUpperDirs(h: HostState, p: string): void {
  const sys = overlayOf(p);
  if (!sys) throw new Error(`lab: ${p} is not under ${SYSTEM_OVERLAYS.join(', ')}`);
  let lower: string = sys;
  let upper = overlayDirs(h, sys).upper;
  for (const part of path.relative(sys, p).split('/').filter(Boolean)) {
    lower = path.join(lower, part);
    upper = path.join(upper, part);
    if (fss.existsSync(upper)) continue;
    fss.mkdirSync(upper, { mode: 0o755 });
    mirrorDirAttrs(lower, upper);
  }
}

/** Writes a file into the host's system (its upper dir), before the host's overlays are mounted. */
function writeHostSystemFile(h: HostState, p: string, content: string, mode: number, owner?: { uid: number; gid: number }): void {
  mkUpperDirs(h, path.dirname(p));
  const f = upperPath(h, p);
  fss.writeFileSync(f, content, { mode });
  fss.chmodSync(f, mode);
  if (owner) fss.chownSync(f, owner.uid, owner.gid);
}

/**
 * Hides a machine file from the host: an overlay whiteout (a 0/0 character device) in its upper
 * dir — a hard link to the lab's one whiteout node, as overlayfs itself shares them.
 */
function whiteout(h: HostState, p: string, template: string): void {
  mkUpperDirs(h, path.dirname(p));
  const f = upperPath(h, p);
  fss.linkSync(template, f);
}

/**
 * The mounts that make an isolated host, in fstab form for one `mount -a` (one process instead of
 * a dozen): overlays over the machine's /etc, /usr and /var, a /run of its own (with the lab state
 * bound back in when it lives under /run), and the host's private directories.
 */
function hostFstab(st: LabState, h: HostState): string {
  const root = path.dirname(st.dir);
  const rootInRun = root.startsWith('/run/') ? path.join(h.dir, 'run', path.relative('/run', root)) : null;
  const lines = [
    `# Mounts of lab host ${h.name} of lab ${st.id}, made by its enter.sh (test/lab/lab.ts).`,
    ...SYSTEM_OVERLAYS.map((d) => {
      const o = overlayDirs(h, d);
      return `airlock-lab-${h.name} ${d} overlay lowerdir=${d},upperdir=${o.upper},workdir=${o.work} 0 0`;
    }),
    ...(rootInRun ? [`${root} ${rootInRun} none bind 0 0`] : []),
    `${path.join(h.dir, 'run')} /run none rbind 0 0`,
    ...PRIVATE_DIRS.map(([target, sub]) => `${path.join(h.dir, 'fs', sub)} ${target} none bind 0 0`),
  ];
  return lines.join('\n') + '\n';
}

/**
 * The script that makes a host (run under `unshare --uts --mount --propagation private`, inside
 * the host's netns): its hostname and mounts ({@link hostFstab}); then it holds the namespaces
 * open for sshd and runOnHost to enter.
 */
function enterScript(st: LabState, h: HostState, system: HostSystem | null): string {
  const lines = [
    '#!/bin/sh',
    `# Lab host ${h.name} of lab ${st.id} (written by test/lab/lab.ts). Run under`,
    '# `unshare --uts --mount --propagation private`: builds the host and holds its namespaces.',
    'set -e',
    // Through /proc: a profile's own hostname may hold bytes the `hostname` tool refuses (escape
    // sequences, HTML); the kernel takes any 64 bytes, and that is what a hostile host can do too.
    `printf '%s' ${shQuote(system?.hostname ?? h.name)} > /proc/sys/kernel/hostname`,
    `mount -n -a -T ${shQuote(path.join(h.dir, 'fstab'))}`,
    `: > ${shQuote(path.join(h.dir, 'holder.ready'))}`,
    'while :; do sleep 86400; done',
    '',
  ];
  return lines.join('\n');
}

/** A profile's `system` part, checked. */
interface HostSystem {
  hostname?: string;
}

/** os-release values are shell-like double-quoted strings: `\`, `"`, `$` and backquote are escaped. */
function osReleaseQuote(v: string): string {
  return `"${v.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

/**
 * Writes the host's own hostname and os-release for a profile's `system` part. Only isolated
 * hosts (own UTS namespace and system files) can say something else than this machine does.
 */
async function prepareSystem(st: LabState, h: HostState, profile: GpuProfile): Promise<HostSystem | null> {
  const sys = profile.system;
  if (!sys || !st.isolation) return null;
  const out: HostSystem = {};
  if (sys.hostname !== undefined) {
    const bytes = Buffer.byteLength(sys.hostname);
    if (bytes < 1 || bytes > 64 || /[\0\n]/.test(sys.hostname)) {
      throw new Error(`lab: profile ${profile.profile}: a hostname is 1–64 bytes without NUL or newline (got ${bytes} bytes)`);
    }
    out.hostname = sys.hostname;
    writeHostSystemFile(h, '/etc/hostname', `${sys.hostname}\n`, 0o644);
  }
  if (sys.osPrettyName !== undefined) {
    const target = ['/etc/os-release', '/usr/lib/os-release'].find((p) => fss.existsSync(p));
    if (!target) throw new Error('lab: this machine has no os-release to shadow');
    // /etc/os-release is usually a link to /usr/lib/os-release: the host gets its own copy of the file.
    const real = await fs.realpath(target);
    if (!overlayOf(real)) throw new Error(`lab: os-release at ${real} is outside ${SYSTEM_OVERLAYS.join(', ')}`);
    const base = (await fs.readFile(target, 'utf8')).split('\n').filter((l) => l && !l.startsWith('PRETTY_NAME='));
    writeHostSystemFile(h, real, [`PRETTY_NAME=${osReleaseQuote(sys.osPrettyName)}`, ...base, ''].join('\n'), 0o644);
  }
  return out;
}

function sshdConfig(st: LabState, h: HostState): string {
  const listen = st.mode === 'netns' ? `0.0.0.0:${h.port}` : `${h.address}:${h.port}`;
  const sftp = fss.existsSync('/usr/lib/openssh/sftp-server') ? '/usr/lib/openssh/sftp-server' : 'internal-sftp';
  const common = [
    'KbdInteractiveAuthentication no',
    `AllowUsers ${h.user}`,
    'UsePAM no',
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'X11Forwarding no',
    'LoginGraceTime 30',
    // Scans of many hosts open many sessions at once; do not let sshd's default throttle them.
    'MaxStartups 200:30:400',
    'MaxSessions 64',
    'AcceptEnv LANG LC_*',
    `Subsystem sftp ${sftp}`,
  ];
  if (st.isolation) {
    // The host's own /etc/ssh/sshd_config (sshd reads it from its default place, so `sshd -T` and
    // `sshd -t` on the host see what the listener runs with, and drop-ins + SIGHUP really apply).
    return [
      `# /etc/ssh/sshd_config of lab host ${h.name}, lab ${st.id} (generated by test/lab/lab.ts).`,
      "# As on Debian, drop-ins come first and win: sshd keeps the first value it reads for a setting.",
      'Include /etc/ssh/sshd_config.d/*.conf',
      '',
      `ListenAddress ${listen}`,
      `HostKey ${HOST_KEY_IN_HOST}`,
      `PidFile ${HOST_SSHD_PIDFILE}`,
      // Like a host nobody has hardened yet: root may log in and password authentication is on
      // (sshd's default) — but root has no password in this host's /etc/shadow, so only keys work.
      'PermitRootLogin yes',
      'PubkeyAuthentication yes',
      ...common,
      '',
    ].join('\n');
  }
  const lines = [
    `# sshd for lab ${st.id} host ${h.name} (generated by test/lab/lab.ts)`,
    `ListenAddress ${listen}`,
    `HostKey ${path.join(h.dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${path.join(h.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(h.dir, 'fs', 'root', '.ssh', 'authorized_keys')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'PermitRootLogin prohibit-password',
    ...common,
    // No private directories: put this host's nvidia-smi first on PATH instead, and give it its
    // own HOME (so one host's ~ is not another's, and the machine user's shell rc files stay out).
    `SetEnv PATH=${path.join(h.dir, 'fs', 'usr-local-bin')}:${HOST_PATH} HOME=${path.join(h.dir, 'fs', 'root')}`,
  ];
  return lines.join('\n') + '\n';
}

function validateKeyLine(line: string): string {
  const l = line.trim();
  if (!/^(?:[^\s]+\s+)?(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+)\s+[A-Za-z0-9+/=]+/.test(l)) {
    throw new Error(`lab: not an authorized_keys line: ${l.slice(0, 60)}`);
  }
  return l;
}

function keyLines(lines: string[]): string[] {
  return lines.map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map(validateKeyLine);
}

/** A host program from test/lab/host/: node shebang, and its lab configuration filled in. */
const hostProgramCache = new Map<string, string>();
async function hostProgram(src: string, nodePath: string, config?: Record<string, unknown>): Promise<string> {
  let text = hostProgramCache.get(src);
  if (text === undefined) {
    text = await fs.readFile(src, 'utf8');
    hostProgramCache.set(src, text);
  }
  text = text.replace(/^#!.*\n/, `#!${nodePath}\n`);
  if (config) text = text.replace(/\/\*LAB_CONFIG\*\/[\s\S]*?\/\*END_LAB_CONFIG\*\//, `/*LAB_CONFIG*/ ${JSON.stringify(config)} /*END_LAB_CONFIG*/`);
  return text;
}

/**
 * The host's `nvidia-smi`: a sh front end that answers a query it has seen before (same arguments,
 * same profile generation) from the emulator's cached answer — a scan then costs a fork of sh and
 * cat instead of starting node (~75 ms of CPU) — and otherwise runs the emulator, which fills the
 * cache with answers that do not depend on the clock. {@link setGpuProfile} starts a new generation.
 * The key is one path component: up to 250 bytes (Airlock's inventory query is 203).
 */
function smiFrontEnd(h: HostState, nodePath: string, emulator: string): string {
  const cache = path.join(h.dir, 'smi-cache');
  const emu = `${shQuote(nodePath)} ${shQuote(emulator)}`;
  return [
    '#!/bin/sh',
    `# nvidia-smi of lab host ${h.name}: the lab's emulator (${emulator}) behind a cache of its answers.`,
    `c=${shQuote(cache)}`,
    'k=',
    'for a do',
    `  case $a in ''|*[!A-Za-z0-9_.,=-]*) exec ${emu} "$@" ;; esac`,
    '  k=$k+$a',
    'done',
    'if [ -n "$k" ] && [ ${#k} -le 250 ] && [ -f "$c/gen" ] && read g < "$c/gen"; then',
    '  d=$c/$g/$k',
    '  if [ -f "$d/code" ] && read code < "$d/code"; then',
    '    if [ -s "$d/err" ]; then cat "$d/err" >&2; fi',
    '    cat "$d/out"',
    '    exit "$code"',
    '  fi',
    `  AIRLOCK_LAB_SMI_CACHE_ENTRY=$d exec ${emu} "$@"`,
    'fi',
    `exec ${emu} "$@"`,
    '',
  ].join('\n');
}

/** What an isolated host's system gets from the machine, computed once per lab. */
interface SystemBase {
  /** The machine's /etc/shadow with every password replaced: nobody can log in to a host by password. */
  shadow: { text: string; mode: number; uid: number; gid: number } | null;
  sshdDropIns: string[];
  otherHostKeys: string[];
  /** Machine files a host must not see (a container's policy-rc.d that forbids starting services). */
  hidden: string[];
  /** A whiteout node every host's whiteouts are hard links to. */
  whiteout: string;
}

async function systemBase(labDir: string): Promise<SystemBase> {
  let shadow: SystemBase['shadow'] = null;
  try {
    const [text, st] = await Promise.all([fs.readFile('/etc/shadow', 'utf8'), fs.stat('/etc/shadow')]);
    const lines = text.split('\n').map((l) => {
      const f = l.split(':');
      if (f.length < 2) return l;
      // With UsePAM off, sshd refuses a locked account ('!'): root gets '*' (no password, not locked).
      f[1] = f[0] === 'root' || !f[1]!.startsWith('!') ? '*' : '!';
      return f.join(':');
    });
    shadow = { text: lines.join('\n'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch {
    /* no readable shadow: the host sees the machine's */
  }
  const sshdDropIns = await fs.readdir('/etc/ssh/sshd_config.d').catch(() => [] as string[]);
  const otherHostKeys = (await fs.readdir('/etc/ssh').catch(() => [] as string[])).filter((n) => /^ssh_host_.+_key(\.pub)?$/.test(n) && !n.startsWith(path.basename(HOST_KEY_IN_HOST)));
  const whiteoutNode = path.join(labDir, '.whiteout');
  await fs.rm(whiteoutNode, { force: true });
  await must('mknod', [whiteoutNode, 'c', '0', '0']);
  const hidden = ['/usr/sbin/policy-rc.d'].filter((f) => fss.existsSync(f));
  return { shadow, sshdDropIns, otherHostKeys, hidden, whiteout: whiteoutNode };
}

/** An isolated host's own system: upper/work dirs and the files it must differ from the machine in. */
function prepareHostSystem(st: LabState, h: HostState, base: SystemBase): void {
  for (const d of SYSTEM_OVERLAYS) {
    const o = overlayDirs(h, d);
    mkdirp(o.upper);
    mkdirp(o.work);
    mirrorDirAttrs(d, o.upper);
  }
  // The host's /run: sshd's privilege separation dir and pid file, a lock dir, "systemd is running".
  const run = path.join(h.dir, 'run');
  for (const d of ['sshd', 'lock', 'user', 'systemd/system']) mkdirp(path.join(run, d));
  fss.chmodSync(path.join(run, 'lock'), 0o1777);
  const root = path.dirname(st.dir);
  if (root.startsWith('/run/')) mkdirp(path.join(run, path.relative('/run', root)));
  fss.writeFileSync(path.join(h.dir, 'fstab'), hostFstab(st, h));
  writeHostSystemFile(h, '/etc/hostname', `${h.name}\n`, 0o644);
  // Like a cluster node's /etc/hosts: itself on 127.0.1.1 (Debian's convention), its peers by name.
  writeHostSystemFile(
    h,
    '/etc/hosts',
    [
      '127.0.0.1\tlocalhost',
      `127.0.1.1\t${h.name}`,
      '::1\tlocalhost ip6-localhost ip6-loopback',
      ...st.hosts.filter((o) => o !== h).map((o) => `${o.address}\t${o.name}`),
      '',
    ].join('\n'),
    0o644,
  );
  if (base.shadow) writeHostSystemFile(h, '/etc/shadow', base.shadow.text, base.shadow.mode, base.shadow);
  writeHostSystemFile(h, '/etc/ssh/sshd_config', sshdConfig(st, h), 0o644);
  // The machine's sshd drop-ins and host keys are not this host's.
  for (const n of base.sshdDropIns) whiteout(h, `/etc/ssh/sshd_config.d/${n}`, base.whiteout);
  for (const n of base.otherHostKeys) whiteout(h, `/etc/ssh/${n}`, base.whiteout);
  // A host is a machine, not a container: packages may start their services (with the simulator).
  for (const f of base.hidden) whiteout(h, f, base.whiteout);
  // Mount points and directories a Debian host has.
  for (const d of ['/etc/ssh/sshd_config.d', '/etc/systemd/system', ...PRIVATE_DIRS.map(([t]) => t).filter((t) => overlayOf(t))]) {
    mkUpperDirs(h, d);
  }
}

/** Copies the host key from `<host dir>` to where the isolated host's sshd reads it. */
async function hostKeyFiles(h: HostState): Promise<{ key: string; pub: string }> {
  const keyFile = path.join(h.dir, 'ssh_host_ed25519_key');
  return { key: await fs.readFile(keyFile, 'utf8'), pub: await fs.readFile(`${keyFile}.pub`, 'utf8') };
}

async function prepareHost(st: LabState, h: HostState, keys: string[], nodePath: string, base: SystemBase | null, seed: string): Promise<void> {
  const fsDir = path.join(h.dir, 'fs');
  for (const [, sub] of PRIVATE_DIRS) mkdirp(path.join(fsDir, sub));
  mkdirp(path.join(fsDir, 'root', '.ssh'));
  await fs.chmod(path.join(fsDir, 'root'), 0o700);
  await fs.chmod(path.join(fsDir, 'tmp'), 0o1777);
  await fs.writeFile(path.join(fsDir, 'root', '.ssh', 'authorized_keys'), keys.map((k) => k + '\n').join(''), { mode: 0o600 });
  const fingerprint = keygen(path.join(h.dir, 'ssh_host_ed25519_key'), `root@${h.name}`);
  fingerprint.catch(() => {}); // awaited below; meanwhile the host's system is written
  if (st.isolation) {
    prepareHostSystem(st, h, base!);
    h.fingerprint = await fingerprint;
    const { key, pub } = await hostKeyFiles(h);
    writeHostSystemFile(h, HOST_KEY_IN_HOST, key, 0o600);
    writeHostSystemFile(h, `${HOST_KEY_IN_HOST}.pub`, pub, 0o644);
  } else {
    h.fingerprint = await fingerprint;
    await fs.writeFile(path.join(h.dir, 'sshd_config'), sshdConfig(st, h));
  }
  // GPU emulator + profile.
  const profile = makeGpuProfile(h.gpuProfile, seed);
  const profilePath = path.join(h.dir, 'gpu.json');
  fss.writeFileSync(profilePath, JSON.stringify(profile, null, 2) + '\n');
  const bin = path.join(fsDir, 'usr-local-bin');
  if (profile.failure !== 'absent') {
    const emulator = path.join(h.dir, 'nvidia-smi.mjs');
    const script = (await hostProgram(EMULATOR_SRC, nodePath)).replace("'__AIRLOCK_LAB_GPU_PROFILE__'", JSON.stringify(profilePath));
    fss.writeFileSync(emulator, script, { mode: 0o755 });
    mkdirp(path.join(h.dir, 'smi-cache'));
    fss.writeFileSync(path.join(h.dir, 'smi-cache', 'gen'), '1\n');
    fss.writeFileSync(path.join(bin, 'nvidia-smi'), smiFrontEnd(h, nodePath, emulator), { mode: 0o755 });
  }
  fss.writeFileSync(path.join(bin, 'airlock-inference-sim'), await hostProgram(INFERENCE_SIM_SRC, nodePath), { mode: 0o755 });
  if (st.isolation) {
    // systemd's stand-in (only where the host has its own /etc, /var and /run to keep units in).
    const systemctl = await hostProgram(SYSTEMCTL_SRC, nodePath, {
      unitPath: ['/etc/systemd/system', '/run/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'],
      stateDir: '/var/lib/airlock-host/systemd',
      sshdPidFile: HOST_SSHD_PIDFILE,
      sshd: SSHD,
    });
    fss.writeFileSync(path.join(bin, 'systemctl'), systemctl, { mode: 0o755 });
    fss.writeFileSync(path.join(bin, 'journalctl'), systemctl, { mode: 0o755 });
  }
  const system = await prepareSystem(st, h, profile);
  if (st.isolation) await fs.writeFile(path.join(h.dir, 'enter.sh'), enterScript(st, h, system), { mode: 0o755 });
}

// ---------------------------------------------------------------------------------------------
// Processes: host namespaces, sshd and decoy
// ---------------------------------------------------------------------------------------------

/**
 * Starts the process that makes an isolated host and holds its mount and UTS namespaces (its
 * `enter.sh`, inside the host's netns), and waits until the host's filesystem is built.
 */
async function launchHolder(st: LabState, h: HostState, timeoutMs = 15_000): Promise<void> {
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
async function ensureHolder(st: LabState, h: HostState): Promise<ProcRef> {
  if (h.holder === undefined) {
    throw new Error(`lab "${st.id}" was started by an older lab.ts (no namespace holder for ${h.name}); take it down and up again`);
  }
  if (!alive(h.holder)) await launchHolder(st, h);
  return h.holder!;
}

/** Runs `argv` inside an isolated host's namespaces (its holder must be alive). */
function execInHost(h: HostState, holder: ProcRef, argv: string[], opts: { input?: string; timeoutMs?: number }): Promise<RunResult> {
  const env = { PATH: HOST_PATH, HOME: '/root', USER: 'root', LOGNAME: 'root', LANG: 'C.UTF-8', TERM: 'dumb' };
  const nsArgs = ['-t', String(holder.pid), '-m', '-u', ...(h.netns ? ['-n'] : []), '--'];
  return run('nsenter', [...nsArgs, ...argv], { input: opts.input, timeoutMs: opts.timeoutMs ?? 30_000, env, cwd: '/' });
}

/** Puts the host key of `<host dir>` where an isolated host's sshd reads it. */
async function installHostKey(st: LabState, h: HostState): Promise<void> {
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

function sshdArgv(st: LabState, h: HostState): string[] {
  const log = path.join(h.dir, 'sshd.log');
  if (!st.isolation) return [SSHD, '-D', '-f', path.join(h.dir, 'sshd_config'), '-h', path.join(h.dir, 'ssh_host_ed25519_key'), '-E', log];
  // Inside the host, sshd reads the host's own /etc/ssh/sshd_config. nsenter execs (no fork).
  return ['nsenter', '-t', String(h.holder!.pid), '-m', '-u', ...(h.netns ? ['-n'] : []), '--', SSHD, '-D', '-E', log];
}

/** Starts the host's sshd and waits until it sends its SSH banner. Updates `h` in place. */
async function launchSshd(st: LabState, h: HostState, timeoutMs = 20_000): Promise<void> {
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

async function stopSshd(h: HostState, sessions: boolean): Promise<void> {
  if (!alive(h.sshd)) {
    h.sshd = null;
    return;
  }
  const ref = h.sshd!;
  await killAll(sessions ? withDescendants([ref.pid]) : [ref.pid]);
  h.sshd = null;
}

const DECOY_JS = `// The lab's decoy "outside world": answers every TCP connection with "decoy\\n" and logs it.
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

async function launchDecoy(st: LabState): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// Network (netns mode)
// ---------------------------------------------------------------------------------------------

async function buildNetwork(st: LabState): Promise<void> {
  const br = st.bridge!;
  const members = [
    ...st.hosts.map((h) => ({ netns: h.netns!, veth: h.veth!, address: h.address })),
    { netns: st.decoy.netns!, veth: st.decoy.veth!, address: st.decoy.address },
  ];
  const rootCmds = [
    ...members.map((m) => `netns add ${m.netns}`),
    `link add ${br} type bridge`,
    // No IPv6 link-local chatter from the lab's interfaces: the lab speaks IPv4 on its /24 only.
    `link set ${br} addrgenmode none`,
    `addr add ${st.bridgeAddress}/24 dev ${br}`,
    `link set ${br} up`,
    ...members.flatMap((m) => [
      `link add ${m.veth} type veth peer name eth0 netns ${m.netns}`,
      `link set ${m.veth} addrgenmode none`,
      `link set ${m.veth} master ${br} up`,
    ]),
  ];
  await must('ip', ['-batch', '-'], { input: rootCmds.join('\n') + '\n' });
  // Inside each namespace: lo, and eth0 with its address. The connected /24 route is the only
  // route a host gets: no default route, so nothing can be sent off the lab subnet.
  await Promise.all(
    members.map((m) =>
      must('ip', ['-n', m.netns, '-batch', '-'], {
        input: ['link set lo up', 'link set eth0 addrgenmode none', `addr add ${m.address}/24 dev eth0`, 'link set eth0 up'].join('\n') + '\n',
      }),
    ),
  );
  // Seal the root namespace: whatever its forwarding settings, nothing is routed between the lab
  // bridge and any other interface, and hosts can reach no address of this machine but the
  // bridge's own (the threat: a test or a bug in Airlock making a lab host talk to the real network).
  const t = st.nftTable!;
  const ruleset = `table inet ${t} {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname "${br}" oifname != "${br}" drop
    oifname "${br}" iifname != "${br}" drop
  }
  chain input {
    type filter hook input priority filter - 10; policy accept;
    iifname "${br}" meta nfproto ipv6 drop
    iifname "${br}" ip daddr != { ${st.bridgeAddress}, 255.255.255.255, 224.0.0.0/4, ${SUBNET_PREFIX}.${st.slot}.255 } drop
  }
}
`;
  await must('nft', ['-f', '-'], { input: ruleset });
}

// ---------------------------------------------------------------------------------------------
// Public API: up / down / status
// ---------------------------------------------------------------------------------------------

/**
 * Starts a lab of `opts.hosts` hosts and returns when every sshd answers with its banner.
 * If anything fails midway, everything made so far is torn down before the error is thrown.
 * Refuses an id that is already up unless `replace` is set.
 */
export async function labUp(opts: LabUpOptions): Promise<Lab> {
  const id = opts.id ?? DEFAULT_LAB_ID;
  if (!ID_RE.test(id)) throw new Error(`lab: bad id "${id}" (letters, digits, - and _, at most 24 chars)`);
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_HOSTS) {
    throw new Error(`lab: --hosts must be an integer from 1 to ${MAX_HOSTS}`);
  }
  const profiles = opts.gpuProfiles?.length ? opts.gpuProfiles : [...GPU_PROFILE_ROTATION];
  for (const p of profiles) {
    if (!(GPU_PROFILE_NAMES as readonly string[]).includes(p)) throw new Error(`lab: unknown GPU profile "${p}" (known: ${GPU_PROFILE_NAMES.join(', ')})`);
  }
  const keys = keyLines(opts.authorize ?? []);
  const root = labStateRoot();
  await fs.mkdir(root, { recursive: true, mode: 0o755 });
  const dir = path.join(root, id);
  if (opts.replace) await labDown({ id });

  const { mode, isolation, notice } = await chooseMode(root);
  const user = mode === 'netns' || isRoot() ? 'root' : os.userInfo().username;

  // Allocate a slot and claim the id atomically.
  const st = await withLock(root, async (): Promise<LabState> => {
    if (fss.existsSync(dir)) {
      const old = await readState(dir);
      const stale = !old || (old.owner !== null && !alive(old.owner));
      if (!stale) {
        throw new Error(`lab "${id}" already exists (${dir}); take it down first: npm run lab -- down --id ${id}`);
      }
      await downOne(root, id); // left behind by a process that died before taking it down
    }
    const used = await usedSlots(root, mode);
    let slot = 0;
    for (let x = 1; x <= 254; x++) {
      if (!used.has(x)) {
        slot = x;
        break;
      }
    }
    if (!slot) throw new Error('lab: all 254 lab subnets are in use');
    await fs.mkdir(path.join(dir, 'hosts'), { recursive: true });
    const prefix = mode === 'netns' ? `${SUBNET_PREFIX}.${slot}` : `${LOOPBACK_PREFIX}.${slot}`;
    const state: LabState = {
      version: 1,
      id,
      mode,
      isolation,
      slot,
      subnet: `${prefix}.0/24`,
      dir,
      status: 'starting',
      createdAt: new Date().toISOString(),
      owner: opts.persistent ? null : procRef(process.pid),
      bridge: mode === 'netns' ? `airlb${slot}` : null,
      bridgeAddress: mode === 'netns' ? `${prefix}.1` : null,
      nftTable: mode === 'netns' ? `${NFT_TABLE_PREFIX}${slot}` : null,
      hosts: Array.from({ length: opts.hosts }, (_, i): HostState => {
        const n = i + 1;
        const name = `host${n}`;
        return {
          name,
          address: `${prefix}.${HOST_OFFSET + n}`,
          port: mode === 'netns' ? 22 : LOOPBACK_PORT_BASE + n,
          user,
          fingerprint: '',
          netns: mode === 'netns' ? `${NETNS_PREFIX}${id}.${name}` : null,
          dir: path.join(dir, 'hosts', name),
          gpuProfile: profiles[i % profiles.length]!,
          veth: mode === 'netns' ? `airlv${slot}h${n}` : null,
          sshd: null,
          holder: null,
          mntNs: null,
          linkCut: false,
          slowed: false,
        };
      }),
      decoy: {
        address: `${prefix}.${DECOY_OCTET}`,
        port: DECOY_PORT,
        netns: mode === 'netns' ? `${NETNS_PREFIX}${id}.decoy` : null,
        veth: mode === 'netns' ? `airlv${slot}d` : null,
        proc: null,
      },
    };
    if (notice) state.notice = notice;
    await writeState(state);
    return state;
  });

  try {
    if (isolation) {
      const inside = [...PRIVATE_DIRS.map(([t]) => t), ...SYSTEM_OVERLAYS];
      if (inside.some((t) => (root + '/').startsWith(t + '/'))) {
        throw new Error(`lab: state root ${root} lies under a directory each host replaces; set AIRLOCK_LAB_STATE elsewhere`);
      }
      if (/[\s,:\\'"]/.test(root)) throw new Error(`lab: state root ${root} must not contain spaces, quotes, commas, colons or backslashes (overlay mount options)`);
    } else {
      // sshd's privilege separation directory (isolated hosts have a /run of their own).
      await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => {});
    }
    const nodePath = await nodeForHosts(root, isolation);
    const base = isolation ? await systemBase(dir) : null;
    for (const h of st.hosts) mkdirp(h.dir);
    await Promise.all(st.hosts.map((h) => prepareHost(st, h, keys, nodePath, base, `${id}/${h.name}`)));
    await writeState(st);
    if (mode === 'netns') await buildNetwork(st);
    await launchDecoy(st);
    await writeState(st);
    // Start in parallel; record every pid even if one of them fails, so cleanup finds them.
    const results = await Promise.allSettled(
      st.hosts.map(async (h) => {
        if (isolation) await launchHolder(st, h);
        await launchSshd(st, h);
      }),
    );
    st.status = results.every((r) => r.status === 'fulfilled') ? 'up' : 'starting';
    await writeState(st);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return toPublic(st);
  } catch (err) {
    await labDown({ id }).catch(() => {});
    throw err;
  }
}

/** Namespaces every ordinary process of this machine is in: never, by itself, a reason to kill. */
function machineNamespaces(): Set<string> {
  const out = new Set<string>();
  for (const pid of [1, process.pid]) {
    for (const kind of ['mnt', 'net'] as const) {
      const l = nsLink(pid, kind);
      if (l) out.add(l);
    }
  }
  return out;
}

/**
 * A lab program (an sshd of a host — also after a SIGHUP re-exec, which keeps its argv —, a host's
 * namespace holder `enter.sh`, the decoy), recognised by its command line naming a file of the
 * lab's state directory `dirRe` in the way only the lab does — not merely mentioning the
 * directory (a `tail -f` of a lab log is not the lab's). `sshd_config` matches labs started by an
 * older lab.ts and hosts without a system of their own.
 */
function labCommandRe(dirRe: string): RegExp {
  return new RegExp(`(?:^|\0)-E\0${dirRe}/hosts/[^/\0]+/sshd\.log(?:\0|$)|${dirRe}/(?:hosts/[^/\0]+/(?:sshd_config|enter\.sh)|decoy/decoy\.mjs)`);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function pidsMatchingCommand(re: RegExp): number[] {
  return allPids().filter((pid) => {
    try {
      return re.test(fss.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    } catch {
      return false;
    }
  });
}

/** Pids found in a lab network namespace (its processes, whatever they are). */
async function netnsPids(ns: string, machine: Set<string>): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns]);
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((pid) => {
      const n = nsLink(pid, 'net');
      return n !== null && !machine.has(n); // belt and braces: must really be outside our netns
    });
}

/**
 * Every process belonging to a lab: anything inside its network namespaces, the processes it
 * started (checked by start time) and their descendants, anything in a host's private mount
 * namespace, and lab programs naming its directory. The machine's own namespaces never count:
 * a loopback host without isolation shares them with every process here.
 */
async function labProcesses(st: LabState | null, dir: string, netnsNames: string[]): Promise<Set<number>> {
  const machine = machineNamespaces();
  const pids = new Set<number>();
  for (const ns of netnsNames) for (const p of await netnsPids(ns, machine)) pids.add(p);
  const roots: number[] = [];
  const mntNs = new Set<string>();
  if (st) {
    for (const h of st.hosts) {
      for (const ref of [h.holder, h.sshd]) {
        if (!alive(ref)) continue;
        roots.push(ref!.pid);
        const m = st.isolation ? nsLink(ref!.pid, 'mnt') : null;
        if (m && !machine.has(m)) mntNs.add(m);
      }
    }
    if (alive(st.decoy.proc)) roots.push(st.decoy.proc!.pid);
  }
  for (const p of withDescendants(roots)) pids.add(p);
  if (mntNs.size) {
    for (const pid of allPids()) {
      const m = nsLink(pid, 'mnt');
      if (m && mntNs.has(m)) pids.add(pid);
    }
  }
  for (const p of pidsMatchingCommand(labCommandRe(escapeRe(dir)))) pids.add(p);
  return pids;
}

async function listLabNetns(prefix: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

async function downOne(root: string, id: string): Promise<void> {
  const dir = path.join(root, id);
  const st = await readState(dir);
  const netnsNames = new Set<string>();
  const links = new Set<string>();
  if (st) {
    for (const h of st.hosts) if (h.netns) netnsNames.add(h.netns);
    if (st.decoy.netns) netnsNames.add(st.decoy.netns);
    for (const h of st.hosts) if (h.veth) links.add(h.veth);
    if (st.decoy.veth) links.add(st.decoy.veth);
    if (st.bridge) links.add(st.bridge);
  }
  if (isRoot()) for (const n of await listLabNetns(`${NETNS_PREFIX}${id}.`)) netnsNames.add(n);
  const existing = new Set(isRoot() ? await listLabNetns(NETNS_PREFIX) : []);
  const present = [...netnsNames].filter((n) => existing.has(n));

  await killAll(await labProcesses(st, dir, present));
  if (isRoot()) {
    const cmds = [...present.map((n) => `netns del ${n}`), ...[...links].map((l) => `link del ${l}`)];
    if (cmds.length) await run('ip', ['-force', '-batch', '-'], { input: cmds.join('\n') + '\n' });
    if (st?.nftTable) await run('nft', ['delete', 'table', 'inet', st.nftTable]);
  }
  await fs.rm(dir, { recursive: true, force: true });
}

/**
 * Takes a lab down: kills every process it started (sshd listeners and their sessions, anything
 * run inside its namespaces, the decoy), deletes its namespaces, veths, bridge and nft table, and
 * removes its state directory. Idempotent, and works on a half-started lab.
 * `all: true` takes down every lab and sweeps strays (namespaces `airlock-lab.*`, interfaces
 * `airlb*`/`airlv*`, nft tables `inet airlock_lab_*`, processes naming the state root).
 */
export async function labDown(opts: { id?: string; all?: boolean } = {}): Promise<void> {
  const root = labStateRoot();
  if (!opts.all) {
    const id = opts.id ?? DEFAULT_LAB_ID;
    if (!ID_RE.test(id)) throw new Error(`lab: bad id "${id}"`);
    await downOne(root, id);
    return;
  }
  let names: string[] = [];
  try {
    names = (await fs.readdir(root)).filter((n) => !n.startsWith('.') && ID_RE.test(n));
  } catch {
    /* no labs */
  }
  for (const n of names) await downOne(root, n);
  if (isRoot()) {
    const strays = await listLabNetns(NETNS_PREFIX);
    const machine = machineNamespaces();
    const pids = new Set<number>();
    for (const ns of strays) for (const p of await netnsPids(ns, machine)) pids.add(p);
    await killAll(pids);
    const linkList = await run('ip', ['-o', 'link', 'show']);
    const strayLinks = [...linkList.stdout.matchAll(/^\d+:\s+([^:@\s]+)/gm)].map((m) => m[1]!).filter((n) => IF_RE.test(n));
    const cmds = [...strays.map((n) => `netns del ${n}`), ...strayLinks.map((l) => `link del ${l}`)];
    if (cmds.length) await run('ip', ['-force', '-batch', '-'], { input: cmds.join('\n') + '\n' });
    const tables = await run('nft', ['list', 'tables', 'inet']);
    for (const m of tables.stdout.matchAll(new RegExp(`table inet (${NFT_TABLE_PREFIX}\\d+)`, 'g'))) {
      await run('nft', ['delete', 'table', 'inet', m[1]!]);
    }
  }
  await killAll(pidsMatchingCommand(labCommandRe(`${escapeRe(root)}/[^/\\0]+`)));
}

/** The lab with this id as recorded in its state file (plus live sshd/link status), or null. */
export async function labStatus(id: string = DEFAULT_LAB_ID): Promise<Lab | null> {
  const st = await readState(path.join(labStateRoot(), id));
  if (!st) return null;
  const lab = toPublic(st);
  lab.hosts.forEach((h, i) => {
    const s = st.hosts[i]!;
    h.sshdRunning = alive(s.sshd);
    h.linkCut = s.linkCut;
  });
  return lab;
}

/** Every lab that has a state file under {@link labStateRoot}. */
export async function labList(): Promise<Lab[]> {
  const out: Lab[] = [];
  for (const st of await listStates(labStateRoot())) {
    const lab = await labStatus(st.id);
    if (lab) out.push(lab);
  }
  return out;
}

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
async function freezeLoopbackHost(h: HostState, frozen: boolean): Promise<void> {
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
const CORRUPT_JS = `
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

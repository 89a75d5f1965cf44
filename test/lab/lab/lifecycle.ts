import { promises as fs } from 'node:fs';
import * as fss from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GPU_PROFILE_NAMES, GPU_PROFILE_ROTATION } from '../gpu/profiles';
import { DECOY_OCTET, DECOY_PORT, DEFAULT_LAB_ID, HOST_OFFSET, IF_RE, labIdFor, labRun, labRunOwner, RUN_RE, STORED_ID_RE, LOOPBACK_PORT_BASE, LOOPBACK_PREFIX, MAX_HOSTS, NETNS_PREFIX, NFT_TABLE_PREFIX, PRIVATE_DIRS, REGISTRY_HOST, REGISTRY_OCTET, SUBNET_PREFIX, SYSTEM_OVERLAYS, isRoot, labStateRoot } from './constants';
import { launchDecoy, launchHolder, launchSshd } from './daemons';
import { keyLines, mkdirp, nodeForHosts, prepareHost, systemBase } from './host-fs';
import { listStates, usedSlots, withLock } from './locking';
import { chooseMode } from './mode';
import { detachModelsLoops, modelsSizeMiB, setupModelsFs } from './models-fs';
import { buildNetwork } from './network';
import { launchRegistry } from './registry';
import { alive, allPids, killAll, nsLink, procRef, run, withDescendants } from './processes';
import { type HostState, type LabState, readState, toPublic, writeState } from './state';
import type { Lab, LabUpOptions } from './types';

// ---------------------------------------------------------------------------------------------
// Public API: up / down / status
// ---------------------------------------------------------------------------------------------

/**
 * Starts a lab of `opts.hosts` hosts and returns when every sshd answers with its banner.
 * If anything fails midway, everything made so far is torn down before the error is thrown.
 * Refuses an id that is already up unless `replace` is set.
 */
export async function labUp(opts: LabUpOptions): Promise<Lab> {
  const run = labRun();
  const id = labIdFor(opts.id ?? DEFAULT_LAB_ID, run);
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_HOSTS) {
    throw new Error(`lab: --hosts must be an integer from 1 to ${MAX_HOSTS}`);
  }
  const profiles = opts.gpuProfiles?.length ? opts.gpuProfiles : [...GPU_PROFILE_ROTATION];
  for (const p of profiles) {
    if (!(GPU_PROFILE_NAMES as readonly string[]).includes(p)) throw new Error(`lab: unknown GPU profile "${p}" (known: ${GPU_PROFILE_NAMES.join(', ')})`);
  }
  const keys = keyLines(opts.authorize ?? []);
  const modelsMiB = opts.encryptedModels ? modelsSizeMiB(opts.encryptedModels) : null;
  const root = labStateRoot();
  await fs.mkdir(root, { recursive: true, mode: 0o755 });
  const dir = path.join(root, id);
  if (opts.replace) await downOne(root, id);

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
    const newHost = (x: { name: string; octet: number; port: number; veth: string; gpuProfile: string }): HostState => ({
      name: x.name,
      address: `${prefix}.${x.octet}`,
      port: mode === 'netns' ? 22 : x.port,
      user,
      fingerprint: '',
      netns: mode === 'netns' ? `${NETNS_PREFIX}${id}.${x.name}` : null,
      dir: path.join(dir, 'hosts', x.name),
      gpuProfile: x.gpuProfile,
      veth: mode === 'netns' ? x.veth : null,
      sshd: null,
      holder: null,
      mntNs: null,
      linkCut: false,
      slowed: false,
    });
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
      run: run ? { id: run, owner: labRunOwner() } : null,
      bridge: mode === 'netns' ? `airlb${slot}` : null,
      bridgeAddress: mode === 'netns' ? `${prefix}.1` : null,
      nftTable: mode === 'netns' ? `${NFT_TABLE_PREFIX}${slot}` : null,
      hosts: [
        ...Array.from({ length: opts.hosts }, (_, i): HostState => {
          const n = i + 1;
          return newHost({ name: `host${n}`, octet: HOST_OFFSET + n, port: LOOPBACK_PORT_BASE + n, veth: `airlv${slot}h${n}`, gpuProfile: profiles[i % profiles.length]! });
        }),
        // The registry host: a lab host like the others (its own sshd), with no GPU.
        ...(opts.registry ? [newHost({ name: REGISTRY_HOST, octet: REGISTRY_OCTET, port: LOOPBACK_PORT_BASE + REGISTRY_OCTET, veth: `airlv${slot}r`, gpuProfile: 'absent' })] : []),
      ],
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
        if (modelsMiB !== null && h.name !== REGISTRY_HOST) await setupModelsFs(st, h, modelsMiB);
        await launchSshd(st, h);
      }),
    );
    st.status = results.every((r) => r.status === 'fulfilled') ? 'up' : 'starting';
    await writeState(st);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (opts.registry) await launchRegistry(st);
    return toPublic(st);
  } catch (err) {
    await downOne(root, id).catch(() => {});
    throw err;
  }
}

/** Namespaces every ordinary process of this machine is in: never, by itself, a reason to kill. */
export function machineNamespaces(): Set<string> {
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
export function labCommandRe(dirRe: string): RegExp {
  return new RegExp(`(?:^|\0)-E\0${dirRe}/hosts/[^/\0]+/sshd\.log(?:\0|$)|${dirRe}/(?:hosts/[^/\0]+/(?:sshd_config|enter\.sh|registry\.yml)|decoy/decoy\.mjs)`);
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function pidsMatchingCommand(re: RegExp): number[] {
  return allPids().filter((pid) => {
    try {
      return re.test(fss.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    } catch {
      return false;
    }
  });
}

/** Pids found in a lab network namespace (its processes, whatever they are). */
export async function netnsPids(ns: string, machine: Set<string>): Promise<number[]> {
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
export async function labProcesses(st: LabState | null, dir: string, netnsNames: string[]): Promise<Set<number>> {
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
    if (st.registryProc && alive(st.registryProc)) roots.push(st.registryProc.pid);
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

export async function listLabNetns(prefix: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

export async function downOne(root: string, id: string): Promise<void> {
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
  // Models images (encryptedModels): their mounts went with the host namespaces just killed.
  await detachModelsLoops(dir);
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
export async function labDown(opts: { id?: string; all?: boolean; run?: string } = {}): Promise<void> {
  const root = labStateRoot();
  if (opts.run !== undefined) {
    if (opts.all || opts.id !== undefined) throw new Error('lab: down takes one of id, run or all');
    await downRun(root, opts.run);
    return;
  }
  if (!opts.all) {
    await downOne(root, labIdFor(opts.id ?? DEFAULT_LAB_ID));
    return;
  }
  let names: string[] = [];
  try {
    names = (await fs.readdir(root)).filter((n) => !n.startsWith('.') && STORED_ID_RE.test(n));
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
  await detachModelsLoops(root);
}

/** The labs a test run started: those whose state records the run, and its half-made ones. */
async function downRun(root: string, run: string): Promise<void> {
  if (!RUN_RE.test(run)) throw new Error(`lab: bad run id "${run}" (1-8 lowercase letters or digits)`);
  let names: string[] = [];
  try {
    names = (await fs.readdir(root)).filter((n) => n.startsWith(`${run}-`) && STORED_ID_RE.test(n));
  } catch {
    return;
  }
  for (const n of names) {
    const st = await readState(path.join(root, n));
    // A directory without state.json of the run's prefix is one of its labs that never got one;
    // a state recording another run (or none) is not this run's, whatever its name.
    if (st ? st.run?.id === run : true) await downOne(root, n);
  }
}

/**
 * Whether a lab is stale: everything it was recorded to belong to is gone. A lab a process
 * started for itself belongs to that process; one started by a test run also to the run's own
 * process (scripts/test.mjs), while that lives. A persistent lab outside any run (a person's,
 * from the CLI) is never stale.
 */
export function labIsStale(st: LabState): boolean {
  const owners = [st.owner, st.run?.owner ?? null].filter((o): o is NonNullable<typeof o> => o !== null);
  return owners.length > 0 && !owners.some((o) => alive(o));
}

/**
 * Takes down the labs whose recorded owner is dead ({@link labIsStale}): what a crashed earlier
 * run left behind. `ids` (stored ids) limits it to those labs. Returns the ids taken down.
 */
export async function labReclaim(opts: { ids?: string[] } = {}): Promise<string[]> {
  const root = labStateRoot();
  const out: string[] = [];
  for (const st of await listStates(root)) {
    if (opts.ids && !opts.ids.includes(st.id)) continue;
    // Decided again under the lock labUp claims ids with, so a lab being made is never taken.
    const gone = await withLock(root, async () => {
      const now = await readState(path.join(root, st.id));
      if (!now || !labIsStale(now)) return false;
      await downOne(root, st.id);
      return true;
    });
    if (gone) out.push(st.id);
  }
  return out;
}

/** The lab with this id as recorded in its state file (plus live sshd/link status), or null. */
export async function labStatus(id: string = DEFAULT_LAB_ID): Promise<Lab | null> {
  return statusOf(labIdFor(id));
}

async function statusOf(id: string): Promise<Lab | null> {
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
    const lab = await statusOf(st.id);
    if (lab) out.push(lab);
  }
  return out;
}

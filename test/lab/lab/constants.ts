import * as fss from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Naming and constants
// ---------------------------------------------------------------------------------------------

/** Default lab id. */
export const DEFAULT_LAB_ID = 'demo';
/** Every lab namespace is named `airlock-lab.<id>.<host|decoy>`. */
export const NETNS_PREFIX = 'airlock-lab.';
/** Every lab interface in the root namespace is `airlb<slot>` (bridge) or `airlv<slot>…` (veth). */
export const IF_RE = /^airl[bv]\d+/;
export const NFT_TABLE_PREFIX = 'airlock_lab_';
export const SUBNET_PREFIX = '10.213';
export const LOOPBACK_PREFIX = '127.213';
export const HOST_OFFSET = 10; // host N is .(10+N)
export const DECOY_OCTET = 250;
/** The registry host (labUp({ registry: true })): its name, address octet and docker-registry port. */
export const REGISTRY_HOST = 'registry';
export const REGISTRY_OCTET = 240;
export const REGISTRY_PORT = 5000;
export const DECOY_PORT = 8080;
export const LOOPBACK_PORT_BASE = 2200;
export const MAX_HOSTS = 200;
/** A lab id as a caller names it (the CLI's `--id`, `labUp({ id })`). */
export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$/;
/** A test run's id (`AIRLOCK_LAB_RUN`): short, since it prefixes every lab id of the run. */
export const RUN_RE = /^[a-z0-9]{1,8}$/;
/** A lab's id as stored (its state directory's name): an {@link ID_RE} id, prefixed by a run id or not. */
export const STORED_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,32}$/;
/** Directories every host gets its own copy of (mount targets inside the host's mount ns). */
export const PRIVATE_DIRS: ReadonlyArray<[target: string, sub: string]> = [
  ['/root', 'root'],
  ['/srv', 'srv'],
  ['/opt', 'opt'],
  ['/var/lib/airlock-host', 'var-lib-airlock-host'],
  ['/usr/local/bin', 'usr-local-bin'],
  ['/tmp', 'tmp'],
];
/** The machine's directories each isolated host sees through an overlay with upper dirs of its own. */
export const SYSTEM_OVERLAYS = ['/etc', '/usr', '/var'] as const;
export const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => fss.existsSync(p)) ?? '/usr/sbin/sshd';
export const EMULATOR_SRC = fileURLToPath(new URL('../gpu/nvidia-smi.mjs', import.meta.url));
export const SYSTEMCTL_SRC = fileURLToPath(new URL('../host/systemctl.mjs', import.meta.url));
export const INFERENCE_SIM_SRC = fileURLToPath(new URL('../host/airlock-inference-sim.mjs', import.meta.url));
/** Inside an isolated host (private /run), sshd's pid file is where Debian keeps it. */
export const HOST_SSHD_PIDFILE = '/run/sshd.pid';
/** Inside an isolated host, the host key sshd serves (a copy of `<host dir>/ssh_host_ed25519_key`). */
export const HOST_KEY_IN_HOST = '/etc/ssh/ssh_host_ed25519_key';

/**
 * The test run this process belongs to: `AIRLOCK_LAB_RUN`, set by `npm test` (scripts/test.mjs)
 * for everything it starts, or null. Every lab id a process of the run asks for is prefixed with
 * it ({@link labIdFor}), so a run's labs never collide with another run's or a person's, and the
 * run can take down exactly its own at the end (`lab down --run RUN`).
 */
export function labRun(env: NodeJS.ProcessEnv = process.env): string | null {
  const run = env.AIRLOCK_LAB_RUN;
  if (run === undefined || run === '') return null;
  if (!RUN_RE.test(run)) throw new Error(`lab: AIRLOCK_LAB_RUN must be 1-8 lowercase letters or digits, not "${run}"`);
  return run;
}

/** The process a run belongs to (`AIRLOCK_LAB_RUN_OWNER=<pid>:<start>`, set by scripts/test.mjs), or null. */
export function labRunOwner(env: NodeJS.ProcessEnv = process.env): { pid: number; start: string } | null {
  const m = /^(\d+):(\d+)$/.exec(env.AIRLOCK_LAB_RUN_OWNER ?? '');
  return m ? { pid: Number(m[1]), start: m[2]! } : null;
}

/** The stored id of the lab a caller calls `id`: `<run>-<id>` inside a test run, else `id`. */
export function labIdFor(id: string, run: string | null = labRun()): string {
  if (!ID_RE.test(id)) throw new Error(`lab: bad id "${id}" (letters, digits, - and _, at most 24 chars)`);
  return run ? `${run}-${id}` : id;
}

/** Root of all labs' state directories. */
export function labStateRoot(): string {
  if (process.env.AIRLOCK_LAB_STATE) return path.resolve(process.env.AIRLOCK_LAB_STATE);
  if (isRoot()) return '/run/airlock-lab';
  return path.join(os.tmpdir(), `airlock-lab-${process.getuid?.() ?? 'user'}`);
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

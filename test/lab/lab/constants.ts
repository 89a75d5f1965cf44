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
export const DECOY_PORT = 8080;
export const LOOPBACK_PORT_BASE = 2200;
export const MAX_HOSTS = 200;
export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$/;
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

/** Root of all labs' state directories. */
export function labStateRoot(): string {
  if (process.env.AIRLOCK_LAB_STATE) return path.resolve(process.env.AIRLOCK_LAB_STATE);
  if (isRoot()) return '/run/airlock-lab';
  return path.join(os.tmpdir(), `airlock-lab-${process.getuid?.() ?? 'user'}`);
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

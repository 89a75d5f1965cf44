import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { NETNS_PREFIX, isRoot } from './constants';
import { run } from './processes';

// ---------------------------------------------------------------------------------------------
// Mode detection
// ---------------------------------------------------------------------------------------------

export async function commandWorks(cmd: string, args: string[]): Promise<boolean> {
  return (await run(cmd, args, { timeoutMs: 5000 })).code === 0;
}

/**
 * Whether this machine can give hosts a system of their own: a private mount namespace in which
 * an overlay can be mounted with its upper directory under the lab state root.
 */
export async function canIsolateHosts(root: string): Promise<boolean> {
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

export async function chooseMode(root: string): Promise<{ mode: 'netns' | 'loopback'; isolation: boolean; notice?: string }> {
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

import { promises as fs } from 'node:fs';
import * as fss from 'node:fs';
import * as path from 'node:path';
import { execInHost, ensureHolder } from './daemons';
import { mkdirp } from './host-fs';
import { isRoot } from './constants';
import { run } from './processes';
import { type HostState, type LabState, findHost, loadLab } from './state';
import type { Lab } from './types';

// ---------------------------------------------------------------------------------------------
// Encrypted model filesystems (labUp({ encryptedModels: true }))
// ---------------------------------------------------------------------------------------------

/**
 * Where each host mounts its models filesystem. Not /srv/models itself: fscrypt sets a policy only
 * on an empty directory and ext4 refuses one on its root (which also holds lost+found), and a
 * re-key swaps directories by renaming a symlink — so the filesystem sits beside /srv/models and
 * Airlock's encrypted directories (`k-<key identifier>`) live below it, /srv/models pointing at the
 * current one (docs/keys-fscrypt.md).
 */
export const MODELS_FS_MOUNT = '/srv/.models-fs';
/** Default size of a host's sparse ext4 image: room for test models, a few MiB on the machine's disk. */
export const MODELS_FS_DEFAULT_MIB = 256;

/** A host's models image: `<host dir>/models.img` (in the lab's state dir, outside the host's own directories). */
export function modelsImagePath(h: HostState): string {
  return path.join(h.dir, 'models.img');
}

/** The size the option asks for, checked. */
export function modelsSizeMiB(opt: true | { sizeMiB?: number }): number {
  const n = opt === true ? MODELS_FS_DEFAULT_MIB : (opt.sizeMiB ?? MODELS_FS_DEFAULT_MIB);
  if (!Number.isInteger(n) || n < 32 || n > 64 * 1024) throw new Error('lab: encryptedModels.sizeMiB must be an integer from 32 to 65536');
  return n;
}

/**
 * Gives an isolated host its encrypted-capable models filesystem: a sparse image, `mkfs.ext4 -O
 * encrypt`, a loop device attached on the machine, mounted at {@link MODELS_FS_MOUNT} inside the
 * host's mount namespace only. Never throws: a host that cannot have one records why in
 * `h.models.error` (labStatus and `lab status` show it), so a test fails with that reason instead
 * of finding a plain directory. The loop device is recorded as soon as it exists; {@link
 * detachModelsLoops} also finds one that was not (a crash in between).
 */
export async function setupModelsFs(st: LabState, h: HostState, sizeMiB: number): Promise<void> {
  const image = modelsImagePath(h);
  h.models = { image, device: null, mountpoint: MODELS_FS_MOUNT, mounted: false, error: null };
  try {
    if (!st.isolation) throw new Error('this host has no mount namespace of its own (loopback mode without root)');
    if (!isRoot()) throw new Error('attaching a loop device needs root');
    const fh = await fs.open(image, 'w', 0o600);
    try {
      await fh.truncate(sizeMiB * 1024 * 1024);
    } finally {
      await fh.close();
    }
    const mk = await run('mkfs.ext4', ['-q', '-F', '-O', 'encrypt', '-b', '4096', '-m', '0', '-L', 'airlock-models', '-E', 'lazy_itable_init=1,lazy_journal_init=1', image], { timeoutMs: 60_000 });
    if (mk.code !== 0) throw new Error(`mkfs.ext4 -O encrypt failed: ${(mk.stderr || mk.stdout).trim()}`);
    const lo = await run('losetup', ['--find', '--show', image], { timeoutMs: 30_000 });
    const device = lo.stdout.trim();
    if (lo.code !== 0 || !/^\/dev\/loop\d+$/.test(device)) throw new Error(`losetup failed: ${(lo.stderr || lo.stdout).trim()}`);
    h.models.device = device;
    mkdirp(path.join(h.dir, 'fs', 'srv', path.basename(MODELS_FS_MOUNT)));
    const holder = await ensureHolder(st, h);
    const m = await execInHost(h, holder, ['mount', '-t', 'ext4', '-o', 'nodev,nosuid', device, MODELS_FS_MOUNT], { timeoutMs: 30_000 });
    if (m.code !== 0) throw new Error(`mount ${device} on ${MODELS_FS_MOUNT} failed: ${(m.stderr || m.stdout).trim()}`);
    h.models.mounted = true;
  } catch (e) {
    h.models.error = `${h.name} has no encrypted models filesystem: ${(e as Error).message}`;
  }
}

/**
 * Detaches every loop device whose backing file lies under `dir` (a lab's state directory, or the
 * state root for `down --all`), whether or not the lab's state recorded it, also when the file is
 * already deleted. Run after the lab's processes are killed: the host mount namespaces, which
 * hold the mounts, go with them; a device still held for a moment is auto-cleared by the kernel
 * on its last close.
 */
export async function detachModelsLoops(dir: string): Promise<void> {
  if (!isRoot()) return;
  // A lab without the option (most of them) costs one readdir, not a losetup.
  if (!(await hasModelsImages(dir))) return;
  const r = await run('losetup', ['--list', '--noheadings', '--raw', '--output', 'NAME,BACK-FILE'], { timeoutMs: 30_000 });
  if (r.code !== 0) return;
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  for (const line of r.stdout.split('\n')) {
    const m = /^(\/dev\/loop\d+) (.+)$/.exec(line.trim());
    // --raw escapes spaces and other specials as \xNN; a lab's state path has none (labUp checks).
    if (!m || !m[2]!.replace(/ \(deleted\)$/, '').startsWith(prefix)) continue;
    await run('losetup', ['--detach', m[1]!], { timeoutMs: 30_000 });
  }
}

/** Whether `dir` (a lab's directory) holds a host models image; the state root always may. */
async function hasModelsImages(dir: string): Promise<boolean> {
  const hosts = path.join(dir, 'hosts');
  const names = await fs.readdir(hosts).catch(() => null);
  if (names === null) return !fss.existsSync(path.join(dir, 'state.json')) && fss.existsSync(dir); // the state root, or a lab without hosts/
  return names.some((n) => fss.existsSync(path.join(hosts, n, 'models.img')));
}

/**
 * The raw image file behind `host`'s models filesystem, on this machine: what a test reads to
 * show the host's disk holds no plaintext. Throws when the host has no mounted models filesystem
 * (with the reason recorded at labUp).
 */
export async function hostModelsImage(lab: Lab, host: string): Promise<string> {
  const h = findHost(await loadLab(lab), host);
  if (!h.models) throw new Error(`lab "${lab.id}" was not started with encryptedModels: ${host} has no models image`);
  if (!h.models.mounted) throw new Error(h.models.error ?? `${host}'s models filesystem is not mounted`);
  return h.models.image;
}

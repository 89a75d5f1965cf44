import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SUBNET_PREFIX } from './constants';
import { readStat, run, sleep } from './processes';
import { type LabState, readState, statePath, writeState } from './state';

// ---------------------------------------------------------------------------------------------
// Locking and allocation
// ---------------------------------------------------------------------------------------------

/** A mkdir-based lock (atomic on every filesystem), broken when its owner is dead. */
export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
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

export async function listStates(root: string): Promise<LabState[]> {
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
export async function usedSlots(root: string, mode: 'netns' | 'loopback'): Promise<Set<number>> {
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

/** Read-modify-write of a lab's state under that lab's lock. */
export async function updateState(dir: string, fn: (st: LabState) => void | Promise<void>): Promise<LabState> {
  return withLock(dir, async () => {
    const st = await readState(dir);
    if (!st) throw new Error(`lab state ${statePath(dir)} is gone (was the lab taken down?)`);
    await fn(st);
    await writeState(st);
    return st;
  });
}

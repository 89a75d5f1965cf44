import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { REGISTRY_HOST, REGISTRY_PORT } from './constants';
import type { Lab, LabHost, LabModelsFs, RegistryTokenAuth } from './types';

// ---------------------------------------------------------------------------------------------
// Internal state (state.json)
// ---------------------------------------------------------------------------------------------

/** A process we started: pid plus its start time, so a recycled pid is never killed. */
export interface ProcRef {
  pid: number;
  start: string;
}

export interface HostState extends LabHost {
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
  /** Labs with `encryptedModels` only (models-fs.ts). */
  models?: LabModelsFs;
}

export interface LabState {
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
  /**
   * The test run that started the lab (`AIRLOCK_LAB_RUN`), and the process that run belongs to
   * (`AIRLOCK_LAB_RUN_OWNER`: scripts/test.mjs), or null/absent: not started by a test run.
   */
  run?: { id: string; owner: ProcRef | null } | null;
  bridge: string | null;
  bridgeAddress: string | null;
  nftTable: string | null;
  notice?: string;
  hosts: HostState[];
  decoy: { address: string; port: number; netns: string | null; veth: string | null; proc: ProcRef | null };
  /** Labs with a registry host (registry.ts): its docker-registry process, auth settings and HTTP secret. */
  registryProc?: ProcRef | null;
  registryAuth?: RegistryTokenAuth | null;
  registrySecret?: string;
}

export function statePath(dir: string): string {
  return path.join(dir, 'state.json');
}

export async function readState(dir: string): Promise<LabState | null> {
  try {
    return JSON.parse(await fs.readFile(statePath(dir), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

export async function writeState(st: LabState): Promise<void> {
  const tmp = `${statePath(st.dir)}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(st, null, 2) + '\n');
  await fs.rename(tmp, statePath(st.dir));
}

/** The registry host's storage directory as this machine sees it (the host's private /srv lives in its state dir). */
export const registryStorageOnMachine = (h: Pick<HostState, 'dir'>): string => path.join(h.dir, 'fs', 'srv', 'registry');

export function toPublic(st: LabState): Lab {
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
      ...(h.models ? { models: { ...h.models } } : {}),
    })),
    decoy: { address: st.decoy.address, port: st.decoy.port },
    privateSystem: st.isolation,
  };
  if (st.notice) lab.notice = st.notice;
  const reg = st.hosts.find((h) => h.name === REGISTRY_HOST);
  if (reg) lab.registry = { host: reg.name, address: reg.address, port: REGISTRY_PORT, url: `http://${reg.address}:${REGISTRY_PORT}`, storage: registryStorageOnMachine(reg), auth: st.registryAuth ?? null };
  return lab;
}

export async function loadLab(lab: Lab): Promise<LabState> {
  const st = await readState(lab.dir);
  if (!st) throw new Error(`lab "${lab.id}" is not up (no ${statePath(lab.dir)})`);
  return st;
}

export function findHost(st: LabState, name: string): HostState {
  const h = st.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`lab "${st.id}" has no host "${name}" (hosts: ${st.hosts.map((x) => x.name).join(', ')})`);
  return h;
}

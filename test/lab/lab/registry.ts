import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as fss from 'node:fs';
import * as path from 'node:path';
import { HOST_PATH, REGISTRY_HOST, REGISTRY_PORT } from './constants';
import { ensureHolder } from './daemons';
import { alive, killAll, sleep, spawnDaemon, tail } from './processes';
import { type HostState, type LabState, loadLab, registryStorageOnMachine, toPublic, writeState } from './state';
import type { Lab, LabRegistry, RegistryTokenAuth } from './types';

// ---------------------------------------------------------------------------------------------
// The registry host (labUp({ registry: true })): Debian's docker-registry (CNCF distribution
// 2.8.2) in a lab host of its own, `docker-registry serve <its own config>`, bound to the host's
// lab address only, storage on the host's own filesystem. The Debian package's own service (which
// would listen on :5000 of this machine) is never started: .ci/run installs it with invoke-rc.d
// denied, and nothing here uses /etc/docker/registry.
// ---------------------------------------------------------------------------------------------

export const REGISTRY_BIN = ['/usr/bin/docker-registry', '/usr/local/bin/docker-registry'].find((p) => fss.existsSync(p)) ?? '/usr/bin/docker-registry';
/** Inside the registry host (its private /srv). */
const STORAGE_IN_HOST = '/srv/registry';

const configFile = (h: HostState) => path.join(h.dir, 'registry.yml');
const bundleFile = (h: HostState) => path.join(h.dir, 'registry-token-ca.pem');
const logFile = (h: HostState) => path.join(h.dir, 'registry.log');

/** YAML for distribution 2.8.2. Every scalar is a JSON string, which YAML reads as a double-quoted scalar. */
export function registryConfig(o: { address: string; port: number; storage: string; secret: string; auth: RegistryTokenAuth | null; bundlePath: string }): string {
  const s = JSON.stringify;
  const lines = [
    '# docker-registry config of the lab registry host (written by test/lab/lab/registry.ts)',
    'version: 0.1',
    'log:',
    '  level: info',
    '  fields:',
    '    service: registry',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${s(o.storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${s(`${o.address}:${o.port}`)}`,
    `  secret: ${s(o.secret)}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (o.auth) {
    lines.push('auth:', '  token:', `    realm: ${s(o.auth.realm)}`, `    service: ${s(o.auth.service)}`, `    issuer: ${s(o.auth.issuer)}`, `    rootcertbundle: ${s(o.bundlePath)}`);
  }
  return lines.join('\n') + '\n';
}

function registryOf(st: LabState): HostState {
  const h = st.hosts.find((x) => x.name === REGISTRY_HOST);
  if (!h) throw new Error(`lab "${st.id}" was not started with a registry (labUp({ registry: true }) or lab up --registry)`);
  return h;
}

/** Whether the registry answers its API root (200 without auth, 401 with token auth). */
async function answers(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
    return r.status === 200 || r.status === 401;
  } catch {
    return false;
  }
}

/** (Re)starts the registry of `st` with its current auth settings and waits until its API answers. */
export async function launchRegistry(st: LabState, timeoutMs = 20_000): Promise<void> {
  const h = registryOf(st);
  if (!fss.existsSync(REGISTRY_BIN)) throw new Error(`lab: ${REGISTRY_BIN} is missing: install Debian's docker-registry (apt-get install docker-registry; .ci/run does it with its service kept stopped)`);
  if (st.registryProc && alive(st.registryProc)) await killAll([st.registryProc.pid]);
  st.registryProc = null;
  await fs.mkdir(registryStorageOnMachine(h), { recursive: true, mode: 0o700 });
  const auth = st.registryAuth ?? null;
  if (auth) await fs.writeFile(bundleFile(h), auth.rootCertBundlePem, { mode: 0o644 });
  const secret = st.registrySecret ?? (st.registrySecret = crypto.randomBytes(24).toString('hex'));
  await fs.writeFile(configFile(h), registryConfig({ address: h.address, port: REGISTRY_PORT, storage: st.isolation ? STORAGE_IN_HOST : registryStorageOnMachine(h), secret, auth, bundlePath: bundleFile(h) }), { mode: 0o600 });
  const cmd = [REGISTRY_BIN, 'serve', configFile(h)];
  const argv = st.isolation ? ['nsenter', '-t', String((await ensureHolder(st, h)).pid), '-m', '-u', ...(h.netns ? ['-n'] : []), '--', ...cmd] : cmd;
  st.registryProc = await spawnDaemon(argv, logFile(h), { PATH: HOST_PATH, LANG: 'C', HOME: '/root' });
  await writeState(st);
  const url = `http://${h.address}:${REGISTRY_PORT}`;
  const deadline = Date.now() + timeoutMs;
  while (!(await answers(url))) {
    if (!alive(st.registryProc)) throw new Error(`lab: docker-registry exited during start:\n${await tail(logFile(h))}`);
    if (Date.now() > deadline) throw new Error(`lab: docker-registry did not answer on ${url} after ${timeoutMs} ms:\n${await tail(logFile(h))}`);
    await sleep(50);
  }
}

/**
 * Switches the lab registry to token authentication issued by `auth.realm` (null: back to no
 * authentication) and restarts it. Distribution reads its config once, at start.
 */
export async function configureRegistry(lab: Lab, o: { auth: RegistryTokenAuth | null }): Promise<LabRegistry> {
  const st = await loadLab(lab);
  st.registryAuth = o.auth;
  await launchRegistry(st);
  await writeState(st);
  return toPublic(st).registry!;
}

/** The registry's log (its access lines and errors), for tests and for a person debugging a token. */
export async function registryLog(lab: Lab): Promise<string> {
  const st = await loadLab(lab);
  return fs.readFile(logFile(registryOf(st)), 'utf8').catch(() => '');
}

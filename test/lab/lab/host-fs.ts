import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as fss from 'node:fs';
import * as path from 'node:path';
import { shellQuote } from '../../../electron/core/ssh/quote';
import { makeGpuProfile, type GpuProfile } from '../gpu/profiles';
import { EMULATOR_SRC, HOST_KEY_IN_HOST, HOST_PATH, HOST_SSHD_PIDFILE, INFERENCE_SIM_SRC, PRIVATE_DIRS, SSHD, SYSTEMCTL_SRC, SYSTEM_OVERLAYS } from './constants';
import { must } from './processes';
import type { HostState, LabState } from './state';

// ---------------------------------------------------------------------------------------------
// Host preparation
// ---------------------------------------------------------------------------------------------

export async function keygen(keyFile: string, comment: string): Promise<string> {
  await fs.rm(keyFile, { force: true });
  await fs.rm(`${keyFile}.pub`, { force: true });
  await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', keyFile]);
  return fingerprintOf(`${keyFile}.pub`);
}

/** `SHA256:…` of a public key file, as printed by `ssh-keygen -lf`. */
export async function fingerprintOf(pubFile: string): Promise<string> {
  // What ssh-keygen -lf computes: SHA-256 of the key blob, unpadded base64 (no process to start).
  const blob = (await fs.readFile(pubFile, 'utf8')).trim().split(/\s+/)[1] ?? '';
  const fp = `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
  if (!blob || !/^SHA256:[A-Za-z0-9+/]{43}$/.test(fp)) throw new Error(`lab: ${pubFile} is not a public key file`);
  return fp;
}

/** The node binary the emulator's shebang names; copied out of the way if a host would hide it. */
export async function nodeForHosts(root: string, isolation: boolean): Promise<string> {
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

/** The one shell quoting (electron/core/ssh/quote.ts), under the lab's name. */
export const shQuote = shellQuote;

/** A host's overlay upper and work directories for one of {@link SYSTEM_OVERLAYS}. */
export function overlayDirs(h: HostState, sys: string): { upper: string; work: string } {
  const name = sys.slice(1);
  return { upper: path.join(h.dir, 'system', 'upper', name), work: path.join(h.dir, 'system', 'work', name) };
}

export function overlayOf(p: string): (typeof SYSTEM_OVERLAYS)[number] | null {
  return SYSTEM_OVERLAYS.find((d) => p === d || p.startsWith(d + '/')) ?? null;
}

/** Where a file an isolated host sees at `p` (under /etc, /usr or /var) lives in its upper dir. */
export function upperPath(h: HostState, p: string): string {
  const sys = overlayOf(p);
  if (!sys) throw new Error(`lab: ${p} is not under ${SYSTEM_OVERLAYS.join(', ')}`);
  return path.join(overlayDirs(h, sys).upper, path.relative(sys, p));
}

/**
 * `mkdir -p`, synchronous and cheap: node's own recursive mkdir costs milliseconds per call, which
 * adds up over a lab's hosts.
 */
export function mkdirp(p: string, mode = 0o755): void {
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
export function mirrorDirAttrs(lower: string, upper: string): void {
  const st = fss.statSync(lower, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return;
  fss.chmodSync(upper, st.mode & 0o7777);
  fss.chownSync(upper, st.uid, st.gid);
}

/**
 * Makes the directories leading to `p` (inclusive) in the host's upper dir, with the machine's
 * modes. (The host-system helpers are synchronous: many small calls, cheaper than the thread pool.)
 */
export function mkUpperDirs(h: HostState, p: string): void {
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
export function writeHostSystemFile(h: HostState, p: string, content: string, mode: number, owner?: { uid: number; gid: number }): void {
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
export function whiteout(h: HostState, p: string, template: string): void {
  mkUpperDirs(h, path.dirname(p));
  const f = upperPath(h, p);
  fss.linkSync(template, f);
}

/**
 * The mounts that make an isolated host, in fstab form for one `mount -a` (one process instead of
 * a dozen): overlays over the machine's /etc, /usr and /var, a /run of its own (with the lab state
 * bound back in when it lives under /run), and the host's private directories.
 */
export function hostFstab(st: LabState, h: HostState): string {
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
export function enterScript(st: LabState, h: HostState, system: HostSystem | null): string {
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
export interface HostSystem {
  hostname?: string;
}

/** os-release values are shell-like double-quoted strings: `\`, `"`, `$` and backquote are escaped. */
export function osReleaseQuote(v: string): string {
  return `"${v.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

/**
 * Writes the host's own hostname and os-release for a profile's `system` part. Only isolated
 * hosts (own UTS namespace and system files) can say something else than this machine does.
 */
export async function prepareSystem(st: LabState, h: HostState, profile: GpuProfile): Promise<HostSystem | null> {
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

export function sshdConfig(st: LabState, h: HostState): string {
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

export function validateKeyLine(line: string): string {
  const l = line.trim();
  if (!/^(?:[^\s]+\s+)?(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+)\s+[A-Za-z0-9+/=]+/.test(l)) {
    throw new Error(`lab: not an authorized_keys line: ${l.slice(0, 60)}`);
  }
  return l;
}

export function keyLines(lines: string[]): string[] {
  return lines.map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map(validateKeyLine);
}

/** A host program from test/lab/host/: node shebang, and its lab configuration filled in. */
export const hostProgramCache = new Map<string, string>();
export async function hostProgram(src: string, nodePath: string, config?: Record<string, unknown>): Promise<string> {
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
export function smiFrontEnd(h: HostState, nodePath: string, emulator: string): string {
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
export interface SystemBase {
  /** The machine's /etc/shadow with every password replaced: nobody can log in to a host by password. */
  shadow: { text: string; mode: number; uid: number; gid: number } | null;
  sshdDropIns: string[];
  otherHostKeys: string[];
  /** Machine files a host must not see (a container's policy-rc.d that forbids starting services). */
  hidden: string[];
  /** A whiteout node every host's whiteouts are hard links to. */
  whiteout: string;
}

export async function systemBase(labDir: string): Promise<SystemBase> {
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
export function prepareHostSystem(st: LabState, h: HostState, base: SystemBase): void {
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
export async function hostKeyFiles(h: HostState): Promise<{ key: string; pub: string }> {
  const keyFile = path.join(h.dir, 'ssh_host_ed25519_key');
  return { key: await fs.readFile(keyFile, 'utf8'), pub: await fs.readFile(`${keyFile}.pub`, 'utf8') };
}

export async function prepareHost(st: LabState, h: HostState, keys: string[], nodePath: string, base: SystemBase | null, seed: string): Promise<void> {
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

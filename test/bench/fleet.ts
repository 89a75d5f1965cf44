import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { INVENTORY_COMMAND } from '../../electron/core/hosts/inventory';
import { authorizeKey, labDown, labUp, runOnHost, type Lab } from '../lab/lab';
import { ADMIN, testCore } from '../support/core';

type Row = { figure: string; value: string; anchor: string; anchorValue: string; ratio: string; goal: string };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const LAB_ID = 'bench-fleet';

export interface FleetOptions {
  /** Lab hosts (`--hosts`, 1–200). */
  hosts: number;
  /** Airlock's scan and plan concurrency, and Ansible's `-f` (`--forks`). */
  forks: number;
}

/** `--hosts N --forks F` after `fleet` on the bench's command line. */
export function fleetOptions(argv: string[]): FleetOptions {
  const num = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    if (i < 0) return dflt;
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`bench fleet: ${flag} needs a positive integer`);
    return n;
  };
  return { hosts: num('--hosts', 20), forks: num('--forks', 32) };
}

/** Busy CPU of the whole machine (/proc/stat), in ms. */
function machineBusyMs(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return ((f.reduce((x, y) => x + y, 0) - (f[3] ?? 0) - (f[4] ?? 0)) * 1000) / 100;
}

function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Proportional set size (bytes) of the lab's processes: those naming its directory, and their children. */
function labPss(labDir: string): number {
  const parent = new Map<number, number>();
  const mine = new Set<number>();
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const s = fs.readFileSync(`/proc/${n}/stat`, 'utf8');
      parent.set(Number(n), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
      if (fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(labDir)) mine.add(Number(n));
    } catch {
      /* gone */
    }
  }
  for (const [pid, ppid] of parent) if (mine.has(ppid)) mine.add(pid);
  let total = 0;
  for (const pid of mine) {
    try {
      total += Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      /* gone */
    }
  }
  return total;
}

/** CPU (utime + stime, ms) of the processes whose command line contains `needle` (Ansible's ControlPersist masters). */
function cpuOfProcesses(needle: string): number {
  let total = 0;
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      if (!fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(needle)) continue;
      const s = fs.readFileSync(`/proc/${n}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      total += ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    } catch {
      /* gone */
    }
  }
  return total;
}

/** Samples this process's RSS every 20 ms while `fn` runs; returns its result and the peak. */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  try {
    const value = await fn();
    return { value, peak: Math.max(peak, process.memoryUsage.rss()) };
  } finally {
    clearInterval(timer);
  }
}

/**
 * The console's memory once garbage is collected: what it keeps per host (kept connections, host
 * rows), not when the collector last ran. RSS moves with the collector and the allocator (it can
 * fall as hosts are added), so the per-host line is fitted on what the heap retains.
 */
function settled(): { rss: number; retained: number } {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  const m = process.memoryUsage();
  // The JS heap and the buffers it holds: what a kept host costs, without the allocator's slack.
  return { rss: m.rss, retained: m.heapUsed + m.external };
}

/** Least squares y = a + b·x. */
function fit(points: Array<[number, number]>): { a: number; b: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const b = sxx === 0 ? 0 : points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
  return { a: my - b * mx, b };
}

/**
 * Ansible, set up as its users run it against these hosts: an inventory generated from the lab,
 * an ed25519 key (Airlock's own is sealed in its vault, so Ansible gets one of the same kind,
 * authorized the same way), host keys pinned (known_hosts from the lab, strict checking, as
 * Airlock pins fingerprints), ControlPersist on, no compression and no PTY (Airlock uses neither),
 * and `-f` forks equal to Airlock's concurrency. Every run is timed by GNU time (Ansible and the
 * children it waits for) plus the CPU of its ControlPersist masters, which outlive the run.
 */
async function ansibleSetup(lab: Lab, dir: string, forks: number) {
  const key = path.join(dir, 'id_ed25519');
  await new Promise<void>((resolve, reject) => {
    const p = spawn('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ansible-bench', '-f', key], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`ssh-keygen exited ${c}`))));
  });
  await authorizeKey(lab, fs.readFileSync(`${key}.pub`, 'utf8').trim());
  const inventory = path.join(dir, 'inventory.ini');
  fs.writeFileSync(inventory, ['[lab]', ...lab.hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port} ansible_user=${h.user}`), ''].join('\n'));
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(
    knownHosts,
    lab.hosts.map((h) => `${h.port === 22 ? h.address : `[${h.address}]:${h.port}`} ${fs.readFileSync(path.join(h.dir, 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')}\n`).join(''),
  );
  const cp = path.join(dir, 'cp');
  fs.mkdirSync(cp, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    LANG: 'C.UTF-8',
    ANSIBLE_HOME: path.join(dir, 'home'),
    ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'),
    ANSIBLE_CONFIG: path.join(dir, 'none.cfg'),
    ANSIBLE_INVENTORY: inventory,
    ANSIBLE_PRIVATE_KEY_FILE: key,
    ANSIBLE_FORKS: String(forks),
    ANSIBLE_TIMEOUT: '30',
    ANSIBLE_SSH_ARGS: `-o ControlMaster=auto -o ControlPersist=900s -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`,
    ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
    ANSIBLE_SSH_USETTY: 'False',
    ANSIBLE_HOST_KEY_CHECKING: 'True',
    ANSIBLE_GATHERING: 'explicit',
    ANSIBLE_DEPRECATION_WARNINGS: 'False',
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_NOCOLOR: '1',
  };
  fs.writeFileSync(env.ANSIBLE_CONFIG!, '');
  const timeFile = path.join(dir, 'time.txt');
  const run = async (argv: string[]) => {
    const m0 = cpuOfProcesses(cp);
    const s = performance.now();
    const { code, out } = await new Promise<{ code: number; out: string }>((resolve, reject) => {
      const p = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, ...argv], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
      p.on('error', reject);
      p.on('close', (c) => resolve({ code: c ?? -1, out }));
    });
    const wall = performance.now() - s;
    if (code !== 0) throw new Error(`bench fleet: ${argv.slice(0, 2).join(' ')} failed (exit ${code}):\n${out.slice(-3000)}`);
    const [u, sy] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    const cpu = (u! + sy!) * 1000 + (cpuOfProcesses(cp) - m0);
    return { wall, cpu, out };
  };
  return { env, run, cp };
}

/** The playbook Airlock plans: the same three read-only checks as test/bench/provision.ts. */
function playbook(lab: Lab) {
  return {
    format: 'airlock.playbook/v1',
    name: 'bench-fleet',
    version: '1',
    steps: [
      { id: 'gpu', type: 'gpu-driver-check', params: { minCount: 0 } },
      { id: 'egress', type: 'egress-lockdown', params: { allowCidrs: [lab.subnet] } },
      { id: 'sshd', type: 'ssh-hardening', params: {} },
    ],
  };
}

/** Ansible templates module arguments: a command holding Jinja delimiters is passed through `{% raw %}`. */
function jinjaSafe(cmd: string): string {
  return /\{[{%#]/.test(cmd) ? `{% raw %}${cmd}{% endraw %}` : cmd;
}

/**
 * The commands a plan runs on a host, recorded on host1 (its root login shell, inside that host
 * only, logs each command sshd hands it, then runs it with the host's own shell), so the Ansible
 * side runs exactly what Airlock ran, whatever the steps' checks become.
 */
async function recordPlanCommands(lab: Lab): Promise<string[]> {
  const host = lab.hosts[0]!.name;
  const log = '/var/lib/airlock-host/bench-commands';
  const rec = '/usr/local/bin/airlock-bench-recsh';
  const shell = (await runOnHost(lab, host, ['sh', '-c', 'getent passwd root | cut -d: -f7'])).stdout.trim() || '/bin/sh';
  const script = `#!/bin/sh\n[ "$1" = -c ] && printf '%s\\0' "$2" >> ${log}\nexec ${shell} "$@"\n`;
  const set = async (sh: string) => {
    const r = await runOnHost(lab, host, ['sh', '-c', `sed -i "s#^\\(root:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:\\).*#\\1${sh}#" /etc/passwd`]);
    if (r.code !== 0) throw new Error(`bench fleet: setting root's shell on ${host}: ${r.stderr}`);
  };
  await runOnHost(lab, host, ['sh', '-c', `cat > ${rec} && chmod 755 ${rec} && rm -f ${log}`], { input: script });
  // sshd takes the login shell when a connection authenticates: the bench core's connections,
  // made before, keep the host's own shell. A core of its own connects afresh to record.
  const t = await testCore({ sshTimeoutMs: 60_000, stepUpMinutes: 600 });
  await set(rec);
  try {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
    const h = lab.hosts[0]!;
    await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
    await c.ok('provision:importPlaybook', { text: JSON.stringify(playbook(lab)) });
    const r = await c.ok('provision:plan', { playbook: 'bench-fleet', hosts: [host], params: {} });
    if (r.status !== 'succeeded') throw new Error('bench fleet: the recording plan failed');
  } finally {
    await set(shell);
    await t.close();
  }
  const r = await runOnHost(lab, host, ['cat', log]);
  const cmds = r.stdout.split('\0').filter(Boolean);
  if (cmds.length === 0) throw new Error('bench fleet: recorded no plan commands');
  return cmds;
}

/**
 * Fleet scale against Ansible. On one lab of `hosts` hosts, in one run: Airlock's inventory scan
 * (hosts:scan) and a plan (provision:plan of three read-only checks), through a real core with
 * connections kept between operations, against Ansible doing the same over SSH — an ad-hoc `raw`
 * run of the inventory command, and for the plan an ansible-playbook of `raw` tasks replaying the
 * commands the plan ran (one ad-hoc run holds one command; the plan is several) — with
 * ControlPersist keeping Ansible's connections the same way. Wall time and CPU per host for both,
 * medians of 3 warm runs. Then Airlock alone on growing subsets (¼, ½, all of the hosts, in that
 * order, connections kept): wall, CPU per host and the console's RSS, with a straight line
 * RSS = a + b·N fitted and projected to 1,000 hosts. The lab's own cost (start time, memory per
 * host) is printed too: it is what limits how many hosts fit on this machine.
 */
export async function benchFleet(rows: Row[], opts: FleetOptions) {
  const N = opts.hosts;
  const F = opts.forks;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-fleet-'));
  const mem0 = memAvailable();
  const up0 = performance.now();
  const lab = await labUp({ id: LAB_ID, hosts: N, gpuProfiles: ['a100', 'h100', 't4'] });
  const upMs = performance.now() - up0;
  await new Promise((r) => setTimeout(r, 1000));
  const labBytes = mem0 - memAvailable();
  const pss = labPss(lab.dir);
  console.error(`bench fleet: lab of ${N} hosts up in ${(upMs / 1000).toFixed(1)} s; MemAvailable fell by ${mib(labBytes)}, its processes' PSS ${mib(pss)} (${((pss / N) / 2 ** 20).toFixed(2)} MiB per host)`);
  const t = await testCore({ sshTimeoutMs: 60_000, scanConcurrency: F, provisionConcurrency: F, stepUpMinutes: 600 });
  let ansible: Awaited<ReturnType<typeof ansibleSetup>> | null = null;
  try {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
    for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
    await c.ok('provision:importPlaybook', { text: JSON.stringify(playbook(lab)) });
    const all = lab.hosts.map((h) => h.name);

    const timed = async (op: () => Promise<void>) => {
      const u0 = process.cpuUsage();
      const m0 = machineBusyMs();
      const s = performance.now();
      const { peak } = await withPeakRss(op);
      const u = process.cpuUsage(u0);
      return { wall: performance.now() - s, cpu: (u.user + u.system) / 1000, machine: machineBusyMs() - m0, peak, rss: process.memoryUsage.rss() };
    };
    const scan = (hosts: string[]) =>
      timed(async () => {
        const out = await c.ok('hosts:scan', { names: hosts });
        if (!out.every((o) => o.ok)) throw new Error(`scan failed: ${JSON.stringify(out.filter((o) => !o.ok)).slice(0, 2000)}`);
      });
    const planOnly = async (hosts: string[]) => {
      const r = await c.ok('provision:plan', { playbook: 'bench-fleet', hosts, params: {}, concurrency: F });
      if (r.status !== 'succeeded') throw new Error(`plan failed: ${JSON.stringify(r.hosts.filter((h) => h.status !== 'succeeded').map((h) => h.message)).slice(0, 2000)}`);
    };
    const plan = (hosts: string[]) => timed(() => planOnly(hosts));

    // ---- Airlock alone, growing subsets: cost per host and the console's RSS ----
    const sizes = [...new Set([Math.max(1, Math.round(N / 4)), Math.max(1, Math.round(N / 2)), N])];
    const points: Array<{ n: number; scan: Awaited<ReturnType<typeof scan>>; plan: Awaited<ReturnType<typeof plan>>; peak: number; settled: { rss: number; retained: number } }> = [];
    for (const n of sizes) {
      const hosts = all.slice(0, n);
      await scan(hosts); // warm-up: the new hosts' connections
      await plan(hosts);
      const s: Array<Awaited<ReturnType<typeof scan>>> = [];
      const p: Array<Awaited<ReturnType<typeof plan>>> = [];
      for (let i = 0; i < 3; i++) {
        s.push(await scan(hosts));
        p.push(await plan(hosts));
      }
      const pick = <T extends { wall: number }>(xs: T[]) => xs.find((x) => x.wall === median(xs.map((y) => y.wall)))!;
      const peak = Math.max(...s.map((x) => x.peak), ...p.map((x) => x.peak));
      const after = settled();
      points.push({ n, scan: { ...pick(s), cpu: median(s.map((x) => x.cpu)) }, plan: { ...pick(p), cpu: median(p.map((x) => x.cpu)) }, peak, settled: after });
      console.error(`bench fleet: Airlock on ${n} host(s): scan ${ms(pick(s).wall)}, plan ${ms(pick(p).wall)}, RSS peak ${mib(peak)}, after GC ${mib(after.rss)}, heap retained ${mib(after.retained)}`);
    }

    // ---- the same hosts, the same run: Ansible ----
    ansible = await ansibleSetup(lab, dir, F);
    const commands = await recordPlanCommands(lab);
    const pbFile = path.join(dir, 'plan.json');
    fs.writeFileSync(pbFile, JSON.stringify([{ hosts: 'lab', gather_facts: false, tasks: commands.map((cmd, i) => ({ name: `plan command ${i + 1}`, raw: jinjaSafe(cmd) })) }]));
    const adhoc = async () => {
      const r = await ansible!.run(['ansible', 'lab', '-m', 'raw', '-a', jinjaSafe(INVENTORY_COMMAND), '-f', String(F)]);
      const done = r.out.split('@@AIRLOCK:DONE@@').length - 1;
      if (done !== N) throw new Error(`bench fleet: the Ansible scan answered for ${done} of ${N} hosts`);
      return r;
    };
    const ansiblePlan = () => ansible!.run(['ansible-playbook', '-f', String(F), pbFile]);
    const coldAdhoc = await adhoc(); // makes the ControlPersist masters
    await ansiblePlan();
    const aScan: Array<{ wall: number; cpu: number }> = [];
    const aPlan: Array<{ wall: number; cpu: number }> = [];
    const lScan: Array<Awaited<ReturnType<typeof scan>>> = [];
    const lPlan: Array<Awaited<ReturnType<typeof plan>>> = [];
    for (let i = 0; i < 3; i++) {
      lScan.push(await scan(all));
      aScan.push(await adhoc());
      lPlan.push(await plan(all));
      aPlan.push(await ansiblePlan());
    }
    const per = (x: number) => `${(x / N).toFixed(2)} ms/host`;
    const pair = (what: string, l: Array<{ wall: number; cpu: number }>, a: Array<{ wall: number; cpu: number }>, anchor: string) => {
      const lw = median(l.map((x) => x.wall));
      const aw = median(a.map((x) => x.wall));
      const lc = median(l.map((x) => x.cpu));
      const ac = median(a.map((x) => x.cpu));
      rows.push({ figure: `fleet ${what}, ${N} hosts, -f ${F}: wall`, value: ms(lw), anchor: `${anchor}: wall`, anchorValue: ms(aw), ratio: `${(lw / aw).toFixed(2)}×`, goal: '≤ 0.5×' });
      rows.push({ figure: `fleet ${what}, ${N} hosts: Airlock CPU per host`, value: per(lc), anchor: `${anchor}: CPU per host`, anchorValue: per(ac), ratio: `${(lc / ac).toFixed(2)}×`, goal: '≤ 0.2×' });
    };
    pair('inventory scan', lScan, aScan, 'Ansible ad-hoc -m raw');
    pair('plan (3 checks)', lPlan, aPlan, `ansible-playbook, the plan's ${commands.length} commands as raw tasks`);
    rows.push({ figure: `(context) Ansible's first scan (opens ${N} ControlPersist masters)`, value: ms(coldAdhoc.wall), anchor: 'its CPU per host', anchorValue: per(coldAdhoc.cpu), ratio: '-', goal: 'report' });

    // ---- Airlock's own cost per host ----
    const cpuScan = fit(points.map((p) => [p.n, p.scan.cpu]));
    const cpuPlan = fit(points.map((p) => [p.n, p.plan.cpu]));
    const heap = fit(points.map((p) => [p.n, p.settled.retained]));
    const last = points[points.length - 1]!;
    for (const p of points) {
      rows.push({
        figure: `Airlock, ${p.n} host${p.n === 1 ? '' : 's'}: scan / plan wall`,
        value: `${ms(p.scan.wall)} / ${ms(p.plan.wall)}`,
        anchor: 'CPU per host: scan / plan',
        anchorValue: `${per2(p.scan.cpu, p.n)} / ${per2(p.plan.cpu, p.n)}`,
        ratio: '-',
        goal: 'report',
      });
      rows.push({ figure: `console RSS, ${p.n} host${p.n === 1 ? '' : 's'}: peak (scan, plan)`, value: mib(p.peak), anchor: 'after GC, connections kept: RSS / heap', anchorValue: `${mib(p.settled.rss)} / ${mib(p.settled.retained)}`, ratio: '-', goal: p.n >= 200 ? '≤ 1024 MiB' : 'report' });
    }
    rows.push({
      figure: 'console heap retained after GC, fitted a + b·N',
      value: `${mib(heap.a)} + ${(heap.b / 2 ** 10).toFixed(0)} KiB·N`,
      anchor: `RSS projected to 1,000 hosts: peak at ${last.n} + b·(1,000 − ${last.n})`,
      anchorValue: mib(last.peak + Math.max(0, heap.b) * (1000 - last.n)),
      ratio: '-',
      goal: '≤ 1024 MiB at 200',
    });
    rows.push({
      figure: 'Airlock CPU, fitted slope (per added host)',
      value: `scan ${cpuScan.b.toFixed(2)} ms, plan ${cpuPlan.b.toFixed(2)} ms`,
      anchor: 'fixed part: scan / plan',
      anchorValue: `${ms(cpuScan.a)} / ${ms(cpuPlan.a)}`,
      ratio: '-',
      goal: 'report',
    });
    rows.push({ figure: `(context) lab of ${N} hosts: start`, value: ms(upMs), anchor: "per host: its processes' PSS / MemAvailable drop", anchorValue: `${((pss / N) / 2 ** 20).toFixed(2)} / ${((labBytes / N) / 2 ** 20).toFixed(2)} MiB`, ratio: '-', goal: 'report' });
  } finally {
    if (ansible) {
      const cp = ansible.cp;
      // The ControlPersist masters outlive the runs: end them (theirs only, found by their socket directory).
      for (const n of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(n)) continue;
        try {
          if (fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(cp)) process.kill(Number(n), 'SIGTERM');
        } catch {
          /* gone */
        }
      }
    }
    await t.close();
    await labDown({ id: LAB_ID });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function per2(cpu: number, n: number): string {
  return `${(cpu / n).toFixed(2)} ms`;
}

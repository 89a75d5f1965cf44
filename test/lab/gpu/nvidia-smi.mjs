#!/usr/bin/env node
// The lab's `nvidia-smi`: answers in the real tool's output formats from a per-host profile
// (see profiles.ts). Installed by the lab as a lab host's /usr/local/bin/nvidia-smi with the
// shebang pointing at this machine's node and PROFILE_PATH filled in; it reads the profile on
// every call so a test can change what a host reports between two scans.
//
// Plain JavaScript (no TypeScript, no imports beyond node:) because it runs on the lab host,
// through ssh, with nothing but node available.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const PROFILE_PATH = process.env.AIRLOCK_LAB_GPU_PROFILE || '__AIRLOCK_LAB_GPU_PROFILE__';

const NO_DRIVER =
  "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. " +
  'Make sure that the latest NVIDIA driver is installed and running.\n\n';
const BAD_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n\n";

// The lab's sh front end (lab.ts) caches answers that do not depend on the clock: it passes the
// cache entry to fill in AIRLOCK_LAB_SMI_CACHE_ENTRY (a directory: code, out, err).
let usedClock = false;
let errText = '';

function warn(text) {
  errText += text;
  process.stderr.write(text);
}

function saveToCache(entry, code, out) {
  const tmp = `${entry}.${process.pid}.tmp`;
  try {
    mkdirSync(tmp, { recursive: true });
    writeFileSync(`${tmp}/out`, out);
    writeFileSync(`${tmp}/err`, errText);
    writeFileSync(`${tmp}/code`, `${code}\n`);
    renameSync(tmp, entry);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another call cached it first, or no room: fine
  }
}

/** Exit after stdout is flushed (a pipe to sshd may be slower than process.exit). */
function finish(code, out = '') {
  process.exitCode = code;
  if (out) process.stdout.write(out);
  const entry = process.env.AIRLOCK_LAB_SMI_CACHE_ENTRY;
  if (entry && !usedClock) {
    mkdirSync(dirname(entry), { recursive: true });
    saveToCache(entry, code, out);
  }
}

function na(v) {
  return v === null || v === undefined;
}
const NA = '[N/A]';
const onOff = (b) => (na(b) ? NA : b ? 'Enabled' : 'Disabled');
const hex64 = (n) => '0x' + n.toString(16).toUpperCase().padStart(16, '0');
const active = (mask, bit) => ((mask & bit) !== 0 ? 'Active' : 'Not Active');

function timestamp(d = new Date()) {
  usedClock = true;
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return (
    `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
  );
}

/** `Tue May 14 10:12:03 2024`, as at the top of the real table. */
function ctime(d = new Date()) {
  usedClock = true;
  const [dow, mon, day, year, time] = d.toString().split(' ');
  return `${dow} ${mon} ${day} ${time} ${year}`;
}

const freeMiB = (g, prof) =>
  g.memoryTotalMiB - g.memoryUsedMiB - (prof.unsupportedFields.includes('memory.reserved') ? 0 : g.memoryReservedMiB);

// Clock event ("throttle") reason bits, as in nvml.h.
const REASON_BITS = {
  gpu_idle: 0x1,
  applications_clocks_setting: 0x2,
  sw_power_cap: 0x4,
  hw_slowdown: 0x8,
  sync_boost: 0x10,
  sw_thermal_slowdown: 0x20,
  hw_thermal_slowdown: 0x40,
  hw_power_brake_slowdown: 0x80,
  display_clock_setting: 0x100,
};

/**
 * Query fields: canonical name → [header, unit or '', value(gpu, profile) → string|number|null,
 * decimals]. The header is what the real tool prints (canonical name, then ` [unit]`).
 */
const FIELDS = {
  timestamp: ['timestamp', '', () => timestamp()],
  driver_version: ['driver_version', '', (g, p) => p.driverVersion],
  count: ['count', '', (g, p) => p.gpus.length],
  index: ['index', '', (g) => g.index],
  name: ['name', '', (g) => g.name],
  serial: ['serial', '', (g) => g.serial],
  uuid: ['uuid', '', (g) => g.uuid],
  'pci.bus_id': ['pci.bus_id', '', (g) => g.pciBusId],
  'pci.domain': ['pci.domain', '', (g) => '0x' + g.pciBusId.slice(4, 8)],
  'pci.bus': ['pci.bus', '', (g) => '0x' + g.pciBusId.slice(9, 11)],
  'pci.device': ['pci.device', '', () => '0x00'],
  vbios_version: ['vbios_version', '', (g) => g.vbiosVersion],
  compute_cap: ['compute_cap', '', (g) => g.computeCap],
  pstate: ['pstate', '', (g) => g.pstate],
  'fan.speed': ['fan.speed', '%', (g) => g.fanSpeed],
  'memory.total': ['memory.total', 'MiB', (g) => g.memoryTotalMiB],
  'memory.reserved': ['memory.reserved', 'MiB', (g) => g.memoryReservedMiB],
  'memory.used': ['memory.used', 'MiB', (g) => g.memoryUsedMiB],
  'memory.free': ['memory.free', 'MiB', (g, p) => freeMiB(g, p)],
  'utilization.gpu': ['utilization.gpu', '%', (g) => g.utilizationGpu],
  'utilization.memory': ['utilization.memory', '%', (g) => g.utilizationMemory],
  'temperature.gpu': ['temperature.gpu', '', (g) => g.temperatureGpu],
  'temperature.memory': ['temperature.memory', '', (g) => g.temperatureMemory],
  'power.draw': ['power.draw', 'W', (g) => g.powerDrawW, 2],
  'power.limit': ['power.limit', 'W', (g) => g.powerLimitW, 2],
  'enforced.power.limit': ['enforced.power.limit', 'W', (g) => g.powerLimitW, 2],
  'power.default_limit': ['power.default_limit', 'W', (g) => g.powerDefaultLimitW, 2],
  'power.max_limit': ['power.max_limit', 'W', (g) => g.powerMaxLimitW, 2],
  'clocks.current.sm': ['clocks.current.sm', 'MHz', (g) => g.clocksSmMHz],
  'clocks.current.graphics': ['clocks.current.graphics', 'MHz', (g) => g.clocksSmMHz],
  'clocks.current.memory': ['clocks.current.memory', 'MHz', (g) => g.clocksMemMHz],
  'clocks.max.sm': ['clocks.max.sm', 'MHz', (g) => g.clocksMaxSmMHz],
  'clocks.max.graphics': ['clocks.max.graphics', 'MHz', (g) => g.clocksMaxSmMHz],
  'clocks.max.memory': ['clocks.max.memory', 'MHz', (g) => g.clocksMaxMemMHz],
  'ecc.mode.current': ['ecc.mode.current', '', (g) => onOff(g.eccEnabled)],
  'ecc.mode.pending': ['ecc.mode.pending', '', (g) => onOff(g.eccEnabled)],
  persistence_mode: ['persistence_mode', '', (g) => onOff(g.persistenceMode)],
  'mig.mode.current': ['mig.mode.current', '', (g) => onOff(g.migMode)],
  'mig.mode.pending': ['mig.mode.pending', '', (g) => onOff(g.migMode)],
  compute_mode: ['compute_mode', '', (g) => g.computeMode],
  'pcie.link.gen.current': ['pcie.link.gen.current', '', (g) => g.pcieGen],
  'pcie.link.gen.max': ['pcie.link.gen.max', '', (g) => g.pcieGen],
  'pcie.link.width.current': ['pcie.link.width.current', '', (g) => g.pcieWidth],
  'pcie.link.width.max': ['pcie.link.width.max', '', (g) => g.pcieWidth],
};
for (const family of ['clocks_throttle_reasons', 'clocks_event_reasons']) {
  FIELDS[`${family}.active`] = [`${family}.active`, '', (g) => hex64(g.clockReasonsActive)];
  FIELDS[`${family}.supported`] = [`${family}.supported`, '', (g) => hex64(g.clockReasonsSupported)];
  for (const [reason, bit] of Object.entries(REASON_BITS)) {
    FIELDS[`${family}.${reason}`] = [`${family}.${reason}`, '', (g) => active(g.clockReasonsActive, bit)];
  }
}

/** Alternative spellings the real tool accepts for the same field. */
const ALIASES = {
  gpu_name: 'name',
  gpu_serial: 'serial',
  gpu_uuid: 'uuid',
  gpu_bus_id: 'pci.bus_id',
  'clocks.sm': 'clocks.current.sm',
  'clocks.gr': 'clocks.current.graphics',
  'clocks.mem': 'clocks.current.memory',
  'clocks.max.gr': 'clocks.max.graphics',
  'clocks.max.mem': 'clocks.max.memory',
  'pcie.link.gen.gpucurrent': 'pcie.link.gen.current',
};

const APP_FIELDS = {
  timestamp: ['timestamp', '', () => timestamp()],
  gpu_name: ['gpu_name', '', (a, g) => g.name],
  gpu_bus_id: ['gpu_bus_id', '', (a, g) => g.pciBusId],
  gpu_serial: ['gpu_serial', '', (a, g) => g.serial],
  gpu_uuid: ['gpu_uuid', '', (a, g) => g.uuid],
  pid: ['pid', '', (a) => a.pid],
  process_name: ['process_name', '', (a) => a.processName],
  used_gpu_memory: ['used_gpu_memory', 'MiB', (a) => a.usedMemoryMiB],
};
const APP_ALIASES = { name: 'process_name', used_memory: 'used_gpu_memory' };

function unsupportedBy(profile, field) {
  return profile.unsupportedFields.some((u) => (u.endsWith('.') ? field.startsWith(u) : field === u));
}

function render(value, unit, decimals, nounits) {
  if (na(value)) return NA;
  const text = typeof value === 'number' && decimals ? value.toFixed(decimals) : String(value);
  return unit && !nounits ? `${text} ${unit}` : text;
}

function parseFormat(spec) {
  const opts = String(spec)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of opts) {
    if (!['csv', 'noheader', 'nounits'].includes(o)) return { error: `"${o}" is not a valid format option.\n\n` };
  }
  if (!opts.includes('csv')) return { error: 'CSV format must be specified when querying.\n\n' };
  return { noheader: opts.includes('noheader'), nounits: opts.includes('nounits') };
}

function parseArgs(argv) {
  const a = { ids: null, list: false, query: false, help: false, version: false, queryGpu: null, queryApps: null, format: null, bad: false };
  const takeValue = (i, arg, long) => {
    if (arg.startsWith(long + '=')) return [arg.slice(long.length + 1), i];
    const v = argv[i + 1];
    if (v === undefined) return [null, i];
    return [v, i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-L' || arg === '--list-gpus') a.list = true;
    else if (arg === '-q' || arg === '--query') a.query = true;
    else if (arg === '-h' || arg === '--help') a.help = true;
    else if (arg === '--version') a.version = true;
    else if (arg === '-i' || arg === '--id' || arg.startsWith('--id=')) {
      const [v, j] = takeValue(i, arg, '--id');
      i = j;
      if (v === null) a.bad = true;
      else a.ids = v.split(',').map((s) => s.trim());
    } else if (arg === '--query-gpu' || arg.startsWith('--query-gpu=')) {
      const [v, j] = takeValue(i, arg, '--query-gpu');
      i = j;
      a.queryGpu = v;
    } else if (arg === '--query-compute-apps' || arg.startsWith('--query-compute-apps=')) {
      const [v, j] = takeValue(i, arg, '--query-compute-apps');
      i = j;
      a.queryApps = v;
    } else if (arg === '--format' || arg.startsWith('--format=')) {
      const [v, j] = takeValue(i, arg, '--format');
      i = j;
      a.format = v;
    } else if (arg === '-d' || arg === '--display') {
      i++; // section filter for -q: accepted, ignored
    } else if (arg.startsWith('--display=')) {
      // accepted, ignored
    } else a.bad = true;
  }
  return a;
}

function selectGpus(profile, ids) {
  if (!ids) return { gpus: profile.gpus };
  const out = [];
  for (const id of ids) {
    const g = /^\d+$/.test(id)
      ? profile.gpus.find((x) => x.index === Number(id))
      : profile.gpus.find((x) => x.uuid === id || x.pciBusId === id);
    if (!g) return { error: `No devices were found\n` };
    out.push(g);
  }
  return { gpus: out };
}

function csv(fieldsSpec, table, aliases, rows, profile, format, valueOf) {
  const fmt = parseFormat(format);
  if (fmt.error) return [2, fmt.error];
  const names = String(fieldsSpec)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const cols = [];
  for (const raw of names) {
    const canonical = aliases[raw] ?? raw;
    if (!table[canonical] || unsupportedBy(profile, canonical)) {
      return [2, `Field "${raw}" is not a valid field to query.\n\n`];
    }
    cols.push(table[canonical]);
  }
  let out = '';
  if (!fmt.noheader) out += cols.map(([h, unit]) => (unit ? `${h} [${unit}]` : h)).join(', ') + '\n';
  for (const row of rows) {
    out += cols.map(([, unit, get, dec]) => render(valueOf(get, row), unit, dec, fmt.nounits)).join(', ') + '\n';
  }
  return [0, out];
}

function pad(s, w, right = false) {
  s = String(s);
  if (s.length >= w) return s;
  return right ? ' '.repeat(w - s.length) + s : s + ' '.repeat(w - s.length);
}

function table(profile, gpus) {
  const W = 89;
  const line = (c) => '+' + c.repeat(W) + '+';
  const row = (a, b, c) => `|${pad(a, 41)}|${pad(b, 24)}|${pad(c, 22)}|`;
  const sep = (ch, j = '+') => '|' + ch.repeat(41) + j + ch.repeat(24) + j + ch.repeat(22) + '|';
  const now = ctime();
  const out = [];
  out.push(pad(now, W + 2));
  out.push(line('-'));
  out.push(
    '|' +
      pad(
        ` NVIDIA-SMI ${pad(profile.driverVersion, 20)}Driver Version: ${pad(profile.driverVersion, 14)} CUDA Version: ${profile.cudaVersion}`,
        W,
      ) +
      '|',
  );
  out.push(sep('-'));
  out.push(row(' GPU  Name                 Persistence-M', ' Bus-Id          Disp.A', ' Volatile Uncorr. ECC'));
  out.push(row(' Fan  Temp   Perf          Pwr:Usage/Cap', '           Memory-Usage', ' GPU-Util  Compute M.'));
  out.push(row('', '', pad('MIG M.', 21, true) + ' '));
  out.push(sep('=', '+'));
  for (const g of gpus) {
    const name = g.name.length > 22 ? g.name.slice(0, 19) + '...' : g.name;
    const w = (v) => (na(v) ? 'N/A' : `${Math.round(v)}W`);
    const fan = na(g.fanSpeed) ? 'N/A' : `${g.fanSpeed}%`;
    const temp = na(g.temperatureGpu) ? 'N/A' : `${g.temperatureGpu}C`;
    const ecc = na(g.eccEnabled) ? 'N/A' : g.eccEnabled ? '0' : 'N/A';
    out.push(row(` ${pad(g.index, 3, true)}  ${pad(name, 22)}${pad(g.persistenceMode ? 'On' : 'Off', 11, true)}  `, `   ${g.pciBusId} Off `, `${pad(ecc, 21, true)} `));
    out.push(
      row(
        ` ${pad(fan, 3)} ${pad(temp, 5, true)}    ${pad(g.pstate, 3)}${pad(`${w(g.powerDrawW)} / ${pad(w(g.powerLimitW), 5, true)}`, 23, true)} `,
        `${pad(`${g.memoryUsedMiB}MiB / ${pad(`${g.memoryTotalMiB}MiB`, 9, true)}`, 23, true)} `,
        ` ${pad(na(g.utilizationGpu) ? 'N/A' : `${g.utilizationGpu}%`, 7, true)}      ${g.computeMode} `,
      ),
    );
    out.push(row('', '', `${pad(na(g.migMode) ? 'N/A' : g.migMode ? 'Enabled' : 'Disabled', 21, true)} `));
    out.push(sep('-', '+').replace(/^\|/, '+').replace(/\|$/, '+'));
  }
  out.push(pad('', W + 2));
  out.push(line('-'));
  out.push('|' + pad(' Processes:', W) + '|');
  out.push('|' + pad('  GPU   GI   CI        PID   Type   Process name                              GPU Memory', W) + '|');
  out.push('|' + pad('        ID   ID                                                               Usage', W) + '|');
  out.push('|' + '='.repeat(W) + '|');
  const procs = profile.processes.filter((p) => gpus.some((g) => g.index === p.gpuIndex));
  if (procs.length === 0) out.push('|' + pad('  No running processes found', W) + '|');
  for (const p of procs) {
    out.push(
      '|' +
        pad(`  ${pad(p.gpuIndex, 3, true)}   N/A  N/A  ${pad(p.pid, 9, true)}      C   ${pad(p.processName, 41)}${pad(`${p.usedMemoryMiB}MiB`, 10, true)}`, W) +
        '|',
    );
  }
  out.push(line('-'));
  return out.join('\n') + '\n';
}

function fullQuery(profile, gpus) {
  const kv = (indent, k, v) => `${' '.repeat(indent)}${pad(k, 42 - indent)}: ${v}`;
  const out = ['', '==============NVSMI LOG==============', ''];
  out.push(kv(0, 'Timestamp', ctime()));
  out.push(kv(0, 'Driver Version', profile.driverVersion));
  out.push(kv(0, 'CUDA Version', profile.cudaVersion), '');
  out.push(kv(0, 'Attached GPUs', profile.gpus.length));
  for (const g of gpus) {
    const v = (x, unit) => (na(x) ? 'N/A' : unit ? `${typeof x === 'number' && unit === 'W' ? x.toFixed(2) : x} ${unit}` : x);
    out.push(`GPU ${g.pciBusId}`);
    out.push(kv(4, 'Product Name', g.name));
    out.push(kv(4, 'Persistence Mode', onOff(g.persistenceMode)));
    out.push(kv(4, 'Serial Number', v(g.serial)));
    out.push(kv(4, 'GPU UUID', g.uuid));
    out.push(kv(4, 'Minor Number', g.index));
    out.push(kv(4, 'VBIOS Version', g.vbiosVersion));
    out.push(kv(4, 'FB Memory Usage', ''));
    out.push(kv(8, 'Total', `${g.memoryTotalMiB} MiB`));
    if (!unsupportedBy(profile, 'memory.reserved')) out.push(kv(8, 'Reserved', `${g.memoryReservedMiB} MiB`));
    out.push(kv(8, 'Used', `${g.memoryUsedMiB} MiB`));
    out.push(kv(8, 'Free', `${freeMiB(g, profile)} MiB`));
    out.push(kv(4, 'Performance State', g.pstate));
    out.push(kv(4, 'Utilization', ''));
    out.push(kv(8, 'Gpu', v(g.utilizationGpu, '%')));
    out.push(kv(8, 'Memory', v(g.utilizationMemory, '%')));
    out.push(kv(4, 'Temperature', ''));
    out.push(kv(8, 'GPU Current Temp', v(g.temperatureGpu, 'C')));
    out.push(kv(4, 'GPU Power Readings', ''));
    out.push(kv(8, 'Power Draw', v(g.powerDrawW, 'W')));
    out.push(kv(8, 'Current Power Limit', v(g.powerLimitW, 'W')));
    out.push('');
  }
  return out.join('\n') + '\n';
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.bad) return finish(2, BAD_ARGS);
  let profile;
  try {
    profile = JSON.parse(readFileSync(PROFILE_PATH, 'utf8'));
  } catch {
    // No profile behaves like no driver: the tool exists but cannot talk to a GPU.
    usedClock = true; // not an answer worth keeping
    return finish(9, NO_DRIVER);
  }
  if (args.help) {
    return finish(
      0,
      `NVIDIA System Management Interface -- v${profile.driverVersion || '550.54.15'}\n\n` +
        'Options: -L, -q, -i ID, --query-gpu=FIELDS --format=csv[,noheader][,nounits],\n' +
        '         --query-compute-apps=FIELDS, --version  (Airlock lab emulator)\n',
    );
  }
  if (profile.failure === 'no-driver' || profile.failure === 'absent') return finish(9, NO_DRIVER);
  // Warnings go to stderr before the answer, as the real tool's do (pipes are synchronous on Linux,
  // so with 2>&1 they come first).
  for (const w of profile.warnings ?? []) warn(`${w}\n`);
  if (profile.failure === 'error') return finish(profile.errorExitCode ?? 15, `${profile.errorText ?? 'Unknown Error'}\n\n`);
  if (args.version) {
    return finish(
      0,
      `NVIDIA-SMI version  : ${profile.driverVersion}\nNVML version        : ${profile.driverVersion}\n` +
        `DRIVER version      : ${profile.driverVersion}\nCUDA Version        : ${profile.cudaVersion}\n`,
    );
  }
  if (profile.gpus.length === 0) return finish(6, 'No devices were found\n');
  const sel = selectGpus(profile, args.ids);
  if (sel.error) return finish(6, sel.error);
  const gpus = sel.gpus;

  if (args.queryGpu !== null || args.queryApps !== null) {
    if (args.queryGpu !== null && args.queryApps !== null) return finish(2, BAD_ARGS);
    if (args.format === null) return finish(2, 'Please specify the output format using --format=csv.\n\n');
    if (args.queryGpu !== null) {
      if (!args.queryGpu) return finish(2, BAD_ARGS);
      const [code, out] = csv(args.queryGpu, FIELDS, ALIASES, gpus, profile, args.format, (get, g) => get(g, profile));
      return finish(code, out);
    }
    const apps = profile.processes
      .map((p) => ({ p, g: gpus.find((g) => g.index === p.gpuIndex) }))
      .filter((x) => x.g);
    const [code, out] = csv(args.queryApps, APP_FIELDS, APP_ALIASES, apps, profile, args.format, (get, x) => get(x.p, x.g));
    return finish(code, out);
  }
  if (args.list) {
    return finish(0, gpus.map((g) => `GPU ${g.index}: ${g.name} (UUID: ${g.uuid})\n`).join(''));
  }
  if (args.query) return finish(0, fullQuery(profile, gpus));
  return finish(0, table(profile, gpus));
}

main();

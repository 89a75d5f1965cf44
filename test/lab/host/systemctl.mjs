#!/usr/bin/env node
// The lab's `systemctl` and `journalctl`: a lab host's /usr/local/bin/systemctl and
// /usr/local/bin/journalctl (the same script; it looks at the name it was called by).
//
// Why a simulator: a lab host is a network namespace plus a mount namespace, not a machine or a
// container with its own PID 1, so systemd cannot run in it. Provisioning still needs what
// systemd gives a real host — units in /etc/systemd/system, `daemon-reload`, `enable`,
// `restart`, `is-active`, `status`, a journal — so this script supervises services the way
// systemd would, inside the host's namespaces:
//
// - units: NAME.service from /etc/systemd/system, /run/systemd/system, /lib/systemd/system,
//   /usr/lib/systemd/system, plus NAME.service.d/*.conf drop-ins. [Service] keys used: Type=
//   (simple, exec, notify, idle: run in the background; oneshot: run to completion, with
//   RemainAfterExit=; forking: run, then PIDFile=), ExecStartPre=, ExecStart=, ExecStartPost=,
//   ExecReload=, ExecStop= (with systemd's quoting, $VAR/${VAR} expansion, %n/%N/%p/%i/%h/%t/%%
//   specifiers and the - @ : + ! prefixes), Environment=, EnvironmentFile=, WorkingDirectory=,
//   Restart= (no, always, on-success, on-failure, on-abnormal, on-abort), RestartSec=,
//   TimeoutStopSec=; User=, Group= and sandboxing keys are ignored (everything runs as root).
//   A unit is read when first used and kept until `daemon-reload`, like systemd: an edited unit
//   file without daemon-reload warns and keeps the old definition.
// - a background service is started detached (its own session, stdio appended to
//   /var/lib/airlock-host/systemd/NAME.log) under a small sh supervisor that records its exit
//   and applies Restart= (with systemd's start limit: 5 starts in 10 s), so it outlives the SSH
//   session that started it. State and pid files: /var/lib/airlock-host/systemd/NAME.{pid,run,json}.
// - `start` fails (exit 1, log tail on stderr) when the main process exits within ~300 ms, as a
//   crashing service would make a real `systemctl start` fail.
// - ssh.service / sshd.service are the host's real sshd (pid file /run/sshd.pid): `reload` and
//   `restart` check the config with `sshd -t` and send SIGHUP (sshd re-executes with the same
//   pid, so the lab keeps tracking it); `start` of a stopped sshd is the lab's job (startSshd).
//
// Plain JavaScript with node: modules only: it runs on lab hosts, which have nothing but node.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// The lab fills this in when it installs the script (see lab.ts); the environment overrides it
// for tests of the script on its own.
const CONFIG = /*LAB_CONFIG*/ {
  unitPath: ['/etc/systemd/system', '/run/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'],
  stateDir: '/var/lib/airlock-host/systemd',
  sshdPidFile: '/run/sshd.pid',
  sshd: '/usr/sbin/sshd',
} /*END_LAB_CONFIG*/;
if (process.env.AIRLOCK_LAB_SYSTEMCTL_CONFIG) Object.assign(CONFIG, JSON.parse(process.env.AIRLOCK_LAB_SYSTEMCTL_CONFIG));

const ETC_UNITS = CONFIG.unitPath[0];
const STATE = CONFIG.stateDir;
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const START_CHECK_MS = 300;
const START_CHECK_MAX_MS = 3000;
const SSH_UNITS = new Set(['ssh.service', 'sshd.service']);

let quiet = false;
const out = (s) => process.stdout.write(s);
const err = (s) => process.stderr.write(s);

class Exit extends Error {
  constructor(code, message = '') {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function writeAtomic(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function procState(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const s = readText(`/proc/${pid}/stat`);
  if (!s) return null;
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], pgrp: Number(f[2]), start: f[19] };
}

function pidAlive(pid) {
  const s = procState(pid);
  return !!s && s.state !== 'Z' && s.state !== 'X';
}

function commOf(pid) {
  return (readText(`/proc/${pid}/comm`) ?? '?').trim();
}

function kill(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function tailLines(file, n) {
  const t = readText(file);
  if (!t) return [];
  const lines = t.replace(/\n$/, '').split('\n');
  return n >= 0 ? lines.slice(-n) : lines;
}

function journal(u, line) {
  try {
    fs.mkdirSync(STATE, { recursive: true });
    fs.appendFileSync(logPath(u.name), `systemd[1]: ${line}\n`);
  } catch {
    /* the journal is best effort */
  }
}

function fmtTime(iso) {
  const d = new Date(iso);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const p = (n) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]} ${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
}

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}min ${s % 60}s ago`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}min ago`;
}

/** systemd time spans: `2`, `2s`, `500ms`, `1min 30s`, `infinity`. Returns milliseconds. */
function parseSpan(v, dflt) {
  if (v === undefined || v === '') return dflt;
  if (v === 'infinity') return 24 * 3600 * 1000;
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|seconds?|m|min|minutes?|h|hr|hours?|us|usec)?/g;
  let matched = false;
  for (const m of v.matchAll(re)) {
    matched = true;
    const n = Number(m[1]);
    const unit = m[2] ?? 's';
    const mult = /^(ms|msec)$/.test(unit) ? 1 : /^(us|usec)$/.test(unit) ? 0.001 : /^(m|min|minutes?)$/.test(unit) ? 60_000 : /^(h|hr|hours?)$/.test(unit) ? 3_600_000 : 1000;
    total += n * mult;
  }
  return matched ? total : dflt;
}

// ---------------------------------------------------------------------------------------------
// Units: names, files, parsing
// ---------------------------------------------------------------------------------------------

function unitName(arg) {
  if (!/^[A-Za-z0-9:_.@\\-]+$/.test(arg)) throw new Exit(1, `Invalid unit name "${arg}" escaped as "${arg.replace(/[^A-Za-z0-9:_.@-]/g, '_')}".`);
  if (/\.(service|socket|target|timer|mount|path|slice|scope|device|swap|automount)$/.test(arg)) return arg;
  return `${arg}.service`;
}

const statePath = (name, ext) => path.join(STATE, `${name}.${ext}`);
const logPath = (name) => statePath(name, 'log');

/** The unit file and drop-ins of `name` on disk (first directory of the unit path that has it). */
function findSources(name) {
  let main = null;
  for (const dir of CONFIG.unitPath) {
    const f = path.join(dir, name);
    const text = readText(f);
    if (text !== null) {
      if (text === '' || fs.realpathSync(f) === '/dev/null') return { masked: true, files: [] };
      main = { path: f, text };
      break;
    }
  }
  if (!main) return null;
  const dropins = [];
  const seen = new Set();
  for (const dir of CONFIG.unitPath) {
    const d = path.join(dir, `${name}.d`);
    let names = [];
    try {
      names = fs.readdirSync(d).filter((n) => n.endsWith('.conf'));
    } catch {
      continue;
    }
    for (const n of names) {
      if (seen.has(n)) continue;
      seen.add(n);
      const text = readText(path.join(d, n));
      if (text !== null) dropins.push({ path: path.join(d, n), text });
    }
  }
  dropins.sort((a, b) => path.basename(a.path).localeCompare(path.basename(b.path)));
  return { masked: false, files: [main, ...dropins] };
}

/** `[Section]` / `Key=Value` lines, with comments and backslash line continuation. */
function parseIni(text) {
  const entries = [];
  let section = '';
  const lines = text.replace(/\r/g, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = line.slice(0, -1) + ' ' + lines[++i].trim();
    }
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      section = sec[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    entries.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return entries;
}

const LIST_KEYS = new Set(['ExecStartPre', 'ExecStart', 'ExecStartPost', 'ExecReload', 'ExecStop', 'ExecStopPost', 'Environment', 'EnvironmentFile', 'WantedBy', 'RequiredBy', 'Alias']);

function buildUnit(name, sources) {
  const u = { name, path: sources.files[0].path, dropins: sources.files.slice(1).map((f) => f.path), service: {}, unit: {}, install: {} };
  for (const f of sources.files) {
    for (const e of parseIni(f.text)) {
      const bucket = e.section === 'Service' ? u.service : e.section === 'Unit' ? u.unit : e.section === 'Install' ? u.install : null;
      if (!bucket) continue;
      if (LIST_KEYS.has(e.key)) {
        if (e.value === '') bucket[e.key] = [];
        else (bucket[e.key] ??= []).push(e.value);
      } else bucket[e.key] = e.value;
    }
  }
  return u;
}

/**
 * The unit as the "manager" has it loaded: read from disk on first use and kept until
 * `daemon-reload`. A unit file changed since then gets systemd's warning and the old definition.
 */
function loadUnit(name) {
  if (SSH_UNITS.has(name)) return { name, builtin: 'ssh', path: '/lib/systemd/system/ssh.service', dropins: [], service: {}, unit: { Description: 'OpenBSD Secure Shell server' }, install: { WantedBy: ['multi-user.target'] } };
  if (!name.endsWith('.service')) return null;
  const snapFile = path.join(STATE, 'loaded', `${name}.json`);
  const sources = findSources(name);
  const snap = readText(snapFile);
  if (snap !== null) {
    const s = JSON.parse(snap);
    const now = sources ? JSON.stringify(sources.files) : null;
    if (now !== s.sources && !quiet) {
      err(`Warning: The unit file, source configuration file or drop-ins of ${name} changed on disk. Run 'systemctl daemon-reload' to reload units.\n`);
    }
    return s.unit;
  }
  if (!sources) return null;
  if (sources.masked) return { name, masked: true, path: `/etc/systemd/system/${name}`, dropins: [], service: {}, unit: {}, install: {} };
  const u = buildUnit(name, sources);
  writeAtomic(snapFile, JSON.stringify({ sources: JSON.stringify(sources.files), unit: u }));
  return u;
}

function needUnit(name, verb) {
  const u = loadUnit(name);
  if (!u) throw new Exit(5, `Failed to ${verb} ${name}: Unit ${name} not found.`);
  if (u.masked) throw new Exit(1, `Failed to ${verb} ${name}: Unit ${name} is masked.`);
  return u;
}

// ---------------------------------------------------------------------------------------------
// Command lines: systemd's quoting, variables and specifiers
// ---------------------------------------------------------------------------------------------

function specifiers(s, u) {
  const [prefix, inst] = u.name.replace(/\.service$/, '').split('@');
  const map = { n: u.name, N: u.name.replace(/\.service$/, ''), p: prefix, i: inst ?? '', I: inst ?? '', h: '/root', t: '/run', '%': '%', H: readText('/etc/hostname')?.trim() ?? '' };
  return s.replace(/%(.)/g, (m, c) => map[c] ?? m);
}

/** Splits one Exec*= value into { ignoreFailure, argv } with $VAR / ${VAR} expanded from `env`. */
function parseExec(value, u, env) {
  let v = specifiers(value, u);
  let ignoreFailure = false;
  while (/^[-@:+!]/.test(v)) {
    if (v[0] === '-') ignoreFailure = true;
    if (v[0] === '@') throw new Exit(1, `${u.name}: the @ prefix of ${value} is not supported by the lab's systemctl`);
    v = v.slice(1);
  }
  const words = [];
  let i = 0;
  const sub = (s) => s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, k) => env[k] ?? '').replace(/\$\$/g, '$');
  while (i < v.length) {
    while (i < v.length && /\s/.test(v[i])) i++;
    if (i >= v.length) break;
    let word = '';
    let quotedAny = false;
    let raw = '';
    while (i < v.length && !/\s/.test(v[i])) {
      const c = v[i];
      if (c === '"' || c === "'") {
        quotedAny = true;
        const q = c;
        i++;
        let part = '';
        while (i < v.length && v[i] !== q) {
          if (v[i] === '\\' && i + 1 < v.length) {
            const n = v[++i];
            part += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          } else part += v[i];
          i++;
        }
        i++;
        word += sub(part);
        raw += part;
      } else if (c === '\\' && i + 1 < v.length) {
        const n = v[++i];
        word += n === 'n' ? '\n' : n === 't' ? '\t' : n;
        raw += '\\' + n;
        i++;
      } else {
        let part = '';
        while (i < v.length && !/[\s"'\\]/.test(v[i])) part += v[i++];
        word += sub(part);
        raw += part;
      }
    }
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(raw);
    if (!quotedAny && whole) words.push(...(env[whole[1]] ?? '').split(/\s+/).filter(Boolean));
    else words.push(word);
  }
  if (words.length === 0) throw new Exit(1, `${u.name}: empty command line in ${value}`);
  return { ignoreFailure, argv: words };
}

/** Words as systemd splits Environment= values: quotes may open anywhere in a word. */
function splitWords(value) {
  const words = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /\s/.test(value[i])) i++;
    if (i >= value.length) break;
    let w = '';
    while (i < value.length && !/\s/.test(value[i])) {
      const c = value[i];
      if (c === '"' || c === "'") {
        i++;
        while (i < value.length && value[i] !== c) {
          if (c === '"' && value[i] === '\\' && i + 1 < value.length) i++;
          w += value[i++];
        }
        i++;
      } else if (c === '\\' && i + 1 < value.length) {
        w += value[i + 1];
        i += 2;
      } else w += value[i++];
    }
    words.push(w);
  }
  return words;
}

function parseEnvAssignments(value) {
  const out = [];
  for (const s of splitWords(value)) {
    const eq = s.indexOf('=');
    if (eq > 0) out.push([s.slice(0, eq), s.slice(eq + 1)]);
  }
  return out;
}

function parseEnvFile(text) {
  const out = [];
  for (const raw of text.replace(/\r/g, '').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    let v = line.slice(eq + 1).trim();
    if (v.length >= 2 && ((v[0] === '"' && v.endsWith('"')) || (v[0] === "'" && v.endsWith("'")))) {
      v = v[0] === '"' ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v.slice(1, -1);
    }
    out.push([line.slice(0, eq).trim(), v]);
  }
  return out;
}

/** The environment a unit's processes get: systemd's own PATH, then Environment=, then files. */
function unitEnv(u, extra = {}) {
  const env = { PATH: SERVICE_PATH, LANG: 'C.UTF-8', INVOCATION_ID: randomBytes(16).toString('hex'), ...extra };
  for (const v of u.service.Environment ?? []) for (const [k, val] of parseEnvAssignments(specifiers(v, u))) env[k] = val;
  for (const spec of u.service.EnvironmentFile ?? []) {
    const optional = spec.startsWith('-');
    const file = specifiers(optional ? spec.slice(1) : spec, u);
    const text = readText(file);
    if (text === null) {
      if (optional) continue;
      throw new Exit(1, `${u.name}: Failed to load environment files: ${file}: No such file or directory`);
    }
    for (const [k, val] of parseEnvFile(text)) env[k] = val;
  }
  return env;
}

function unitCwd(u) {
  let wd = u.service.WorkingDirectory;
  if (!wd) return '/';
  const optional = wd.startsWith('-');
  if (optional) wd = wd.slice(1);
  wd = wd === '~' ? '/root' : specifiers(wd, u);
  try {
    if (fs.statSync(wd).isDirectory()) return wd;
  } catch {
    /* below */
  }
  if (optional) return '/';
  throw new Exit(1, `${u.name}: Changing to the requested working directory failed: ${wd}: No such file or directory (status=200/CHDIR)`);
}

function resolveExe(file, env) {
  const ok = (f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  };
  if (file.includes('/')) return ok(file) ? file : null;
  for (const d of (env.PATH ?? SERVICE_PATH).split(':')) if (ok(path.join(d, file))) return path.join(d, file);
  return null;
}

/** Runs one Exec*= line to completion, output to the unit's log. Returns its exit status. */
function runSync(u, line, env, cwd) {
  const { ignoreFailure, argv } = parseExec(line, u, env);
  const exe = resolveExe(argv[0], env);
  if (!exe) {
    journal(u, `${u.name}: Failed to locate executable ${argv[0]}: No such file or directory`);
    return ignoreFailure ? 0 : 203;
  }
  fs.mkdirSync(STATE, { recursive: true });
  const fd = fs.openSync(logPath(u.name), 'a');
  try {
    const r = spawnSync(exe, argv.slice(1), { argv0: argv[0], env, cwd, stdio: ['ignore', fd, fd], timeout: 90_000 });
    const code = r.status ?? 128 + 9;
    return ignoreFailure ? 0 : code;
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Service state
// ---------------------------------------------------------------------------------------------

function readMeta(name) {
  const t = readText(statePath(name, 'json'));
  return t ? JSON.parse(t) : null;
}

function writeMeta(name, meta) {
  writeAtomic(statePath(name, 'json'), JSON.stringify(meta) + '\n');
}

/** `running PID N` | `auto-restart STATUS N` | `exited STATUS N` | `failed STATUS N` | `start-limit STATUS N`, written by the supervisor. */
function readRun(name) {
  const t = readText(statePath(name, 'run'));
  if (!t) return null;
  const [what, a, n] = t.trim().split(/\s+/);
  return { what, value: Number(a), restarts: Number(n) || 0 };
}

function sshState() {
  const pid = Number((readText(CONFIG.sshdPidFile) ?? '').trim());
  if (pidAlive(pid)) return { active: 'active', sub: 'running', mainPid: pid, result: 'success', since: null, restarts: 0, status: null };
  return { active: 'inactive', sub: 'dead', mainPid: 0, result: 'success', since: null, restarts: 0, status: null };
}

function exitWords(status) {
  if (status > 128) return { code: 'killed', text: `signal=${status - 128}/${signalName(status - 128)}`, result: 'signal' };
  return { code: 'exited', text: `status=${status}/${status === 0 ? 'SUCCESS' : 'FAILURE'}`, result: status === 0 ? 'success' : 'exit-code' };
}

function signalName(n) {
  const names = { 1: 'HUP', 2: 'INT', 3: 'QUIT', 6: 'ABRT', 9: 'KILL', 11: 'SEGV', 13: 'PIPE', 15: 'TERM' };
  return names[n] ?? String(n);
}

/** ActiveState, SubState, MainPID, Result … of a unit. */
function unitState(u) {
  if (u.builtin === 'ssh') return sshState();
  const meta = readMeta(u.name);
  const base = { active: 'inactive', sub: 'dead', mainPid: 0, result: 'success', since: meta?.since ?? null, restarts: 0, status: null };
  if (!meta) return base;
  if (meta.failed) return { ...base, active: 'failed', sub: 'failed', result: meta.failed, status: meta.status ?? null };
  if (meta.stopped) return { ...base, result: meta.result ?? 'success' };
  if (meta.kind === 'oneshot') return { ...base, active: 'active', sub: 'exited' };
  if (meta.kind === 'forking') {
    return pidAlive(meta.mainPid) ? { ...base, active: 'active', sub: 'running', mainPid: meta.mainPid } : { ...base, active: 'failed', sub: 'failed', result: 'exit-code' };
  }
  const run = readRun(u.name);
  const supervisorAlive = meta.supervisor && procState(meta.supervisor.pid)?.start === meta.supervisor.start && pidAlive(meta.supervisor.pid);
  if (!run) return supervisorAlive ? { ...base, active: 'activating', sub: 'start' } : { ...base, active: 'failed', sub: 'failed', result: 'exit-code' };
  const restarts = run.restarts;
  switch (run.what) {
    case 'running':
      if (pidAlive(run.value)) return { ...base, active: 'active', sub: 'running', mainPid: run.value, restarts };
      if (supervisorAlive) return { ...base, active: 'activating', sub: 'auto-restart', restarts };
      return { ...base, active: 'failed', sub: 'failed', result: 'signal', restarts };
    case 'auto-restart':
      return supervisorAlive
        ? { ...base, active: 'activating', sub: 'auto-restart', result: exitWords(run.value).result, status: run.value, restarts }
        : { ...base, active: 'failed', sub: 'failed', result: exitWords(run.value).result, status: run.value, restarts };
    case 'exited':
      return { ...base, status: run.value, restarts };
    case 'start-limit':
      return { ...base, active: 'failed', sub: 'failed', result: 'start-limit-hit', status: run.value, restarts };
    default:
      return { ...base, active: 'failed', sub: 'failed', result: exitWords(run.value).result, status: run.value, restarts };
  }
}

function enabledState(u) {
  if (u.builtin) return 'enabled';
  if (u.masked) return 'masked';
  const links = wantsLinks(u);
  if (links.some((l) => fs.existsSync(l) || isSymlink(l))) return 'enabled';
  const inst = u.install;
  return (inst.WantedBy?.length ?? 0) + (inst.RequiredBy?.length ?? 0) + (inst.Alias?.length ?? 0) > 0 ? 'disabled' : 'static';
}

function isSymlink(p) {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function wantsLinks(u) {
  const out = [];
  for (const t of (u.install.WantedBy ?? []).flatMap((v) => v.split(/\s+/))) out.push(path.join(ETC_UNITS, `${t}.wants`, u.name));
  for (const t of (u.install.RequiredBy ?? []).flatMap((v) => v.split(/\s+/))) out.push(path.join(ETC_UNITS, `${t}.requires`, u.name));
  // Links a previous definition may have made (enable, then the [Install] section changed).
  try {
    for (const d of fs.readdirSync(ETC_UNITS)) {
      if (/\.(wants|requires)$/.test(d)) {
        const l = path.join(ETC_UNITS, d, u.name);
        if (!out.includes(l) && isSymlink(l)) out.push(l);
      }
    }
  } catch {
    /* no /etc/systemd/system */
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Verbs
// ---------------------------------------------------------------------------------------------

// The supervisor: runs the main process in the background, records its pid and how it ended,
// and restarts it as Restart= says. Its stdout is the unit's log.
const SUPERVISOR = `
name=$1 base=$2 policy=$3 rsec=$4; shift 4
n=0
starts=$(date +%s)
while :; do
  "$@" &
  p=$!
  printf 'running %s %s\\n' "$p" "$n" > "$base.run.tmp" && mv -f "$base.run.tmp" "$base.run"
  echo "$p" > "$base.pid.tmp" && mv -f "$base.pid.tmp" "$base.pid"
  wait "$p"
  s=$?
  [ -e "$base.stopping" ] && exit 0
  if [ "$s" -gt 128 ]; then how="code=killed, status=$((s - 128))"; else how="code=exited, status=$s"; fi
  echo "systemd[1]: $name: Main process exited, $how"
  r=0
  case $policy in
    always) r=1 ;;
    on-success) [ "$s" -eq 0 ] && r=1 ;;
    on-failure) [ "$s" -ne 0 ] && r=1 ;;
    on-abnormal|on-abort|on-watchdog) [ "$s" -gt 128 ] && r=1 ;;
  esac
  if [ "$r" -eq 0 ]; then
    if [ "$s" -eq 0 ]; then state=exited; echo "systemd[1]: $name: Deactivated successfully."
    else state=failed; echo "systemd[1]: $name: Failed with result 'exit-code'."; fi
    printf '%s %s %s\\n' "$state" "$s" "$n" > "$base.run.tmp" && mv -f "$base.run.tmp" "$base.run"
    exit 0
  fi
  now=$(date +%s)
  starts="$starts $now"
  recent=0
  for t in $starts; do [ $((now - t)) -lt 10 ] && recent=$((recent + 1)); done
  if [ "$recent" -ge 5 ]; then
    echo "systemd[1]: $name: Start request repeated too quickly."
    echo "systemd[1]: $name: Failed with result 'exit-code'."
    printf 'start-limit %s %s\\n' "$s" "$n" > "$base.run.tmp" && mv -f "$base.run.tmp" "$base.run"
    exit 0
  fi
  n=$((n + 1))
  printf 'auto-restart %s %s\\n' "$s" "$n" > "$base.run.tmp" && mv -f "$base.run.tmp" "$base.run"
  sleep "$rsec"
  [ -e "$base.stopping" ] && exit 0
  echo "systemd[1]: $name: Scheduled restart job, restart counter is at $n."
done
`;

/** The supervisor as a file of its own, so `ps` shows `/bin/sh …/supervisor.sh UNIT …`. */
function supervisorScript() {
  const file = path.join(STATE, 'supervisor.sh');
  const text = `# The lab's systemctl: supervises one service (see /usr/local/bin/systemctl).\n${SUPERVISOR}`;
  if (readText(file) !== text) writeAtomic(file, text);
  return file;
}

function clearRunState(name) {
  for (const ext of ['run', 'pid', 'stopping']) fs.rmSync(statePath(name, ext), { force: true });
}

function failStart(u, result, message, status = null) {
  writeMeta(u.name, { since: new Date().toISOString(), failed: result, status });
  journal(u, `${u.name}: Failed with result '${result}'.`);
  journal(u, `Failed to start ${u.name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}.`);
  const tail = tailLines(logPath(u.name), 10);
  throw new Exit(
    1,
    `Job for ${u.name} failed because the control process exited with error code.\n` +
      `See "systemctl status ${u.name}" and "journalctl -xeu ${u.name}" for details.` +
      (message ? `\n${message}` : '') +
      (tail.length ? `\n--- last lines of ${logPath(u.name)} ---\n${tail.join('\n')}` : ''),
  );
}

function doStart(u) {
  if (u.builtin === 'ssh') {
    if (sshState().active === 'active') return;
    throw new Exit(1, `Failed to start ${u.name}: the lab host's sshd is started by the lab (startSshd / npm run lab -- start-sshd), not from inside the host.`);
  }
  const st = unitState(u);
  if (st.active === 'active' || st.active === 'activating') return;
  const type = u.service.Type ?? 'simple';
  const exec = u.service.ExecStart ?? [];
  if (exec.length === 0) throw new Exit(1, `Failed to start ${u.name}: Unit ${u.name} has a bad unit file setting (no ExecStart=).`);
  if (exec.length > 1 && type !== 'oneshot') throw new Exit(1, `Failed to start ${u.name}: Unit ${u.name} has a bad unit file setting (more than one ExecStart= for Type=${type}).`);
  clearRunState(u.name);
  fs.mkdirSync(STATE, { recursive: true });
  const since = new Date().toISOString();
  let env;
  let cwd;
  try {
    env = unitEnv(u);
    cwd = unitCwd(u);
  } catch (e) {
    if (e instanceof Exit) {
      journal(u, e.message);
      failStart(u, 'resources', e.message);
    }
    throw e;
  }
  journal(u, `Starting ${u.name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}...`);
  for (const line of u.service.ExecStartPre ?? []) {
    const s = runSync(u, line, env, cwd);
    if (s !== 0) failStart(u, 'exit-code', `ExecStartPre=${line} exited with status ${s}`, s);
  }
  if (type === 'oneshot') {
    for (const line of exec) {
      const s = runSync(u, line, env, cwd);
      if (s !== 0) failStart(u, 'exit-code', `ExecStart=${line} exited with status ${s}`, s);
    }
    if (/^(yes|true|on|1)$/i.test(u.service.RemainAfterExit ?? '')) writeMeta(u.name, { since, kind: 'oneshot' });
    else writeMeta(u.name, { since, stopped: true });
  } else if (type === 'forking') {
    const s = runSync(u, exec[0], env, cwd);
    if (s !== 0) failStart(u, 'exit-code', `ExecStart=${exec[0]} exited with status ${s}`, s);
    const pidFile = u.service.PIDFile ? specifiers(u.service.PIDFile, u) : null;
    const mainPid = pidFile ? Number((readText(pidFile) ?? '').trim()) : 0;
    if (!pidAlive(mainPid)) failStart(u, 'protocol', `${u.name}: no live main process${pidFile ? ` in PIDFile=${pidFile}` : ' (Type=forking needs PIDFile= in the lab)'}`);
    writeMeta(u.name, { since, kind: 'forking', mainPid });
  } else {
    startBackground(u, exec[0], env, cwd, since);
  }
  for (const line of u.service.ExecStartPost ?? []) {
    const s = runSync(u, line, { ...env, MAINPID: String(unitState(u).mainPid) }, cwd);
    if (s !== 0) {
      doStop(u, true);
      failStart(u, 'exit-code', `ExecStartPost=${line} exited with status ${s}`, s);
    }
  }
  journal(u, `Started ${u.name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}.`);
}

function startBackground(u, line, env, cwd, since) {
  const { argv } = parseExec(line, u, env);
  const exe = resolveExe(argv[0], env);
  if (!exe) {
    journal(u, `${u.name}: Failed to locate executable ${argv[0]}: No such file or directory`);
    failStart(u, 'exit-code', `${u.name}: Failed at step EXEC spawning ${argv[0]}: No such file or directory (status=203/EXEC)`, 203);
  }
  const policy = u.service.Restart ?? 'no';
  const rsec = (parseSpan(u.service.RestartSec, 100) / 1000).toFixed(3);
  const base = path.join(STATE, u.name);
  const fd = fs.openSync(logPath(u.name), 'a');
  let child;
  try {
    // detached: the supervisor gets its own session (setsid), so it outlives the ssh session.
    child = spawn('/bin/sh', [supervisorScript(), u.name, base, policy, rsec, exe, ...argv.slice(1)], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env,
      cwd,
    });
  } finally {
    fs.closeSync(fd);
  }
  const sup = procState(child.pid);
  writeMeta(u.name, { since, supervisor: { pid: child.pid, start: sup?.start ?? '' } });
  child.unref();
  // A service that dies right away fails `start`, as a crashing unit does under systemd. Wait
  // at least START_CHECK_MS; on a busy machine, keep waiting while the process is still running
  // on the CPU (starting up), up to START_CHECK_MAX_MS.
  const t0 = Date.now();
  let firstPid = 0;
  for (;;) {
    sleepMs(25);
    const run = readRun(u.name);
    if (run?.what === 'running' && !firstPid) firstPid = run.value;
    const diedOnce = run && (run.what !== 'running' || run.value !== firstPid || run.restarts > 0 || !pidAlive(run.value));
    if (firstPid && diedOnce) {
      // Exiting 0 at once is a short-lived service, not a failure (systemd's start succeeds too).
      if (run.what === 'exited' && run.value === 0) return;
      const s = run.what === 'running' ? null : run.value;
      const st = unitState(u);
      throw failedStartAfterSpawn(u, s, st);
    }
    const elapsed = Date.now() - t0;
    if (elapsed >= START_CHECK_MS && firstPid) {
      const ps = procState(firstPid);
      if (!ps || ps.state !== 'R' || elapsed >= START_CHECK_MAX_MS) break;
    }
    if (elapsed > START_CHECK_MAX_MS * 2) break;
  }
}

function failedStartAfterSpawn(u, status, st) {
  const tail = tailLines(logPath(u.name), 10);
  const how = status === null ? '' : ` (main process ${exitWords(status).code}, ${exitWords(status).text})`;
  return new Exit(
    1,
    `Job for ${u.name} failed because the control process exited with error code${how}.\n` +
      `See "systemctl status ${u.name}" and "journalctl -xeu ${u.name}" for details.` +
      (st.active === 'activating' ? `\n(${u.name} is restarting as its Restart=${u.service.Restart} says.)` : '') +
      (tail.length ? `\n--- last lines of ${logPath(u.name)} ---\n${tail.join('\n')}` : ''),
  );
}

function doStop(u, quietly = false) {
  if (u.builtin === 'ssh') {
    const s = sshState();
    if (s.mainPid) kill(s.mainPid, 'SIGTERM');
    return;
  }
  const meta = readMeta(u.name);
  const st = unitState(u);
  if (!meta || st.active === 'inactive') return;
  if (st.active === 'failed' && !quietly) {
    // Stopping a failed unit leaves it failed (systemd keeps the result until reset-failed).
    return;
  }
  fs.writeFileSync(statePath(u.name, 'stopping'), '');
  if (!quietly) journal(u, `Stopping ${u.name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}...`);
  const env = (() => {
    try {
      return unitEnv(u, { MAINPID: String(st.mainPid) });
    } catch {
      return { PATH: SERVICE_PATH, MAINPID: String(st.mainPid) };
    }
  })();
  for (const line of u.service.ExecStop ?? []) runSync(u, line, env, '/');
  const pids = [];
  if (st.mainPid) pids.push(st.mainPid);
  const group = meta.supervisor && procState(meta.supervisor.pid)?.start === meta.supervisor.start ? meta.supervisor.pid : 0;
  const sig = u.service.KillSignal ?? 'SIGTERM';
  if (group) kill(-group, sig);
  for (const p of pids) kill(p, sig);
  const deadline = Date.now() + parseSpan(u.service.TimeoutStopSec, 10_000);
  while (Date.now() < deadline && pids.some(pidAlive)) sleepMs(20);
  if (pids.some(pidAlive)) journal(u, `${u.name}: State 'stop-sigterm' timed out. Killing.`);
  if (group) kill(-group, 'SIGKILL');
  for (const p of pids) if (pidAlive(p)) kill(p, 'SIGKILL');
  if (meta.kind === 'forking' && meta.mainPid) kill(meta.mainPid, 'SIGKILL');
  for (const line of u.service.ExecStopPost ?? []) runSync(u, line, env, '/');
  writeMeta(u.name, { since: new Date().toISOString(), stopped: true, result: 'success' });
  fs.rmSync(statePath(u.name, 'pid'), { force: true });
  if (!quietly) journal(u, `Stopped ${u.name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}.`);
}

function sshReload(u) {
  const t = spawnSync(CONFIG.sshd, ['-t'], { encoding: 'utf8' });
  if (t.status !== 0) {
    throw new Exit(1, `Job for ${u.name} failed because the control process exited with error code.\n${(t.stderr || t.stdout).trim()}`);
  }
  const s = sshState();
  if (!s.mainPid) throw new Exit(1, `Failed to reload ${u.name}: the host's sshd is not running (the lab starts it: startSshd).`);
  kill(s.mainPid, 'SIGHUP');
}

function doReload(u) {
  if (u.builtin === 'ssh') return sshReload(u);
  const reload = u.service.ExecReload ?? [];
  if (reload.length === 0) throw new Exit(1, `Failed to reload ${u.name}: Job type reload is not applicable for unit ${u.name}.`);
  const st = unitState(u);
  if (st.active !== 'active') throw new Exit(1, `Failed to reload ${u.name}: Unit ${u.name} cannot be reloaded because it is inactive.`);
  const env = unitEnv(u, { MAINPID: String(st.mainPid) });
  journal(u, `Reloading ${u.name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}...`);
  for (const line of reload) {
    const s = runSync(u, line, env, unitCwd(u));
    if (s !== 0) throw new Exit(1, `Job for ${u.name} failed because the control process exited with error code.\nSee "systemctl status ${u.name}" and "journalctl -xeu ${u.name}" for details.`);
  }
  journal(u, `Reloaded ${u.name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}.`);
}

function doRestart(u) {
  if (u.builtin === 'ssh') return sshReload(u);
  doStop(u, unitState(u).active === 'failed');
  doStart(u);
}

function doEnable(u, enable) {
  if (u.builtin) return;
  if (u.masked) throw new Exit(1, `Failed to ${enable ? 'enable' : 'disable'} unit: Unit file ${u.name} is masked.`);
  if (enable) {
    const targets = [
      ...(u.install.WantedBy ?? []).flatMap((v) => v.split(/\s+/)).map((t) => `${t}.wants`),
      ...(u.install.RequiredBy ?? []).flatMap((v) => v.split(/\s+/)).map((t) => `${t}.requires`),
    ];
    if (targets.length === 0) {
      err(
        `The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled or disabled using systemctl.\n`,
      );
      return;
    }
    for (const t of targets) {
      const link = path.join(ETC_UNITS, t, u.name);
      if (isSymlink(link)) continue;
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(u.path, link);
      if (!quiet) err(`Created symlink ${link} → ${u.path}.\n`);
    }
  } else {
    for (const link of wantsLinks(u)) {
      if (!isSymlink(link)) continue;
      fs.rmSync(link, { force: true });
      if (!quiet) err(`Removed "${link}".\n`);
    }
  }
}

const PROPS = ['Type', 'Restart', 'MainPID', 'ExecMainPID', 'ExecMainStatus', 'NRestarts', 'Id', 'Names', 'Description', 'LoadState', 'ActiveState', 'SubState', 'Result', 'FragmentPath', 'UnitFileState', 'ActiveEnterTimestamp'];

function properties(name, u) {
  if (!u) {
    return { Id: name, Names: name, LoadState: 'not-found', ActiveState: 'inactive', SubState: 'dead', MainPID: '0', Result: 'success', UnitFileState: '', Description: name, FragmentPath: '' };
  }
  const st = unitState(u);
  return {
    Type: u.service.Type ?? (u.builtin ? 'notify' : 'simple'),
    Restart: u.service.Restart ?? 'no',
    MainPID: String(st.mainPid),
    ExecMainPID: String(st.mainPid),
    ExecMainStatus: String(st.status ?? 0),
    NRestarts: String(st.restarts),
    Id: name,
    Names: name,
    Description: u.unit.Description ?? name,
    LoadState: u.masked ? 'masked' : 'loaded',
    ActiveState: st.active,
    SubState: st.sub,
    Result: st.result,
    FragmentPath: u.path,
    UnitFileState: enabledState(u),
    ActiveEnterTimestamp: st.active === 'active' && st.since ? fmtTime(st.since) : '',
  };
}

function status(name, u, lines) {
  if (!u) {
    err(`Unit ${name} could not be found.\n`);
    return 4;
  }
  const st = unitState(u);
  const bullet = st.active === 'active' ? '●' : st.active === 'failed' ? '×' : st.active === 'activating' ? '●' : '○';
  const enabled = enabledState(u);
  const res = st.result !== 'success' ? ` (Result: ${st.result})` : '';
  const since = st.since ? ` since ${fmtTime(st.since)}; ${ago(st.since)}` : '';
  const rows = [
    `${bullet} ${name}${u.unit.Description ? ` - ${u.unit.Description}` : ''}`,
    `     Loaded: ${u.masked ? 'masked' : 'loaded'} (${u.path}; ${enabled}; preset: enabled)`,
  ];
  if (u.dropins.length) rows.push(`    Drop-In: ${u.dropins.join(', ')}`);
  rows.push(`     Active: ${st.active} (${st.sub})${st.active === 'activating' ? res : st.active === 'failed' ? res : ''}${st.active === 'inactive' && !st.since ? '' : since}`);
  if (st.mainPid) rows.push(`   Main PID: ${st.mainPid} (${commOf(st.mainPid)})`);
  else if (st.status !== null) {
    const w = exitWords(st.status);
    rows.push(`   Main PID: (code=${w.code}, ${w.text})`);
  }
  if (!u.builtin) {
    const log = tailLines(logPath(name), lines);
    if (log.length) rows.push('', ...log);
  }
  out(rows.join('\n') + '\n');
  return st.active === 'active' ? 0 : 3;
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

function systemctl(args) {
  const props = [];
  let value = false;
  let now = false;
  let lines = 10;
  let signal = 'SIGTERM';
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-q' || a === '--quiet') quiet = true;
    else if (a === '--value') value = true;
    else if (a === '--now') now = true;
    else if (a === '-p' || a === '--property') props.push(...(args[++i] ?? '').split(','));
    else if (a.startsWith('--property=')) props.push(...a.slice(11).split(','));
    else if (/^-p./.test(a)) props.push(...a.slice(2).split(','));
    else if (a === '-n' || a === '--lines') lines = Number(args[++i]);
    else if (a.startsWith('--lines=')) lines = Number(a.slice(8));
    else if (a === '-s' || a === '--signal') signal = args[++i] ?? 'SIGTERM';
    else if (a.startsWith('--signal=')) signal = a.slice(9);
    else if (a === '--user') throw new Exit(1, "lab systemctl: --user is not supported (a lab host has only the system manager's simulator)");
    else if (a === '--version') {
      out('systemd 252 (252-lab)\nlab simulator: test/lab/host/systemctl.mjs\n');
      return 0;
    } else if (a.startsWith('-')) {
      // --system, --no-pager, --no-block, --no-ask-password, --full, -l, --plain, --no-legend, --force, --runtime …
    } else rest.push(a);
  }
  const [verb = 'list-units', ...unitArgs] = rest;
  const units = unitArgs.map(unitName);
  const need = () => {
    if (units.length === 0) throw new Exit(1, `Too few arguments.`);
  };
  switch (verb) {
    case 'daemon-reload':
    case 'daemon-reexec':
      fs.rmSync(path.join(STATE, 'loaded'), { recursive: true, force: true });
      return 0;
    case 'start':
    case 'stop':
    case 'restart':
    case 'try-restart':
    case 'reload':
    case 'reload-or-restart':
    case 'try-reload-or-restart': {
      need();
      for (const n of units) {
        const u = needUnit(n, verb.replace(/^try-/, ''));
        if (verb === 'start') doStart(u);
        else if (verb === 'stop') doStop(u);
        else if (verb === 'restart') doRestart(u);
        else if (verb === 'try-restart') {
          if (unitState(u).active === 'active') doRestart(u);
        } else if (verb === 'reload') doReload(u);
        else if (verb === 'reload-or-restart' || verb === 'try-reload-or-restart') {
          if (verb === 'try-reload-or-restart' && unitState(u).active !== 'active') continue;
          if (u.builtin || (u.service.ExecReload ?? []).length) {
            if (unitState(u).active === 'active') doReload(u);
            else doStart(u);
          } else doRestart(u);
        }
      }
      return 0;
    }
    case 'enable':
    case 'disable':
    case 'preset': {
      // preset: Debian's preset policy is "enable *" (what deb-systemd-helper asks for).
      need();
      for (const n of units) {
        const u = loadUnit(n);
        if (!u) throw new Exit(1, `Failed to ${verb} unit: Unit file ${n} does not exist.`);
        doEnable(u, verb !== 'disable');
        if (now) verb === 'disable' ? doStop(u) : doStart(u);
      }
      return 0;
    }
    case 'preset-all':
      return 0;
    case 'mask':
    case 'unmask': {
      need();
      for (const n of units) {
        const link = path.join(ETC_UNITS, n);
        if (verb === 'mask') {
          if (readText(link) !== null && !isSymlink(link)) throw new Exit(1, `Failed to mask unit: File ${link} already exists.`);
          fs.rmSync(link, { force: true });
          fs.mkdirSync(ETC_UNITS, { recursive: true });
          fs.symlinkSync('/dev/null', link);
          if (!quiet) err(`Created symlink ${link} → /dev/null.\n`);
        } else if (isSymlink(link) && fs.readlinkSync(link) === '/dev/null') {
          fs.rmSync(link);
          if (!quiet) err(`Removed "${link}".\n`);
        }
      }
      fs.rmSync(path.join(STATE, 'loaded'), { recursive: true, force: true });
      return 0;
    }
    case 'is-active':
    case 'is-failed': {
      need();
      let any = false;
      for (const n of units) {
        const u = loadUnit(n);
        const a = u ? unitState(u).active : 'inactive';
        if (!quiet) out(`${a}\n`);
        if (verb === 'is-active' ? a === 'active' : a === 'failed') any = true;
      }
      return any ? 0 : verb === 'is-active' ? 3 : 1;
    }
    case 'is-enabled': {
      need();
      let any = false;
      for (const n of units) {
        const u = loadUnit(n);
        if (!u) {
          err(`Failed to get unit file state for ${n}: No such file or directory\n`);
          continue;
        }
        const e = enabledState(u);
        if (!quiet) out(`${e}\n`);
        if (e === 'enabled' || e === 'static') any = true;
      }
      return any ? 0 : 1;
    }
    case 'status': {
      need();
      let code = 0;
      units.forEach((n, i) => {
        if (i) out('\n');
        code = Math.max(code, status(n, loadUnit(n), lines));
      });
      return code;
    }
    case 'show': {
      need();
      units.forEach((n, i) => {
        if (i) out('\n');
        const p = properties(n, loadUnit(n));
        for (const k of props.length ? props.filter(Boolean) : PROPS) {
          if (!(k in p)) continue;
          out(value ? `${p[k]}\n` : `${k}=${p[k]}\n`);
        }
      });
      return 0;
    }
    case 'cat': {
      need();
      for (const n of units) {
        const u = loadUnit(n);
        if (!u || u.builtin) throw new Exit(1, `No files found for ${n}.`);
        for (const f of [u.path, ...u.dropins]) out(`# ${f}\n${readText(f) ?? ''}\n`);
      }
      return 0;
    }
    case 'kill': {
      need();
      for (const n of units) {
        const u = needUnit(n, 'kill');
        const st = unitState(u);
        if (!st.mainPid) throw new Exit(1, `Failed to kill unit ${n}: No main process to kill`);
        kill(st.mainPid, signal.startsWith('SIG') ? signal : /^\d+$/.test(signal) ? Number(signal) : `SIG${signal}`);
      }
      return 0;
    }
    case 'reset-failed': {
      for (const n of units) {
        const u = loadUnit(n);
        if (u && unitState(u).active === 'failed') {
          fs.rmSync(statePath(n, 'json'), { force: true });
          clearRunState(n);
        }
      }
      return 0;
    }
    case 'list-units':
    case 'list-unit-files': {
      let names = [];
      try {
        names = fs.readdirSync(STATE).filter((f) => f.endsWith('.service.json')).map((f) => f.slice(0, -5));
      } catch {
        /* nothing started yet */
      }
      for (const n of names.sort()) {
        const u = loadUnit(n);
        if (!u) continue;
        const st = unitState(u);
        out(`${n} ${verb === 'list-units' ? `loaded ${st.active} ${st.sub} ${u.unit.Description ?? ''}` : enabledState(u)}\n`);
      }
      return 0;
    }
    default:
      throw new Exit(1, `Unknown command verb '${verb}' (the lab's systemctl simulator supports daemon-reload, start, stop, restart, try-restart, reload, reload-or-restart, enable, disable, preset, mask, unmask, is-active, is-failed, is-enabled, status, show, cat, kill, reset-failed, list-units).`);
  }
}

function journalctl(args) {
  const units = [];
  let lines = -1;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-u' || a === '--unit') units.push(unitName(args[++i] ?? ''));
    else if (a.startsWith('--unit=')) units.push(unitName(a.slice(7)));
    else if (/^-u./.test(a)) units.push(unitName(a.slice(2)));
    else if (a === '-n' || a === '--lines') lines = Number(args[++i]);
    else if (a.startsWith('--lines=')) lines = Number(a.slice(8));
    else if (/^-n\d+$/.test(a)) lines = Number(a.slice(2));
    else if (a === '-e' || a === '--pager-end') lines = lines < 0 ? 1000 : lines;
    else if (a === '-f' || a === '--follow') throw new Exit(1, 'lab journalctl: --follow is not supported; use tail -f on /var/lib/airlock-host/systemd/UNIT.log');
    else if (/^-[a-zA-Z]*u$/.test(a)) units.push(unitName(args[++i] ?? ''));
    else if (a === '-o' || a === '--output' || a === '--since' || a === '--until' || a === '-p' || a === '--priority') i++;
    // -q, -x, -b, --no-pager, --no-hostname, -o=… and the like change nothing here.
  }
  let names = units;
  if (names.length === 0) {
    try {
      names = fs.readdirSync(STATE).filter((f) => f.endsWith('.log')).map((f) => f.slice(0, -4)).sort();
    } catch {
      names = [];
    }
  }
  const all = names.flatMap((n) => tailLines(logPath(n), -1));
  const shown = lines >= 0 ? all.slice(Math.max(0, all.length - lines)) : all;
  if (shown.length === 0) out('-- No entries --\n');
  else out(shown.join('\n') + '\n');
  return 0;
}

try {
  const prog = path.basename(process.argv[1] ?? 'systemctl');
  process.exitCode = prog === 'journalctl' ? journalctl(process.argv.slice(2)) : systemctl(process.argv.slice(2));
} catch (e) {
  if (e instanceof Exit) {
    if (e.message) err(e.message.endsWith('\n') ? e.message : `${e.message}\n`);
    process.exitCode = e.code;
  } else {
    err(`lab systemctl: ${e?.stack ?? e}\n`);
    process.exitCode = 1;
  }
}

#!/usr/bin/env node
// `npm run demo`: a newcomer's first hour in one command (README "Demo with the lab").
//
//   up (default)  start a lab, make the removable media (a real .deb built with dpkg-deb and a tiny
//                 model, each directory with its own SHA256SUMS made by sha256sum), initialise a
//                 demo installation, enrol and scan the lab's hosts, import the media, then open
//                 the console (Electron when its binary is installed and there is a display, else
//                 `airlock serve`'s one-time URL). Ctrl+C stops the console and leaves the rest.
//   down          remove what `up` made: the console, the lab, the data directory, the media.
//   status        say whether a demo is up, and where.
//
// Options: --json (one JSON object on stdout, everything else on stderr), --no-serve (everything
// but the console), --serve (the browser shell even when Electron is installed), --hosts N (3),
// --id ID (the lab's id, default "demo"; inside a test run the lab makes it RUN-ID).
//
// What `up` made is recorded, step by step, in a state file (demoStateDir()/<lab id>.json), so
// `down` removes exactly that and a failed step removes what came before it. Every directory it
// makes is a fresh mkdtemp directory; nothing has a fixed name in /tmp. docs/architecture.md,
// "Issue 11: operator experience" → "npm run demo".
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ensureDebian, ensureNpmDeps } from './setup.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const AIRLOCK = path.join(root, 'bin', 'airlock.mjs');
const ADMIN = 'admin';
/** What the lab-gpu-node playbook (resources/playbooks/lab-gpu-node.json) asks of the store. */
const PACKAGE = { name: 'airlock-node-tools', version: '1.0' };
const MODEL = { name: 'tiny-llm', version: '1' };
const PLAYBOOK = 'lab-gpu-node';
const USAGE = `usage: npm run demo [-- up] [--json] [--no-serve] [--serve] [--hosts N] [--id ID]
       npm run demo -- down [--id ID] [--json]
       npm run demo -- status [--id ID] [--json]
       npm run -s demo -- … --json     (-s: without npm's "> airlock demo" lines, so stdout is JSON only)
`;

class UsageError extends Error {}
/** A step that failed: its title says where, its message what happened. */
class StepError extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

// --- arguments ---------------------------------------------------------------------------------

function parse(argv) {
  const o = { cmd: 'up', json: false, serve: true, forceServe: false, hosts: 3, id: 'demo' };
  const words = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--no-serve') o.serve = false;
    else if (a === '--serve') o.forceServe = true;
    else if (a === '--help' || a === '-h') o.cmd = 'help';
    else if (a === '--hosts' || a === '--id') {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      if (a === '--hosts') {
        o.hosts = Number(v);
        if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > 20) throw new UsageError('--hosts must be a whole number from 1 to 20');
      } else o.id = v;
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else words.push(a);
  }
  if (words.length > 1) throw new UsageError(`one command, not "${words.join(' ')}"`);
  if (words[0] && o.cmd !== 'help') o.cmd = words[0];
  if (!['up', 'down', 'status', 'help'].includes(o.cmd)) throw new UsageError(`unknown command "${o.cmd}"`);
  return o;
}

// --- output ------------------------------------------------------------------------------------

let opts;
/** Progress and notices: stderr, so that stdout is the result alone (the JSON object with --json). */
const note = (line) => process.stderr.write(`${line}\n`);
const say = (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

// --- the demo's state file ---------------------------------------------------------------------

/** Where demos record what they made: beside the labs' own state, private to this user. */
function demoStateDir() {
  if (process.env.AIRLOCK_DEMO_STATE) return path.resolve(process.env.AIRLOCK_DEMO_STATE);
  if (process.getuid?.() === 0) return '/run/airlock-demo';
  return path.join(os.tmpdir(), `airlock-demo-${process.getuid?.() ?? 'user'}`);
}

function ensureStateDir() {
  const dir = demoStateDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} is not a private directory of this user (a link, another owner, or open to others): remove it, or set AIRLOCK_DEMO_STATE`);
  }
  return dir;
}

const stateFile = (labId) => path.join(demoStateDir(), `${labId}.json`);
const envFile = (labId) => path.join(demoStateDir(), `${labId}.env`);

function readState(labId) {
  try {
    return JSON.parse(fs.readFileSync(stateFile(labId), 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw new Error(`cannot read the demo's state ${stateFile(labId)}: ${e.message} (remove it, and the lab with npm run lab -- down --id ${labId})`);
  }
}

function writeState(state) {
  const file = stateFile(state.labId);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** The state file is created exclusively: two `npm run demo` at once cannot both set up. */
function claimState(state) {
  const file = stateFile(state.labId);
  try {
    fs.writeFileSync(file, JSON.stringify(state, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    return true;
  } catch (e) {
    if (e.code === 'EEXIST') return false;
    throw e;
  }
}

function alive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

// --- running things ----------------------------------------------------------------------------

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** A tool's run, its output kept for the message when it fails. */
function tool(step, cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (r.error) throw new StepError(step, `${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new StepError(step, `${path.basename(cmd)} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function demoEnv(state) {
  return {
    ...process.env,
    AIRLOCK_DATA: state.dataDir,
    AIRLOCK_USER: ADMIN,
    AIRLOCK_PASSWORD: state.password,
    AIRLOCK_MEDIA_ROOTS: state.mediaDir,
    // The lab/test setting (docs/security.md), as the integration tests use: no role must enrol TOTP.
    AIRLOCK_TOTP_POLICY: 'off',
  };
}

/** `airlock …` on the demo's data directory, as the signed-in demo administrator. */
function airlock(step, state, args) {
  const r = spawnSync(process.execPath, [AIRLOCK, ...args, '--data', state.dataDir], { encoding: 'utf8', env: demoEnv(state), input: '', timeout: 180_000 });
  if (r.error) throw new StepError(step, `airlock ${args.join(' ')}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function airlockOk(step, state, args) {
  const r = airlock(step, state, args);
  if (r.code !== 0) throw new StepError(step, `airlock ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

let lab; // the lab's API (test/lab/lab.ts), loaded through tsx
async function labApi() {
  if (!lab) {
    const { tsImport } = await import('tsx/esm/api');
    lab = await tsImport('../test/lab/lab.ts', import.meta.url);
  }
  return lab;
}

// --- making the media --------------------------------------------------------------------------

/** `SHA256SUMS` for every file below `dir`, by the real sha256sum, as one would make it for a stick. */
function writeSums(step, dir) {
  const files = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (r !== 'SHA256SUMS') files.push(r);
    }
  };
  walk('');
  const out = tool(step, 'sha256sum', ['--', ...files.sort()], { cwd: dir });
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), out);
}

function makeMedia(step, mediaDir) {
  // The package: a real Debian binary package, as the vendor's stick would carry it.
  const debs = path.join(mediaDir, 'debs');
  const pkgRoot = fs.mkdtempSync(path.join(mediaDir, 'build-'));
  fs.mkdirSync(path.join(pkgRoot, 'DEBIAN'));
  fs.chmodSync(path.join(pkgRoot, 'DEBIAN'), 0o755); // dpkg-deb wants 0755..0775, whatever the umask
  fs.mkdirSync(path.join(pkgRoot, 'usr/share/doc', PACKAGE.name), { recursive: true });
  fs.writeFileSync(
    path.join(pkgRoot, 'DEBIAN/control'),
    `Package: ${PACKAGE.name}\nVersion: ${PACKAGE.version}\nArchitecture: all\nMaintainer: Airlock demo <demo@example.invalid>\n` +
      `Description: Airlock demo package for the lab-gpu-node playbook\n Installed by npm run demo's plan and apply; it holds one README.\n`,
  );
  fs.writeFileSync(path.join(pkgRoot, 'usr/share/doc', PACKAGE.name, 'README'), `${PACKAGE.name} ${PACKAGE.version}: made by npm run demo\n`);
  fs.mkdirSync(debs);
  const deb = path.join(debs, `${PACKAGE.name}_${PACKAGE.version}_all.deb`);
  tool(step, 'dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', pkgRoot, deb]);
  fs.rmSync(pkgRoot, { recursive: true, force: true });
  writeSums(step, debs);

  // The model: a tiny "weights" file and a config, the shape the inference simulator serves.
  const model = path.join(mediaDir, 'models', `${MODEL.name}-${MODEL.version}`);
  fs.mkdirSync(model, { recursive: true });
  fs.writeFileSync(path.join(model, 'model.safetensors'), crypto.randomBytes(1024 * 1024 + 17));
  fs.writeFileSync(path.join(model, 'config.json'), '{"max_position_embeddings":8192}\n');
  writeSums(step, model);
  return { debs, model };
}

/** The site values lab-gpu-node needs for this lab: egress allowed in the hosts' half of the subnet, the decoy blocked. */
function siteValues(theLab) {
  const base = theLab.subnet.replace(/\.0\/24$/, '');
  const inside = theLab.hosts[1] ?? theLab.hosts[0];
  return {
    egress: {
      allowCidrs: [`${base}.0/25`],
      probes: { outside: [{ host: theLab.decoy.address, port: theLab.decoy.port }], inside: [{ host: inside.address, port: inside.port }] },
    },
  };
}

// --- up ----------------------------------------------------------------------------------------

const STEPS = [
  'check the tools',
  'make the removable media',
  'initialise the demo installation',
  'start the lab',
  'enrol the hosts',
  'scan the hosts',
  'import the media into the store',
];

async function up() {
  const { labIdFor, labUp } = await labApi();
  const labId = labIdFor(opts.id);
  ensureStateDir();
  const existing = readState(labId);
  if (existing) return await again(existing);

  const state = {
    format: 'airlock.demo/v1',
    labId,
    requestedId: opts.id,
    pid: process.pid,
    createdAt: new Date().toISOString(),
    complete: false,
    lab: false,
    dataDir: null,
    mediaDir: null,
    password: `demo-${crypto.randomBytes(9).toString('base64url')}`,
    consolePid: null,
  };
  if (!claimState(state)) return await again(readState(labId));

  let step = STEPS[0];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    note(`\ndemo: interrupted during "${step}"; removing what it made…`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const begin = (i) => {
    if (interrupted) throw new StepError(step, 'interrupted');
    step = STEPS[i];
    note(`[${i + 1}/${STEPS.length}] ${step}…`);
  };
  try {
    begin(0);
    for (const cmd of ['dpkg-deb', 'sha256sum']) if (!which(cmd)) throw new StepError(step, `${cmd} is not on PATH (Debian: apt-get install ${cmd === 'dpkg-deb' ? 'dpkg' : 'coreutils'})`);
    const built = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { encoding: 'utf8' });
    if (built.status !== 0) throw new StepError(step, `the build failed: ${(built.stderr || built.stdout || String(built.error)).trim()}`);

    begin(1);
    state.mediaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-demo-media-'));
    writeState(state);
    const media = makeMedia(step, state.mediaDir);

    begin(2);
    state.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-demo-data-'));
    writeState(state);
    const init = airlock(step, state, ['init', '--admin', ADMIN, '--json']);
    if (init.code !== 0) throw new StepError(step, `airlock init exited ${init.code}: ${init.stderr.trim()}`);
    const publicKey = JSON.parse(init.stdout).identity?.publicKey;
    if (!publicKey) throw new StepError(step, 'airlock init printed no SSH public key');

    begin(3);
    state.lab = true; // from here on, down takes the lab down (labDown is idempotent)
    writeState(state);
    let theLab;
    try {
      theLab = await labUp({ id: opts.id, hosts: opts.hosts, authorize: [publicKey], persistent: true });
    } catch (e) {
      const exists = /already exists/.test(e.message);
      state.lab = !exists; // someone else's lab of that name: never ours to take down
      writeState(state);
      throw new StepError(
        step,
        exists
          ? `a lab "${labId}" is already up and npm run demo did not make it (npm run lab -- up?). Take it down with npm run lab -- down --id ${opts.id}, or run the demo beside it: npm run demo -- --id another`
          : e.message,
      );
    }
    if (theLab.notice) note(`*** ${theLab.notice}`);
    if (!theLab.privateSystem) note('*** the lab hosts share this machine\'s files (no mount namespaces): do not apply playbooks on them.');

    begin(4);
    for (const h of theLab.hosts) {
      // The fingerprint comes from the lab itself (its host key, as ssh-keygen -lf prints it): pinned, not trusted on first use.
      airlockOk(step, state, ['hosts', 'add', h.name, '--address', h.address, '--port', String(h.port), '--user', h.user, '--fingerprint', h.fingerprint]);
    }

    begin(5);
    const scan = airlock(step, state, ['hosts', 'scan', '--json']);
    if (scan.code !== 0) throw new StepError(step, `airlock hosts scan exited ${scan.code}: ${(scan.stderr || scan.stdout).trim()}`);

    begin(6);
    airlockOk(step, state, ['store', 'import-debs', media.debs]);
    airlockOk(step, state, ['store', 'import-model', media.model, '--name', MODEL.name, '--version', MODEL.version]);
    if (interrupted) throw new StepError(step, 'interrupted');

    const site = siteValues(theLab);
    fs.writeFileSync(path.join(state.mediaDir, 'site.json'), JSON.stringify(site, null, 2) + '\n');
    Object.assign(state, {
      complete: true,
      pid: null,
      hosts: theLab.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, fingerprint: h.fingerprint, gpu: h.gpuProfile })),
      subnet: theLab.subnet,
      mode: theLab.mode,
      site,
    });
    writeState(state);
    await writeEnvFile(state);
  } catch (e) {
    const failed = e instanceof StepError ? e.step : step;
    note(`demo: step "${failed}" failed: ${e.message}`);
    try {
      const removed = await removeDemo(state);
      note(`demo: removed what it had made${removed.length ? ` (${removed.join(', ')})` : ''}.`);
    } catch (cleanup) {
      note(`demo: could not remove everything it made (${cleanup.message}): run npm run demo -- down${opts.id === 'demo' ? '' : ` --id ${opts.id}`}`);
    }
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return await present(state, false);
}

/** `up` while a demo is recorded: reuse it when it is whole, say so when it is busy, clear it when it is broken. */
async function again(state) {
  if (!state) throw new Error('the demo state vanished while reading it: run npm run demo again');
  const { labStatus } = await labApi();
  if (state.removing) {
    note(`demo: the demo of lab "${state.labId}" is being removed (npm run demo -- down) right now; run npm run demo again in a moment.`);
    return 1;
  }
  if (!state.complete) {
    if (alive(state.pid)) {
      note(`demo: another npm run demo (pid ${state.pid}) is setting up lab "${state.labId}" right now; wait for it, or stop it (Ctrl+C there).`);
      return 1;
    }
    note('demo: an earlier npm run demo stopped half-way; removing what it left before starting again…');
    await removeDemo(state);
    return await up();
  }
  const theLab = await labStatus(opts.id);
  if (!theLab || !fs.existsSync(state.dataDir) || !fs.existsSync(state.mediaDir)) {
    note(`demo: the demo recorded in ${stateFile(state.labId)} is incomplete now (its ${!theLab ? 'lab' : 'data directory or media'} is gone); removing the rest and starting again…`);
    await removeDemo(state);
    return await up();
  }
  if (alive(state.consolePid)) {
    note(`demo: the demo is already up, and its console is open (pid ${state.consolePid}). Use that window; or stop it (Ctrl+C there) and run npm run demo again for a new one-time link.`);
    if (opts.json) say(JSON.stringify(summary(state, null, { reused: true, consolePid: state.consolePid })));
    return 0;
  }
  note(`demo: the demo is already up (made ${state.createdAt}); reusing it.`);
  return await present(state, true);
}

async function writeEnvFile(state) {
  // Quoted for the shell by the one quoting function there is (electron/core/ssh/quote.ts).
  const { tsImport } = await import('tsx/esm/api');
  const { shellQuote: q } = await tsImport('../electron/core/ssh/quote.ts', import.meta.url);
  fs.writeFileSync(
    envFile(state.labId),
    `# npm run demo: the CLI on the demo installation (source this file). Removed by npm run demo -- down.\n` +
      `export AIRLOCK_DATA=${q(state.dataDir)} AIRLOCK_MEDIA_ROOTS=${q(state.mediaDir)} AIRLOCK_TOTP_POLICY=off\n` +
      `export AIRLOCK_USER=${q(ADMIN)} AIRLOCK_PASSWORD=${q(state.password)}\n`,
    { mode: 0o600 },
  );
}

function summary(state, url, extra = {}) {
  return {
    url,
    dataDir: state.dataDir,
    mediaDir: state.mediaDir,
    admin: ADMIN,
    password: state.password,
    totpPolicy: 'off',
    lab: state.labId,
    hosts: state.hosts,
    playbook: PLAYBOOK,
    site: state.site,
    siteFile: path.join(state.mediaDir, 'site.json'),
    envFile: envFile(state.labId),
    ...extra,
  };
}

function guide(state, how) {
  const downCmd = `npm run demo -- down${opts.id === 'demo' ? '' : ` --id ${opts.id}`}`;
  const h = state.hosts.map((x) => `${x.name} (${x.address}, gpu ${x.gpu})`).join(', ');
  return [
    '',
    `Airlock demo is ready: lab "${state.labId}" with ${state.hosts.length} host(s) enrolled and scanned: ${h}.`,
    `  store: ${PACKAGE.name} ${PACKAGE.version} (a .deb built with dpkg-deb) and model ${MODEL.name} version ${MODEL.version}, imported from ${state.mediaDir}`,
    `  data:  ${state.dataDir}`,
    '',
    `Sign in as  ${ADMIN}  with the password  ${state.password}`,
    '  TOTP is off for this demo (AIRLOCK_TOTP_POLICY=off, the lab/test setting): a real installation makes administrators enrol it.',
    '',
    how,
    '',
    'Then:',
    `  1. Provision: choose the playbook ${PLAYBOOK}, tick ${state.hosts[0].name}, and paste these parameter overrides`,
    `     (the lab's subnet and its decoy "outside world"; also in ${path.join(state.mediaDir, 'site.json')}):`,
    `       ${JSON.stringify(state.site)}`,
    '  2. Plan: what would change on the host, with diffs; nothing changes yet.',
    '  3. Apply (it may ask you to confirm your password); watch each step (GPU check, package, model, inference service, egress lockdown, sshd).',
    `  4. Attestations: the signed record of ${state.hosts[0].name}; export it and check it offline with  airlock attest verify FILE`,
    '',
    `The CLI on this demo:  . ${envFile(state.labId)}  then e.g.  npx airlock hosts list`,
    `Break things:          npm run lab -- cut ${state.hosts[0].name}${opts.id === 'demo' ? '' : ` --id ${opts.id}`}   (restore, kill-sshd, rekey: test/lab/README.md)`,
    `Remove it all:         ${downCmd}`,
  ].join('\n');
}

/** The console on a ready demo, or (--no-serve) just what to do. */
async function present(state, reused) {
  const downCmd = `npm run demo -- down${opts.id === 'demo' ? '' : ` --id ${opts.id}`}`;
  if (!opts.serve) {
    if (opts.json) say(JSON.stringify(summary(state, null, { reused })));
    else say(guide(state, 'Open the console:  npm run demo   (or: . the env file below, then npm start)'));
    return 0;
  }
  const env = demoEnv(state);
  const { tsImport } = await import('tsx/esm/api');
  const { electronBinaryPath } = await tsImport('../electron/main/availability.ts', import.meta.url);
  const electron = opts.forceServe || opts.json ? null : electronBinaryPath();
  const display = Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
  let child;
  if (electron && display) {
    child = spawn(electron, [path.join(root, 'dist', 'electron', 'main.mjs')], { stdio: ['ignore', 'ignore', 'inherit'], env });
    state.consolePid = child.pid;
    writeState(state);
    say(guide(state, `The console is open in Electron (${electron}). Close its window or press Ctrl+C to stop it; the lab stays.`));
  } else {
    child = spawn(process.execPath, [AIRLOCK, 'serve', '--json', '--data', state.dataDir], { stdio: ['ignore', 'pipe', 'inherit'], env });
    state.consolePid = child.pid;
    writeState(state);
    const line = await new Promise((resolve) => {
      const rl = readline.createInterface({ input: child.stdout });
      rl.once('line', (l) => resolve(l));
      child.once('exit', () => resolve(null));
    });
    const url = line ? JSON.parse(line).url : null;
    if (!url) {
      note(`demo: the console (airlock serve) did not start; the demo itself is up: run npm run demo again, or ${downCmd}`);
      return 1;
    }
    if (opts.json) say(JSON.stringify(summary(state, url, { reused })));
    else
      say(
        guide(
          state,
          `Open this one-time URL in a browser on this machine (it works once, within 5 minutes):\n\n  ${url}\n\n` +
            `Ctrl+C stops the console and leaves the lab and the installation; npm run demo opens it again.`,
        ),
      );
  }
  const stop = () => child.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c ?? 0)));
  // The recorded consolePid is left as it is: a dead pid is no console (and `down` may be removing the state right now).
  const now = readState(state.labId);
  if (now && !now.removing) note(`\nThe console stopped. The demo is still up: npm run demo opens it again; ${downCmd} removes it.`);
  else note('\nThe console stopped: the demo was removed (npm run demo -- down).');
  return code === 0 || code === 130 || code === 143 ? 0 : code;
}

// --- down --------------------------------------------------------------------------------------

/** Remove what `state` records as made by the demo; returns what was removed, in words. */
async function removeDemo(state) {
  const removed = [];
  if (fs.existsSync(stateFile(state.labId))) writeState({ ...state, removing: true }); // the console's demo process reads it
  if (alive(state.consolePid)) {
    try {
      process.kill(state.consolePid, 'SIGTERM');
    } catch {
      /* gone meanwhile */
    }
    for (let i = 0; i < 50 && alive(state.consolePid); i++) await new Promise((r) => setTimeout(r, 100));
    removed.push('the console');
  }
  if (state.lab) {
    const { labDown } = await labApi();
    await labDown({ id: state.requestedId });
    removed.push(`lab ${state.labId}`);
  }
  // Only directories this demo made itself (mkdtemp names), never a path someone edited in.
  for (const [what, dir, prefix] of [
    ['the data directory', state.dataDir, 'airlock-demo-data-'],
    ['the media', state.mediaDir, 'airlock-demo-media-'],
  ]) {
    if (!dir) continue;
    if (!path.isAbsolute(dir) || !path.basename(dir).startsWith(prefix)) {
      throw new Error(`the state names ${what} ${dir}, not a directory the demo makes: not removing it`);
    }
    if (fs.existsSync(dir)) {
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(`${what} ${dir}`);
    }
  }
  fs.rmSync(envFile(state.labId), { force: true });
  fs.rmSync(stateFile(state.labId), { force: true });
  return removed;
}

async function down() {
  const { labIdFor, labStatus } = await labApi();
  const labId = labIdFor(opts.id);
  const state = readState(labId);
  if (!state) {
    const other = await labStatus(opts.id);
    const msg = `No demo is up${opts.id === 'demo' ? '' : ` with id ${opts.id}`}: nothing to remove.` + (other ? ` (A lab "${labId}" is up, but npm run demo did not make it: npm run lab -- down --id ${opts.id} removes it.)` : '');
    if (opts.json) say(JSON.stringify({ removed: [], message: msg }));
    else say(msg);
    return 0;
  }
  if (!state.complete && alive(state.pid) && state.pid !== process.pid) {
    note(`demo: npm run demo (pid ${state.pid}) is still setting this demo up; removing it anyway (that run will fail).`);
    try {
      process.kill(state.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const removed = await removeDemo(state);
  if (opts.json) say(JSON.stringify({ removed }));
  else say(`Demo removed: ${removed.join('; ') || 'nothing was left'}.`);
  return 0;
}

async function status() {
  const { labIdFor, labStatus } = await labApi();
  const state = readState(labIdFor(opts.id));
  const theLab = state ? await labStatus(opts.id) : null;
  const up = Boolean(state?.complete && theLab);
  if (opts.json) say(JSON.stringify(state ? { up, ...summary(state, null, { consoleRunning: alive(state.consolePid) }) } : { up: false }));
  else if (!state) say('No demo is up. Start one: npm run demo');
  else if (!up) say(`A demo is recorded but not whole (${state.complete ? 'its lab is gone' : 'it did not finish'}): npm run demo -- down removes it.`);
  else say(`The demo is up: lab ${state.labId}, data ${state.dataDir}, media ${state.mediaDir}, console ${alive(state.consolePid) ? `running (pid ${state.consolePid})` : 'not running (npm run demo opens it)'}.`);
  return 0;
}

// --- main --------------------------------------------------------------------------------------

async function main(argv) {
  opts = parse(argv);
  switch (opts.cmd) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'down':
      return await down();
    case 'status':
      return await status();
    default:
      // What `npm start` and `npm test` set up when missing (scripts/setup.mjs): the npm
      // dependencies (the lab's API is loaded through tsx) and the lab's Debian packages.
      ensureNpmDeps();
      ensureDebian(['openssh-server', 'openssh-client', 'nftables', 'iproute2']);
      return await up();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof UsageError) {
      process.stderr.write(`demo: ${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);

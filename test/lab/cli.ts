/**
 * `npm run lab -- <command>`: start, inspect, break and stop the lab (see README.md).
 * Exit codes: 0 done, 1 failed, 2 usage.
 */
import { readFileSync } from 'node:fs';
import {
  DEFAULT_LAB_ID,
  authorizeKey,
  cutLink,
  killSshd,
  labDown,
  labList,
  labReclaim,
  labStatus,
  labUp,
  replaceHostKey,
  restoreLink,
  runOnHost,
  slowLink,
  startSshd,
  type Lab,
} from './lab';

const USAGE = `usage: npm run lab -- <command> [options]
       npm run -s lab -- <command> --json     (-s: without npm's "> airlock lab" lines, so stdout is JSON only)

  up --hosts N [--authorize PUBKEY_FILE]... [--gpu a100,h100,t4,none,absent,hostile] [--encrypted-models] [--registry] [--replace] [--json] [--id ID]
                                      --encrypted-models: each host gets an ext4 (encrypt) image mounted at /srv/.models-fs
                                      --registry: one more host, "registry", running Debian's docker-registry on :5000
  down [--id ID | --run RUN | --all]  --run: the labs test run RUN started; --all: every lab on this machine
  reclaim [--json]                    take down labs whose recorded owner process is dead (a crashed test run's)
  status [--json] [--id ID | --all]
  cut HOST | restore HOST            cut / restore a host's link (restore also undoes slow)
  slow HOST --delay MS [--jitter MS] [--loss PCT]
  kill-sshd HOST [--sessions] | start-sshd HOST
  rekey HOST                          new host key, sshd restarted; prints the new fingerprint
  authorize PUBKEY_FILE               add the key(s) to every host's authorized_keys
  exec HOST -- CMD [ARG...]           run a command on a host (its namespaces), as a test would

  --id defaults to "${DEFAULT_LAB_ID}". AIRLOCK_LAB_MODE=loopback forces the 127.x fallback.
  With --json, stdout carries only the JSON document; notices and errors go to stderr.
  Inside a test run (AIRLOCK_LAB_RUN=RUN, set by npm test) every ID means the lab RUN-ID.
`;

class UsageError extends Error {}

interface Parsed {
  cmd: string;
  positional: string[];
  rest: string[];
  flags: Map<string, string[]>;
}

const VALUE_FLAGS = new Set(['--hosts', '--authorize', '--id', '--run', '--gpu', '--delay', '--jitter', '--loss']);
const BOOL_FLAGS = new Set(['--json', '--all', '--replace', '--sessions', '--encrypted-models', '--registry', '--help', '-h']);

function parse(argv: string[]): Parsed {
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  let rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    const [name, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (VALUE_FLAGS.has(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), v]);
    } else if (BOOL_FLAGS.has(name)) {
      flags.set(name, ['true']);
    } else if (a.startsWith('-')) {
      throw new UsageError(`unknown option ${a}`);
    } else positional.push(a);
  }
  const [cmd = '', ...pos] = positional;
  return { cmd, positional: pos, rest, flags };
}

const one = (p: Parsed, f: string): string | undefined => p.flags.get(f)?.at(-1);
const has = (p: Parsed, f: string): boolean => p.flags.has(f);

function hostArg(p: Parsed): string {
  const h = p.positional[0];
  if (!h || p.positional.length > 1) throw new UsageError(`${p.cmd} needs exactly one HOST`);
  return h;
}

function numberFlag(p: Parsed, f: string, required: boolean): number | undefined {
  const v = one(p, f);
  if (v === undefined) {
    if (required) throw new UsageError(`${f} is required`);
    return undefined;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${f} must be a non-negative number`);
  return n;
}

function readKeyFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  return text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
}

function jsonView(lab: Lab): unknown {
  return {
    id: lab.id,
    mode: lab.mode,
    subnet: lab.subnet,
    dir: lab.dir,
    hosts: lab.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      fingerprint: h.fingerprint,
      gpu: h.gpuProfile,
      ...(h.sshdRunning === undefined ? {} : { sshdRunning: h.sshdRunning, linkCut: h.linkCut }),
      ...(h.models ? { models: h.models } : {}),
    })),
    decoy: lab.decoy,
    privateSystem: lab.privateSystem,
    ...(lab.registry ? { registry: { url: lab.registry.url, host: lab.registry.host, storage: lab.registry.storage, auth: lab.registry.auth ? { realm: lab.registry.auth.realm, service: lab.registry.auth.service, issuer: lab.registry.auth.issuer } : null } } : {}),
  };
}

function human(lab: Lab): string {
  const lines = [
    `lab ${lab.id}: ${lab.hosts.length} host(s), mode ${lab.mode}, subnet ${lab.subnet}`,
    ...(lab.notice ? [`  ${lab.notice}`] : []),
    `  state: ${lab.dir}`,
  ];
  const rows = lab.hosts.map((h) => {
    const status = h.sshdRunning === undefined ? '' : `  ${h.linkCut ? 'link CUT' : h.sshdRunning ? 'up' : 'sshd DOWN'}`;
    const models = !h.models ? '' : h.models.mounted ? `  models=${h.models.mountpoint} (${h.models.device})` : `  models NOT MOUNTED: ${h.models.error}`;
    return `  ${h.name.padEnd(8)} ${`${h.user}@${h.address}:${h.port}`.padEnd(26)} ${h.fingerprint}  gpu=${h.gpuProfile}${status}${models}`;
  });
  lines.push(...rows, `  decoy    ${lab.decoy.address}:${lab.decoy.port}  (the "outside world" for lockdown tests)`);
  if (lab.registry) lines.push(`  registry ${lab.registry.url}/v2/  (docker-registry, ${lab.registry.auth ? 'token auth' : 'no auth'}; storage ${lab.registry.storage})`);
  const h1 = lab.hosts[0];
  if (h1) lines.push(`  try: ssh -p ${h1.port} ${h1.user}@${h1.address} nvidia-smi   (key from --authorize)`);
  return lines.join('\n');
}

async function requireLab(id: string): Promise<Lab> {
  const lab = await labStatus(id);
  if (!lab) throw new Error(`no lab "${id}" is up (start one: npm run lab -- up --hosts 3 --id ${id})`);
  return lab;
}

async function main(argv: string[]): Promise<number> {
  const p = parse(argv);
  if (has(p, '--help') || has(p, '-h') || p.cmd === 'help' || p.cmd === '') {
    process.stdout.write(USAGE);
    return p.cmd === '' && !has(p, '--help') && !has(p, '-h') ? 2 : 0;
  }
  const id = one(p, '--id') ?? DEFAULT_LAB_ID;
  const json = has(p, '--json');
  switch (p.cmd) {
    case 'up': {
      const hosts = numberFlag(p, '--hosts', true)!;
      const authorize = (p.flags.get('--authorize') ?? []).flatMap(readKeyFile);
      const gpu = one(p, '--gpu')?.split(',').map((s) => s.trim()).filter(Boolean);
      const t0 = Date.now();
      const lab = await labUp({ id, hosts, authorize, gpuProfiles: gpu, replace: has(p, '--replace'), persistent: true, ...(has(p, '--encrypted-models') ? { encryptedModels: true as const } : {}), ...(has(p, '--registry') ? { registry: true } : {}) });
      if (lab.notice) process.stderr.write(`\n*** ${lab.notice}\n\n`);
      if (json) process.stdout.write(JSON.stringify(jsonView(lab), null, 2) + '\n');
      else process.stdout.write(`${human(lab)}\n  started in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      return 0;
    }
    case 'down': {
      const run = one(p, '--run');
      if ([has(p, '--all'), one(p, '--id') !== undefined, run !== undefined].filter(Boolean).length > 1) {
        throw new UsageError('down takes one of --id, --run and --all');
      }
      await labDown(has(p, '--all') ? { all: true } : run !== undefined ? { run } : { id });
      if (!json) process.stdout.write(has(p, '--all') ? 'all labs down\n' : run !== undefined ? `labs of run ${run} down\n` : `lab ${id} down\n`);
      return 0;
    }
    case 'reclaim': {
      const ids = await labReclaim();
      if (json) process.stdout.write(JSON.stringify({ reclaimed: ids }) + '\n');
      else process.stdout.write(ids.length ? `reclaimed stale lab(s): ${ids.join(', ')}\n` : 'no stale labs\n');
      return 0;
    }
    case 'status': {
      if (has(p, '--all')) {
        const labs = await labList();
        if (json) process.stdout.write(JSON.stringify(labs.map(jsonView), null, 2) + '\n');
        else process.stdout.write(labs.length ? labs.map(human).join('\n\n') + '\n' : 'no labs\n');
        return 0;
      }
      const lab = await labStatus(id);
      if (json) {
        process.stdout.write(JSON.stringify(lab ? jsonView(lab) : null, null, 2) + '\n');
        return lab ? 0 : 1;
      }
      if (!lab) {
        const others = (await labList()).map((l) => l.id);
        process.stdout.write(`no lab "${id}"${others.length ? ` (labs up: ${others.join(', ')})` : ''}\n`);
        return 1;
      }
      process.stdout.write(human(lab) + '\n');
      return 0;
    }
    case 'cut':
      await cutLink(await requireLab(id), hostArg(p));
      return 0;
    case 'restore':
      await restoreLink(await requireLab(id), hostArg(p));
      return 0;
    case 'slow': {
      const host = hostArg(p);
      await slowLink(await requireLab(id), host, {
        delayMs: numberFlag(p, '--delay', true)!,
        jitterMs: numberFlag(p, '--jitter', false),
        lossPercent: numberFlag(p, '--loss', false),
      });
      return 0;
    }
    case 'kill-sshd':
      await killSshd(await requireLab(id), hostArg(p), { sessions: has(p, '--sessions') });
      return 0;
    case 'start-sshd':
      await startSshd(await requireLab(id), hostArg(p));
      return 0;
    case 'rekey': {
      const fp = await replaceHostKey(await requireLab(id), hostArg(p));
      process.stdout.write(json ? JSON.stringify({ fingerprint: fp }) + '\n' : `${fp}\n`);
      return 0;
    }
    case 'authorize': {
      const file = p.positional[0];
      if (!file || p.positional.length > 1) throw new UsageError('authorize needs exactly one PUBKEY_FILE');
      const lab = await requireLab(id);
      const lines = readKeyFile(file);
      if (lines.length === 0) throw new Error(`${file} holds no public key`);
      for (const line of lines) await authorizeKey(lab, line);
      return 0;
    }
    case 'exec': {
      if (p.rest.length === 0) throw new UsageError('exec needs: HOST -- CMD [ARG...]');
      const r = await runOnHost(await requireLab(id), hostArg(p), p.rest, { timeoutMs: 10 * 60_000 });
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      return r.code;
    }
    default:
      throw new UsageError(`unknown command "${p.cmd}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`lab: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`lab: ${(err instanceof Error ? err.message : String(err)).replace(/^lab: /, '')}\n`);
      process.exitCode = 1;
    }
  },
);

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ChannelName, Out } from '../../shared/contract/index';
import type { Result } from '../../shared/domain/errors';
import { createCore } from '../core/app';
import { sanitizeHostText } from '../core/ssh/sanitize';
import type { ClientContext, Core } from '../core/types';
import { startServe } from './serve';

/** Exit codes, documented in the README and `airlock help`. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Interactive prompts; null when stdin is not a terminal. */
  prompt: ((question: string, opts?: { secret?: boolean }) => Promise<string>) | null;
  rendererDir: string;
  version: string;
}

class UsageError extends Error {}

const HELP = `airlock <area> <verb> [options]

  init --admin NAME                      first run: create the first administrator
  serve [--port N] [--open]              browser shell on 127.0.0.1 (prints a one-time URL)
  hosts list                             enrolled hosts, status and GPUs
  hosts probe ADDRESS [--port P]         show a host key's SHA256 fingerprint
  hosts add NAME --address A [--port P] [--user U] [--fingerprint SHA256:...]
  hosts confirm NAME [--fingerprint SHA256:...]
  hosts remove NAME
  hosts scan [NAME...] [--timeout-ms N]  inventory scan (all hosts when none named)
  hosts import-known-hosts FILE [--user U]
  hosts import-ssh-config FILE
  identity show                          Airlock's SSH public key (authorized_keys format)
  users list | users create NAME --role R [--role R...]
  audit list [--limit N] | audit verify

Options:
  --data DIR           data directory (default: ${defaultDataDir(process.env)})
  --json               machine-readable output
  --user NAME          acting Airlock user (or --as NAME, or AIRLOCK_USER); on \`hosts add\` and
                       \`hosts import-known-hosts\`, --user is the SSH login user, as in OpenSSH
  --password-file F    password file (or AIRLOCK_PASSWORD); prompted on a terminal otherwise
  --new-password-file F  the new user's password for init/users create (or AIRLOCK_NEW_PASSWORD)

Exit codes: 0 done, 1 refused or failed (or verification failed), 2 usage error.
`;

const OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean', default: false },
  user: { type: 'string' },
  as: { type: 'string' },
  'password-file': { type: 'string' },
  'new-password-file': { type: 'string' },
  admin: { type: 'string' },
  address: { type: 'string' },
  port: { type: 'string' },
  fingerprint: { type: 'string' },
  role: { type: 'string', multiple: true },
  limit: { type: 'string' },
  'timeout-ms': { type: 'string' },
  open: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies ParseArgsConfig['options'];

export function defaultDataDir(env: NodeJS.ProcessEnv): string {
  if (env.AIRLOCK_DATA) return env.AIRLOCK_DATA;
  // The same folder Electron's app.getPath('userData') gives for productName "Airlock".
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support', 'Airlock');
  if (process.platform === 'win32') return path.join(env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming'), 'Airlock');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'Airlock');
}

/** Text from hosts (and from the trail) never reaches the operator's terminal with its escape sequences. */
const clean = (s: unknown): string => sanitizeHostText(s ?? '', 4096);

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    io.stderr(`${(e as Error).message}\n\n${HELP}`);
    return EXIT.usage;
  }
  const { values: o, positionals } = parsed;
  const [area, verb, ...rest] = positionals;
  if (o.help || !area || area === 'help') {
    io.stdout(HELP);
    return o.help || area === 'help' ? EXIT.ok : EXIT.usage;
  }
  const json = o.json;
  const out = (human: string, value: unknown) => io.stdout(json ? JSON.stringify(value, null, 2) + '\n' : human);
  const fail = (r: Extract<Result<unknown>, { ok: false }>) => {
    if (json) io.stdout(JSON.stringify({ ok: false, error: r.error }, null, 2) + '\n');
    else io.stderr(`airlock: ${r.error.code}: ${clean(r.error.message)}\n`);
    return EXIT.failed;
  };

  let core: Core | null = null;
  try {
    const dataDir = path.resolve(o.data ?? defaultDataDir(io.env));
    const int = (name: string, v: string | undefined): number | undefined => {
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number`);
      return Number(v);
    };

    if (area === 'serve') {
      if (verb) throw new UsageError('serve takes no verb');
      core = await createCore({ dataDir, shell: 'browser', sshAgent: io.env.SSH_AUTH_SOCK ?? null, version: io.version });
      const handle = await startServe(core, { port: int('port', o.port) ?? 0, rendererDir: io.rendererDir });
      if (json) io.stdout(JSON.stringify({ url: handle.url, port: handle.port, dataDir }) + '\n');
      else io.stdout(`Airlock is serving ${dataDir}\nOpen this one-time URL (it works once): ${handle.url}\nPress Ctrl+C to stop.\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await handle.close();
      return EXIT.ok;
    }

    core = await createCore({ dataDir, shell: 'cli', sshAgent: io.env.SSH_AUTH_SOCK ?? null, version: io.version });
    const client = core.newClient({ shell: 'cli', source: `pid ${process.pid}` });
    const call = <C extends ChannelName>(channel: C, input: unknown) => core!.dispatch(client, channel, input) as Promise<Result<Out<C>>>;

    if (area === 'init') {
      if (!o.admin) throw new UsageError('init needs --admin NAME');
      const password = await newPassword(o, io);
      const r = await call('session:setup', { admin: o.admin, password });
      if (!r.ok) return fail(r);
      const id = await call('identity:show', {});
      out(
        `Created administrator ${r.value.name}, the vault and Airlock's SSH identity.\n` +
          (id.ok ? `Put this public key in each host's ~/.ssh/authorized_keys:\n${id.value.publicKey}\n` : ''),
        { user: r.value, identity: id.ok ? id.value : null },
      );
      return EXIT.ok;
    }

    const key = `${area} ${verb ?? ''}`.trim();
    if (!COMMANDS.has(key)) throw new UsageError(`unknown command "${key}"`);
    const actor = o.as ?? (SSH_USER_COMMANDS.has(key) ? undefined : o.user) ?? io.env.AIRLOCK_USER;
    const signedIn = await signIn(call, actor, o['password-file'], io);
    if (signedIn !== true) return fail(signedIn);

    switch (key) {
      case 'hosts list': {
        const r = await call('hosts:list', {});
        if (!r.ok) return fail(r);
        out(formatHosts(r.value), r.value);
        return EXIT.ok;
      }
      case 'hosts probe': {
        const address = rest[0] ?? o.address;
        if (!address) throw new UsageError('hosts probe needs an ADDRESS');
        const r = await call('hosts:probe', { address, port: int('port', o.port) ?? 22 });
        if (!r.ok) return fail(r);
        out(`${r.value.address}:${r.value.port} ${r.value.keyType} ${r.value.fingerprint}\n`, r.value);
        return EXIT.ok;
      }
      case 'hosts add':
      case 'hosts confirm': {
        const name = rest[0];
        if (!name) throw new UsageError(`${key} needs a NAME`);
        let address = o.address;
        let port = int('port', o.port) ?? 22;
        if (verb === 'confirm') {
          const list = await call('hosts:list', {});
          if (!list.ok) return fail(list);
          const h = list.value.find((x) => x.name === name);
          if (!h) return fail({ ok: false, error: { code: 'NOT_FOUND', message: `No host named "${name}".` } });
          address = h.address;
          port = h.port;
        } else if (!address) throw new UsageError('hosts add needs --address A');
        let fingerprint = o.fingerprint;
        if (!fingerprint) {
          const probe = await call('hosts:probe', { address, port });
          if (!probe.ok) return fail(probe);
          const fp = probe.value.fingerprint;
          if (json || !io.prompt) {
            // A script must pin what a person compared, never whatever the network presented.
            return fail({
              ok: false,
              error: {
                code: 'HOST_KEY_UNCONFIRMED',
                message: `The host at ${address}:${port} presents ${probe.value.keyType} ${fp}. Compare it with the host's key and re-run with --fingerprint ${fp}.`,
              },
            });
          }
          io.stderr(`The host at ${address}:${port} presents this ${probe.value.keyType} key:\n  ${fp}\n`);
          if (probe.value.pinned && probe.value.pinned.fingerprint !== fp) {
            io.stderr(`WARNING: ${address}:${port} is pinned as "${probe.value.pinned.host}" with ${probe.value.pinned.fingerprint}.\n`);
          }
          const answer = (await io.prompt('Is this the host key you expect? Type "yes" to pin it: ')).trim();
          if (answer !== 'yes') {
            io.stderr('Not pinned; nothing was changed.\n');
            return EXIT.failed;
          }
          fingerprint = fp;
        }
        const r =
          verb === 'confirm'
            ? await call('hosts:confirm', { name, fingerprint })
            : await call('hosts:add', { name, address, port, fingerprint, ...sshUserOpt(o) });
        if (!r.ok) return fail(r);
        out(`Pinned ${r.value.name} (${r.value.address}:${r.value.port}) ${r.value.fingerprint}\n`, r.value);
        return EXIT.ok;
      }
      case 'hosts remove': {
        if (!rest[0]) throw new UsageError('hosts remove needs a NAME');
        const r = await call('hosts:remove', { name: rest[0] });
        if (!r.ok) return fail(r);
        out(`Removed ${rest[0]}\n`, { removed: rest[0] });
        return EXIT.ok;
      }
      case 'hosts scan': {
        const r = await call('hosts:scan', { names: rest.length ? rest : undefined, timeoutMs: int('timeout-ms', o['timeout-ms']) });
        if (!r.ok) return fail(r);
        const lines = r.value.map((s) =>
          s.ok
            ? `${s.name}\treachable\t${clean(s.inventory?.os)}\t${s.inventory?.gpus.length ?? 0} GPU(s)${s.inventory?.gpus[0] ? ' ' + clean(s.inventory.gpus[0].name) : ''}\t${s.ms} ms`
            : `${s.name}\t${s.status}\t${s.error?.code}: ${clean(s.error?.message)}`,
        );
        out(lines.join('\n') + '\n', r.value);
        return r.value.every((s) => s.ok) ? EXIT.ok : EXIT.failed;
      }
      case 'hosts import-known-hosts':
      case 'hosts import-ssh-config': {
        const file = rest[0];
        if (!file) throw new UsageError(`${key} needs a FILE`);
        const text = fs.readFileSync(file, 'utf8');
        const r =
          verb === 'import-known-hosts'
            ? await call('hosts:importKnownHosts', { text, ...sshUserOpt(o) })
            : await call('hosts:importSshConfig', { text });
        if (!r.ok) return fail(r);
        out(
          r.value.added.map((a) => `added\t${a.name}\t${a.address}:${a.port}\t${a.fingerprint ?? 'unconfirmed: run `airlock hosts confirm ' + a.name + '`'}`).join('\n') +
            (r.value.added.length ? '\n' : '') +
            r.value.skipped.map((s) => `skipped\t${clean(s.entry)}\t${clean(s.reason)}`).join('\n') +
            (r.value.skipped.length ? '\n' : ''),
          r.value,
        );
        return EXIT.ok;
      }
      case 'identity show': {
        const r = await call('identity:show', {});
        if (!r.ok) return fail(r);
        out(`${r.value.publicKey}\n`, r.value);
        return EXIT.ok;
      }
      case 'users list': {
        const r = await call('users:list', {});
        if (!r.ok) return fail(r);
        out(r.value.map((u) => `${u.name}\t${u.roles.join(',')}${u.disabled ? '\tdisabled' : ''}`).join('\n') + '\n', r.value);
        return EXIT.ok;
      }
      case 'users create': {
        if (!rest[0]) throw new UsageError('users create needs a NAME');
        if (!o.role?.length) throw new UsageError('users create needs at least one --role admin|officer|auditor');
        const r = await call('users:create', { name: rest[0], password: await newPassword(o, io), roles: o.role });
        if (!r.ok) return fail(r);
        out(`Created ${r.value.name} (${r.value.roles.join(', ')})\n`, r.value);
        return EXIT.ok;
      }
      case 'audit list': {
        const r = await call('audit:list', { limit: int('limit', o.limit) ?? 50 });
        if (!r.ok) return fail(r);
        out(
          r.value.events
            .map((e) => `${e.seq}\t${e.ts}\t${clean(e.actor)}\t${e.channel}\t${e.phase}\t${clean(e.target ?? '-')}\t${e.outcome}${e.errorCode ? ' ' + e.errorCode : ''}`)
            .join('\n') + '\n',
          r.value,
        );
        return EXIT.ok;
      }
      case 'audit verify': {
        const r = await call('audit:verify', {});
        if (!r.ok) return fail(r);
        const v = r.value;
        out(
          v.ok
            ? `Audit chain OK: ${v.checked} events, head ${v.headSeq} ${v.headHash}\n`
            : `Audit chain BROKEN at event ${v.firstBad?.seq}: ${v.firstBad?.reason} (${v.checked} events verified before it)\n`,
          v,
        );
        return v.ok ? EXIT.ok : EXIT.failed;
      }
      default:
        throw new UsageError(`unknown command "${key}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`airlock: ${e.message}\n\n${HELP}`);
      return EXIT.usage;
    }
    if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string' && 'message' in e) {
      const err = e as { code: string; message: string };
      if (/^[A-Z_]+$/.test(err.code)) return fail({ ok: false, error: { code: err.code as 'INTERNAL', message: err.message } });
      // Node errors (ENOENT reading a file the operator named) are theirs to fix.
      io.stderr(`airlock: ${err.message}\n`);
      return EXIT.failed;
    }
    throw e;
  } finally {
    await core?.close();
  }
}

/** On `hosts add` and `hosts import-known-hosts`, --user is the SSH login, as in OpenSSH. */
function sshUserOpt(o: { user?: string }) {
  return o.user ? { user: o.user } : {};
}

const COMMANDS = new Set([
  'hosts list', 'hosts probe', 'hosts add', 'hosts confirm', 'hosts remove', 'hosts scan',
  'hosts import-known-hosts', 'hosts import-ssh-config', 'identity show', 'users list', 'users create',
  'audit list', 'audit verify',
]);
const SSH_USER_COMMANDS = new Set(['hosts add', 'hosts import-known-hosts']);

async function readSecret(file: string | undefined, envValue: string | undefined, io: CliIo, question: string): Promise<string> {
  if (file) return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (envValue !== undefined) return envValue;
  if (!io.prompt) throw new UsageError(`${question.replace(/:\s*$/, '')} is needed: give a password file or an environment variable`);
  return io.prompt(question, { secret: true });
}

async function newPassword(o: { 'new-password-file'?: string; 'password-file'?: string }, io: CliIo): Promise<string> {
  return readSecret(o['new-password-file'] ?? o['password-file'], io.env.AIRLOCK_NEW_PASSWORD ?? io.env.AIRLOCK_PASSWORD, io, 'New password: ');
}

async function signIn(
  call: (c: 'session:login', i: unknown) => Promise<Result<unknown>>,
  name: string | undefined,
  passwordFile: string | undefined,
  io: CliIo,
): Promise<true | Extract<Result<unknown>, { ok: false }>> {
  if (!name) throw new UsageError('sign in with --user NAME (or --as NAME, or AIRLOCK_USER)');
  const password = await readSecret(passwordFile, io.env.AIRLOCK_PASSWORD, io, `Password for ${name}: `);
  const r = await call('session:login', { name, password });
  return r.ok ? true : r;
}

function formatHosts(hosts: Out<'hosts:list'>): string {
  if (hosts.length === 0) return 'No hosts enrolled. Add one with `airlock hosts add NAME --address A`.\n';
  return (
    hosts
      .map((h) => {
        const inv = h.inventory;
        const gpus = inv ? (inv.gpus.length ? `${inv.gpus.length}x ${clean(inv.gpus[0]!.name)} (driver ${clean(inv.driverVersion)})` : `no GPU${inv.gpuError ? ': ' + clean(inv.gpuError) : ''}`) : '-';
        return [h.name, `${h.address}:${h.port}`, h.user, h.status, h.fingerprint ?? 'unconfirmed', clean(inv?.os ?? '-'), gpus, h.lastError ? clean(h.lastError) : ''].join('\t');
      })
      .join('\n') + '\n'
  );
}

/** Terminal prompts; secrets are read without echo. */
export function terminalPrompt(): CliIo['prompt'] {
  if (!process.stdin.isTTY) return null;
  return (question, opts) =>
    new Promise((resolve) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      if (opts?.secret) {
        const out = rl as unknown as { _writeToOutput: (s: string) => void };
        out._writeToOutput = (s: string) => {
          if (s.startsWith(question)) process.stderr.write(question);
        };
      }
      rl.question(question, (answer) => {
        rl.close();
        if (opts?.secret) process.stderr.write('\n');
        resolve(answer);
      });
    });
}

export type { ClientContext };

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import QRCode from 'qrcode';
import type { ChannelName, Out } from '../../shared/contract/index';
import type { Result } from '../../shared/domain/errors';
import { revealHidden } from '../../shared/domain/visible-text';
import { createCore } from '../core/app';
import { totpPolicyFromEnv } from '../core/session/policy';
import { mediaRootsFromEnv } from '../core/store/store';
import { sanitizeHostText } from '../core/ssh/sanitize';
import type { ClientContext, Core } from '../core/types';
import { startServe } from './serve';
import { FILE_LIMITS, InputError, readTextFile, UsageError } from './cli-files';
import { formatVerify, progressPrinter, PROVISION_COMMANDS, PROVISION_HELP, PROVISION_OPTIONS, provisionCommand, verifyOffline } from './cli-provision';

/** Exit codes, documented in the README and `airlock help`. */
export const EXIT = { ok: 0, failed: 1, usage: 2, pending: 3 } as const;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Interactive prompts; null when stdin is not a terminal. */
  prompt: ((question: string, opts?: { secret?: boolean }) => Promise<string>) | null;
  rendererDir: string;
  version: string;
}

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
  users list | users create NAME --role R [--role R...] [--no-password-change] [--reason R] NEWPW
  users set-roles NAME --role R [--role R...] [--reason R]
  users disable NAME | users enable NAME [--reason R] NEWPW | users remove NAME
  users reset-password NAME NEWPW | users reset-totp NAME | users unlock NAME
                                         NEWPW, the other account's password: --new-password-file F,
                                         AIRLOCK_NEW_PASSWORD, --generate-password, or typed on a
                                         terminal; never your own --password-file/AIRLOCK_PASSWORD
  users passwd                           change your own password (new one: --new-password-file or prompt)
  totp enrol | totp confirm CODE         enrol a TOTP authenticator (QR code in the terminal), then confirm
  totp recovery-codes | totp disable     new recovery codes; remove TOTP (when the policy allows)
  settings show | settings set [--idle-minutes N] [--step-up-minutes N]
  approvals list [--status S] | approvals show ID | approvals policy
  approvals approve ID --reason R | approvals reject ID --reason R
  approvals execute ID | approvals cancel ID
  approvals set-policy OP --approver-role R [--approver-role R] [--expiry-minutes N] [--required|--not-required] --reason R
${PROVISION_HELP}  audit list [--limit N]
  audit verify [--from N] [--to N]       verify the chain and every checkpoint signature; exit 1 names
                                         the first bad event and what happened to it
  audit export --format jsonl|csv [--from N] [--to N] [--out FILE]
  audit forward --host H --port P [--tls [--ca FILE]] | audit forward --off | audit forward
                                         syslog (RFC 5424 over TCP, optionally TLS); no option: show
  audit alarm                            the open audit alarm (writes are refused while one is) and past ones
  audit acknowledge ID --reason R        officer: acknowledge the alarm, re-anchor the trail, lift the refusal

Options:
  --data DIR           data directory (default: ${defaultDataDir(process.env)})
  --json               machine-readable output
  --user NAME          acting Airlock user (or --as NAME, or AIRLOCK_USER); on \`hosts add\` and
                       \`hosts import-known-hosts\`, --user is the SSH login user, as in OpenSSH
  --password-file F    your password, to sign in (or AIRLOCK_PASSWORD); prompted on a terminal
                       otherwise. init uses it for the administrator it creates, when no
                       --new-password-file/AIRLOCK_NEW_PASSWORD is given
  --new-password-file F  a new password: init, users create/enable/reset-password, users passwd
                       (or AIRLOCK_NEW_PASSWORD); typed twice on a terminal otherwise
  --generate-password  users create/enable/reset-password: a strong one-time password, printed
                       once (also in --json); the user must change it at first sign-in
  --totp CODE          TOTP code for sign-in (or AIRLOCK_TOTP); prompted on a terminal when needed
  --recovery-code C    a recovery code instead of a TOTP code (or AIRLOCK_RECOVERY_CODE)
  --reason R           why: approvals approve/reject, and files a two-person request when a command
                       needs one (users create with admin, set-roles adding admin, approvals set-policy)

Environment: AIRLOCK_TOTP_POLICY=off is a lab/test setting: no role has to enrol TOTP.

Exit codes: 0 done, 1 refused or failed (or verification failed), 2 usage error,
            3 filed for approval: a second person must approve, then \`airlock approvals execute ID\`.
`;

const OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean', default: false },
  user: { type: 'string' },
  as: { type: 'string' },
  'password-file': { type: 'string' },
  'new-password-file': { type: 'string' },
  'generate-password': { type: 'boolean', default: false },
  admin: { type: 'string' },
  address: { type: 'string' },
  port: { type: 'string' },
  fingerprint: { type: 'string' },
  role: { type: 'string', multiple: true },
  totp: { type: 'string' },
  'recovery-code': { type: 'string' },
  reason: { type: 'string' },
  status: { type: 'string' },
  'approver-role': { type: 'string', multiple: true },
  'expiry-minutes': { type: 'string' },
  required: { type: 'boolean', default: false },
  'not-required': { type: 'boolean', default: false },
  'idle-minutes': { type: 'string' },
  'step-up-minutes': { type: 'string' },
  'no-password-change': { type: 'boolean', default: false },
  limit: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  host: { type: 'string' },
  tls: { type: 'boolean', default: false },
  ca: { type: 'string' },
  off: { type: 'boolean', default: false },
  'timeout-ms': { type: 'string' },
  open: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  ...PROVISION_OPTIONS,
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

/**
 * JSON for scripts: faithful, but 8-bit controls and bidi/invisible characters are written as
 * \u escapes (JSON.stringify leaves them raw), so no byte on stdout can steer a terminal.
 */
const toJson = (value: unknown, indent?: number): string =>
  revealHidden(JSON.stringify(value, null, indent), { keep: '\n', escape: (c) => Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('') });

/**
 * Everything the CLI writes to the terminal — host text, names from the database, and the
 * operator's own input echoed back ("unknown command", bad option values, file names) — has its
 * control and invisible characters made visible (shared/domain/visible-text.ts): no byte the CLI
 * prints can steer the terminal or make one name look like another. TAB and LF lay out tables.
 */
function visibleOutput(io: CliIo): CliIo {
  const shown = (s: string) => revealHidden(s, { keep: '\t\n' });
  const prompt = io.prompt;
  return {
    ...io,
    stdout: (s) => io.stdout(shown(s)),
    stderr: (s) => io.stderr(shown(s)),
    prompt: prompt ? (question, opts) => prompt(shown(question), opts) : null,
  };
}

export async function runCli(argv: string[], rawIo: CliIo): Promise<number> {
  const io = visibleOutput(rawIo);
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
  const out = (human: string, value: unknown) => io.stdout(json ? toJson(value, 2) + '\n' : human);
  const fail = (r: Extract<Result<unknown>, { ok: false }>) => {
    if (json) io.stdout(toJson({ ok: false, error: r.error }, 2) + '\n');
    else io.stderr(`airlock: ${r.error.code}: ${clean(r.error.message)}${CLI_HINTS[r.error.code] ?? ''}\n`);
    return EXIT.failed;
  };

  let core: Core | null = null;
  try {
    if (area === 'attest' && verb === 'verify' && o.key) {
      // Offline: the file and the console's public key are all an auditor needs; no database, no sign-in.
      if (!rest[0]) throw new UsageError('attest verify needs a FILE');
      const v = verifyOffline(rest[0], o.key);
      out(formatVerify(v), v);
      return v.ok ? EXIT.ok : EXIT.failed;
    }
    const dataDir = path.resolve(o.data ?? defaultDataDir(io.env));
    const int = (name: string, v: string | undefined): number | undefined => {
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number`);
      return Number(v);
    };
    let requireTotpFor;
    try {
      requireTotpFor = totpPolicyFromEnv(io.env.AIRLOCK_TOTP_POLICY);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }

    if (area === 'serve') {
      if (verb) throw new UsageError('serve takes no verb');
      core = await createCore({
        dataDir,
        shell: 'browser',
        sshAgent: io.env.SSH_AUTH_SOCK ?? null,
        version: io.version,
        requireTotpFor,
        mediaRoots: mediaRootsFromEnv(io.env),
      });
      const handle = await startServe(core, { port: int('port', o.port) ?? 0, rendererDir: io.rendererDir });
      if (json) io.stdout(JSON.stringify({ url: handle.url, port: handle.port, dataDir }) + '\n');
      else io.stdout(`Airlock is serving ${dataDir}\nOpen this one-time URL in a browser on this machine (it works once, within 5 minutes): ${handle.url}\nPress Ctrl+C to stop.\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await handle.close();
      return EXIT.ok;
    }

    core = await createCore({
      dataDir,
      shell: 'cli',
      sshAgent: io.env.SSH_AUTH_SOCK ?? null,
      version: io.version,
      requireTotpFor,
      mediaRoots: mediaRootsFromEnv(io.env),
    });
    const client = core.newClient({ shell: 'cli', source: `pid ${process.pid}`, emit: json ? undefined : progressPrinter(io.stderr) });
    const call = <C extends ChannelName>(channel: C, input: unknown) => core!.dispatch(client, channel, input) as Promise<Result<Out<C>>>;

    if (area === 'init') {
      if (!o.admin) throw new UsageError('init needs --admin NAME');
      const password = await initPassword(o, io);
      const r = await call('session:setup', { admin: o.admin, password });
      if (!r.ok) return fail(r);
      const id = await call('identity:show', {});
      const status = await call('session:status', {});
      const restriction = status.ok ? (status.value.user?.restriction ?? null) : null;
      out(
        `Created administrator ${r.value.name}, the vault and Airlock's SSH identity.\n` +
          (id.ok ? `Put this public key in each host's ~/.ssh/authorized_keys:\n${id.value.publicKey}\n` : '') +
          (restriction === 'totp-enrolment'
            ? `Administrators must use TOTP: enrol now with \`airlock totp enrol --user ${r.value.name}\`, then \`airlock totp confirm CODE\`.\n`
            : ''),
        { user: r.value, identity: id.ok ? id.value : null, restriction },
      );
      return EXIT.ok;
    }

    const key = `${area} ${verb ?? ''}`.trim();
    if (!COMMANDS.has(key)) throw new UsageError(`unknown command "${key}"`);

    const actor = o.as ?? (SSH_USER_COMMANDS.has(key) ? undefined : o.user) ?? io.env.AIRLOCK_USER;
    const signedIn = await signIn(call, actor, o['password-file'], { totp: o.totp, recoveryCode: o['recovery-code'] }, io);
    if (!signedIn.ok) return fail(signedIn);

    /**
     * A call that may fall under the two-person rule: with --reason, an APPROVAL_REQUIRED refusal
     * files the same call as a request (exit 3); without, it explains how.
     */
    const guarded = async <C extends ChannelName>(channel: C, input: Record<string, unknown>, done: (v: Out<C>) => void, shown?: OneTimeNote): Promise<number> => {
      const r = await call(channel, input);
      if (r.ok) {
        done(r.value);
        return EXIT.ok;
      }
      if (r.error.code !== 'APPROVAL_REQUIRED') return fail(r);
      if (!o.reason) {
        return fail({ ok: false, error: { code: 'APPROVAL_REQUIRED', message: `${r.error.message} Re-run with --reason "why" to file the request.` } });
      }
      const filed = await call('approvals:request', { channel, input, reason: o.reason });
      if (!filed.ok) return fail(filed);
      const q = filed.value;
      out(
        `Filed approval request ${q.id}: ${clean(q.summary)}\n` +
          `A different user with the role ${q.approverRoles.join(' or ')} must run \`airlock approvals approve ${q.id} --reason R\` before ${q.expiresAt};\n` +
          `then run \`airlock approvals execute ${q.id}\`.\n` +
          (shown?.human ?? ''),
        { pending: q, ...shown?.json },
      );
      return EXIT.pending;
    };
    const id = (): number => {
      const v = rest[0];
      if (!v || !/^\d+$/.test(v)) throw new UsageError(`${key} needs a request ID (a number)`);
      return Number(v);
    };
    const reason = (): string => {
      if (!o.reason) throw new UsageError(`${key} needs --reason R`);
      return o.reason;
    };
    const showRequest = (q: Out<'approvals:get'>) =>
      `#${q.id}\t${q.status}\t${q.operation}\t${clean(q.summary)}\n` +
      `  requested by ${q.requestedBy} at ${q.requestedAt}: ${clean(q.reason)}\n` +
      `  approvers: ${q.approverRoles.join(' or ')}; expires ${q.expiresAt}\n` +
      (q.decidedBy ? `  ${q.status === 'rejected' ? 'rejected' : 'approved'} by ${q.decidedBy} at ${q.decidedAt}: ${clean(q.decisionReason ?? '')}\n` : '') +
      (q.executedAt ? `  executed at ${q.executedAt}${q.resultCode ? ` (failed: ${q.resultCode})` : ''}\n` : '') +
      (q.status === 'pending' && !q.canApprove && q.cannotApproveReason ? `  you cannot decide it: ${clean(q.cannotApproveReason)}\n` : '');

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
          // A key imported from known_hosts (hashed or not) for this address is pinned without asking.
          const imported = verb === 'confirm' ? await call('hosts:confirm', { name }) : await call('hosts:add', { name, address, port, ...sshUserOpt(o) });
          if (imported.ok) {
            out(`Pinned ${imported.value.name} (${imported.value.address}:${imported.value.port}) ${imported.value.fingerprint} from the imported known_hosts\n`, imported.value);
            return EXIT.ok;
          }
          if (imported.error.code !== 'HOST_KEY_UNCONFIRMED') return fail(imported);
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
        const text = readTextFile(file, FILE_LIMITS.sshText);
        const r =
          verb === 'import-known-hosts'
            ? await call('hosts:importKnownHosts', { text, ...sshUserOpt(o) })
            : await call('hosts:importSshConfig', { text });
        if (!r.ok) return fail(r);
        out(
          r.value.added.map((a) => `added\t${a.name}\t${a.address}:${a.port}\t${a.fingerprint ?? 'unconfirmed: run `airlock hosts confirm ' + a.name + '`'}`).join('\n') +
            (r.value.added.length ? '\n' : '') +
            r.value.skipped.map((s) => `skipped\t${clean(s.entry)}\t${clean(s.reason)}`).join('\n') +
            (r.value.skipped.length ? '\n' : '') +
            r.value.kept.map((k) => `kept\tline ${k.line}: hashed\t${k.keyType} ${k.fingerprint}: pinned by \`airlock hosts add NAME --address A\``).join('\n') +
            (r.value.kept.length ? '\n' : '') +
            r.value.revoked.map((k) => `revoked\tline ${k.line}\t${k.keyType} ${k.fingerprint}${k.hosts.length ? `: refused for ${k.hosts.map(clean).join(', ')}` : ''}`).join('\n') +
            (r.value.revoked.length ? '\n' : ''),
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
        if (o['generate-password'] && o['no-password-change']) throw new UsageError('a generated password is one-time: --generate-password cannot go with --no-password-change');
        const pw = await accountPassword(o, io, rest[0]);
        const input = { name: rest[0], password: pw.password, roles: o.role, mustChangePassword: !o['no-password-change'] };
        const note = oneTimeNote(pw, rest[0]);
        return await guarded(
          'users:create',
          input,
          (v) => out(`Created ${v.name} (${v.roles.join(', ')})${v.mustChangePassword ? '; they choose their own password at first sign-in' : ''}\n${note.human}`, { ...v, ...note.json }),
          note,
        );
      }
      case 'users set-roles': {
        if (!rest[0]) throw new UsageError('users set-roles needs a NAME');
        if (!o.role?.length) throw new UsageError('users set-roles needs at least one --role admin|officer|auditor');
        return await guarded('users:setRoles', { name: rest[0], roles: o.role }, (v) => out(`${v.name} now has the roles ${v.roles.join(', ')}\n`, v));
      }
      case 'users enable': {
        if (!rest[0]) throw new UsageError('users enable needs a NAME');
        const pw = await accountPassword(o, io, rest[0]);
        const note = oneTimeNote(pw, rest[0]);
        return await guarded(
          'users:enable',
          { name: rest[0], password: pw.password },
          (v) => out(`Enabled ${v.name} with a new password (a new vault key slot); they choose their own at first sign-in\n${note.human}`, { ...v, ...note.json }),
          note,
        );
      }
      case 'users disable':
      case 'users remove':
      case 'users reset-totp':
      case 'users unlock': {
        const name = rest[0];
        if (!name) throw new UsageError(`${key} needs a NAME`);
        const channel = ({ disable: 'users:disable', remove: 'users:remove', 'reset-totp': 'users:resetTotp', unlock: 'users:unlock' } as const)[
          verb as 'disable' | 'remove' | 'reset-totp' | 'unlock'
        ];
        const r = await call(channel, { name });
        if (!r.ok) return fail(r);
        const said = {
          'users:disable': `Disabled ${name}: their sessions ended and their vault key slot was destroyed`,
          'users:remove': `Removed ${name} and their vault key slot`,
          'users:resetTotp': `Removed ${name}'s TOTP and recovery codes; they enrol again at next sign-in`,
          'users:unlock': `Cleared the sign-in lockout of ${name}`,
        }[channel];
        out(`${said}\n`, r.value);
        return EXIT.ok;
      }
      case 'users reset-password': {
        if (!rest[0]) throw new UsageError('users reset-password needs a NAME');
        const pw = await accountPassword(o, io, rest[0]);
        const note = oneTimeNote(pw, rest[0]);
        const r = await call('users:resetPassword', { name: rest[0], password: pw.password });
        if (!r.ok) return fail(r);
        out(`Set a new password for ${r.value.name} (new vault key slot); their sessions ended and they choose their own at next sign-in\n${note.human}`, { ...r.value, ...note.json });
        return EXIT.ok;
      }
      case 'users passwd': {
        if (o['generate-password']) throw new UsageError('users passwd: choose your own password (--new-password-file F, AIRLOCK_NEW_PASSWORD, or typed on a terminal)');
        const next = await newPasswordFrom(o['new-password-file'], io.env.AIRLOCK_NEW_PASSWORD, io, 'New password: ');
        const r = await call('session:changePassword', { oldPassword: signedIn.password, newPassword: next });
        if (!r.ok) return fail(r);
        out('Password changed; your vault key slot was re-wrapped and your other sessions ended.\n', { changed: true });
        return EXIT.ok;
      }
      case 'totp enrol': {
        const r = await call('totp:begin', {});
        if (!r.ok) return fail(r);
        const qr = await QRCode.toString(r.value.uri, { type: 'utf8', errorCorrectionLevel: 'M', margin: 2 });
        out(
          `Scan this QR code with an authenticator app, or type the secret (shown once):\n\n${qr}\n` +
            `Secret: ${r.value.secret}\nURI:    ${r.value.uri}\n\nThen confirm with \`airlock totp confirm CODE\` within 15 minutes.\n`,
          r.value,
        );
        return EXIT.ok;
      }
      case 'totp confirm': {
        const code = rest[0];
        if (!code) throw new UsageError('totp confirm needs the CODE your authenticator shows');
        const r = await call('totp:confirm', { code: code.replace(/\s+/g, '') });
        if (!r.ok) return fail(r);
        out(`TOTP is enrolled. Recovery codes (each works once instead of a code; store them offline, they are not shown again):\n${r.value.recoveryCodes.map((c) => `  ${c}`).join('\n')}\n`, r.value);
        return EXIT.ok;
      }
      case 'totp recovery-codes': {
        const r = await call('totp:recoveryCodes', {});
        if (!r.ok) return fail(r);
        out(`New recovery codes (the old ones no longer work):\n${r.value.recoveryCodes.map((c) => `  ${c}`).join('\n')}\n`, r.value);
        return EXIT.ok;
      }
      case 'totp disable': {
        const r = await call('totp:disable', {});
        if (!r.ok) return fail(r);
        out('TOTP removed from your account.\n', { disabled: true });
        return EXIT.ok;
      }
      case 'settings show':
      case 'settings set': {
        const r =
          verb === 'set'
            ? await call('settings:set', { sessionIdleMinutes: int('idle-minutes', o['idle-minutes']), stepUpMinutes: int('step-up-minutes', o['step-up-minutes']) })
            : await call('settings:get', {});
        if (!r.ok) return fail(r);
        const v = r.value;
        out(
          `idle lock: ${v.sessionIdleMinutes} min\nstep-up window: ${v.stepUpMinutes} min\n` +
            `lockout: after ${v.lockout.threshold} failures, ${v.lockout.baseSeconds} s doubling up to ${v.lockout.maxSeconds} s\n` +
            `TOTP required for: ${v.totpRequiredFor.length ? v.totpRequiredFor.join(', ') : 'nobody (AIRLOCK_TOTP_POLICY=off: lab/test setting)'}\n`,
          v,
        );
        return EXIT.ok;
      }
      case 'approvals list': {
        const r = await call('approvals:list', { status: o.status, limit: int('limit', o.limit) ?? 100 });
        if (!r.ok) return fail(r);
        const { requests, counts } = r.value;
        out(
          requests.map((q) => `#${q.id}\t${q.status}\t${q.requestedBy}\t${q.operation}\t${clean(q.summary)}${q.canApprove ? '\t(you may approve)' : ''}`).join('\n') +
            (requests.length ? '\n' : '') +
            `${counts.pending} pending, ${counts.awaitingMe} awaiting your decision, ${counts.readyToExecute} of yours ready to execute\n`,
          r.value,
        );
        return EXIT.ok;
      }
      case 'approvals show': {
        const r = await call('approvals:get', { id: id() });
        if (!r.ok) return fail(r);
        out(showRequest(r.value) + `  input: ${clean(JSON.stringify(r.value.input))}\n`, r.value);
        return EXIT.ok;
      }
      case 'approvals approve':
      case 'approvals reject': {
        const r = await call(verb === 'approve' ? 'approvals:approve' : 'approvals:reject', { id: id(), reason: reason() });
        if (!r.ok) return fail(r);
        out(showRequest(r.value), r.value);
        return EXIT.ok;
      }
      case 'approvals cancel': {
        const r = await call('approvals:cancel', { id: id() });
        if (!r.ok) return fail(r);
        out(showRequest(r.value), r.value);
        return EXIT.ok;
      }
      case 'approvals execute': {
        const r = await call('approvals:execute', { id: id() });
        if (!r.ok) return fail(r);
        out(`Executed request ${r.value.request.id}: ${clean(r.value.request.summary)}\n`, r.value);
        return EXIT.ok;
      }
      case 'approvals policy': {
        const r = await call('approvals:policy', {});
        if (!r.ok) return fail(r);
        out(
          r.value
            .map((p) => `${p.operation}\t${p.required ? 'required' : 'off'}\t${p.approverRoles.join('|')}\t${p.expiryMinutes} min\t${p.implemented ? p.channels.join(',') : '(no channel yet)'}`)
            .join('\n') + '\n',
          r.value,
        );
        return EXIT.ok;
      }
      case 'approvals set-policy': {
        const operation = rest[0];
        if (!operation) throw new UsageError('approvals set-policy needs an OPERATION (see `airlock approvals policy`)');
        if (o.required && o['not-required']) throw new UsageError('give --required or --not-required, not both');
        const current = await call('approvals:policy', {});
        if (!current.ok) return fail(current);
        const row = current.value.find((p) => p.operation === operation);
        if (!row) throw new UsageError(`unknown operation "${operation}" (see \`airlock approvals policy\`)`);
        const input = {
          operation,
          approverRoles: o['approver-role']?.length ? o['approver-role'] : row.approverRoles,
          expiryMinutes: int('expiry-minutes', o['expiry-minutes']) ?? row.expiryMinutes,
          required: o['not-required'] ? false : o.required ? true : row.required,
        };
        return await guarded('approvals:setPolicy', input, (v) => out(`Policy for ${v.operation} updated\n`, v));
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
        const r = await call('audit:verify', { fromSeq: int('from', o.from), toSeq: int('to', o.to) });
        if (!r.ok) return fail(r);
        const v = r.value;
        const notes = (v.warnings ?? []).map((w) => `warning: ${w}\n`).join('');
        out(
          v.ok
            ? `Audit chain OK: ${v.checked} events (${v.fromSeq ?? 1}–${v.toSeq ?? v.headSeq}), ${v.checkpoints} checkpoint signature(s) verified` +
                `${v.keyFingerprint ? ` with ${v.keyFingerprint}` : ''}, head ${v.headSeq} ${v.headHash}\n${notes}`
            : `Audit chain BROKEN at event ${v.firstBad?.seq} (${v.firstBad?.kind}): ${clean(v.firstBad?.reason)} (${v.checked} events verified before it)\n${notes}`,
          v,
        );
        return v.ok ? EXIT.ok : EXIT.failed;
      }
      case 'audit export': {
        if (o.format !== 'jsonl' && o.format !== 'csv') throw new UsageError('audit export needs --format jsonl or --format csv');
        const r = await call('audit:export', { format: o.format, fromSeq: int('from', o.from), toSeq: int('to', o.to) });
        if (!r.ok) return fail(r);
        let file = r.value.file;
        if (o.out) {
          fs.copyFileSync(r.value.file, o.out);
          file = path.resolve(o.out);
        }
        out(`Exported ${r.value.events} events (${r.value.fromSeq ?? '-'}–${r.value.toSeq ?? '-'}) to ${file}\nsha256 ${r.value.sha256}\n`, { ...r.value, file });
        return EXIT.ok;
      }
      case 'audit alarm':
      case 'audit acknowledge': {
        const r = verb === 'alarm' ? await call('audit:alarmStatus', {}) : await call('audit:acknowledgeAlarm', { id: id(), reason: reason() });
        if (!r.ok) return fail(r);
        const show = (a: Out<'audit:alarmStatus'>['alarms'][number]) =>
          `#${a.id}\t${a.acknowledged ? 'acknowledged' : 'OPEN'}\t${a.kind} at event ${a.firstBadSeq}\traised ${a.raisedAt}\n  ${clean(a.reason)}\n` +
          (a.acknowledged ? `  acknowledged by ${clean(a.acknowledged.by)} at ${a.acknowledged.at}: ${clean(a.acknowledged.reason)}; re-anchored at event ${a.acknowledged.anchorSeq}\n` : '');
        const head = r.value.active
          ? `AUDIT ALARM #${r.value.active.id} is open: writes are refused until an officer runs \`airlock audit acknowledge ${r.value.active.id} --reason R\`.\n`
          : 'No audit alarm is open.\n';
        out(head + r.value.alarms.map(show).join(''), r.value);
        return verb === 'alarm' && r.value.active ? EXIT.failed : EXIT.ok;
      }
      case 'audit forward': {
        let r;
        if (o.off) r = await call('audit:setForwarding', { off: true });
        else if (o.host !== undefined) {
          const port = int('port', o.port);
          if (port === undefined) throw new UsageError('audit forward needs --port P with --host H');
          if (o.ca && !o.tls) throw new UsageError('--ca goes with --tls');
          const caPem = o.ca ? readTextFile(o.ca, FILE_LIMITS.pem) : undefined;
          r = await call('audit:setForwarding', { host: o.host, port, tls: o.tls, ...(caPem ? { caPem } : {}) });
        } else r = await call('audit:getForwarding', {});
        if (!r.ok) return fail(r);
        const f = r.value;
        out(
          f.enabled
            ? `Forwarding audit events to ${f.host}:${f.port}${f.tls ? ` over TLS${f.caFingerprint ? ` (CA ${f.caFingerprint})` : ''}` : ' (plain TCP)'}; ` +
                `sent up to event ${f.forwardedSeq} of ${f.headSeq}${f.lastError ? `; last error: ${clean(f.lastError)}` : ''}\n`
            : 'Audit forwarding is off.\n',
          f,
        );
        return EXIT.ok;
      }
      default:
        if ((PROVISION_COMMANDS as readonly string[]).includes(key)) {
          return await provisionCommand({
            key,
            rest,
            o,
            json,
            call,
            out,
            fail,
            int,
            usage: (m) => {
              throw new UsageError(m);
            },
          });
        }
        throw new UsageError(`unknown command "${key}"`);
    }
  } catch (e) {
    if (e instanceof InputError) {
      io.stderr(`airlock: ${e.message}\n`);
      return EXIT.usage;
    }
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
    io.stderr(unexpected(e, io.env));
    return EXIT.failed;
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
  'users set-roles', 'users disable', 'users enable', 'users remove', 'users reset-password', 'users reset-totp',
  'users unlock', 'users passwd', 'totp enrol', 'totp confirm', 'totp recovery-codes', 'totp disable',
  'settings show', 'settings set', 'approvals list', 'approvals show', 'approvals approve', 'approvals reject',
  'approvals execute', 'approvals cancel', 'approvals policy', 'approvals set-policy',
  'audit list', 'audit verify', 'audit export', 'audit forward', 'audit alarm', 'audit acknowledge', ...PROVISION_COMMANDS,
]);

/** What a CLI user does about an identity refusal (the core's messages name channels). */
const CLI_HINTS: Partial<Record<string, string>> = {
  PASSWORD_CHANGE_REQUIRED: ' (CLI: `airlock users passwd`)',
  TOTP_ENROLMENT_REQUIRED: ' (CLI: `airlock totp enrol`, then `airlock totp confirm CODE`)',
  TOTP_REQUIRED: ' (CLI: --totp CODE or AIRLOCK_TOTP, or --recovery-code)',
};
const SSH_USER_COMMANDS = new Set(['hosts add', 'hosts import-known-hosts']);

const readPasswordFile = (file: string) => readTextFile(file, FILE_LIMITS.password).replace(/\r?\n$/, '');

async function readSecret(file: string | undefined, envValue: string | undefined, io: CliIo, question: string): Promise<string> {
  if (file !== undefined) return readPasswordFile(file);
  if (envValue !== undefined) return envValue;
  if (!io.prompt) throw new UsageError(`${question.replace(/:\s*$/, '')} is needed: give a password file or an environment variable`);
  return io.prompt(question, { secret: true });
}

/** A new password from a file, the environment, or typed twice on a terminal. */
async function newPasswordFrom(file: string | undefined, envValue: string | undefined, io: CliIo, question: string): Promise<string> {
  if (file !== undefined || envValue !== undefined || !io.prompt) return readSecret(file, envValue, io, question);
  const first = await io.prompt(question, { secret: true });
  const again = await io.prompt('Type it again: ', { secret: true });
  if (first !== again) throw new InputError('the two passwords differ; nothing was changed');
  return first;
}

/**
 * init: the first administrator's own password. Their sign-in password (--password-file,
 * AIRLOCK_PASSWORD) is an explicit choice here: it is the account being created.
 */
async function initPassword(o: { 'new-password-file'?: string; 'password-file'?: string; 'generate-password'?: boolean }, io: CliIo): Promise<string> {
  if (o['generate-password']) throw new UsageError("init: choose the first administrator's password (--new-password-file F, --password-file F, or typed on a terminal)");
  const file = o['new-password-file'] ?? o['password-file'];
  const env = file === undefined ? (io.env.AIRLOCK_NEW_PASSWORD ?? io.env.AIRLOCK_PASSWORD) : undefined;
  if (file === undefined && env === undefined && !io.prompt) {
    throw new UsageError("init needs the first administrator's password: --new-password-file F (or AIRLOCK_NEW_PASSWORD), --password-file F (or AIRLOCK_PASSWORD), or run it on a terminal");
  }
  return newPasswordFrom(file, env, io, 'Password for the first administrator: ');
}

/**
 * Another account's password (users create, enable, reset-password). It comes only from a source
 * meant for it — never from the acting admin's own --password-file/AIRLOCK_PASSWORD, which would
 * hand the new account the admin's password.
 */
async function accountPassword(o: { 'new-password-file'?: string; 'generate-password'?: boolean }, io: CliIo, name: string): Promise<{ password: string; generated: boolean }> {
  if (o['generate-password']) {
    if (o['new-password-file'] !== undefined) throw new UsageError('give --generate-password or --new-password-file, not both');
    return { password: oneTimePassword(), generated: true };
  }
  if (o['new-password-file'] === undefined && io.env.AIRLOCK_NEW_PASSWORD === undefined && !io.prompt) {
    throw new InputError(
      `${name}'s new password needs a source: --new-password-file F, AIRLOCK_NEW_PASSWORD, --generate-password ` +
        '(a one-time password, printed once), or a terminal to type it. Your own --password-file/AIRLOCK_PASSWORD is never used for another account.',
    );
  }
  return { password: await newPasswordFrom(o['new-password-file'], io.env.AIRLOCK_NEW_PASSWORD, io, `New password for ${name}: `), generated: false };
}

/** 20 characters from 31 unambiguous ones (about 99 bits), in groups of five for reading aloud. */
const OTP_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
function oneTimePassword(): string {
  const c = Array.from({ length: 20 }, () => OTP_ALPHABET[crypto.randomInt(OTP_ALPHABET.length)]!);
  return [0, 5, 10, 15].map((i) => c.slice(i, i + 5).join('')).join('-');
}

interface OneTimeNote {
  human: string;
  json: { oneTimePassword?: string };
}
/** What the CLI prints about a generated password: once, here, and nowhere else. */
function oneTimeNote(pw: { password: string; generated: boolean }, name: string): OneTimeNote {
  if (!pw.generated) return { human: '', json: {} };
  return {
    human: `One-time password for ${name} (shown only now; give it to them privately, they must change it at first sign-in):\n  ${pw.password}\n`,
    json: { oneTimePassword: pw.password },
  };
}

/**
 * The last resort: an exception nobody expected is one line — its kind and first line, without
 * the stack or the install paths in it (AIRLOCK_DEBUG=1 shows everything) — and exit 1.
 */
export function unexpected(e: unknown, env: NodeJS.ProcessEnv): string {
  if (env.AIRLOCK_DEBUG) return `airlock: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
  const name = e instanceof Error ? e.name : typeof e;
  const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
  const noPaths = first.replace(/(?:file:\/\/)?(?:\/[^\s'"():]+)+(?::\d+)*/g, (p) => (p.split('/').length > 2 ? '…' : p));
  return `airlock: unexpected error (${name}): ${noPaths} (AIRLOCK_DEBUG=1 for details)\n`;
}

/**
 * Each CLI run signs in once (so its step-up window is fresh). A TOTP code comes from --totp,
 * AIRLOCK_TOTP, a recovery code from --recovery-code or AIRLOCK_RECOVERY_CODE, or — on a
 * terminal, when the core answers TOTP_REQUIRED — a prompt.
 */
async function signIn(
  call: (c: 'session:login', i: unknown) => Promise<Result<unknown>>,
  name: string | undefined,
  passwordFile: string | undefined,
  second: { totp?: string | undefined; recoveryCode?: string | undefined },
  io: CliIo,
): Promise<{ ok: true; password: string } | Extract<Result<unknown>, { ok: false }>> {
  if (!name) throw new UsageError('sign in with --user NAME (or --as NAME, or AIRLOCK_USER)');
  const password = await readSecret(passwordFile, io.env.AIRLOCK_PASSWORD, io, `Password for ${name}: `);
  const totp = second.totp ?? io.env.AIRLOCK_TOTP;
  const recoveryCode = second.recoveryCode ?? io.env.AIRLOCK_RECOVERY_CODE;
  const input = { name, password, ...(totp ? { totp: totp.replace(/\s+/g, '') } : {}), ...(recoveryCode ? { recoveryCode } : {}) };
  let r = await call('session:login', input);
  if (!r.ok && r.error.code === 'TOTP_REQUIRED' && io.prompt) {
    const answer = (await io.prompt(`TOTP code for ${name} (or a recovery code): `, { secret: true })).trim();
    const code = answer.replace(/\s+/g, '');
    r = await call('session:login', { name, password, ...(/^\d{6}$/.test(code) ? { totp: code } : { recoveryCode: answer }) });
  }
  return r.ok ? { ok: true, password } : r;
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

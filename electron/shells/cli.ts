import path from 'node:path';
import type { ChannelName, Out } from '../../shared/contract/index';
import type { Result } from '../../shared/domain/errors';
import type { Core } from '../core/types';
import { UsageError } from './cli-files';
import { openCore } from './cli/core';
import { EXIT, exitFor } from './cli/exit';
import { actorOf, CLI_HINTS, defaultDataDir, signIn } from './cli/globals';
import { areaHelp, commandHelp, overviewHelp } from './cli/help';
import { clean, toJson, unexpected, visibleOutput, type CliIo } from './cli/io';
import { parse } from './cli/parse';
import { progressPrinter } from './cli/provision';
import type { Ctx, Failure, Needs } from './cli/spec';

/**
 * The `airlock` command: the command line is read against the command table (cli/table.ts, one
 * file per area in cli/), the command runs with a signed-in session, and every way it can end
 * maps to one exit code (cli/exit.ts).
 */

export { EXIT, EXIT_FOR_ERROR } from './cli/exit';
export { defaultDataDir } from './cli/globals';
export { terminalPrompt, unexpected, type CliIo } from './cli/io';

export async function runCli(argv: string[], rawIo: CliIo): Promise<number> {
  const io = visibleOutput(rawIo);
  /** A usage or input mistake: one line naming it, exit 2. */
  const usageLine = (e: UsageError) => {
    io.stderr(`airlock: ${e.message}\n`);
    return EXIT.usage;
  };
  let parsed;
  try {
    parsed = parse(argv);
  } catch (e) {
    if (e instanceof UsageError) return usageLine(e);
    throw e;
  }
  if (parsed.kind === 'help') {
    io.stdout(parsed.command ? commandHelp(parsed.command) : parsed.area ? areaHelp(parsed.area) : overviewHelp(defaultDataDir(process.env)));
    return parsed.asked ? EXIT.ok : EXIT.usage;
  }
  const { command: cmd, words, args, opts: o } = parsed;
  const json = o.json;
  const out = (human: string, value: unknown) => io.stdout(json ? toJson(value, 2) + '\n' : human);
  const fail = (r: Failure) => {
    if (json) io.stdout(toJson({ ok: false, error: r.error }, 2) + '\n');
    else io.stderr(`airlock: ${r.error.code}: ${clean(r.error.message)}${CLI_HINTS[r.error.code] ?? ''}\n`);
    return exitFor(r.error.code);
  };
  const usage = (m: string): never => {
    throw new UsageError(m);
  };

  let core: Core | null = null;
  try {
    const needs: Needs = typeof cmd.needs === 'function' ? cmd.needs(o) : (cmd.needs ?? 'session');
    const dataDir = path.resolve(o.data ?? defaultDataDir(io.env));
    const noCore = () => {
      throw new Error(`${words} runs without the core`);
    };
    let call: Ctx['call'] = noCore;
    let password = '';
    if (needs !== 'nothing') {
      const c = (core = await openCore(dataDir, io, 'cli'));
      const client = c.newClient({ shell: 'cli', source: `pid ${process.pid}`, emit: json ? undefined : progressPrinter(io.stderr) });
      call = <C extends ChannelName>(channel: C, input: unknown) => c.dispatch(client, channel, input) as Promise<Result<Out<C>>>;
    }
    if (needs === 'session') {
      const signedIn = await signIn((ch, i) => call(ch, i as never), actorOf(cmd, o, io.env), o['password-file'], { totp: o.totp, recoveryCode: o['recovery-code'] }, io);
      if (!signedIn.ok) return fail(signedIn);
      password = signedIn.password;
    }

    const reason = o.reason as string | undefined;
    const guarded: Ctx['guarded'] = async (channel, input, done, shown) => {
      const r = await call(channel, input);
      if (r.ok) {
        done(r.value);
        return EXIT.ok;
      }
      if (r.error.code !== 'APPROVAL_REQUIRED') return fail(r);
      if (!reason) {
        return fail({ ok: false, error: { code: 'APPROVAL_REQUIRED', message: `${r.error.message} Re-run with --reason "why" to file the request.` } });
      }
      const filed = await call('approvals:request', { channel, input: input as Record<string, unknown>, reason });
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

    const ctx: Ctx = { words, args, opts: o, json, io, dataDir, call, out, fail, usage, guarded, password };
    return await cmd.run(ctx);
  } catch (e) {
    if (e instanceof UsageError) return usageLine(e); // InputError too: a file or value the operator gave
    if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string' && 'message' in e) {
      const err = e as { code: string; message: string };
      if (/^[A-Z_]+$/.test(err.code)) return fail({ ok: false, error: { code: err.code as 'INTERNAL', message: err.message } });
      // Node errors (ENOENT writing a file the operator named) are theirs to fix.
      io.stderr(`airlock: ${err.message}\n`);
      return EXIT.failed;
    }
    io.stderr(unexpected(e, io.env));
    return EXIT.failed;
  } finally {
    await core?.close();
  }
}

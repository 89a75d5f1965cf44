import type { z } from 'zod';
import type { ChannelName, In, Out } from '../../../shared/contract/index';
import type { Result } from '../../../shared/domain/errors';
import type { CliIo } from './io';

/**
 * How a CLI command is declared: its words, its arguments and options (with their types), the
 * channel it calls, how it builds the channel's input and how it prints the output. The parser
 * (parse.ts), the help (help.ts) and the coverage test (table.test.ts) all read these declarations;
 * nothing about a command is written anywhere else.
 */

/** What the parser hands a command for one option or argument, after checking its type. */
export interface ValueSpec<T> {
  kind: 'string' | 'int' | 'boolean' | 'strings';
  /** The placeholder in usage lines (`NAME`, `--port P`). */
  metavar: string;
  help: string;
  required?: boolean;
  /** Extra check of the value (a schema from the contract): its first issue is the usage error. */
  schema?: z.ZodType;
  /** Accepted by the parser but left out of the help (kept so old invocations still parse). */
  hidden?: boolean;
  /** Arguments only: takes every remaining positional. */
  variadic?: boolean;
  /** Phantom: the type the command sees. */
  readonly _type?: T;
}

type Req<R, T> = R extends true ? T : T | undefined;
interface Extra<R extends boolean> {
  required?: R;
  schema?: z.ZodType;
  hidden?: boolean;
}

/** Option and argument builders: `opt.string('A', 'the address', { required: true, schema: Address })`. */
export const opt = {
  string: <R extends boolean = false>(metavar: string, help: string, extra: Extra<R> = {}): ValueSpec<Req<R, string>> => ({ kind: 'string', metavar, help, ...extra }),
  int: <R extends boolean = false>(metavar: string, help: string, extra: Extra<R> = {}): ValueSpec<Req<R, number>> => ({ kind: 'int', metavar, help, ...extra }),
  /** Repeatable (`--role R --role R`); [] when absent. */
  strings: <R extends boolean = false>(metavar: string, help: string, extra: Extra<R> = {}): ValueSpec<string[]> => ({ kind: 'strings', metavar, help, ...extra }),
  flag: (help: string, extra: { hidden?: boolean } = {}): ValueSpec<boolean> => ({ kind: 'boolean', metavar: '', help, ...extra }),
};
export const arg = {
  one: (metavar: string, help: string, extra: { schema?: z.ZodType } = {}): ValueSpec<string> => ({ kind: 'string', metavar, help, required: true, ...extra }),
  int: (metavar: string, help: string): ValueSpec<number> => ({ kind: 'int', metavar, help, required: true }),
  optional: (metavar: string, help: string): ValueSpec<string | undefined> => ({ kind: 'string', metavar, help }),
  rest: (metavar: string, help: string): ValueSpec<string[]> => ({ kind: 'strings', metavar, help, variadic: true }),
};

export type Specs = Record<string, ValueSpec<unknown>>;
export type Values<S extends Specs> = { [K in keyof S]: S[K] extends ValueSpec<infer T> ? T : never };

/** The options every command takes (globals.ts). */
export interface GlobalValues {
  data: string | undefined;
  json: boolean;
  user: string | undefined;
  as: string | undefined;
  'password-file': string | undefined;
  totp: string | undefined;
  'recovery-code': string | undefined;
  help: boolean;
}

export type Failure = Extract<Result<unknown>, { ok: false }>;

/** A refusal the two-person rule turns into a request: what to print besides it. */
export interface OneTimeNote {
  human: string;
  json: { oneTimePassword?: string };
}

/** What a command's `run` gets. */
export interface Ctx<A extends Specs = Specs, O extends Specs = Specs> {
  /** `hosts add`: the words the operator typed for this command. */
  words: string;
  args: Values<A>;
  opts: Values<O> & GlobalValues;
  json: boolean;
  /** Output already made visible (control and invisible characters shown). */
  io: CliIo;
  dataDir: string;
  call<C extends ChannelName>(channel: C, input: In<C>): Promise<Result<Out<C>>>;
  /** Prints `human`, or `value` as JSON under --json. */
  out(human: string, value: unknown): void;
  /** Prints a refusal (stderr, or JSON on stdout) and returns its exit code (exit.ts). */
  fail(r: Failure): number;
  /** A usage or input mistake: one line on stderr, exit 2. */
  usage(message: string): never;
  /**
   * A call under the two-person rule (the channel declares `twoPerson`): on APPROVAL_REQUIRED with
   * --reason it files the same call as a request (exit 3); without, it says how.
   */
  guarded<C extends ChannelName>(channel: C, input: In<C>, done: (v: Out<C>) => void, shown?: OneTimeNote): Promise<number>;
  /** The password the acting user signed in with (session passwd needs it as the old one). */
  password: string;
}

/** What a command needs before it runs. */
export type Needs = 'session' | 'core' | 'nothing';

export interface CommandDef<A extends Specs = Specs, O extends Specs = Specs> {
  /** `hosts add`, `init`. The first word is the area. */
  words: string;
  /** Other words that run the same command (`users passwd` for `session passwd`), documented in its help. */
  aliases?: readonly string[];
  args?: A;
  options?: O;
  /** The channel it calls; null for commands that are not a channel call (serve). */
  channel: ChannelName | null;
  /** Channels it calls besides `channel` (a probe before a pin, a list to find a host). */
  alsoCalls?: readonly ChannelName[];
  /** A one-line summary, for commands whose channel's summary does not say what they do. */
  summary?: string;
  /** Explanations the help prints under the command (where an option's line is not enough). */
  notes?: readonly string[];
  /** Besides an error code (exit.ts): when the command ends with exit 1 although the call succeeded. */
  failsWhen?: string;
  /** Default 'session': a signed-in session; 'core': the data directory, no sign-in; 'nothing': neither. */
  needs?: Needs | ((opts: Values<O> & GlobalValues) => Needs);
  /** Builds the input, calls, prints; returns the exit code. */
  run(c: Ctx<A, O>): Promise<number>;
}

/** Declares a command; the generic parameters carry the argument and option types into `run`. */
export function command<A extends Specs = Record<never, never>, O extends Specs = Record<never, never>>(def: CommandDef<A, O>): CommandDef {
  return def as unknown as CommandDef;
}

/**
 * The common shape: one call, its input from the arguments, the output printed. `exit` decides
 * 0 or 1 from a successful result (a scan with failed hosts, a verification that failed).
 */
export function call<C extends ChannelName, A extends Specs = Record<never, never>, O extends Specs = Record<never, never>>(
  def: Omit<CommandDef<A, O>, 'run' | 'channel'> & {
    channel: C;
    input: (c: Ctx<A, O>) => In<C>;
    human: (v: Out<C>, c: Ctx<A, O>) => string;
    json?: (v: Out<C>, c: Ctx<A, O>) => unknown;
    exit?: (v: Out<C>) => 0 | 1;
  },
): CommandDef {
  const { input, human, json, exit, ...rest } = def;
  return command<A, O>({
    ...rest,
    async run(c) {
      const r = await c.call(def.channel, input(c));
      if (!r.ok) return c.fail(r);
      c.out(human(r.value, c), json ? json(r.value, c) : r.value);
      return exit ? exit(r.value) : 0;
    },
  });
}

/** One area's table: its commands, and a line saying what the area is. */
export interface AreaTable {
  area: string;
  about: string;
  commands: readonly CommandDef[];
}

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../cli-files';
import { GLOBAL_OPTIONS } from './globals';
import type { AreaTable, CommandDef, GlobalValues, Specs, ValueSpec } from './spec';
import { AREAS, BY_WORDS, COMMANDS } from './table';

/**
 * The command line, read against the table: which command, its arguments and options, each
 * checked against its declared type. Every mistake is a UsageError naming what is wrong (exit 2).
 */

export type Parsed =
  | { kind: 'help'; area: AreaTable | null; command: CommandDef | null; /** --help or `help`: exit 0; a bare `airlock`: exit 2. */ asked: boolean }
  | { kind: 'command'; command: CommandDef; words: string; args: Record<string, unknown>; opts: Record<string, unknown> & GlobalValues };

/** One parseArgs type per option name across every command (a name means one kind of value). */
function unionOptions(): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = {};
  const add = (name: string, spec: ValueSpec<unknown>, where: string) => {
    const type = spec.kind === 'boolean' ? 'boolean' : 'string';
    const multiple = spec.kind === 'strings';
    const had = out[name];
    if (had && (had.type !== type || !!had.multiple !== multiple)) throw new Error(`CLI table: --${name} is a ${had.type}${had.multiple ? ' list' : ''} elsewhere but a ${spec.kind} on ${where}`);
    out[name] = { type, ...(multiple ? { multiple } : {}), ...(name === 'help' ? { short: 'h' } : {}) };
  };
  for (const [n, s] of Object.entries(GLOBAL_OPTIONS)) add(n, s, 'the global options');
  for (const c of COMMANDS) for (const [n, s] of Object.entries(c.options ?? {})) add(n, s, c.words);
  return out;
}
export const UNION_OPTIONS = unionOptions();

const seeHelp = (words: string) => ` (see \`airlock ${words} --help\`)`;

/** Checks one value against its declared type; `label` is `--port` or `NAME`. */
function coerce(label: string, spec: ValueSpec<unknown>, raw: string): unknown {
  let value: unknown = raw;
  if (spec.kind === 'int') {
    if (!/^\d+$/.test(raw)) throw new UsageError(`${label} must be a whole number, not "${raw}"`);
    value = Number(raw);
  }
  if (spec.schema) {
    const r = spec.schema.safeParse(value);
    if (!r.success) throw new UsageError(`${label} "${raw}" is not valid: ${r.error.issues[0]?.message ?? 'refused'}`);
  }
  return value;
}

function resolve(positionals: string[]): { command: CommandDef; words: string; rest: string[] } | null {
  for (const n of [2, 1]) {
    const words = positionals.slice(0, n).join(' ');
    const command = positionals.length >= n ? BY_WORDS.get(words) : undefined;
    if (command) return { command, words, rest: positionals.slice(n) };
  }
  return null;
}

const areaNamed = (name: string | undefined) => AREAS.find((a) => a.area === name) ?? null;

export function parse(argv: string[]): Parsed {
  const { tokens } = parseArgs({ args: argv, options: UNION_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const positionals = tokens.filter((t) => t.kind === 'positional').map((t) => t.value);
  const options = tokens.filter((t) => t.kind === 'option');
  const help = options.some((t) => t.name === 'help');

  // `airlock help [AREA [COMMAND]]` is `airlock [AREA [COMMAND]] --help`.
  const topic = positionals[0] === 'help' ? positionals.slice(1) : positionals;
  const found = resolve(topic);
  const asked = help || positionals[0] === 'help';
  if (asked || positionals.length === 0) {
    if (found && found.rest.length === 0) return { kind: 'help', area: areaNamed(found.command.words.split(' ')[0]), command: found.command, asked };
    if (topic.length === 0) return { kind: 'help', area: null, command: null, asked };
    const area = areaNamed(topic[0]);
    if (area && topic.length === 1) return { kind: 'help', area, command: null, asked };
  }
  for (const t of options) {
    if (!Object.prototype.hasOwnProperty.call(UNION_OPTIONS, t.name)) throw new UsageError(`unknown option ${t.rawName}`);
  }
  if (!found) {
    const area = areaNamed(positionals[0]);
    if (area && positionals.length === 1) {
      throw new UsageError(`${area.area} needs a command: ${area.commands.map((c) => c.words.split(' ').slice(1).join(' ')).join(', ')}${seeHelp(area.area)}`);
    }
    throw new UsageError(`unknown command "${positionals.slice(0, 2).join(' ')}" (see \`airlock --help\`)`);
  }
  const { command, words, rest } = found;
  const own: Specs = command.options ?? {};
  const specs: Specs = { ...GLOBAL_OPTIONS, ...own };

  // Options: only the command's own and the global ones; each value of its declared type.
  const raw: Record<string, string | boolean | string[]> = {};
  for (const t of options) {
    const spec = specs[t.name];
    if (!spec) throw new UsageError(`${words} takes no option ${t.rawName}${seeHelp(words)}`);
    if (spec.kind === 'boolean') {
      if (t.inlineValue) throw new UsageError(`${t.rawName} takes no value`);
      raw[t.name] = true;
      continue;
    }
    if (t.value === undefined) throw new UsageError(`${t.rawName} needs a value: ${t.rawName} ${spec.metavar}`);
    if (!t.inlineValue && t.value.startsWith('-') && t.value.length > 1) {
      throw new UsageError(`${t.rawName} needs a value, not the option ${t.value} (a value starting with "-" is written ${t.rawName}=VALUE)`);
    }
    if (spec.kind === 'strings') ((raw[t.name] ??= []) as string[]).push(t.value);
    else raw[t.name] = t.value;
  }
  const opts: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const v = raw[name];
    if (spec.kind === 'boolean') opts[name] = v === true;
    else if (spec.kind === 'strings') opts[name] = ((v as string[] | undefined) ?? []).map((x) => coerce(`--${name}`, spec, x));
    else opts[name] = v === undefined ? undefined : coerce(`--${name}`, spec, v as string);
    const missing = spec.kind === 'strings' ? (opts[name] as unknown[]).length === 0 : opts[name] === undefined;
    if (spec.required && missing) throw new UsageError(`${words} needs --${name} ${spec.metavar}${seeHelp(words)}`);
  }

  // Arguments: in their declared order; a variadic one takes the rest.
  const args: Record<string, unknown> = {};
  const left = [...rest];
  const declared = Object.entries(command.args ?? {});
  for (const [name, spec] of declared) {
    if (spec.variadic) {
      args[name] = left.splice(0).map((x) => coerce(spec.metavar, spec, x));
      continue;
    }
    const v = left.shift();
    if (v === undefined) {
      if (spec.required) throw new UsageError(`${words} needs ${spec.metavar} (${spec.help})${seeHelp(words)}`);
      args[name] = undefined;
    } else args[name] = coerce(spec.metavar, spec, v);
  }
  if (left.length) {
    const takes = declared.length ? `takes ${declared.map(([, s]) => s.metavar).join(' ')}` : 'takes no argument';
    throw new UsageError(`${words} ${takes}; "${left[0]}" is one too many${seeHelp(words)}`);
  }
  return { kind: 'command', command, words, args, opts: opts as Record<string, unknown> & GlobalValues };
}

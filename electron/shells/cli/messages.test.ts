/**
 * The CLI's usage errors in people's words (issue 11): like the core's error messages
 * (electron/core/messages.test.ts), no usage error names a channel or carries schema jargon. Two
 * walks: the parser run on wrong input for every command of the CLI tables (each option and
 * argument given a wrong value, left out, doubled…), and every usage message written in the
 * shells' source (`c.usage(…)`, `new UsageError(…)`), with interpolations as «…».
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { problems } from '../../../test/support/words';
import { UsageError } from '../cli-files';
import { GLOBAL_OPTIONS } from './globals';
import { parse, UNION_OPTIONS } from './parse';
import type { CommandDef, ValueSpec } from './spec';
import { AREAS, COMMANDS } from './table';

const LONG = 'x'.repeat(5000);
/** Wrong values for one option or argument of a kind. */
const WRONG: Record<ValueSpec<unknown>['kind'], string[]> = {
  string: ['', 'bad value !', 'Bad/Name', '-1', '..', LONG, '\u0007bell'],
  strings: ['', 'bad value !', 'label:', LONG],
  int: ['', 'ten', '-1', '1.5', '99999999999999999999'],
  boolean: [],
};

/** The usage error `argv` gets from the parser, or null when it parses. */
function usageOf(argv: string[]): string | null {
  try {
    parse(argv);
    return null;
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
}

/** A command line that parses for `c` (each required option and argument given a plain value), to be spoilt one part at a time. */
function fillers(c: CommandDef): { opts: string[]; args: string[] } {
  const opts = Object.entries(c.options ?? {})
    .filter(([, s]) => s.required)
    .flatMap(([n, s]) => [`--${n}`, s.kind === 'int' ? '1' : 'gpu1']);
  const args = Object.values(c.args ?? {})
    .filter((s) => s.required || s.variadic)
    .map((s) => (s.kind === 'int' ? '1' : 'gpu1'));
  return { opts, args };
}

function parserMessages(): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const note = (argv: string[]) => {
    const m = usageOf(argv);
    if (m !== null) seen.set(m, argv);
  };
  note(['no-such-area']);
  note(['hosts', 'no-such-command']);
  for (const a of AREAS) note([a.area]);
  for (const c of COMMANDS) {
    for (const w of [c.words, ...(c.aliases ?? [])].map((x) => x.split(' '))) {
      const { opts, args } = fillers(c);
      note(w); // everything required left out
      note([...w, ...args]); // required options left out
      note([...w, ...opts]); // required arguments left out
      note([...w, ...args, ...opts, 'surplus', 'more']);
      note([...w, ...args, ...opts, '--no-such-option']);
      note([...w, ...args, ...opts, '--password-files', 'f']);
      // Another command's option.
      const own = { ...GLOBAL_OPTIONS, ...(c.options ?? {}) };
      for (const n of Object.keys(UNION_OPTIONS)) if (!(n in own)) note([...w, ...args, ...opts, `--${n}=x`]);
      for (const [name, spec] of Object.entries(own)) {
        if (spec.kind === 'boolean') {
          note([...w, ...args, ...opts, `--${name}=yes`]);
          continue;
        }
        note([...w, ...args, ...opts, `--${name}`]);
        note([...w, ...args, ...opts, `--${name}`, '--json']);
        for (const bad of WRONG[spec.kind]) note([...w, ...args, ...opts, `--${name}=${bad}`]);
      }
      Object.values(c.args ?? {}).forEach((spec, i) => {
        for (const bad of WRONG[spec.kind]) {
          const spoilt = [...args];
          spoilt[i] = bad;
          note([...w, ...opts, ...spoilt]);
        }
      });
    }
  }
  return seen;
}

/** Every usage message written in the shells' source, with its file. */
function usageSites(): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  const dir = path.resolve(__dirname, '..');
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ts$/.test(e.name) && !/\.test\.ts$/.test(e.name)) {
        const src = fs.readFileSync(p, 'utf8');
        const re = /(?:\busage|new (?:UsageError|InputError))\(\s*(['"`])((?:\\.|(?!\1)[\s\S])*)\1/g;
        for (const m of src.matchAll(re)) out.push({ file: path.relative(dir, p), text: m[2]!.replace(/\$\{[^}]*\}/g, '«…»') });
      }
    }
  };
  walk(dir);
  return out;
}

describe("the CLI's usage errors in people's words", () => {
  it('the parser, given wrong input for every command, never names a channel or shows schema jargon', () => {
    const seen = parserMessages();
    // The walk reaches every kind of parser error, for every command.
    expect(seen.size).toBeGreaterThan(COMMANDS.length * 3);
    const all = [...seen.keys()];
    const kinds = [/^unknown command/, /^unknown option/, /needs a command/, /takes no option/, /needs a value/, /takes no value/, /must be a whole number/, /is not valid/, /one too many/, /needs --/];
    expect(kinds.filter((k) => !all.some((m) => k.test(m))).map(String)).toEqual([]);
    const bad = [...seen].flatMap(([m, argv]) => problems(m).map((why) => `airlock ${argv.join(' ').slice(0, 80)} → "${m.slice(0, 160)}" ${why}`));
    expect(bad).toEqual([]);
  });

  it('every usage message in the source says what to do without channel names or schema jargon', () => {
    const sites = usageSites();
    expect(sites.length).toBeGreaterThan(20);
    expect(sites.some((s) => s.file === 'cli/hosts.ts' && s.text === 'hosts add needs --address A')).toBe(true);
    const bad = sites.flatMap((s) => problems(s.text).map((why) => `${s.file}: "${s.text.slice(0, 120)}" ${why}`));
    expect(bad).toEqual([]);
  });

  it('the check catches a usage message that names a channel or shows schema jargon', () => {
    expect(problems('hosts add: hosts:add refused')).toEqual(['names a channel (hosts:add)']);
    expect(problems('--address "x" is not valid: Invalid string: must match pattern /^[a-z]+$/')).toHaveLength(1);
    expect(problems('hosts add needs --address A (see `airlock hosts add --help`)')).toEqual([]);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { areaOf, channelNames, getChannel, type ChannelName } from '../../../shared/contract/index';
import { ErrorCodes } from '../../../shared/domain/errors';
import { EXIT, EXIT_FOR_ERROR, exitFor } from './exit';
import { RUNNER_CHANNELS } from './globals';
import { areaHelp, commandHelp, overviewHelp, summaryOf } from './help';
import { UNION_OPTIONS } from './parse';
import { AREAS, BY_WORDS, COMMANDS, NOT_IN_CLI } from './table';

/** Areas of one feature whose commands share a file (and whose channels share a contract file): model access. */
const GROUPED: Record<string, string> = { principals: 'access', grants: 'access', enclaves: 'access', policy: 'access' };

const contractAreas = fs
  .readdirSync(path.resolve(__dirname, '../../../shared/contract'))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => f.replace(/\.ts$/, ''));

describe('the CLI command table', () => {
  it('reaches every channel of the contract, or says why not', () => {
    const reached = new Set<string>([...Object.keys(RUNNER_CHANNELS), ...COMMANDS.flatMap((c) => [...(c.channel ? [c.channel] : []), ...(c.alsoCalls ?? [])])]);
    const forgotten = channelNames.filter((n) => !reached.has(n) && !(n in NOT_IN_CLI));
    expect(forgotten, 'add a command for these channels in electron/shells/cli/<area>.ts, or list them in NOT_IN_CLI with the reason').toEqual([]);
    // The list holds only channels that exist and that no command calls.
    for (const n of Object.keys(NOT_IN_CLI)) {
      expect(channelNames, n).toContain(n);
      expect(reached.has(n), `${n} is reachable: take it out of NOT_IN_CLI`).toBe(false);
      expect(NOT_IN_CLI[n as ChannelName]!.length).toBeGreaterThan(10);
    }
  });

  it('the coverage check catches a channel nobody calls', () => {
    // The same check as above, on a table missing the hosts:remove command.
    const without = COMMANDS.filter((c) => c.words !== 'hosts remove');
    const reached = new Set<string>([...Object.keys(RUNNER_CHANNELS), ...without.flatMap((c) => [...(c.channel ? [c.channel] : []), ...(c.alsoCalls ?? [])])]);
    expect(channelNames.filter((n) => !reached.has(n) && !(n in NOT_IN_CLI))).toEqual(['hosts:remove']);
  });

  it('has one file per area, named as the contract file of its channels; each command calls its own area', () => {
    const channelAreas = [...new Set(channelNames.map(areaOf))];
    for (const a of AREAS) {
      expect(fs.existsSync(path.join(__dirname, `${GROUPED[a.area] ?? a.area}.ts`)), a.area).toBe(true);
      if (a.area === 'init' || a.area === 'serve') continue;
      expect(contractAreas, a.area).toContain(GROUPED[a.area] ?? a.area);
      for (const c of a.commands) {
        expect(c.words.split(' ')[0], c.words).toBe(a.area);
        expect(c.channel && areaOf(c.channel), c.words).toBe(a.area);
      }
    }
    // Every channel area has a CLI area, but for those with no command at all (each channel listed in NOT_IN_CLI or called from another area).
    const withCommands = new Set(AREAS.map((a) => a.area));
    expect(channelAreas.filter((a) => !withCommands.has(a)).sort()).toEqual(['ops', 'terminal']);
  });

  it('words and aliases are unique; users passwd runs session passwd', () => {
    const words = COMMANDS.flatMap((c) => [c.words, ...(c.aliases ?? [])]);
    expect(new Set(words).size).toBe(words.length);
    expect(BY_WORDS.get('users passwd')).toBe(BY_WORDS.get('session passwd'));
    expect(BY_WORDS.get('session passwd')!.channel).toBe('session:changePassword');
  });

  it('gives every option name one type across all commands', () => {
    // UNION_OPTIONS throws at import on a conflict; here, the shape of what it built.
    expect(UNION_OPTIONS.help).toMatchObject({ type: 'boolean', short: 'h' });
    expect(UNION_OPTIONS.role).toMatchObject({ type: 'string', multiple: true });
    expect(UNION_OPTIONS.port).toMatchObject({ type: 'string' });
  });

  it('a command under the two-person rule takes --reason', () => {
    for (const c of COMMANDS) {
      const guarded = [c.channel, ...(c.alsoCalls ?? [])].filter((n): n is ChannelName => !!n && !!getChannel(n).twoPerson);
      if (guarded.length) expect(Object.keys(c.options ?? {}), c.words).toContain('reason');
    }
  });

  it('every command has a summary, from its channel or its own', () => {
    for (const c of COMMANDS) expect(summaryOf(c).length, c.words).toBeGreaterThan(10);
  });
});

describe('the generated help', () => {
  it('lists every area and command with its channel summary', () => {
    const text = overviewHelp('/data');
    for (const c of COMMANDS) expect(text, c.words).toContain(`  ${c.words}`);
    expect(text).toContain(getChannel('hosts:scan').summary.slice(0, 40));
    expect(text).toContain('(also: users passwd)');
    expect(text).toMatch(/Exit codes: 0 done/);
  });

  it('shows a command with its usage, options, channel, roles and rules', () => {
    const add = commandHelp(BY_WORDS.get('hosts add')!);
    expect(add).toMatch(/^Usage: airlock hosts add NAME --address A \[--port P\] \[--user U\] \[--fingerprint SHA256:\.\.\.\]\n/);
    expect(add).toContain('Channel: hosts:add (roles: admin); also calls hosts:probe.');
    expect(add).toContain('--fingerprint SHA256:...');
    const create = commandHelp(BY_WORDS.get('users create')!);
    expect(create).toContain('Two-person rule (users:grantAdmin)');
    expect(create.replace(/\s+/g, ' ')).toContain('never from your own --password-file/AIRLOCK_PASSWORD');
    expect(commandHelp(BY_WORDS.get('users passwd')!)).toContain('airlock users passwd [--new-password-file F]   (the same command)');
    expect(commandHelp(BY_WORDS.get('init')!)).toContain('(no sign-in)');
    expect(areaHelp(AREAS.find((a) => a.area === 'users')!)).toContain('users passwd');
  });

  it('hides options kept only so old command lines parse', () => {
    expect(commandHelp(BY_WORDS.get('serve')!)).not.toContain('--open');
    expect(commandHelp(BY_WORDS.get('session passwd')!)).not.toContain('--generate-password');
  });
});

describe('exit codes', () => {
  it('maps every error code: INVALID_INPUT to 2, every other to 1', () => {
    expect(Object.keys(EXIT_FOR_ERROR).sort()).toEqual([...ErrorCodes].sort());
    for (const code of ErrorCodes) expect(exitFor(code), code).toBe(code === 'INVALID_INPUT' ? EXIT.usage : EXIT.failed);
    expect(exitFor('SOMETHING_NEWER')).toBe(EXIT.failed);
  });
});

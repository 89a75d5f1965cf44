import { getChannel } from '../../../shared/contract/index';
import { exitHelp } from './exit';
import { ENVIRONMENT_HELP, GLOBAL_OPTIONS } from './globals';
import type { AreaTable, CommandDef, Specs, ValueSpec } from './spec';
import { AREAS } from './table';

/**
 * The help, generated: from the command table (words, arguments, options, notes) and from the
 * contract (each channel's summary, roles, step-up and two-person declarations). Nothing here is
 * written per command.
 */

const WIDTH = 100;
const COL = 40;

/** `text` wrapped to WIDTH, every line after the first indented by `indent`. */
function wrap(text: string, indent: number, first = indent): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  let room = WIDTH - first;
  for (const w of words) {
    if (line && line.length + 1 + w.length > room) {
      lines.push(line);
      line = w;
      room = WIDTH - indent;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join('\n' + ' '.repeat(indent));
}

/** `  left   text…` in two columns; a long left side puts the text on the next line. */
function row(left: string, text: string, col = COL): string {
  const head = `  ${left}`;
  if (!text) return head + '\n';
  if (head.length + 2 > col) return `${head}\n${' '.repeat(col)}${wrap(text, col)}\n`;
  return `${head.padEnd(col)}${wrap(text, col)}\n`;
}

const optUsage = (name: string, s: ValueSpec<unknown>) => (s.kind === 'boolean' ? `--${name}` : `--${name} ${s.metavar}${s.kind === 'strings' ? '...' : ''}`);
const argUsage = (s: ValueSpec<unknown>) => (s.variadic ? `[${s.metavar}...]` : s.required ? s.metavar : `[${s.metavar}]`);
const visible = (o: Specs | undefined) => Object.entries(o ?? {}).filter(([, s]) => !s.hidden);

/** `hosts add NAME --address A [options]` (short) or with every option spelled out (full). */
export function usageOf(cmd: CommandDef, full = false, words = cmd.words): string {
  const parts = [words, ...Object.values(cmd.args ?? {}).map(argUsage)];
  const opts = visible(cmd.options);
  for (const [n, s] of opts) if (s.required) parts.push(optUsage(n, s));
  const optional = opts.filter(([, s]) => !s.required);
  if (optional.length) parts.push(full ? optional.map(([n, s]) => `[${optUsage(n, s)}]`).join(' ') : '[options]');
  return parts.join(' ');
}

export function summaryOf(cmd: CommandDef): string {
  return cmd.summary ?? (cmd.channel ? getChannel(cmd.channel).summary : '');
}

/** What the contract says about the channel: who may call it, step-up, the two-person rule. */
function contractLines(cmd: CommandDef): string {
  if (!cmd.channel) return '';
  const def = getChannel(cmd.channel);
  const who = def.roles === 'public' ? 'no sign-in' : `roles: ${def.roles.join(', ')}`;
  const also = cmd.alsoCalls?.length ? `; also calls ${cmd.alsoCalls.join(', ')}` : '';
  let text = `Channel: ${cmd.channel} (${who})${also}.\n`;
  if (def.stepUp) text += wrap('Sensitive (step-up): it needs a fresh sign-in, which every CLI run is.', 0) + '\n';
  if (def.twoPerson) {
    text +=
      wrap(
        `Two-person rule (${def.twoPerson}): when the policy applies, the call is refused with APPROVAL_REQUIRED; with --reason R the command files it as a request instead (exit 3), a second person runs \`airlock approvals approve ID --reason R\`, then you run \`airlock approvals execute ID\`.`,
        0,
      ) + '\n';
  }
  return text;
}

function optionRows(specs: Specs): string {
  return visible(specs)
    .map(([n, s]) => row(optUsage(n, s), `${s.help}${s.required ? ' (required)' : ''}`, 28))
    .join('');
}

const GLOBAL_LINE = `Global options: ${Object.entries(GLOBAL_OPTIONS)
  .filter(([n]) => n !== 'help')
  .map(([n, s]) => optUsage(n, s))
  .join(', ')} (see \`airlock --help\`).\n`;

export function commandHelp(cmd: CommandDef): string {
  let text = `Usage: airlock ${usageOf(cmd, true)}\n`;
  for (const a of cmd.aliases ?? []) text += `       airlock ${usageOf(cmd, true, a)}   (the same command)\n`;
  text += `\n${wrap(summaryOf(cmd), 0)}\n\n${contractLines(cmd)}`;
  const args = Object.values(cmd.args ?? {});
  if (args.length) text += `\nArguments:\n${args.map((s) => row(argUsage(s), s.help, 28)).join('')}`;
  if (visible(cmd.options).length) text += `\nOptions:\n${optionRows(cmd.options!)}`;
  if (cmd.notes?.length) text += `\nNotes:\n${cmd.notes.map((n) => `  - ${wrap(n, 4, 4)}\n`).join('')}`;
  if (cmd.failsWhen) text += `\nExit 1 also when ${cmd.failsWhen}.\n`;
  return `${text}\n${wrap(GLOBAL_LINE, 0)}\n`;
}

export function areaHelp(area: AreaTable): string {
  let text = `airlock ${area.area}: ${area.about}\n\n`;
  for (const cmd of area.commands) {
    text += row(usageOf(cmd, true), summaryOf(cmd));
    const def = cmd.channel ? getChannel(cmd.channel) : null;
    const facts = [def ? (def.roles === 'public' ? 'no sign-in' : `roles: ${def.roles.join(', ')}`) : null, ...(cmd.aliases ?? []).map((a) => `alias: ${a}`)].filter(Boolean);
    if (facts.length) text += `${' '.repeat(COL)}${wrap(`(${facts.join('; ')})`, COL)}\n`;
    for (const n of cmd.notes ?? []) text += `${' '.repeat(COL)}${wrap(n, COL)}\n`;
  }
  for (const other of AREAS.filter((a) => a !== area)) {
    for (const cmd of other.commands) {
      for (const a of (cmd.aliases ?? []).filter((w) => w.split(' ')[0] === area.area)) text += row(a, `the same as \`airlock ${cmd.words}\`: ${summaryOf(cmd)}`);
    }
  }
  return `${text}\nOne command's arguments, options and rules: \`airlock ${area.area} COMMAND --help\`.\n`;
}

export function overviewHelp(dataDirDefault: string): string {
  let text =
    'airlock <area> <command> [arguments] [options]\n' +
    'Each command calls one channel of the core (the same ones the console uses), as you, and is audited.\n' +
    '`airlock AREA --help`: an area\'s commands; `airlock AREA COMMAND --help`: a command\'s options, roles, rules.\n';
  for (const area of AREAS) {
    text += area.commands.length === 1 && area.commands[0]!.words === area.area ? '\n' : `\n${area.area} — ${area.about}\n`;
    for (const cmd of area.commands) text += row(usageOf(cmd), summaryOf(cmd) + (cmd.aliases?.length ? ` (also: ${cmd.aliases.join(', ')})` : ''));
  }
  const globals = Object.entries(GLOBAL_OPTIONS).map(([n, s]) => row(optUsage(n, s), n === 'data' ? `data directory (default: ${dataDirDefault}; or AIRLOCK_DATA)` : s.help, 28));
  return `${text}\nGlobal options:\n${globals.join('')}\n${ENVIRONMENT_HELP}\n${exitHelp()}`;
}

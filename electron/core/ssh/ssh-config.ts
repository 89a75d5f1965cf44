import SSHConfig, { LineType } from 'ssh-config';
import type { Line } from 'ssh-config';
import { sanitizeHostText } from './sanitize';

export interface SshConfigEntry {
  /** The `Host` alias; it becomes the host's name in Airlock. */
  alias: string;
  /** Where to connect: `HostName`, or the alias when there is none. */
  hostName: string;
  port: number;
  user: string | null;
  /** Informative only: Airlock authenticates with its own identity or the agent, never a path from a file. */
  identityFile: string | null;
  proxyJump: string | null;
  /** 1-based line of the `Host` line that introduced the alias. */
  line: number;
}

export interface SshConfigSkipped {
  line: number;
  entry: string;
  reason: string;
}

export interface SshConfigParse {
  entries: SshConfigEntry[];
  skipped: SshConfigSkipped[];
}

export const SSH_CONFIG_MAX_LINES = 50_000;
export const SSH_CONFIG_MAX_LINE_LENGTH = 4096;
const MAX_ENTRIES = 10_000;

// The same rules as the contract's HostName, Address and SshUser: values from a file end up in
// commands, audit records and the UI, so anything with spaces or shell metacharacters is refused.
const ALIAS_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ADDRESS_RE = /^[A-Za-z0-9.:_-]{1,253}$/;
const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
const JUMP_RE = /^[A-Za-z0-9@.:_,[\]-]{1,512}$/;

function show(s: string): string {
  return sanitizeHostText(s, 120);
}

/**
 * OpenSSH's `match_pattern`: `*` any run, `?` exactly one character, case-sensitive (as `ssh -G`
 * shows: `Host GPU03` does not apply to `gpu03`). Iterative with single-star backtracking, so a
 * hostile pattern costs O(n·m) at most.
 */
export function globMatch(pattern: string, text: string): boolean {
  const p = pattern;
  const t = text;
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === t[ti]))) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ti;
    } else if (star >= 0) {
      pi = star + 1;
      ti = ++mark;
    } else return false;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** A `Host` line matches when any positive pattern matches and no negated one does. */
function hostLineMatches(patterns: string[], alias: string): boolean {
  let hit = false;
  for (const pat of patterns) {
    if (pat.startsWith('!')) {
      if (globMatch(pat.slice(1), alias)) return false;
    } else if (globMatch(pat, alias)) hit = true;
  }
  return hit;
}

function values(line: { value: unknown }): string[] {
  const v = line.value;
  if (typeof v === 'string') return v ? [v] : [];
  if (Array.isArray(v)) return v.map((x) => (x && typeof (x as { val?: unknown }).val === 'string' ? (x as { val: string }).val : '')).filter(Boolean);
  return [];
}

type Block =
  | { kind: 'global'; line: { param: string; value: unknown }; lineNo: number }
  | { kind: 'host'; patterns: string[]; body: Line[]; lineNo: number }
  | { kind: 'match' };

function isDirective(l: Line): l is Extract<Line, { param: string }> {
  return l.type === LineType.DIRECTIVE;
}

/**
 * Parse an OpenSSH client config into concrete host entries. Only literal `Host` aliases become
 * entries; each gets the values OpenSSH would give it (first value wins, global lines and matching
 * wildcard blocks included). `Match` blocks and `Include` are not evaluated: both depend on the
 * machine the file came from. Never throws, whatever the input.
 */
export function parseSshConfig(text: string): SshConfigParse {
  const entries: SshConfigEntry[] = [];
  const skipped: SshConfigSkipped[] = [];
  if (typeof text !== 'string') return { entries, skipped };

  // The library throws on a single bad line (an unclosed quote, `Host` without a pattern), which
  // would lose the whole file; so each line is tried alone first and bad ones are dropped.
  const lines = text.split(/\r\n|\r|\n/, SSH_CONFIG_MAX_LINES + 1);
  const clean: string[] = [];
  // Line numbers of directives in file order: the parsed tree has none, but keeps that order.
  const directiveLines: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    if (i >= SSH_CONFIG_MAX_LINES) {
      skipped.push({ line: lineNo, entry: '', reason: `more than ${SSH_CONFIG_MAX_LINES} lines: the rest was not read` });
      break;
    }
    const raw = lines[i]!;
    if (raw.length > SSH_CONFIG_MAX_LINE_LENGTH) {
      skipped.push({ line: lineNo, entry: show(raw), reason: 'line too long' });
      clean.push('');
      continue;
    }
    let one: SSHConfig;
    try {
      one = SSHConfig.parse(raw);
    } catch (e) {
      skipped.push({ line: lineNo, entry: show(raw), reason: `could not be parsed: ${show(String((e as Error)?.message ?? e))}` });
      clean.push('');
      continue;
    }
    const first = one[0];
    if (first && isDirective(first) && first.param) directiveLines.push(lineNo);
    clean.push(raw);
  }

  let config: SSHConfig;
  try {
    config = SSHConfig.parse(clean.join('\n'));
  } catch (e) {
    skipped.push({ line: 0, entry: '', reason: `the file could not be parsed: ${show(String((e as Error)?.message ?? e))}` });
    return { entries, skipped };
  }

  const blocks: Block[] = [];
  let next = 0;
  const lineOf = () => directiveLines[next++] ?? 0;
  const includes = (d: { param: string; value: unknown }, lineNo: number) => {
    if (/^include$/i.test(d.param)) {
      skipped.push({ line: lineNo, entry: show(`Include ${values(d).join(' ')}`), reason: 'Include is not followed: import each file on its own' });
    }
  };
  for (const l of config) {
    if (!isDirective(l)) continue;
    const lineNo = lineOf();
    if ('config' in l) {
      const body = [...(l.config as Line[])];
      for (const d of body) if (isDirective(d)) includes(d, lineOf());
      if (/^host$/i.test(l.param)) {
        blocks.push({ kind: 'host', patterns: values(l), body, lineNo });
      } else {
        skipped.push({ line: lineNo, entry: show(`Match ${values(l).join(' ')}`), reason: 'Match blocks are not evaluated: they depend on the machine the file came from' });
        blocks.push({ kind: 'match' });
      }
    } else {
      includes(l, lineNo);
      blocks.push({ kind: 'global', line: l, lineNo });
    }
  }

  const seen = new Set<string>();
  for (const b of blocks) {
    if (b.kind !== 'host') continue;
    for (const pat of b.patterns) {
      if (pat.startsWith('!')) continue;
      if (/[*?]/.test(pat)) {
        skipped.push({ line: b.lineNo, entry: show(`Host ${pat}`), reason: 'wildcard pattern: it sets options for other hosts, it is not a host' });
        continue;
      }
      if (seen.has(pat)) continue;
      seen.add(pat);
      if (entries.length >= MAX_ENTRIES) {
        skipped.push({ line: b.lineNo, entry: show(pat), reason: `more than ${MAX_ENTRIES} hosts` });
        continue;
      }
      const r = evaluate(pat, blocks);
      if (typeof r === 'string') skipped.push({ line: b.lineNo, entry: show(pat), reason: r });
      else entries.push({ ...r, line: b.lineNo });
    }
  }
  return { entries, skipped };
}

/** The options OpenSSH would use for `alias`, validated; a string is the reason it was refused. */
function evaluate(alias: string, blocks: Block[]): Omit<SshConfigEntry, 'line'> | string {
  if (!ALIAS_RE.test(alias)) return 'alias not usable as a host name (letters, digits, _ . - ; at most 64)';
  const got = new Map<string, string[]>();
  const take = (d: { param: string; value: unknown }) => {
    let k = d.param.toLowerCase();
    // ProxyJump and ProxyCommand share one slot in OpenSSH: whichever comes first wins.
    if (k === 'proxyjump' || k === 'proxycommand') {
      if (got.has('proxy')) return;
      got.set('proxy', [k]);
    }
    if (!got.has(k)) got.set(k, values(d));
  };
  for (const b of blocks) {
    if (b.kind === 'global') take(b.line);
    else if (b.kind === 'host' && hostLineMatches(b.patterns, alias)) {
      for (const d of b.body) if (isDirective(d)) take(d);
    }
  }
  const one = (k: string): string | null => {
    const v = got.get(k);
    return v && v.length ? v.join(' ') : null;
  };

  const proxyKind = got.get('proxy')?.[0];
  if (proxyKind === 'proxycommand' && one('proxycommand') && one('proxycommand')!.toLowerCase() !== 'none') {
    return 'uses ProxyCommand, which Airlock does not run';
  }

  let hostName = one('hostname') ?? alias;
  if (hostName.includes('%')) {
    const expanded = hostName.replace(/%(.)/g, (_, c: string) => (c === 'h' ? alias : c === '%' ? '%' : '\u0000'));
    if (expanded.includes('\u0000')) return `HostName ${show(hostName)} uses a % token Airlock cannot expand`;
    hostName = expanded;
  }
  if (!ADDRESS_RE.test(hostName)) return `HostName ${show(hostName)} is not a host name or address`;
  // ssh lower-cases the name it connects to; doing the same keeps one host from being enrolled twice.
  hostName = hostName.toLowerCase();

  let port = 22;
  const p = one('port');
  if (p !== null) {
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) return `port out of range: ${show(p)}`;
    port = Number(p);
  }

  const user = one('user');
  if (user !== null && !USER_RE.test(user)) return `User ${show(user)} is not a POSIX user name`;

  const idf = one('identityfile');
  const identityFile = idf && idf.toLowerCase() !== 'none' ? sanitizeHostText(idf, 1024) || null : null;

  const pj = proxyKind === 'proxyjump' ? one('proxyjump') : null;
  let proxyJump: string | null = null;
  if (pj && pj.toLowerCase() !== 'none') {
    if (!JUMP_RE.test(pj)) return `ProxyJump ${show(pj)} is not a list of [user@]host[:port]`;
    proxyJump = pj;
  }

  return { alias, hostName, port, user, identityFile, proxyJump };
}

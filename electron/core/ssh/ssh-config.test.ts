import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { globMatch, parseSshConfig, SSH_CONFIG_MAX_LINES } from './ssh-config';

const dir = mkdtempSync(join(tmpdir(), 'airlock-sc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What OpenSSH itself makes of an alias: `ssh -G` evaluates the config and prints it, without connecting. */
function sshG(configText: string, alias: string): Record<string, string> {
  const f = join(dir, 'config');
  writeFileSync(f, configText);
  const out = execFileSync('ssh', ['-G', '-F', f, alias], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const r: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0 && !(line.slice(0, i) in r)) r[line.slice(0, i)] = line.slice(i + 1);
  }
  return r;
}

const REALISTIC = `# ~/.ssh/config of an on-site admin
User ops

Host bastion
    HostName 203.0.113.10
    User jump
    Port 2222

Host gpu-a01 gpu-a02
    HostName %h.dc1.example
    ProxyJump bastion
    IdentityFile ~/.ssh/id_ed25519_cluster

Host gpu-b01
    HostName=10.20.1.1
    Port=22022

Host "quoted-name"
    HostName 10.20.1.9

Host *.dc1.example !gpu-a02.dc1.example
    Port 2200

Host gpu-*
    User admin
    ProxyCommand ssh -W %h:%p other

Match host legacy exec "rm -rf /"
    User legacy

Host legacy
    HostName 10.20.9.9
    ProxyCommand none

Host *
    ServerAliveInterval 30
    Include other.conf
`;

describe('parseSshConfig', () => {
  it('reads a realistic config: concrete aliases only, OpenSSH precedence, unsupported parts reported', () => {
    const { entries, skipped } = parseSshConfig(REALISTIC);
    expect(entries.map(({ line: _line, ...e }) => e)).toEqual([
      { alias: 'bastion', hostName: '203.0.113.10', port: 2222, user: 'ops', identityFile: null, proxyJump: null },
      { alias: 'gpu-a01', hostName: 'gpu-a01.dc1.example', port: 22, user: 'ops', identityFile: '~/.ssh/id_ed25519_cluster', proxyJump: 'bastion' },
      { alias: 'gpu-a02', hostName: 'gpu-a02.dc1.example', port: 22, user: 'ops', identityFile: '~/.ssh/id_ed25519_cluster', proxyJump: 'bastion' },
      { alias: 'quoted-name', hostName: '10.20.1.9', port: 22, user: 'ops', identityFile: null, proxyJump: null },
      { alias: 'legacy', hostName: '10.20.9.9', port: 22, user: 'ops', identityFile: null, proxyJump: null },
    ]);
    expect(entries.map((e) => e.line)).toEqual([4, 9, 9, 18, 31]);
    // gpu-b01 gets a ProxyCommand from `Host gpu-*`; gpu-a0x do not, their ProxyJump came first.
    expect(skipped).toContainEqual({ line: 14, entry: 'gpu-b01', reason: 'uses ProxyCommand, which Airlock does not run' });
    const reasons = skipped.map((s) => `${s.line} ${s.entry}: ${s.reason}`);
    expect(reasons).toContain('28 Match host legacy exec rm -rf /: Match blocks are not evaluated: they depend on the machine the file came from');
    expect(reasons).toContain('37 Include other.conf: Include is not followed: import each file on its own');
    expect(reasons).toContain('21 Host *.dc1.example: wildcard pattern: it sets options for other hosts, it is not a host');
    expect(reasons).toContain('24 Host gpu-*: wildcard pattern: it sets options for other hosts, it is not a host');
    expect(reasons).toContain('35 Host *: wildcard pattern: it sets options for other hosts, it is not a host');

    // The same answers as OpenSSH for every alias it would connect to directly.
    for (const e of entries) {
      const g = sshG(REALISTIC, e.alias);
      expect([e.alias, g.hostname, g.port, g.user]).toEqual([e.alias, e.hostName, String(e.port), e.user ?? userInfo().username]);
    }
  });

  it('skips hosts behind a ProxyCommand: Airlock never runs commands from a config file', () => {
    const { entries, skipped } = parseSshConfig('Host gpu-x\n  ProxyCommand nc %h %p\n');
    expect(entries).toEqual([]);
    expect(skipped).toEqual([{ line: 1, entry: 'gpu-x', reason: 'uses ProxyCommand, which Airlock does not run' }]);
  });

  it('validates values', () => {
    const text = [
      'Host p0\n Port 0',
      'Host p1\n Port 65536',
      'Host p2\n Port 22x',
      'Host h1\n HostName evil;reboot',
      'Host h2\n HostName "a b"',
      'Host h3\n HostName $(curl x)',
      'Host h4\n HostName %u.example',
      'Host u1\n User "root; id"',
      'Host j1\n ProxyJump a b|c',
      'Host bad_alias!',
      'Host -leading-dash',
      'Host ' + 'a'.repeat(65),
      'Host ok\n Port 65535',
    ].join('\n');
    const { entries, skipped } = parseSshConfig(text);
    expect(entries.map((e) => [e.alias, e.port])).toEqual([['ok', 65535]]);
    expect(skipped.map((s) => `${s.entry}: ${s.reason}`)).toEqual([
      'p0: port out of range: 0',
      'p1: port out of range: 65536',
      'p2: port out of range: 22x',
      'h1: HostName evil;reboot is not a host name or address',
      'h2: HostName a b is not a host name or address',
      'h3: HostName $(curl x) is not a host name or address',
      'h4: HostName %u.example uses a % token Airlock cannot expand',
      'u1: User root; id is not a POSIX user name',
      'j1: ProxyJump a b|c is not a list of [user@]host[:port]',
      'bad_alias!: alias not usable as a host name (letters, digits, _ . - ; at most 64)',
      '-leading-dash: alias not usable as a host name (letters, digits, _ . - ; at most 64)',
      `${'a'.repeat(65)}: alias not usable as a host name (letters, digits, _ . - ; at most 64)`,
    ]);
  });

  it('survives lines the library cannot parse, and reports them', () => {
    const text = 'Host ok1\n  HostName 10.0.0.1\nHost\nHost "unclosed\n  User "broken\nHost ok2\n';
    const { entries, skipped } = parseSshConfig(text);
    expect(entries.map((e) => [e.alias, e.hostName, e.line])).toEqual([
      ['ok1', '10.0.0.1', 1],
      ['ok2', 'ok2', 6],
    ]);
    expect(skipped.map((s) => s.line)).toEqual([3, 4, 5]);
    for (const s of skipped) expect(s.reason).toMatch(/^could not be parsed/);
  });

  it('neutralises escape sequences in what it reports', () => {
    const { skipped } = parseSshConfig('Host x\u001b]0;pwn\u0007y\n  HostName \u001b[2Jevil\n');
    for (const s of skipped) expect(`${s.entry}${s.reason}`).not.toMatch(/[\u0000-\u001f]/);
  });

  it('first value wins, HostName defaults to the alias, Port to 22, user to null', () => {
    const { entries } = parseSshConfig('Host a\n  Port 2000\n  Port 3000\nHost a\n  Port 4000\n  User x\nHost b\n');
    expect(entries.map(({ line: _l, ...e }) => e)).toEqual([
      { alias: 'a', hostName: 'a', port: 2000, user: 'x', identityFile: null, proxyJump: null },
      { alias: 'b', hostName: 'b', port: 22, user: null, identityFile: null, proxyJump: null },
    ]);
  });

  it('caps line count and length', () => {
    const r = parseSshConfig('Host a\n'.repeat(SSH_CONFIG_MAX_LINES + 5));
    expect(r.entries).toHaveLength(1);
    expect(r.skipped.at(-1)!.reason).toMatch(/rest was not read/);
    expect(parseSshConfig('Host ' + 'x'.repeat(10_000)).skipped[0]!.reason).toBe('line too long');
  });

  it('never throws on arbitrary text', () => {
    const piece = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('Host ', 'Match ', 'HostName ', 'Port ', 'User ', 'ProxyJump ', 'Include ', '"', '\\', '=', '#', '*', '!', '%h', '\n', '\r', '\t'),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
        const r = parseSshConfig(parts.join(''));
        for (const e of r.entries) {
          expect(e.hostName).toMatch(/^[a-z0-9.:_-]+$/);
          expect(Number.isInteger(e.port) && e.port >= 1 && e.port <= 65535).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => void parseSshConfig(s)), { numRuns: 1000 });
  });

  it('agrees with ssh -G on generated configs', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
    const directive = fc.oneof(
      name.map((n) => `HostName ${n}.example`),
      fc.constant('HostName %h.dc'),
      fc.ipV4().map((ip) => `HostName ${ip}`),
      fc.integer({ min: 1, max: 65535 }).map((p) => `Port ${p}`),
      name.map((n) => `User ${n}`),
      name.map((n) => `ProxyJump ${n}`),
    );
    const pattern = fc.oneof({ weight: 4, arbitrary: name }, { weight: 1, arbitrary: name.map((n) => `${n.slice(0, 2)}*`) }, { weight: 1, arbitrary: fc.constant('*') });
    const block = fc.record({ patterns: fc.array(pattern, { minLength: 1, maxLength: 3 }), body: fc.array(directive, { maxLength: 4 }) });
    const config = fc.record({ global: fc.array(directive, { maxLength: 2 }), blocks: fc.array(block, { minLength: 1, maxLength: 5 }) });
    fc.assert(
      fc.property(config, (c) => {
        const text = [...c.global, ...c.blocks.flatMap((b) => [`Host ${b.patterns.join(' ')}`, ...b.body.map((d) => `  ${d}`)])].join('\n') + '\n';
        const { entries } = parseSshConfig(text);
        for (const e of entries) {
          const g = sshG(text, e.alias);
          expect({ hostName: e.hostName, port: String(e.port), user: e.user ?? userInfo().username, proxyJump: e.proxyJump ?? undefined }).toEqual({
            hostName: g.hostname,
            port: g.port,
            user: g.user,
            proxyJump: g.proxyjump,
          });
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('globMatch', () => {
  it('follows OpenSSH pattern rules', () => {
    expect(globMatch('gpu-*', 'gpu-01')).toBe(true);
    expect(globMatch('gpu-?1', 'gpu-01')).toBe(true);
    expect(globMatch('gpu-?1', 'gpu-1')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('a*b*c', 'aXXbYYc')).toBe(true);
    expect(globMatch('GPU', 'gpu')).toBe(false);
    expect(globMatch('a.b', 'aXb')).toBe(false);
  });

  it('stays fast on hostile patterns', () => {
    const t = Date.now();
    globMatch('*a'.repeat(500) + 'b', 'a'.repeat(250));
    expect(Date.now() - t).toBeLessThan(200);
  });
});

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINGERPRINT_RE } from './fingerprint';
import { hashedEntryMatches, hashHostName, keyTypeRank, KNOWN_HOSTS_MAX_LINES, matchesHashedHost, parseKnownHosts, REASONS } from './known-hosts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-kh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Key {
  type: string;
  b64: string;
  fingerprint: string;
}
const keys: Key[] = [];
let made = 0;

function keygen(type: string, bits?: number): Key {
  const f = join(dir, `k${made++}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-f', f]);
  const [t, b64] = readFileSync(`${f}.pub`, 'utf8').trim().split(' ') as [string, string];
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${f}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { type: t, b64, fingerprint };
}

beforeAll(() => {
  keys.push(keygen('ed25519'), keygen('ecdsa', 256), keygen('rsa', 2048), keygen('ecdsa', 384));
});

describe('parseKnownHosts', () => {
  it('reads a realistic file, with fingerprints identical to ssh-keygen -lf', () => {
    const [ed, ec, rsa] = keys as [Key, Key, Key];
    const text = [
      '# managed by hand',
      '',
      `gpu-01.lab,10.20.0.11 ${ed.type} ${ed.b64}`,
      `gpu-01.lab,10.20.0.11 ${ec.type} ${ec.b64} added 2024-01-02`,
      `[10.20.0.12]:2222,[gpu-02.lab]:2222 ${rsa.type} ${rsa.b64}`,
      `   10.20.0.13\t${ed.type}   ${ed.b64}   `,
      `fe80::1 ${ed.type} ${ed.b64}`,
      `[::1]:2200 ${ec.type} ${ec.b64}`,
    ].join('\r\n');
    const f = join(dir, 'known_hosts');
    writeFileSync(f, text.replace(/\r\n/g, '\n'));
    const oracle = execFileSync('ssh-keygen', ['-lf', f], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[1]);

    const { entries, skipped } = parseKnownHosts(text);
    expect(skipped).toEqual([]);
    expect(entries.map((e) => e.fingerprint)).toEqual(oracle);
    expect(entries).toEqual([
      { hosts: ['gpu-01.lab', '10.20.0.11'], port: 22, keyType: 'ssh-ed25519', fingerprint: ed.fingerprint, line: 3 },
      { hosts: ['gpu-01.lab', '10.20.0.11'], port: 22, keyType: 'ecdsa-sha2-nistp256', fingerprint: ec.fingerprint, line: 4 },
      { hosts: ['10.20.0.12', 'gpu-02.lab'], port: 2222, keyType: 'ssh-rsa', fingerprint: rsa.fingerprint, line: 5 },
      { hosts: ['10.20.0.13'], port: 22, keyType: 'ssh-ed25519', fingerprint: ed.fingerprint, line: 6 },
      { hosts: ['fe80::1'], port: 22, keyType: 'ssh-ed25519', fingerprint: ed.fingerprint, line: 7 },
      { hosts: ['::1'], port: 2200, keyType: 'ecdsa-sha2-nistp256', fingerprint: ec.fingerprint, line: 8 },
    ]);
  });

  it('splits one line listing a host on several ports into one entry per port', () => {
    const [ed] = keys as [Key];
    const { entries } = parseKnownHosts(`a,[a]:2222,b,[b]:2222,[c]:22 ${ed.type} ${ed.b64}`);
    expect(entries.map((e) => [e.port, e.hosts])).toEqual([
      [22, ['a', 'b', 'c']],
      [2222, ['a', 'b']],
    ]);
  });

  it('reports @cert-authority, unknown markers, wildcards and negations as not supported, by line', () => {
    const [ed] = keys as [Key];
    const text = [
      `@cert-authority *.lab ${ed.type} ${ed.b64}`,
      `@bogus gpu-09 ${ed.type} ${ed.b64}`,
      `*.lab,gpu-1?,!gpu-13,gpu-20,[gpu-3*]:2222 ${ed.type} ${ed.b64}`,
    ].join('\n');
    const { entries, hashed, revoked, skipped } = parseKnownHosts(text);
    expect(entries).toEqual([{ hosts: ['gpu-20'], port: 22, keyType: ed.type, fingerprint: ed.fingerprint, line: 3 }]);
    expect(hashed).toEqual([]);
    expect(revoked).toEqual([]);
    expect(skipped.map((s) => [s.line, s.entry.slice(0, 15), s.reason])).toEqual([
      [1, '@cert-authority', REASONS.certAuthority],
      [2, '@bogus gpu-09 s', 'unknown marker @bogus: not supported'],
      [3, '*.lab', REASONS.wildcard],
      [3, 'gpu-1?', REASONS.wildcard],
      [3, '!gpu-13', REASONS.negated],
      [3, '[gpu-3*]:2222', REASONS.wildcard],
    ]);
    expect(REASONS.certAuthority).toMatch(/not supported/);
    expect(REASONS.wildcard).toMatch(/not supported/);
    expect(REASONS.negated).toMatch(/not supported/);
  });

  it('keeps hashed host names with their key, salt and hash as written', () => {
    const [ed, ec] = keys as [Key, Key];
    const salt = randomBytes(20);
    const h1 = hashHostName('10.0.0.5', 22, salt);
    const h2 = hashHostName('10.0.0.6', 2222, randomBytes(20));
    const text = `${h1} ${ed.type} ${ed.b64}\r\n# comment\r\n\r\n${h2},plain-host ${ec.type} ${ec.b64} comment text\r\n`;
    const { entries, hashed, skipped } = parseKnownHosts(text);
    expect(skipped).toEqual([]);
    expect(entries).toEqual([{ hosts: ['plain-host'], port: 22, keyType: ec.type, fingerprint: ec.fingerprint, line: 4 }]);
    expect(hashed).toEqual([
      { salt: salt.toString('base64'), hash: h1.split('|')[3], keyType: ed.type, key: ed.b64, fingerprint: ed.fingerprint, line: 1 },
      { salt: h2.split('|')[2], hash: h2.split('|')[3], keyType: ec.type, key: ec.b64, fingerprint: ec.fingerprint, line: 4 },
    ]);
    expect(hashedEntryMatches(hashed[0]!, '10.0.0.5', 22)).toBe(true);
    expect(hashedEntryMatches(hashed[0]!, '10.0.0.5', 2222)).toBe(false);
    expect(hashedEntryMatches(hashed[1]!, '10.0.0.6', 2222)).toBe(true);
    expect(hashedEntryMatches(hashed[1]!, '10.0.0.6', 22)).toBe(false);
  });

  it('reports malformed hashed names, each by line, and keeps the good ones', () => {
    const [ed] = keys as [Key];
    const good = hashHostName('a', 22, randomBytes(20));
    const b20 = randomBytes(20).toString('base64');
    const text = [
      `|1|${b20}|${randomBytes(19).toString('base64')} ${ed.type} ${ed.b64}`, // hash of the wrong length
      `|1|abc=|def= ${ed.type} ${ed.b64}`, // not 20 bytes
      `|1|${b20.slice(0, -2)}!!|${b20} ${ed.type} ${ed.b64}`, // bad base64
      `|1|${b20} ${ed.type} ${ed.b64}`, // no hash
      `|2|${b20}|${b20} ${ed.type} ${ed.b64}`, // unknown kind
      `|1|${b20}|${b20}|x ${ed.type} ${ed.b64}`, // extra field
      `${good} ${ed.type} ${ed.b64}`,
    ].join('\n');
    const { hashed, skipped } = parseKnownHosts(text);
    expect(hashed.map((h) => h.line)).toEqual([7]);
    expect(skipped.map((s) => [s.line, s.reason])).toEqual([
      [1, REASONS.hashedMalformed],
      [2, REASONS.hashedMalformed],
      [3, REASONS.hashedMalformed],
      [4, REASONS.hashedMalformed],
      [5, REASONS.hashedUnknown],
      [6, REASONS.hashedMalformed],
    ]);
  });

  it('reads @revoked lines as keys to refuse, with their own line errors', () => {
    const [ed, ec] = keys as [Key, Key];
    const text = [
      `@revoked * ${ed.type} ${ed.b64}`,
      `@revoked ${hashHostName('h', 22, randomBytes(20))} ${ec.type} ${ec.b64}`,
      `@revoked * ${ed.type}`,
      `@revoked * ${ed.type} ${ed.b64.slice(0, 10)}%%${ed.b64.slice(12)}`,
      `@revoked * ssh-rsa ${ed.b64}`,
    ].join('\n');
    const { entries, hashed, revoked, skipped } = parseKnownHosts(text);
    expect(entries).toEqual([]);
    expect(hashed).toEqual([]);
    expect(revoked).toEqual([
      { hosts: '*', keyType: ed.type, key: ed.b64, fingerprint: ed.fingerprint, line: 1 },
      expect.objectContaining({ keyType: ec.type, key: ec.b64, fingerprint: ec.fingerprint, line: 2 }),
    ]);
    expect(skipped.map((s) => [s.line, s.reason])).toEqual([
      [3, 'not a known_hosts line (expected: @revoked hosts key-type key)'],
      [4, 'bad base64 in key'],
      [5, 'key type mismatch: line says ssh-rsa, key is ssh-ed25519'],
    ]);
  });

  it('accepts CRLF, lone CR, tabs, comments and blank lines, counting lines as an editor does', () => {
    const [ed] = keys as [Key];
    const text = `# one\r\n\r\n\t\r\nh1 ${ed.type} ${ed.b64}\rh2\t${ed.type}\t${ed.b64}\r\n  # indented comment\n`;
    const { entries, skipped } = parseKnownHosts(text);
    expect(skipped).toEqual([]);
    expect(entries.map((e) => [e.line, e.hosts])).toEqual([
      [4, ['h1']],
      [5, ['h2']],
    ]);
  });

  it('skips bad base64, mismatched types, unknown types, short lines and bad hosts', () => {
    const [ed, , rsa] = keys as [Key, Key, Key];
    const text = [
      `h1 ${ed.type} ${ed.b64.slice(0, 20)}!!${ed.b64.slice(22)}`,
      `h2 ${rsa.type} ${ed.b64}`,
      `h3 ${ed.type} ${ed.b64.slice(0, 40)}`,
      `h4 frobnicate ${ed.b64}`,
      `h5 ${ed.type}`,
      `h6;rm\u0020-rf ${ed.type} ${ed.b64}`,
      `[h7]:99999 ${ed.type} ${ed.b64}`,
      `[h8:22 ${ed.type} ${ed.b64}`,
      `h$(reboot) ${ed.type} ${ed.b64}`,
    ].join('\n');
    const { entries, skipped } = parseKnownHosts(text);
    expect(entries).toEqual([]);
    expect(skipped.map((s) => [s.line, s.reason.replace(/:.*/, '')])).toEqual([
      [1, 'bad base64 in key'],
      [2, 'key type mismatch'],
      [3, 'malformed ssh-ed25519 key'],
      [4, 'unknown key type frobnicate'],
      [5, 'not a known_hosts line (expected'],
      [6, 'unknown key type -rf'],
      [7, 'port out of range'],
      [8, 'malformed [host]'],
      [9, 'not a host name or address'],
    ]);
  });

  it('neutralises escape sequences in what it reports', () => {
    const { skipped } = parseKnownHosts('\u001b]0;owned\u0007evil\u001b[2J line\n');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.entry).not.toMatch(/\u001b|\u0007/);
  });

  it('caps the number of lines and their length', () => {
    const [ed] = keys as [Key];
    const many = `h ${ed.type} ${ed.b64}\n`.repeat(KNOWN_HOSTS_MAX_LINES + 10);
    const r = parseKnownHosts(many);
    expect(r.entries).toHaveLength(KNOWN_HOSTS_MAX_LINES);
    expect(r.skipped.at(-1)!.reason).toMatch(/rest was not read/);
    const long = parseKnownHosts('x'.repeat(100_000));
    expect(long.skipped[0]!.reason).toBe('line too long');
    expect(long.skipped[0]!.entry.length).toBeLessThanOrEqual(120);
  });

  it('never throws on arbitrary text, and only returns valid entries', () => {
    const [ed] = keys as [Key];
    const piece = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('@cert-authority', '@revoked', '|1|', '[', ']:', ',', ' ', '\n', '\t', '#', ed.type, ed.b64, '*', '!', '\u001b['),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (parts) => {
        const r = parseKnownHosts(parts.join(''));
        for (const e of r.entries) {
          expect(e.fingerprint).toMatch(FINGERPRINT_RE);
          expect(e.port).toBeGreaterThanOrEqual(1);
          expect(e.port).toBeLessThanOrEqual(65535);
          for (const h of e.hosts) expect(h).toMatch(/^[A-Za-z0-9.:_-]+$/);
        }
        for (const e of [...r.hashed, ...r.revoked]) expect(e.fingerprint).toMatch(FINGERPRINT_RE);
        for (const e of r.hashed) expect(e.salt.length + e.hash.length).toBe(56);
      }),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 500 }), (s) => void parseKnownHosts(s)), { numRuns: 1000 });
  });

  it('round-trips generated entries', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const hostArb = fc.oneof(
      fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.')),
      fc.ipV4(),
    );
    const entryArb = fc.record({
      hosts: fc.uniqueArray(hostArb, { minLength: 1, maxLength: 4 }),
      port: fc.oneof(fc.constant(22), fc.integer({ min: 1, max: 65535 })),
      key: fc.constantFrom(...keys),
    });
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 10 }), (gen) => {
        const text = gen
          .map((g) => `${g.hosts.map((h) => (g.port === 22 ? h : `[${h}]:${g.port}`)).join(',')} ${g.key.type} ${g.key.b64}`)
          .join('\n');
        const r = parseKnownHosts(text);
        expect(r.skipped).toEqual([]);
        expect(r.entries).toEqual(
          gen.map((g, i) => ({ hosts: g.hosts, port: g.port, keyType: g.key.type, fingerprint: g.key.fingerprint, line: i + 1 })),
        );
      }),
      { numRuns: 300 },
    );
  });
});

describe('matchesHashedHost', () => {
  it('matches what ssh-keygen -H wrote, for port 22 and other ports', () => {
    const [ed] = keys as [Key];
    const f = join(dir, 'to_hash');
    writeFileSync(f, `gpu-07.lab ${ed.type} ${ed.b64}\n[10.1.2.3]:2222 ${ed.type} ${ed.b64}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
    const [l1, l2] = readFileSync(f, 'utf8').trim().split('\n') as [string, string];
    const h1 = l1.split(' ')[0]!;
    const h2 = l2.split(' ')[0]!;
    expect(h1).toMatch(/^\|1\|/);
    expect(matchesHashedHost(h1, 'gpu-07.lab', 22)).toBe(true);
    expect(matchesHashedHost(h1, 'gpu-07.lab', 2222)).toBe(false);
    expect(matchesHashedHost(h1, 'gpu-08.lab', 22)).toBe(false);
    expect(matchesHashedHost(h2, '10.1.2.3', 2222)).toBe(true);
    expect(matchesHashedHost(h2, '10.1.2.3', 22)).toBe(false);
    expect(matchesHashedHost(`plain,${h2}`, '10.1.2.3', 2222)).toBe(true);
  });

  it('tries the lowercased name too, as ssh(1) looks hosts up lowercased', () => {
    const h = hashHostName('gpu-07.lab', 22, randomBytes(20));
    const [, , salt, hash] = h.split('|') as [string, string, string, string];
    expect(hashedEntryMatches({ salt, hash }, 'GPU-07.LAB', 22)).toBe(true);
    expect(hashedEntryMatches({ salt, hash }, 'gpu-07.lab', 22)).toBe(true);
    expect(hashedEntryMatches({ salt: 'x', hash }, 'gpu-07.lab', 22)).toBe(false);
  });

  it('parses a file hashed by the real ssh-keygen -H into kept entries that match their hosts', () => {
    const [ed, ec, rsa] = keys as [Key, Key, Key];
    const f = join(dir, 'to_hash_2');
    writeFileSync(f, `gpu-01.lab,10.20.0.11 ${ed.type} ${ed.b64}\n[10.20.0.12]:2222 ${ec.type} ${ec.b64}\n10.20.0.13 ${rsa.type} ${rsa.b64}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
    const text = readFileSync(f, 'utf8');
    expect(text).not.toMatch(/10\.20|gpu-01/);
    const { entries, hashed, skipped } = parseKnownHosts(text);
    expect(skipped).toEqual([]);
    expect(entries).toEqual([]);
    // ssh-keygen -H writes one line per name: gpu-01.lab and 10.20.0.11 get a line each.
    expect(hashed.map((h) => h.fingerprint)).toEqual([ed.fingerprint, ed.fingerprint, ec.fingerprint, rsa.fingerprint]);
    const who = (host: string, port: number) => hashed.filter((h) => hashedEntryMatches(h, host, port)).map((h) => h.keyType);
    expect(who('gpu-01.lab', 22)).toEqual([ed.type]);
    expect(who('10.20.0.11', 22)).toEqual([ed.type]);
    expect(who('10.20.0.12', 2222)).toEqual([ec.type]);
    expect(who('10.20.0.12', 22)).toEqual([]);
    expect(who('10.20.0.13', 22)).toEqual([rsa.type]);
  });

  it('ranks key types strongest first: ed25519, ECDSA, RSA, then others', () => {
    const types = ['ssh-dss', 'ssh-rsa', 'ecdsa-sha2-nistp384', 'ssh-ed25519', 'ecdsa-sha2-nistp256'];
    expect([...types].sort((a, b) => keyTypeRank(a) - keyTypeRank(b))).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp256', 'ssh-rsa', 'ssh-dss']);
  });

  it('agrees with hashHostName and tolerates garbage', () => {
    const h = hashHostName('x', 22, randomBytes(20));
    expect(matchesHashedHost(h, 'x', 22)).toBe(true);
    for (const bad of ['', '|1|', '|1|abc|def', '|2|aaaa|bbbb', 'x'.repeat(10_000)]) expect(matchesHashedHost(bad, 'x', 22)).toBe(false);
    fc.assert(fc.property(fc.string(), fc.string(), fc.integer(), (a, b, p) => typeof matchesHashedHost(a, b, p) === 'boolean'));
  });
});

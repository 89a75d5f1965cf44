import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINGERPRINT_RE } from './fingerprint';
import { hashHostName, KNOWN_HOSTS_MAX_LINES, matchesHashedHost, parseKnownHosts } from './known-hosts';

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

  it('skips markers, hashed names, wildcards and negations with a reason', () => {
    const [ed] = keys as [Key];
    const hashed = hashHostName('10.0.0.5', 22, randomBytes(20));
    const text = [
      `@cert-authority *.lab ${ed.type} ${ed.b64}`,
      `@revoked gpu-09 ${ed.type} ${ed.b64}`,
      `@bogus gpu-09 ${ed.type} ${ed.b64}`,
      `${hashed} ${ed.type} ${ed.b64}`,
      `*.lab,gpu-1?,!gpu-13,gpu-20 ${ed.type} ${ed.b64}`,
    ].join('\n');
    const { entries, skipped } = parseKnownHosts(text);
    expect(entries).toEqual([{ hosts: ['gpu-20'], port: 22, keyType: ed.type, fingerprint: ed.fingerprint, line: 5 }]);
    expect(skipped.map((s) => [s.line, s.reason])).toEqual([
      [1, 'certificate authority line: trusts a CA, not a single host key'],
      [2, 'revoked key line: names a key to refuse, not one to pin'],
      [3, 'unknown marker @bogus'],
      [4, 'hashed host name: cannot enrol without the address'],
      [5, 'wildcard pattern: not a single host'],
      [5, 'wildcard pattern: not a single host'],
      [5, 'negated pattern: not a host'],
    ]);
    expect(skipped[3]!.entry).toBe(hashed);
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

  it('agrees with hashHostName and tolerates garbage', () => {
    const h = hashHostName('x', 22, randomBytes(20));
    expect(matchesHashedHost(h, 'x', 22)).toBe(true);
    for (const bad of ['', '|1|', '|1|abc|def', '|2|aaaa|bbbb', 'x'.repeat(10_000)]) expect(matchesHashedHost(bad, 'x', 22)).toBe(false);
    fc.assert(fc.property(fc.string(), fc.string(), fc.integer(), (a, b, p) => typeof matchesHashedHost(a, b, p) === 'boolean'));
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkKeyBlob,
  decodeStrictBase64,
  FINGERPRINT_RE,
  fingerprintOfKey,
  fingerprintOfLine,
  keyTypeOfBlob,
  splitFields,
} from './fingerprint';
import { generateIdentity } from '../identity/ssh-key';

const dir = mkdtempSync(join(tmpdir(), 'airlock-fp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `ssh-keygen -lf` of a file: the oracle for every fingerprint here. */
function keygenFingerprints(file: string): string[] {
  return execFileSync('ssh-keygen', ['-lf', file], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[1]!);
}

function keygenKey(type: string, bits?: number): string {
  const f = join(dir, `k-${type}-${bits ?? 0}-${Math.random().toString(36).slice(2)}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `test ${type}`, '-f', f]);
  return readFileSync(`${f}.pub`, 'utf8').trim();
}

describe('fingerprintOfKey', () => {
  it('matches ssh-keygen -lf for generated ed25519 identities', () => {
    for (let i = 0; i < 5; i++) {
      const id = generateIdentity(`airlock-test-${i}`);
      const f = join(dir, `id${i}.pub`);
      writeFileSync(f, id.publicKey + '\n');
      const blob = Buffer.from(id.publicKey.split(' ')[1]!, 'base64');
      expect(fingerprintOfKey(blob)).toBe(keygenFingerprints(f)[0]);
      expect(id.fingerprint).toBe(keygenFingerprints(f)[0]);
      expect(fingerprintOfKey(blob)).toMatch(FINGERPRINT_RE);
    }
  });

  it('matches ssh-keygen -lf for keys ssh-keygen made (rsa, ecdsa 256/384, ed25519)', () => {
    const lines = [keygenKey('rsa', 2048), keygenKey('ecdsa', 256), keygenKey('ecdsa', 384), keygenKey('ed25519')];
    for (const line of lines) {
      const f = join(dir, 'one.pub');
      writeFileSync(f, line + '\n');
      const got = fingerprintOfLine(line);
      expect(got?.fingerprint).toBe(keygenFingerprints(f)[0]);
      expect(got?.keyType).toBe(line.split(' ')[0]);
      expect(keyTypeOfBlob(Buffer.from(line.split(' ')[1]!, 'base64'))).toBe(line.split(' ')[0]);
    }
  });
});

describe('fingerprintOfLine', () => {
  const ed = keygenKey('ed25519');
  const [type, b64] = ed.split(' ') as [string, string];

  it('reads authorized_keys lines with options, including quoted spaces', () => {
    const line = `from="10.0.0.1,10.0.0.2",command="echo hi there" ${type} ${b64} me@box`;
    const got = fingerprintOfLine(line);
    expect(got?.keyType).toBe(type);
    expect(got?.comment).toBe('me@box');
    expect(got?.prefix).toEqual(['from="10.0.0.1,10.0.0.2",command="echo hi there"']);
  });

  it('reads known_hosts lines', () => {
    const got = fingerprintOfLine(`host1,10.0.0.1 ${type} ${b64}`);
    expect(got?.prefix).toEqual(['host1,10.0.0.1']);
    expect(got?.fingerprint).toBe(fingerprintOfKey(Buffer.from(b64, 'base64')));
  });

  it('refuses bad base64, a blob of another type, and junk', () => {
    expect(fingerprintOfLine(`${type} ${b64.slice(0, -3)}!!!`)).toBeNull();
    expect(fingerprintOfLine(`ssh-rsa ${b64}`)).toBeNull(); // the blob says ssh-ed25519
    expect(fingerprintOfLine('')).toBeNull();
    expect(fingerprintOfLine('# comment')).toBeNull();
    expect(fingerprintOfLine('ssh-ed25519')).toBeNull();
    expect(checkKeyBlob('ssh-rsa', b64)).toEqual({ ok: false, reason: 'key type mismatch: line says ssh-rsa, key is ssh-ed25519' });
  });

  it('refuses an ed25519 blob whose key has the wrong length (checked with sshpk)', () => {
    const bad = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 3, 1, 2, 3])]);
    expect(checkKeyBlob('ssh-ed25519', bad.toString('base64'))).toEqual({ ok: false, reason: 'malformed ssh-ed25519 key' });
  });

  it('keyTypeOfBlob tolerates garbage', () => {
    expect(keyTypeOfBlob(Buffer.alloc(0))).toBeNull();
    expect(keyTypeOfBlob(Buffer.from([0xff, 0xff, 0xff, 0xff, 1]))).toBeNull();
    expect(keyTypeOfBlob(Buffer.from([0, 0, 0, 3, 0x1b, 0x5b, 0x41]))).toBeNull();
  });

  it('decodeStrictBase64 accepts only canonical base64', () => {
    expect(decodeStrictBase64('aGk=')?.toString()).toBe('hi');
    expect(decodeStrictBase64('aGl=')).toBeNull(); // non-canonical trailing bits
    expect(decodeStrictBase64('aG k=')).toBeNull();
    expect(decodeStrictBase64('aGk')).toBeNull();
  });

  it('splitFields keeps quoted runs together', () => {
    expect(splitFields(' a  "b c"\td ')).toEqual(['a', '"b c"', 'd']);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const r = fingerprintOfLine(s);
        expect(r === null || FINGERPRINT_RE.test(r.fingerprint)).toBe(true);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        keyTypeOfBlob(Buffer.from(bytes));
        checkKeyBlob('ssh-ed25519', Buffer.from(bytes).toString('base64'));
      }),
    );
  });
});

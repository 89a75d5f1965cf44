import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { fingerprintOfPrivateKey, generateIdentity, publicKeyOf } from './ssh-key';

const dir = mkdtempSync(join(tmpdir(), 'airlock-id-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('generateIdentity', () => {
  it('makes an OpenSSH ed25519 key pair that ssh-keygen reads back', () => {
    const id = generateIdentity('airlock@console');
    expect(id.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(id.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/]+=* airlock@console$/);
    const f = join(dir, 'id');
    writeFileSync(f, id.privateKey);
    chmodSync(f, 0o600);
    // -y derives the public key from the private file: proves the private key is valid OpenSSH.
    const derived = execFileSync('ssh-keygen', ['-y', '-f', f], { encoding: 'utf8' }).trim();
    expect(derived.split(' ').slice(0, 2)).toEqual(id.publicKey.split(' ').slice(0, 2));
    const lf = execFileSync('ssh-keygen', ['-lf', f], { encoding: 'utf8' });
    expect(lf.split(' ')[1]).toBe(id.fingerprint);
  });

  it('gives distinct keys each time', () => {
    expect(generateIdentity('a').publicKey).not.toBe(generateIdentity('a').publicKey);
  });

  it('keeps the comment on one line: no second authorized_keys entry can be smuggled in', () => {
    const id = generateIdentity('x\nssh-ed25519 AAAAevil attacker\r\u001b[2J');
    expect(id.publicKey.split('\n')).toHaveLength(1);
    expect(id.publicKey).not.toMatch(/[\r\n\u001b]/);
  });

  it('allows an empty comment', () => {
    expect(generateIdentity('').publicKey.split(' ')).toHaveLength(2);
  });
});

describe('publicKeyOf', () => {
  it('round-trips the public key of a generated identity', () => {
    const id = generateIdentity('round@trip');
    expect(publicKeyOf(id.privateKey)).toBe(id.publicKey);
    expect(fingerprintOfPrivateKey(id.privateKey)).toBe(id.fingerprint);
  });

  it('reads a key made by ssh-keygen', () => {
    const f = join(dir, 'kg');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kg@host', '-f', f]);
    const pub = execFileSync('cat', [`${f}.pub`], { encoding: 'utf8' }).trim();
    const priv = execFileSync('cat', [f], { encoding: 'utf8' });
    expect(publicKeyOf(priv)).toBe(pub);
  });

  it('refuses garbage, public keys and encrypted keys with PARSE_ERROR', () => {
    const f = join(dir, 'enc');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret-pass', '-f', f]);
    const enc = execFileSync('cat', [f], { encoding: 'utf8' });
    for (const bad of ['not a key', generateIdentity('p').publicKey, enc]) {
      let err: unknown;
      try {
        publicKeyOf(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AirlockError);
      expect((err as AirlockError).code).toBe('PARSE_ERROR');
    }
  });
});

describe('generateIdentity at scale', () => {
  it('every generated key is loadable by ssh2 with a 32-byte public key (ssh2’s own generator fails ~1/256)', () => {
    for (let i = 0; i < 2000; i++) {
      const id = generateIdentity('airlock@scale');
      expect(id.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} airlock@scale$/);
    }
  });
});

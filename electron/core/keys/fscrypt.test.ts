/**
 * The fscrypt script builders and the parsing of host answers. The host program runs for real
 * here (this machine's python3 and /bin/sh); its ioctls need an fscrypt filesystem, which the
 * integration test (fscrypt.integration.test.ts, a lab with encryptedModels) provides.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult } from '../ssh/connection/types';
import { rejection } from '../../../test/support/errors';
import { FSCRYPT_HOST_PY } from './fscrypt-host';
import { checkModelsPath, encryptModelsDir, fscryptKeyIdentifier, hostCommand, type HostExec, lockModels, modelsStatus, modelsStore, unlockModels } from './fscrypt';
import { checkRelPath, rekeyStep } from './fscrypt-rekey';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-fscrypt-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function drain(s: Readable | string | undefined): Promise<Buffer> {
  if (s === undefined) return Buffer.alloc(0);
  if (typeof s === 'string') return Buffer.from(s);
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

/** Runs the command with this machine's /bin/sh, as sshd would on a host. */
const local: HostExec = {
  exec: (cmd: string, opts: ExecOptions) =>
    new Promise<ExecResult>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      // A command that exits before reading (no python3) closes its stdin: not an error of ours.
      child.stdin.on('error', () => {});
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, truncated: false }));
      void drain(opts.stdin).then((b) => child.stdin.end(b));
    }),
};

/** A host that answers `answer` whatever is asked, recording what it was sent. */
function answering(answer: Partial<ExecResult>): HostExec & { calls: Array<{ cmd: string; stdin: Buffer }> } {
  const calls: Array<{ cmd: string; stdin: Buffer }> = [];
  return {
    calls,
    async exec(cmd, opts) {
      calls.push({ cmd, stdin: await drain(opts.stdin) });
      return { code: 0, signal: null, stdout: '', stderr: '', truncated: false, ...answer };
    },
  };
}

/** RFC 5869 by hand (HMAC-SHA512): an independent check of the identifier derivation. */
function hkdfByHand(ikm: Buffer, info: Buffer, len: number): Buffer {
  const prk = crypto.createHmac('sha512', Buffer.alloc(64)).update(ikm).digest();
  let t = Buffer.alloc(0);
  const out: Buffer[] = [];
  for (let i = 1; Buffer.concat(out).length < len; i++) {
    t = crypto.createHmac('sha512', prk).update(Buffer.concat([t, info, Buffer.from([i])])).digest();
    out.push(t);
  }
  return Buffer.concat(out).subarray(0, len);
}

describe('key identifier', () => {
  it('is HKDF-SHA512 of the key, info "fscrypt\\0" + 0x01, 16 bytes (as fs/crypto/keyring.c)', () => {
    for (let i = 0; i < 20; i++) {
      const key = crypto.randomBytes(64);
      expect(fscryptKeyIdentifier(key)).toBe(hkdfByHand(key, Buffer.from('fscrypt\0\x01', 'latin1'), 16).toString('hex'));
    }
  });

  it('refuses a key that is not 64 bytes', () => {
    expect(() => fscryptKeyIdentifier(crypto.randomBytes(32))).toThrow(/64 bytes/);
  });
});

describe('host command', () => {
  /** The argv a POSIX shell makes of the command line (after the interpreter's name). */
  function argvOf(cmd: string): string[] {
    const r = spawnSync('/bin/sh', ['-c', `set -- ${cmd.replace(/^(sudo -n )?python3 /, '')}; printf '%s\\0' "$@"`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    return r.stdout.split('\0').slice(0, -1);
  }

  it('sends the program as one quoted word and every argument quoted; the shell gives them back intact', () => {
    const cmd = hostCommand(['status', "/srv/odd-name+x@y:z", 'a b']);
    expect(cmd.startsWith('python3 ')).toBe(true);
    expect(argvOf(cmd)).toEqual(['-I', '-S', '-c', FSCRYPT_HOST_PY, 'status', '/srv/odd-name+x@y:z', 'a b']);
    expect(hostCommand(['lock', '/srv/models'], { sudo: true }).startsWith('sudo -n python3 ')).toBe(true);
  });

  it('the program compiles with this python3', () => {
    const r = spawnSync('python3', ['-I', '-S', '-c', 'import sys; compile(sys.stdin.read(), "fscrypt-host", "exec")'], { input: FSCRYPT_HOST_PY, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the key goes on stdin only, is never in the command line, and the caller keeps its buffer', async () => {
    const key = crypto.randomBytes(64);
    const before = Buffer.from(key);
    const id = fscryptKeyIdentifier(key);
    const host = answering({ stdout: JSON.stringify({ ok: true, state: 'unlocked', target: `/srv/.models-fs/k-${id}`, id, detail: null }) + '\n' });
    expect((await encryptModelsDir(host, '/srv/models', key)).identifier).toBe(id);
    expect(host.calls).toHaveLength(1);
    expect(host.calls[0]!.stdin.equals(before)).toBe(true);
    for (const enc of ['hex', 'base64', 'latin1'] as const) expect(host.calls[0]!.cmd).not.toContain(before.toString(enc));
    expect(host.calls[0]!.cmd).toContain(id);
    expect(key.equals(before)).toBe(true);
  });

  it('paths are checked before anything is sent; the store defaults beside the directory', async () => {
    for (const bad of ['srv/models', '/srv/../etc', '/srv/models/', "/srv/it's", '/srv/a b', '/']) {
      expect(() => checkModelsPath(bad, 'The models directory')).toThrow(/normalised absolute path/);
    }
    expect(modelsStore('/srv/models')).toBe('/srv/.models-fs');
    expect(modelsStore('/data/m', { store: '/mnt/enc' })).toBe('/mnt/enc');
    const host = answering({});
    expect(await rejection(modelsStatus(host, '/srv/../x'))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(host.calls).toHaveLength(0);
  });
});

describe('the host program, run here', () => {
  it('reports an absent directory, and a directory on a filesystem without fscrypt as unsupported', async () => {
    expect(await modelsStatus(local, `${tmp}/none`)).toEqual({ state: 'absent', identifier: null, target: null, detail: null });
    fs.mkdirSync(`${tmp}/plain`);
    const st = await modelsStatus(local, `${tmp}/plain`);
    // This machine's /tmp may or may not have the ext4 encrypt feature: either answer is the truth, never locked/unlocked.
    expect(['unsupported', 'unencrypted']).toContain(st.state);
    expect(st.identifier).toBeNull();
    expect(await modelsStatus(local, '/proc')).toMatchObject({ state: 'unsupported' });
  });

  it('refuses to lock or unlock a directory on a filesystem without fscrypt', async () => {
    fs.mkdirSync('/dev/shm/airlock-fscrypt-unit', { recursive: true });
    try {
      expect(await rejection(lockModels(local, '/dev/shm/airlock-fscrypt-unit'))).toMatchObject({ code: 'INVALID_INPUT' });
      expect(await rejection(unlockModels(local, '/dev/shm/airlock-fscrypt-unit', crypto.randomBytes(64)))).toMatchObject({ code: 'INVALID_INPUT' });
    } finally {
      fs.rmSync('/dev/shm/airlock-fscrypt-unit', { recursive: true, force: true });
    }
  });

  it('a host without python3 is unsupported, and says why', async () => {
    const noPython: HostExec = { exec: (cmd, opts) => local.exec(`PATH=/nonexistent; ${cmd}`, opts) };
    expect(await modelsStatus(noPython, '/srv/models')).toEqual({ state: 'unsupported', identifier: null, target: null, detail: 'no python3 on the host' });
    const e = await rejection(encryptModelsDir(noPython, '/srv/models', crypto.randomBytes(64)));
    expect(e.message).toMatch(/install python3/);
  });
});

describe('host answers are parsed strictly', () => {
  const id = 'ab'.repeat(16);
  const good = { ok: true, state: 'locked', target: '/srv/.models-fs/k-x', id, detail: null };
  it.each([
    ['two lines', { stdout: `${JSON.stringify(good)}\n${JSON.stringify(good)}\n` }],
    ['not JSON', { stdout: 'locked\n' }],
    ['an extra field', { stdout: JSON.stringify({ ...good, evil: 1 }) }],
    ['an identifier that is not 32 hex digits', { stdout: JSON.stringify({ ...good, id: 'AB'.repeat(16) }) }],
    ['an unknown state', { stdout: JSON.stringify({ ...good, state: 'open' }) }],
    ['truncated output', { stdout: JSON.stringify(good), truncated: true }],
    ['nothing', { stdout: '' }],
    ['ok with a failing exit', { stdout: JSON.stringify(good), code: 3 }],
    ['a failure with exit 0', { stdout: JSON.stringify({ ok: false, code: 'ABSENT', detail: '' }) }],
    ['an unknown refusal', { stdout: JSON.stringify({ ok: false, code: 'ZAPPED', detail: '' }), code: 3 }],
    ['a huge detail', { stdout: JSON.stringify({ ...good, detail: 'x'.repeat(10_000) }) }],
  ])('%s → PARSE_ERROR', async (_, answer) => {
    expect(await rejection(modelsStatus(answering(answer), '/srv/models'))).toMatchObject({ code: 'PARSE_ERROR' });
  });

  it('a known refusal becomes its message, without the host’s own text', async () => {
    const e = await rejection(modelsStatus(answering({ code: 3, stdout: JSON.stringify({ ok: false, code: 'NOTEMPTY', detail: '\u001b[2Jpwned' }) }), '/srv/models'));
    expect(e).toMatchObject({ code: 'CONFLICT' });
    expect(e.message).toMatch(/already holds unencrypted files/);
    expect(e.message).not.toContain('pwned');
  });

  it('control characters in a detail or target are not passed on', async () => {
    const st = await modelsStatus(answering({ stdout: JSON.stringify({ ...good, target: '/srv/\u202e\u001b[31mx', detail: 'busy\u001b]0;x\u0007' }) }), '/srv/models');
    expect(st.detail).toBe('busy?]0;x?');
    expect(st.target).toBe('/srv/??[31mx');
  });

  it('unlock reports success only for the key it delivered', async () => {
    const key = crypto.randomBytes(64);
    const other = { ...good, state: 'unlocked', id };
    expect(await rejection(unlockModels(answering({ stdout: JSON.stringify(other) }), '/srv/models', key))).toMatchObject({ code: 'KEY_UNAVAILABLE' });
  });
});

describe('re-key inputs', () => {
  it('relative paths only, without . or .. or control characters, nor Airlock temporary names', () => {
    for (const bad of ['', '/abs', 'a/../b', 'a//b', './a', 'a\nb', 'x/.airlock-part-y']) expect(() => checkRelPath(bad)).toThrow();
    expect(checkRelPath('llama/v1/weights.bin')).toBe('llama/v1/weights.bin');
  });

  it('verify needs well-formed expected hashes; the same key twice is refused; nothing is sent then', async () => {
    const host = answering({});
    const [a, b] = [crypto.randomBytes(64), crypto.randomBytes(64)];
    expect(await rejection(rekeyStep(host, 'verify', { dir: '/srv/models', oldKey: a, newKey: b }))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await rejection(rekeyStep(host, 'verify', { dir: '/srv/models', oldKey: a, newKey: b, expected: { 'a.bin': 'ABC' } }))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await rejection(rekeyStep(host, 'verify', { dir: '/srv/models', oldKey: a, newKey: b, expected: { '../a': 'a'.repeat(64) } }))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await rejection(rekeyStep(host, 'copy', { dir: '/srv/models', oldKey: a, newKey: Buffer.from(a) }))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await rejection(rekeyStep(host, 'copy', { dir: '/srv/models', oldKey: a, newKey: b.subarray(0, 32) }))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(host.calls).toHaveLength(0);
  });

  it('both keys and the expected hashes go on stdin; the command names only their identifiers', async () => {
    const [a, b] = [crypto.randomBytes(64), crypto.randomBytes(64)];
    const expected = { 'm/w.bin': 'c'.repeat(64) };
    const host = answering({ stdout: JSON.stringify({ ok: true, step: 'verify', where: 'old', files: 1, problems: 0, mismatched: [], missing: [], extra: [] }) });
    expect(await rekeyStep(host, 'verify', { dir: '/srv/models', oldKey: a, newKey: b, expected })).toEqual({ step: 'verify', where: 'old', files: 1 });
    const call = host.calls[0]!;
    expect(call.stdin.equals(Buffer.concat([a, b, Buffer.from(JSON.stringify(expected))]))).toBe(true);
    expect(call.cmd).toContain(fscryptKeyIdentifier(a));
    expect(call.cmd).toContain(fscryptKeyIdentifier(b));
    expect(call.cmd).not.toContain(a.toString('hex'));
  });

  it('a verify answer with problems is a HASH_MISMATCH naming the files', async () => {
    const [a, b] = [crypto.randomBytes(64), crypto.randomBytes(64)];
    const expected = { 'm/w.bin': 'c'.repeat(64), 'm/x.bin': 'd'.repeat(64) };
    const host = answering({ stdout: JSON.stringify({ ok: true, step: 'verify', where: 'old', files: 2, problems: 2, mismatched: [{ path: 'm/w.bin', actual: 'e'.repeat(64), source: 'c'.repeat(64) }], missing: ['m/x.bin'], extra: [] }) });
    const e = await rejection(rekeyStep(host, 'verify', { dir: '/srv/models', oldKey: a, newKey: b, expected }));
    expect(e).toMatchObject({ code: 'HASH_MISMATCH' });
    expect(e.message).toMatch(/"m\/w\.bin".*bad new copy was removed.*"m\/x\.bin" is missing/);
  });
});

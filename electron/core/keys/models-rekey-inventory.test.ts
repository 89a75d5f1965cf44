/**
 * The re-key's file list (models-rekey-inventory.ts): its host program run for real by this
 * machine's python3 on a directory reached through a symlink, as /srv/models is on a host; the
 * manifest check that refuses an old copy already damaged; refusals of what a re-key cannot copy.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rejection } from '../../../test/support/errors';
import type { ExecOptions, ExecResult } from '../ssh/connection/types';
import type { HostExec } from './fscrypt';
import { checkManifests, inventoryModels, MODEL_MANIFEST } from './models-rekey-inventory';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** This machine's /bin/sh, as sshd runs a command on a host. */
const local: HostExec = {
  exec: (cmd: string, _opts: ExecOptions) =>
    new Promise<ExecResult>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, truncated: false }));
    }),
};

const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

function tree() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-inv-'));
  dirs.push(root);
  const real = path.join(root, '.models-fs', 'k-0123');
  fs.mkdirSync(path.join(real, 'llm', '7'), { recursive: true });
  fs.writeFileSync(path.join(real, 'llm', '7', 'weights.bin'), 'weights');
  fs.writeFileSync(path.join(real, 'llm', '7', 'config.json'), '{}');
  fs.writeFileSync(path.join(real, 'llm', '7', MODEL_MANIFEST), `${sha('weights')}  weights.bin\n${sha('{}')}  config.json\n`);
  fs.writeFileSync(path.join(real, 'README'), 'top level file');
  const dir = path.join(root, 'models');
  fs.symlinkSync(real, dir);
  return { dir, real };
}

describe('re-key inventory', () => {
  it('lists every file under the directory a symlink points at, with its SHA-256', async () => {
    const t = tree();
    const files = await inventoryModels(local, t.dir);
    expect(files).toEqual({
      README: sha('top level file'),
      'llm/7/config.json': sha('{}'),
      'llm/7/weights.bin': sha('weights'),
      [`llm/7/${MODEL_MANIFEST}`]: sha(fs.readFileSync(path.join(t.real, 'llm', '7', MODEL_MANIFEST), 'utf8')),
    });
  });

  it('refuses an old copy that differs from its manifest (damaged before the re-key) and a symlink inside', async () => {
    const t = tree();
    fs.writeFileSync(path.join(t.real, 'llm', '7', 'weights.bin'), 'weightz');
    const e = await rejection(inventoryModels(local, t.dir));
    expect(e.code).toBe('HASH_MISMATCH');
    expect(e.message).toMatch(/"llm\/7\/weights.bin" differs from its manifest.*Push those models again/);
    fs.writeFileSync(path.join(t.real, 'llm', '7', 'weights.bin'), 'weights');
    fs.symlinkSync('/etc/passwd', path.join(t.real, 'llm', 'link'));
    expect((await rejection(inventoryModels(local, t.dir))).message).toMatch(/symbolic link/);
  });

  it('a manifest naming a missing file refuses; other lines and files pass', () => {
    expect(() => checkManifests('/srv/models', { 'a/x': sha('x') }, { 'a/.airlock-manifest.sha256': `${sha('x')}  x\n${sha('y')}  y\n` })).toThrow(/"a\/y" is missing/);
    expect(() => checkManifests('/srv/models', { 'a/x': sha('x'), other: sha('o') }, { 'a/.airlock-manifest.sha256': `${sha('x')}  x\nnot a line\n` })).not.toThrow();
  });
});

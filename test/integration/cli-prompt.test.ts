import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shellQuote } from '../../electron/core/ssh/quote';
import { authorizeKey, labDown, labUp, type Lab } from '../lab/lab';

/**
 * `airlock hosts add` without --fingerprint on a terminal: it shows the host's fingerprint
 * and pins only on an explicit "yes". util-linux `script` gives the CLI a real pseudo-terminal.
 */
const root = path.resolve(__dirname, '../..');
const PASSWORD = 'correct horse battery staple';
let data: string;
let lab: Lab;
const env = () => ({ ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: PASSWORD, AIRLOCK_DATA: data, TERM: 'dumb' });

function onTerminal(args: string[], answer: string): Promise<string> {
  const cmd = [process.execPath, path.join(root, 'bin/airlock.mjs'), ...args].map(shellQuote).join(' ');
  return new Promise((resolve) => {
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env: env() });
    let out = '';
    let answered = false;
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!answered && out.includes('Type "yes"')) {
        answered = true;
        p.stdin.write(answer + '\n');
      }
    });
    p.on('close', (code) => resolve(`${out}\n[exit ${code}]`));
  });
}

beforeAll(async () => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-cli-tty-'));
  lab = await labUp({ id: 'iclitty', hosts: 1 });
  const init = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'init', '--admin', 'alice', '--json'], { env: env(), encoding: 'utf8' });
  expect(init.status, init.stderr).toBe(0);
  await authorizeKey(lab, JSON.parse(init.stdout).identity.publicKey);
});
afterAll(async () => {
  await labDown({ id: 'iclitty' });
  fs.rmSync(data, { recursive: true, force: true });
});

describe('hosts add on a terminal', () => {
  it('shows the fingerprint and pins nothing unless the operator types yes', async () => {
    const h = lab.hosts[0]!;
    const out = await onTerminal(['hosts', 'add', 'gpu1', '--address', h.address], 'no');
    expect(out).toContain(h.fingerprint);
    expect(out).toContain('Not pinned; nothing was changed.');
    expect(out).toContain('[exit 1]');
    const list = spawnSync(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'hosts', 'list', '--json'], { env: env(), encoding: 'utf8' });
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it('pins the shown fingerprint on yes', async () => {
    const h = lab.hosts[0]!;
    const out = await onTerminal(['hosts', 'add', 'gpu1', '--address', h.address], 'yes');
    expect(out).toContain(`Pinned gpu1 (${h.address}:22) ${h.fingerprint}`);
    expect(out).toContain('[exit 0]');
  });
});

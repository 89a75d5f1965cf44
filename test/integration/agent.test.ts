import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, labDown, labUp, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestCore } from '../support/core';

/**
 * ssh-agent instead of Airlock's own key: a real OpenSSH agent holds a key that is the
 * only one the lab host accepts, so the scan can succeed only through the agent.
 */
let lab: Lab;
let dir: string;
let agent: ChildProcess;
let sock: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-agent-'));
  sock = path.join(dir, 'agent.sock');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent-key', '-f', path.join(dir, 'id')]);
  agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
  execFileSync('ssh-add', [path.join(dir, 'id')], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
  lab = await labUp({ id: 'iagent', hosts: 1, authorize: [fs.readFileSync(path.join(dir, 'id.pub'), 'utf8').trim()] });
});
afterAll(async () => {
  agent?.kill();
  await labDown({ id: 'iagent' });
  fs.rmSync(dir, { recursive: true, force: true });
});

async function scanWith(sshAgent: string | null) {
  const t: TestCore = await testCore({ sshAgent, sshTimeoutMs: 5000 });
  try {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    const host = lab.hosts[0]!;
    await c.ok('hosts:add', { name: 'gpu', address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint });
    const id = await c.ok('identity:show', {});
    return { scan: (await c.ok('hosts:scan', {}))[0]!, id };
  } finally {
    await t.close();
  }
}

describe('ssh-agent', () => {
  it('is refused without the agent (Airlock’s own key is not authorized on this host)', async () => {
    const { scan } = await scanWith(null);
    expect(scan).toMatchObject({ ok: false, status: 'auth-failed', error: { code: 'SSH_AUTH_FAILED' } });
  });

  it('authenticates through SSH_AUTH_SOCK when configured', async () => {
    const { scan, id } = await scanWith(sock);
    expect(id.agent).toEqual({ available: true, socket: sock });
    expect(scan).toMatchObject({ ok: true, status: 'reachable' });
  });

  it('offers Airlock’s own key and the agent together when both are available', async () => {
    const t = await testCore({ sshAgent: sock });
    try {
      const c = t.client();
      await c.ok('session:setup', ADMIN);
      await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
      const host = lab.hosts[0]!;
      await c.ok('hosts:add', { name: 'gpu', address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint });
      expect((await c.ok('hosts:scan', {}))[0]).toMatchObject({ ok: true });
    } finally {
      await t.close();
    }
  });
});

/**
 * The lab against real things: real sshd, the real OpenSSH client, real namespaces. No mocks.
 * The netns suite needs root; the loopback suite runs anywhere sshd exists.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authorizeKey,
  cutLink,
  decoyConnections,
  killSshd,
  labDown,
  labIdFor,
  labStateRoot,
  labStatus,
  labUp,
  replaceHostKey,
  restoreLink,
  runOnHost,
  startSshd,
  type Lab,
  type LabHost,
} from './lab';
import { exec, livePids, SshClient } from './testkit';

const isRoot = process.getuid?.() === 0;
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

/** The served host key's fingerprint, the way an operator checks it: ssh-keyscan | ssh-keygen -lf -. */
async function scannedFingerprint(h: LabHost): Promise<string> {
  const scan = await exec('ssh-keyscan', ['-T', '3', '-t', 'ed25519', '-p', String(h.port), h.address]);
  const child = spawn('ssh-keygen', ['-lf', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(scan.stdout);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.on('close', r));
  return out.trim().split(/\s+/)[1] ?? `(none: ${scan.stderr.trim()})`;
}

function tcpConnect(address: string, port: number, timeoutMs = 2000): Promise<'open' | 'refused' | 'timeout' | 'error'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'error');
    });
  });
}

/** Pids of processes whose command line names `dir` (sshd, decoy of that lab). */
function pidsNaming(dir: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir + '/');
      } catch {
        return false;
      }
    });
}

const uniq = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;

describe.skipIf(!isRoot)('lab in netns mode (root)', () => {
  const id = `t${uniq}`;
  let lab: Lab;
  let client: SshClient;
  const host = (n: number): LabHost => lab.hosts[n - 1]!;

  beforeAll(async () => {
    client = await SshClient.create();
    lab = await labUp({ id, hosts: 3, authorize: [client.publicKey()] });
    await client.pin(lab.hosts);
  }, 60_000);

  afterAll(async () => {
    await labDown({ id });
    if (client) await rm(client.dir, { recursive: true, force: true });
  }, 30_000);

  it('starts 3 hosts on a private /24 with reported SHA256 fingerprints', () => {
    expect(lab.mode).toBe('netns');
    expect(lab.subnet).toMatch(/^10\.213\.\d{1,3}\.0\/24$/);
    const prefix = lab.subnet.replace(/\.0\/24$/, '.');
    expect(lab.hosts.map((h) => h.name)).toEqual(['host1', 'host2', 'host3']);
    for (const h of lab.hosts) {
      expect(h.address.startsWith(prefix)).toBe(true);
      expect(h.port).toBe(22);
      expect(h.user).toBe('root');
      expect(h.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    }
    expect(new Set(lab.hosts.map((h) => h.fingerprint)).size).toBe(3);
    expect(lab.decoy.address.startsWith(prefix)).toBe(true);
  });

  it('reports the fingerprint sshd really serves (ssh-keyscan | ssh-keygen -lf)', async () => {
    for (const h of lab.hosts) expect(await scannedFingerprint(h)).toBe(h.fingerprint);
  });

  it('gives each host its own hostname', async () => {
    const names = await Promise.all(lab.hosts.map((h) => client.ssh(h, 'hostname; uname -n; cat /etc/hostname')));
    names.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(Array(3).fill(`host${i + 1}`));
    });
    const peers = await client.ssh(host(1), 'getent hosts host2');
    expect(peers.stdout.trim().split(/\s+/)).toEqual([host(2).address, 'host2']);
  });

  it('gives each host its own /srv, /root, /tmp, /opt, /var/lib/airlock-host', async () => {
    const dirs = ['/srv', '/root', '/tmp', '/opt', '/var/lib/airlock-host'];
    const write = await client.ssh(host(1), dirs.map((d) => `echo one > ${d}/lab-marker`).join(' && '));
    expect(write.code, write.stderr).toBe(0);
    const onOne = await client.ssh(host(1), dirs.map((d) => `cat ${d}/lab-marker`).join(' && '));
    expect(onOne.stdout).toBe('one\n'.repeat(dirs.length));
    const onTwo = await client.ssh(host(2), dirs.map((d) => `test ! -e ${d}/lab-marker`).join(' && ') + ' && echo absent');
    expect(onTwo.stdout.trim()).toBe('absent');
    // and the machine itself does not see it either
    expect(existsSync('/srv/lab-marker')).toBe(false);
  });

  it('answers nvidia-smi -L and --query-gpu in the real formats (A100, driver 550)', async () => {
    const list = await client.ssh(host(1), 'nvidia-smi -L');
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines).toHaveLength(8);
    lines.forEach((l, i) => expect(l).toMatch(new RegExp(`^GPU ${i}: NVIDIA A100-SXM4-80GB \\(UUID: GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\)$`)));

    const fields = 'index,name,driver_version,memory.total,utilization.gpu,power.draw,ecc.mode.current,persistence_mode,clocks_event_reasons.active';
    const withHeader = await client.ssh(host(1), `nvidia-smi --query-gpu=${fields} --format=csv`);
    expect(withHeader.code).toBe(0);
    const [header, first] = withHeader.stdout.split('\n');
    expect(header).toBe(
      'index, name, driver_version, memory.total [MiB], utilization.gpu [%], power.draw [W], ecc.mode.current, persistence_mode, clocks_event_reasons.active',
    );
    expect(first).toMatch(/^0, NVIDIA A100-SXM4-80GB, 550\.54\.15, 81920 MiB, \d+ %, \d+\.\d\d W, Enabled, Enabled, 0x[0-9A-F]{16}$/);

    const bare = await client.ssh(
      host(1),
      'nvidia-smi --query-gpu=index,uuid,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw,power.limit --format=csv,noheader,nounits',
    );
    const rows = bare.stdout.trim().split('\n').map((l) => l.split(', '));
    expect(rows).toHaveLength(8);
    for (const [index, uuid, total, used, free, util, temp, draw, limit] of rows) {
      expect(Number(index)).toBeGreaterThanOrEqual(0);
      expect(uuid).toMatch(/^GPU-/);
      expect(Number(total)).toBe(81920);
      expect(Number(used) + Number(free)).toBeLessThanOrEqual(81920);
      for (const v of [util, temp, draw, limit]) expect(Number.isFinite(Number(v))).toBe(true);
    }
  });

  it('rejects the old clocks_throttle_reasons name on the new driver like the real tool', async () => {
    const r = await client.ssh(host(1), 'nvidia-smi --query-gpu=clocks_throttle_reasons.active --format=csv');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('Field "clocks_throttle_reasons.active" is not a valid field to query.\n\n');
    const unknown = await client.ssh(host(2), 'nvidia-smi --query-gpu=name,bogus.field --format=csv');
    expect(unknown.code).toBe(2);
    expect(unknown.stdout.trim()).toBe('Field "bogus.field" is not a valid field to query.');
  });

  it('serves an H100 host (driver 560) and a T4 host on an older driver with [N/A] power', async () => {
    const h100 = await client.ssh(host(2), 'nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader');
    expect(h100.stdout.trim().split('\n')).toEqual(Array(4).fill('NVIDIA H100 80GB HBM3, 560.35.03, 81559 MiB'));

    const t4 = await client.ssh(host(3), 'nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit,clocks_throttle_reasons.active --format=csv,noheader,nounits');
    expect(t4.code).toBe(0);
    for (const row of t4.stdout.trim().split('\n')) {
      const [name, driver, draw, limit, reasons] = row.split(', ');
      expect([name, driver, draw, limit]).toEqual(['Tesla T4', '470.182.03', '[N/A]', '[N/A]']);
      expect(reasons).toMatch(/^0x[0-9A-F]{16}$/);
    }
    const newName = await client.ssh(host(3), 'nvidia-smi --query-gpu=clocks_event_reasons.active --format=csv');
    expect(newName.code).toBe(2);
    expect(newName.stdout).toContain('Field "clocks_event_reasons.active" is not a valid field to query.');
  });

  it('seals hosts: the lab /24 is their only route', async () => {
    for (const h of lab.hosts) {
      const routes = await runOnHost(lab, h.name, ['ip', '-4', 'route', 'show', 'table', 'all']);
      expect(routes.code).toBe(0);
      const real = routes.stdout.split('\n').filter((l) => l && !/^(local|broadcast) /.test(l));
      expect(real).toEqual([`${lab.subnet} dev eth0 proto kernel scope link src ${h.address} `]);
      expect(routes.stdout).not.toMatch(/^default/m);
      // Asking the kernel where an outside address would go sends nothing: it must have no answer.
      const out = await runOnHost(lab, h.name, ['ip', 'route', 'get', '192.0.2.123']);
      expect(out.code).not.toBe(0);
      expect(out.stderr).toMatch(/unreachable/i);
    }
    const slot = lab.subnet.split('.')[2];
    const nft = await exec('nft', ['list', 'table', 'inet', `airlock_lab_${slot}`]);
    expect(nft.code).toBe(0);
    expect(nft.stdout).toMatch(/hook forward/);
    expect(nft.stdout).toMatch(/drop/);
  });

  it('lets a host reach the decoy "outside world", which records the connection', async () => {
    const r = await client.ssh(host(2), `exec 3<>/dev/tcp/${lab.decoy.address}/${lab.decoy.port} && cat <&3`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('decoy\n');
    const seen = await decoyConnections(lab);
    expect(seen.map((c) => c.from)).toContain(host(2).address);
  });

  it('runOnHost sees what an ssh session sees', async () => {
    const r = await runOnHost(lab, 'host3', ['sh', '-c', 'hostname; nvidia-smi -L | wc -l; cat /root/lab-marker 2>/dev/null || echo none']);
    expect(r.stdout).toBe('host3\n2\nnone\n');
  });

  it('cutLink makes the host unreachable and restoreLink brings it back', async () => {
    await cutLink(lab, 'host1');
    const cut = await client.ssh(host(1), 'true', { connectTimeout: 2 });
    expect(cut.code).toBe(255);
    expect(cut.stderr).toMatch(/timed out|No route to host|unreachable/i);
    expect((await labStatus(id))!.hosts[0]!.linkCut).toBe(true);
    await restoreLink(lab, 'host1');
    const back = await client.ssh(host(1), 'hostname');
    expect(back.stdout.trim()).toBe('host1');
  }, 20_000);

  it('killSshd refuses connections; startSshd serves again', async () => {
    await killSshd(lab, 'host2');
    expect(await tcpConnect(host(2).address, 22)).toBe('refused');
    expect((await client.ssh(host(2), 'true')).code).toBe(255);
    expect((await labStatus(id))!.hosts[1]!.sshdRunning).toBe(false);
    // the host itself is still there
    expect((await runOnHost(lab, 'host2', ['hostname'])).stdout.trim()).toBe('host2');
    await startSshd(lab, 'host2');
    expect((await client.ssh(host(2), 'hostname')).stdout.trim()).toBe('host2');
  }, 20_000);

  it('replaceHostKey serves a new key, which a pinned client refuses', async () => {
    const before = host(3).fingerprint;
    const after = await replaceHostKey(lab, 'host3');
    expect(after).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(after).not.toBe(before);
    expect(await scannedFingerprint(host(3))).toBe(after);
    expect((await labStatus(id))!.hosts[2]!.fingerprint).toBe(after);
    const refused = await client.ssh(host(3), 'true');
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    lab = (await labStatus(id))!;
    await client.pin(lab.hosts);
    expect((await client.ssh(host(3), 'hostname')).stdout.trim()).toBe('host3');
  }, 20_000);

  it('authorizeKey adds a key on every host', async () => {
    const other = await SshClient.create();
    try {
      await other.pin(lab.hosts);
      expect((await other.ssh(host(1), 'true')).code).toBe(255);
      await authorizeKey(lab, other.publicKey());
      for (const h of lab.hosts) expect((await other.ssh(h, 'hostname')).stdout.trim()).toBe(h.name);
    } finally {
      await rm(other.dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('status works from another process (the CLI)', async () => {
    const r = await exec(path.join(repo, 'node_modules', '.bin', 'tsx'), [path.join(here, 'cli.ts'), 'status', '--json', '--id', id]);
    expect(r.code, r.stderr).toBe(0);
    const js = JSON.parse(r.stdout) as { id: string; mode: string; hosts: Array<{ name: string; fingerprint: string; sshdRunning: boolean }> };
    expect(js.id).toBe(lab.id); // the stored id: inside a test run, the run's prefix and `id`
    expect(js.mode).toBe('netns');
    expect(js.hosts.map((h) => [h.name, h.fingerprint, h.sshdRunning])).toEqual(lab.hosts.map((h) => [h.name, h.fingerprint, true]));
  }, 20_000);

  it('labDown leaves no namespace, interface, nft table, process or state behind', async () => {
    const slot = lab.subnet.split('.')[2];
    // an ssh session left open, and a process started inside a host, must go too
    const session = spawn('ssh', ['-F', '/dev/null', '-i', client.key, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${client.knownHosts}`,
      '-o', 'StrictHostKeyChecking=yes', `root@${host(1).address}`, 'sleep 300'], { stdio: 'ignore' });
    const nsPids: number[] = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      nsPids.length = 0;
      for (const h of lab.hosts) {
        const r = await exec('ip', ['netns', 'pids', h.netns!]);
        nsPids.push(...r.stdout.split(/\s+/).filter(Boolean).map(Number));
      }
      const sleepers = nsPids.filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep');
        } catch {
          return false;
        }
      });
      if (sleepers.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const named = pidsNaming(lab.dir);
    expect(nsPids.length).toBeGreaterThanOrEqual(4); // 3 sshd + the session's processes
    expect(named.length).toBeGreaterThanOrEqual(4); // 3 sshd + decoy

    await labDown({ id });
    session.kill();

    expect(livePids([...nsPids, ...named])).toEqual([]);
    expect(pidsNaming(lab.dir)).toEqual([]);
    const netns = await exec('ip', ['netns', 'list']);
    expect(netns.stdout).not.toContain(`airlock-lab.${lab.id}.`);
    const links = await exec('ip', ['-o', 'link', 'show']);
    expect(links.stdout).not.toMatch(new RegExp(`\\bairl[bv]${slot}(?:h\\d+|d)?[@:]`));
    expect((await exec('nft', ['list', 'table', 'inet', `airlock_lab_${slot}`])).code).not.toBe(0);
    expect(existsSync(lab.dir)).toBe(false);
    expect(await labStatus(id)).toBeNull();
    // idempotent
    await labDown({ id });
  }, 30_000);

  it('replaces a lab whose owning process died without taking it down', async () => {
    const staleId = `s${uniq}`;
    const script = `(async () => { const { labUp } = await import(${JSON.stringify(path.join(here, 'lab.ts'))}); await labUp({ id: ${JSON.stringify(staleId)}, hosts: 1 }); process.exit(0); })();`;
    const crashed = await exec(path.join(repo, 'node_modules', '.bin', 'tsx'), ['--eval', script]);
    expect(crashed.code, crashed.stderr).toBe(0);
    const stale = await labStatus(staleId);
    expect(stale?.hosts[0]?.sshdRunning).toBe(true); // its sshd outlived the process
    const staleSshd = pidsNaming(stale!.dir);
    const fresh = await labUp({ id: staleId, hosts: 1 });
    try {
      expect(fresh.hosts[0]!.fingerprint).not.toBe(stale!.hosts[0]!.fingerprint);
      expect(livePids(staleSshd)).toEqual([]);
      // but a lab whose owner is alive (this process) is refused
      await expect(labUp({ id: staleId, hosts: 1 })).rejects.toThrow(/already exists/);
    } finally {
      await labDown({ id: staleId });
    }
  }, 30_000);

  it('tears down what it made when up fails midway', async () => {
    const failId = `f${uniq}`;
    // A namespace already holding host2's name makes `ip netns add` fail after other steps ran.
    await exec('ip', ['netns', 'add', `airlock-lab.${labIdFor(failId)}.host2`]);
    await expect(labUp({ id: failId, hosts: 3 })).rejects.toThrow(/failed/);
    const netns = await exec('ip', ['netns', 'list']);
    expect(netns.stdout).not.toContain(`airlock-lab.${labIdFor(failId)}.`);
    expect(await labStatus(failId)).toBeNull();
    expect(pidsNaming(path.join(labStateRoot(), labIdFor(failId)))).toEqual([]);
  }, 30_000);
});

describe('lab in loopback fallback mode', () => {
  const saved = { mode: process.env.AIRLOCK_LAB_MODE, noUnshare: process.env.AIRLOCK_LAB_NO_UNSHARE };
  const started: string[] = [];
  let client: SshClient;

  beforeAll(async () => {
    client = await SshClient.create();
  });

  afterAll(async () => {
    for (const id of started) await labDown({ id });
    process.env.AIRLOCK_LAB_MODE = saved.mode;
    if (saved.mode === undefined) delete process.env.AIRLOCK_LAB_MODE;
    if (saved.noUnshare === undefined) delete process.env.AIRLOCK_LAB_NO_UNSHARE;
    if (client) await rm(client.dir, { recursive: true, force: true });
  }, 30_000);

  async function upLoopback(id: string, noUnshare: boolean): Promise<Lab> {
    process.env.AIRLOCK_LAB_MODE = 'loopback';
    if (noUnshare) process.env.AIRLOCK_LAB_NO_UNSHARE = '1';
    else delete process.env.AIRLOCK_LAB_NO_UNSHARE;
    started.push(id);
    try {
      return await labUp({ id, hosts: 2, authorize: [client.publicKey()] });
    } finally {
      delete process.env.AIRLOCK_LAB_MODE;
      delete process.env.AIRLOCK_LAB_NO_UNSHARE;
    }
  }

  for (const noUnshare of [false, true]) {
    it(`serves 2 hosts on 127.213.X.Y${noUnshare ? ' without mount namespaces' : ''}`, async () => {
      const id = `l${noUnshare ? 'n' : 'i'}${uniq}`;
      const lab = await upLoopback(id, noUnshare);
      expect(lab.mode).toBe('loopback');
      expect(lab.subnet).toMatch(/^127\.213\.\d+\.0\/24$/);
      await client.pin(lab.hosts);
      const [h1, h2] = lab.hosts as [LabHost, LabHost];
      expect(h1.port).not.toBe(h2.port);
      expect(await scannedFingerprint(h1)).toBe(h1.fingerprint);
      const one = await client.ssh(h1, 'nvidia-smi -L | head -1');
      const two = await client.ssh(h2, 'nvidia-smi -L | head -1');
      expect(one.stdout).toMatch(/^GPU 0: NVIDIA A100-SXM4-80GB/);
      expect(two.stdout).toMatch(/^GPU 0: NVIDIA H100 80GB HBM3/);
      if (isRoot && !noUnshare) {
        expect((await client.ssh(h1, 'hostname')).stdout.trim()).toBe('host1');
        await client.ssh(h1, 'touch /srv/loop-marker');
        expect((await client.ssh(h2, 'test -e /srv/loop-marker; echo $?')).stdout.trim()).toBe('1');
      }
      const decoy = await tcpConnect(lab.decoy.address, lab.decoy.port);
      expect(decoy).toBe('open');

      await killSshd(lab, 'host2');
      expect(await tcpConnect(h2.address, h2.port)).toBe('refused');
      await startSshd(lab, 'host2');
      expect((await client.ssh(h2, 'echo ok')).stdout.trim()).toBe('ok');

      const named = pidsNaming(lab.dir);
      expect(named.length).toBeGreaterThanOrEqual(3);
      await labDown({ id });
      expect(livePids(named)).toEqual([]);
      expect(existsSync(lab.dir)).toBe(false);
      expect(await readFile(path.join(lab.dir, 'state.json'), 'utf8').catch(() => null)).toBeNull();
    }, 30_000);
  }
});

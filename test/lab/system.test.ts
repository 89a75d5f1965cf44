/**
 * Each lab host has a system of its own: packages installed with dpkg, sshd's own config with
 * drop-ins reloaded by SIGHUP, an nftables ruleset in its own netns, files a fault test can
 * damage — all real inside the host, and none of it reaching this machine. Needs root (netns mode).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corruptFile, decoyConnections, killSshd, labDown, labStatus, labUp, runOnHost, setGpuProfile, startSshd, type Lab, type LabHost } from './lab';
import { GPU_FIELDS } from '../../electron/core/hosts/inventory';
import { exec, livePids, SshClient } from './testkit';

const ID = 'lab-sys';
const PKG = 'airlock-lab-probe';
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('lab hosts have a system of their own', () => {
  let lab: Lab;
  let client: SshClient;
  let work: string;
  const host = (n: number): LabHost => lab.hosts[n - 1]!;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('these tests need root (netns mode, overlays)');
    client = await SshClient.create();
    work = await mkdtemp(path.join(tmpdir(), 'airlock-lab-sys-'));
    lab = await labUp({ id: ID, hosts: 2, authorize: [client.publicKey()] });
    await client.pin(lab.hosts);
  }, 60_000);

  afterAll(async () => {
    await labDown({ id: ID });
    await client?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  }, 30_000);

  it('runs in netns mode with a private system', () => {
    expect(lab.mode).toBe('netns');
    expect(lab.privateSystem).toBe(true);
  });

  it('dpkg -i over ssh installs into that host only, never into the machine', async () => {
    // A tiny package, built here.
    const root = path.join(work, 'pkg');
    await mkdir(path.join(root, 'DEBIAN'), { recursive: true });
    await mkdir(path.join(root, 'usr', 'share', PKG), { recursive: true });
    await writeFile(
      path.join(root, 'DEBIAN', 'control'),
      `Package: ${PKG}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Airlock lab <lab@invalid>\nDescription: lab probe package\n`,
    );
    await writeFile(path.join(root, 'usr', 'share', PKG, 'hello.txt'), 'hello from the probe\n');
    const deb = path.join(work, `${PKG}.deb`);
    const built = await exec('dpkg-deb', ['--root-owner-group', '--build', root, deb]);
    expect(built.code, built.stderr).toBe(0);
    // Into host1's own /tmp (the same file the host sees as /tmp/…).
    await copyFile(deb, path.join(host(1).dir, 'fs', 'tmp', `${PKG}.deb`));

    const machineStatus = sha('/var/lib/dpkg/status');
    const install = await client.ssh(host(1), `DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/${PKG}.deb`);
    expect(install.code, install.stderr).toBe(0);
    expect(install.stdout).toContain(`Setting up ${PKG} (1.0-1)`);

    const there = await client.ssh(host(1), `dpkg-query -W ${PKG} && cat /usr/share/${PKG}/hello.txt`);
    expect(there.code, there.stderr).toBe(0);
    expect(there.stdout).toBe(`${PKG}\t1.0-1\nhello from the probe\n`);

    const other = await client.ssh(host(2), `dpkg-query -W ${PKG}; test -e /usr/share/${PKG} && echo present || echo absent`);
    expect(other.stderr).toMatch(/no packages found matching/);
    expect(other.stdout.trim()).toBe('absent');

    const machine = await exec('dpkg-query', ['-W', PKG]);
    expect(machine.code).not.toBe(0);
    expect(existsSync(`/usr/share/${PKG}`)).toBe(false);
    expect(sha('/var/lib/dpkg/status')).toBe(machineStatus);

    // The change lives in the host's upper dirs, which labDown removes with the lab.
    expect(existsSync(path.join(host(1).dir, 'system', 'upper', 'usr', 'share', PKG, 'hello.txt'))).toBe(true);
    const removed = await client.ssh(host(1), `dpkg -r ${PKG} >/dev/null && test ! -e /usr/share/${PKG}/hello.txt && echo removed`);
    expect(removed.stdout.trim()).toBe('removed');
  }, 60_000);

  it('keeps /etc, /var and /run private: files written on a host stay there', async () => {
    const w = await client.ssh(host(1), 'echo one > /etc/airlock-lab-marker && echo one > /var/airlock-lab-marker && echo one > /run/airlock-lab-marker && echo ok');
    expect(w.stdout.trim()).toBe('ok');
    const two = await client.ssh(host(2), 'ls /etc/airlock-lab-marker /var/airlock-lab-marker /run/airlock-lab-marker 2>/dev/null | wc -l');
    expect(two.stdout.trim()).toBe('0');
    for (const f of ['/etc/airlock-lab-marker', '/var/airlock-lab-marker', '/run/airlock-lab-marker']) expect(existsSync(f)).toBe(false);
    // bash and timeout come from the machine's /usr, seen through the host's overlay.
    const tools = await client.ssh(host(1), 'bash -c "echo \\$BASH_VERSION" && timeout 5 true && echo tools-ok');
    expect(tools.stdout).toMatch(/^\d+\.\d+.*\ntools-ok\n$/);
  });

  it('sshd reads the host\'s own /etc/ssh/sshd_config: sshd -T on the host shows the effective settings', async () => {
    const r = await client.ssh(host(1), 'head -n 3 /etc/ssh/sshd_config | grep -v "^#"; sshd -T');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('Include /etc/ssh/sshd_config.d/*.conf');
    const t = Object.fromEntries(r.stdout.split('\n').slice(1).filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
    expect(t.pidfile).toBe('/run/sshd.pid');
    expect(t.hostkey).toBe('/etc/ssh/ssh_host_ed25519_key');
    // An unhardened host, so a hardening drop-in has something to change.
    expect(t.passwordauthentication).toBe('yes');
    expect(t.permitrootlogin).toBe('yes');
    // The served key is the one in the host's /etc/ssh (and the one the lab reports).
    const fp = await client.ssh(host(1), 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
    expect(fp.stdout.split(/\s+/)[1]).toBe(host(1).fingerprint);
    // The machine's own sshd config and keys are not the host's.
    const keys = await client.ssh(host(1), 'ls /etc/ssh/ | grep "^ssh_host_"; ls /etc/ssh/sshd_config.d | wc -l');
    expect(keys.stdout).toBe('ssh_host_ed25519_key\nssh_host_ed25519_key.pub\n0\n');
  });

  it('a drop-in plus SIGHUP to the PidFile pid reloads sshd for real, and the lab keeps tracking it', async () => {
    const before = (await labStatus(ID))!.hosts[0]!;
    expect(before.sshdRunning).toBe(true);
    const pidBefore = (await client.ssh(host(1), 'cat /run/sshd.pid')).stdout.trim();
    const hup = `kill -HUP "$(cat "$(sshd -T | awk '$1=="pidfile"{print $2}')")"`;

    // Lock root out first: if the reload were not real, the next login would still work.
    const lock = await client.ssh(host(1), `printf 'PermitRootLogin no\\n' > /etc/ssh/sshd_config.d/50-airlock.conf && sshd -t && ${hup}`);
    expect(lock.code, lock.stderr).toBe(0);
    let refused = await client.ssh(host(1), 'true');
    for (let i = 0; i < 20 && /Connection refused/.test(refused.stderr); i++) {
      await new Promise((r) => setTimeout(r, 100)); // sshd is re-executing
      refused = await client.ssh(host(1), 'true');
    }
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/Permission denied/);

    // The hardening the provisioning step writes: key login still works after the reload.
    const fix = await runOnHost(lab, 'host1', ['sh', '-c', `printf 'PasswordAuthentication no\\nPermitRootLogin prohibit-password\\n' > /etc/ssh/sshd_config.d/50-airlock.conf && ${hup}`]);
    expect(fix.code, fix.stderr).toBe(0);
    const t = await client.sshWhenUp(host(1), 'sshd -T | grep -E "^(passwordauthentication|permitrootlogin) "; cat /run/sshd.pid');
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines.slice(0, 2).sort()).toEqual(['passwordauthentication no', 'permitrootlogin without-password']);
    // sshd re-executed itself: same pid, still the lab's sshd.
    expect(lines[2]).toBe(pidBefore);
    const after = (await labStatus(ID))!.hosts[0]!;
    expect(after.sshdRunning).toBe(true);

    // systemctl reload ssh does the same (sshd -t, then SIGHUP), as on a Debian host.
    const viaSystemctl = await client.ssh(host(1), 'systemctl reload ssh && systemctl is-active ssh');
    expect(viaSystemctl.code, viaSystemctl.stderr).toBe(0);
    expect(viaSystemctl.stdout.trim()).toBe('active');
    expect((await client.sshWhenUp(host(1), 'hostname')).stdout.trim()).toBe('host1');

    // The lab's own controls still work on the re-executed sshd.
    await killSshd(lab, 'host1');
    expect((await labStatus(ID))!.hosts[0]!.sshdRunning).toBe(false);
    expect((await client.ssh(host(1), 'true')).code).toBe(255);
    await startSshd(lab, 'host1');
    const back = await client.ssh(host(1), 'sshd -T | grep "^passwordauthentication "');
    expect(back.stdout.trim()).toBe('passwordauthentication no'); // the drop-in is the host's, it stays
  }, 60_000);

  it('nft -f in a host changes only that host\'s netns: egress to the decoy dropped on host1 only', async () => {
    const d = lab.decoy;
    const table = 'airlock_lab_probe_egress';
    const ruleset = `table inet ${table} {\n  chain output {\n    type filter hook output priority filter; policy accept;\n    ip daddr ${d.address} tcp dport ${d.port} drop\n  }\n}\n`;
    const machineBefore = await exec('nft', ['list', 'ruleset']);
    const load = await client.ssh(host(1), `cat > /tmp/egress.nft && nft -f /tmp/egress.nft && nft list ruleset`, { input: ruleset });
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toContain(`table inet ${table}`);
    expect(load.stdout).toContain(`ip daddr ${d.address} tcp dport ${d.port} drop`);
    expect((await client.ssh(host(2), 'nft list ruleset')).stdout).not.toContain(table);
    expect((await exec('nft', ['list', 'ruleset'])).stdout).not.toContain(table);
    expect(machineBefore.stdout).not.toContain(table);

    const probe = `timeout 3 bash -c 'exec 3<>/dev/tcp/${d.address}/${d.port} && head -c 6 <&3'`;
    const blocked = await client.ssh(host(1), probe);
    expect(blocked.code).not.toBe(0);
    expect(blocked.stdout).toBe('');
    const open = await client.ssh(host(2), probe);
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toBe('decoy\n');
    const seen = (await decoyConnections(lab)).map((c) => c.from);
    expect(seen).toContain(host(2).address);
    expect(seen).not.toContain(host(1).address);
  }, 30_000);

  it('corruptFile flips one byte of a host\'s file, on that host only', async () => {
    const w = await client.ssh(host(1), 'mkdir -p /srv/models/tiny && printf abcdef > /srv/models/tiny/weights.bin && sha256sum /srv/models/tiny/weights.bin');
    expect(w.code, w.stderr).toBe(0);
    const flipped = await corruptFile(lab, 'host1', '/srv/models/tiny/weights.bin', 2);
    expect(flipped).toEqual({ offset: 2, before: 0x63, after: 0x9c });
    const od = await client.ssh(host(1), 'od -An -tx1 /srv/models/tiny/weights.bin; sha256sum /srv/models/tiny/weights.bin');
    expect(od.stdout.split('\n')[0]!.trim()).toBe('61 62 9c 64 65 66');
    expect(od.stdout.split('\n')[1]).not.toBe(w.stdout.trim());
    // From the end, and with another mask.
    expect(await corruptFile(lab, 'host1', '/srv/models/tiny/weights.bin', -1, 0x01)).toEqual({ offset: 5, before: 0x66, after: 0x67 });
    await expect(corruptFile(lab, 'host1', '/srv/models/tiny/weights.bin', 6)).rejects.toThrow(/outside/);

    // A file the host sees from the machine's /etc: only the host's copy changes.
    const machineSha = sha('/etc/debian_version');
    await corruptFile(lab, 'host1', '/etc/debian_version', 0);
    const mine = await client.ssh(host(1), 'sha256sum /etc/debian_version');
    const theirs = await client.ssh(host(2), 'sha256sum /etc/debian_version');
    expect(mine.stdout.split(' ')[0]).not.toBe(machineSha);
    expect(theirs.stdout.split(' ')[0]).toBe(machineSha);
    expect(sha('/etc/debian_version')).toBe(machineSha);
  }, 30_000);

  it('nvidia-smi answers a repeated query from its cache, and setGpuProfile starts afresh', async () => {
    const q = 'nvidia-smi --query-gpu=index,name,power.limit --format=csv,noheader';
    const first = await client.ssh(host(2), q);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.split('\n')[0]).toBe('0, NVIDIA H100 80GB HBM3, 700.00 W');
    const entry = path.join(host(2).dir, 'smi-cache', '1', `+${q.split(' ').slice(1).join('+')}`);
    expect(readFileSync(path.join(entry, 'out'), 'utf8')).toBe(first.stdout);
    // Served from the cache: make the cached answer recognisable to prove it.
    await writeFile(path.join(entry, 'out'), 'from the cache\n');
    expect((await client.ssh(host(2), q)).stdout).toBe('from the cache\n');
    await setGpuProfile(lab, 'host2', (p) => {
      p.gpus[0]!.name = 'NVIDIA H100 PCIe';
    });
    const changed = await client.ssh(host(2), q);
    expect(changed.stdout.split('\n')[0]).toBe('0, NVIDIA H100 PCIe, 700.00 W');
    // Answers that show the clock are never cached; errors keep their exit code.
    const table = await client.ssh(host(2), 'nvidia-smi --query-gpu=timestamp,index --format=csv,noheader; nvidia-smi --query-gpu=bogus --format=csv; echo "rc=$?"; nvidia-smi --query-gpu=bogus --format=csv; echo "rc=$?"');
    expect(table.stdout).toMatch(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{3}, 0\n/);
    expect(table.stdout).toContain('Field "bogus" is not a valid field to query.\n\nrc=2\nField "bogus" is not a valid field to query.\n\nrc=2\n');
    expect(readFileSync(path.join(host(2).dir, 'smi-cache', 'gen'), 'utf8').trim()).toBe('2');
    expect(existsSync(path.join(host(2).dir, 'smi-cache', '2', '+--query-gpu=timestamp,index+--format=csv,noheader'))).toBe(false);
    // Airlock's own scan query (a 203-byte key: longer keys once bypassed the cache) is cached too.
    const scan = `nvidia-smi --query-gpu=${[...GPU_FIELDS].join(',')} --format=csv,noheader,nounits`;
    expect((await client.ssh(host(2), scan)).code).toBe(0);
    expect(existsSync(path.join(host(2).dir, 'smi-cache', '2', `+${scan.split(' ').slice(1).join('+')}`, 'out'))).toBe(true);
  }, 30_000);

  it('runOnHost works while the host\'s sshd is down, in the same system', async () => {
    await killSshd(lab, 'host2');
    try {
      const r = await runOnHost(lab, 'host2', ['sh', '-c', 'hostname; cat /run/sshd.pid >/dev/null && echo pidfile; nft list ruleset | wc -l; test -e /etc/airlock-lab-marker || echo no-marker']);
      expect(r.stdout).toBe('host2\npidfile\n0\nno-marker\n');
    } finally {
      await startSshd(lab, 'host2');
    }
  }, 30_000);

  it('labDown leaves no host system, process, namespace or nft state behind', async () => {
    const hostDirs = lab.hosts.map((h) => h.dir);
    const nsPids: number[] = [];
    for (const h of lab.hosts) {
      const r = await exec('ip', ['netns', 'pids', h.netns!]);
      nsPids.push(...r.stdout.split(/\s+/).filter(Boolean).map(Number));
    }
    expect(nsPids.length).toBeGreaterThanOrEqual(4); // per host: holder (+ its sleep) and sshd
    await labDown({ id: ID });
    expect(livePids(nsPids)).toEqual([]);
    for (const d of hostDirs) expect(existsSync(d)).toBe(false);
    expect((await exec('ip', ['netns', 'list'])).stdout).not.toContain(`airlock-lab.${lab.id}.`);
    expect((await exec('nft', ['list', 'ruleset'])).stdout).not.toContain('airlock_lab_probe_egress');
    expect(existsSync(`/usr/share/${PKG}`)).toBe(false);
  }, 30_000);
});

/**
 * Services on lab hosts: the lab's systemctl simulator (systemd cannot run in a lab host) running
 * the inference server simulator the way provisioning does it on a real host — unit file,
 * daemon-reload, enable, restart, is-active — over real SSH. Needs root (netns mode).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killSshd, labDown, labUp, runOnHost, startSshd, type Lab, type LabHost } from './lab';
import { exec, livePids, SshClient } from './testkit';

const ID = 'lab-svc';
const UNIT = 'airlock-inference';
const KEY = 'svc-test-key-42';

function unitText(opts: { served: string; model?: string; port?: number; extra?: string[] }): string {
  return [
    '[Unit]',
    'Description=Inference server (lab test)',
    'After=network.target',
    '',
    '[Service]',
    `ExecStart=/usr/local/bin/airlock-inference-sim --model ${opts.model ?? '/srv/models/tiny/v1'} --served-model-name ${opts.served} --host 127.0.0.1 --port ${opts.port ?? 8000} --api-key-file /etc/airlock/inference.key --max-model-len 2048`,
    'Restart=on-failure',
    'RestartSec=2',
    'NoNewPrivileges=yes',
    ...(opts.extra ?? []),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** An HTTP request made inside the host (its loopback), with the node the lab gives hosts. */
async function httpOnHost(lab: Lab, host: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const script = `fetch(process.argv[1], { headers: JSON.parse(process.argv[2]) }).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), (e) => { console.error(String(e.cause ?? e)); process.exit(7); })`;
  const r = await runOnHost(lab, host, [process.execPath, '-e', script, url, JSON.stringify(headers)]);
  if (r.code !== 0) return { status: -1, body: r.stderr.trim() };
  return JSON.parse(r.stdout) as { status: number; body: string };
}

function netnsOf(pid: number): Promise<string> {
  return exec('ip', ['netns', 'identify', String(pid)]).then((r) => r.stdout.trim());
}

describe('systemctl and the inference server on lab hosts', () => {
  let lab: Lab;
  let client: SshClient;
  const host = (n: number): LabHost => lab.hosts[n - 1]!;
  const ssh = (cmd: string, n = 1) => client.ssh(host(n), cmd);
  const mainPid = async (unit = UNIT): Promise<number> => Number((await ssh(`systemctl show -p MainPID --value ${unit}`)).stdout.trim());
  const started: number[] = [];

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('these tests need root (netns mode, overlays)');
    client = await SshClient.create();
    lab = await labUp({ id: ID, hosts: 2, authorize: [client.publicKey()] });
    await client.pin(lab.hosts);
    const setup = await ssh(
      `mkdir -p /srv/models/tiny/v1 /etc/airlock && head -c 4096 /dev/urandom > /srv/models/tiny/v1/model.safetensors && ` +
        `umask 077 && echo ${KEY} > /etc/airlock/inference.key`,
    );
    expect(setup.code, setup.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await labDown({ id: ID });
    await client?.dispose();
  }, 30_000);

  it('has systemctl and journalctl simulators ahead of /usr/bin on the host PATH', async () => {
    const r = await ssh('command -v systemctl journalctl airlock-inference-sim; systemctl --version | head -1');
    expect(r.stdout).toBe('/usr/local/bin/systemctl\n/usr/local/bin/journalctl\n/usr/local/bin/airlock-inference-sim\nsystemd 252 (252-lab)\n');
  });

  it('writes a unit, daemon-reload + enable + restart: the server runs in the host, outliving the ssh session', async () => {
    const write = await client.ssh(host(1), `cat > /etc/systemd/system/${UNIT}.service`, { input: unitText({ served: 'tiny' }) });
    expect(write.code, write.stderr).toBe(0);
    const up = await ssh(`systemctl daemon-reload && systemctl enable ${UNIT} && systemctl restart ${UNIT}`);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain(`Created symlink /etc/systemd/system/multi-user.target.wants/${UNIT}.service → /etc/systemd/system/${UNIT}.service.`);

    // A new session: the service is still there.
    const active = await ssh(`systemctl is-active ${UNIT}; systemctl is-enabled ${UNIT}; systemctl show -p MainPID,ActiveState ${UNIT}`);
    expect(active.code).toBe(0);
    const [state, enabled, pidLine, stateLine] = active.stdout.trim().split('\n');
    expect([state, enabled, stateLine]).toEqual(['active', 'enabled', 'ActiveState=active']);
    const pid = Number(pidLine!.replace('MainPID=', ''));
    expect(pid).toBeGreaterThan(1);
    started.push(pid);
    expect(await netnsOf(pid)).toBe(host(1).netns);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('/usr/local/bin/airlock-inference-sim');

    expect(await httpOnHost(lab, 'host1', 'http://127.0.0.1:8000/health')).toEqual({ status: 200, body: '' });
    expect((await httpOnHost(lab, 'host1', 'http://127.0.0.1:8000/v1/models')).status).toBe(401);
    const models = await httpOnHost(lab, 'host1', 'http://127.0.0.1:8000/v1/models', { authorization: `Bearer ${KEY}` });
    expect(models.status).toBe(200);
    expect(JSON.parse(models.body)).toMatchObject({ object: 'list', data: [{ id: 'tiny', max_model_len: 2048 }] });

    // Only the host's loopback: host2 cannot reach it.
    const fromPeer = await ssh(`timeout 3 bash -c 'exec 3<>/dev/tcp/${host(1).address}/8000' 2>&1 || echo unreachable`, 2);
    expect(fromPeer.stdout).toMatch(/unreachable/);
    // And nothing of it is on the machine.
    expect(existsSync(`/etc/systemd/system/${UNIT}.service`)).toBe(false);
    expect(existsSync('/var/lib/airlock-host/systemd')).toBe(false);
  }, 60_000);

  it('shows status and a journal, and survives the host\'s sshd dying with its sessions', async () => {
    const pid = await mainPid();
    const st = await ssh(`systemctl status ${UNIT}; echo "rc=$?"; journalctl -u ${UNIT} --no-pager -n 50`);
    expect(st.stdout).toMatch(new RegExp(`^● ${UNIT}\\.service - Inference server \\(lab test\\)\\n`));
    expect(st.stdout).toMatch(/Loaded: loaded \(\/etc\/systemd\/system\/airlock-inference\.service; enabled; preset: enabled\)/);
    expect(st.stdout).toMatch(/Active: active \(running\) since /);
    expect(st.stdout).toContain(`Main PID: ${pid} (airlock-inferen)`); // the comm, as systemd shows it
    expect(st.stdout).toContain('rc=0');
    expect(st.stdout).toMatch(/Uvicorn running on http:\/\/127\.0\.0\.1:8000/);

    await killSshd(lab, 'host1', { sessions: true });
    await startSshd(lab, 'host1');
    const after = await ssh(`systemctl is-active ${UNIT} && systemctl show -p MainPID --value ${UNIT}`);
    expect(after.stdout).toBe(`active\n${pid}\n`);
  }, 30_000);

  it('keeps the loaded definition until daemon-reload, as systemd does', async () => {
    const before = await mainPid();
    await client.ssh(host(1), `cat > /etc/systemd/system/${UNIT}.service`, { input: unitText({ served: 'tiny-v2' }) });
    const stale = await ssh(`systemctl restart ${UNIT}`);
    expect(stale.code).toBe(0);
    expect(stale.stderr).toContain(`Warning: The unit file, source configuration file or drop-ins of ${UNIT}.service changed on disk. Run 'systemctl daemon-reload' to reload units.`);
    const old = await httpOnHost(lab, 'host1', 'http://127.0.0.1:8000/v1/models', { authorization: `Bearer ${KEY}` });
    expect(JSON.parse(old.body).data[0].id).toBe('tiny');

    const fresh = await ssh(`systemctl daemon-reload && systemctl restart ${UNIT}`);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toBe('');
    const now = await httpOnHost(lab, 'host1', 'http://127.0.0.1:8000/v1/models', { authorization: `Bearer ${KEY}` });
    expect(JSON.parse(now.body).data[0].id).toBe('tiny-v2');
    const pid = await mainPid();
    expect(pid).not.toBe(before);
    expect(livePids([before])).toEqual([]);
    started.push(pid);
  }, 30_000);

  it('stop makes it inactive (is-active exit 3) and ends the process', async () => {
    const pid = await mainPid();
    const stop = await ssh(`systemctl stop ${UNIT}; systemctl is-active ${UNIT}; echo "rc=$?"; systemctl show -p MainPID,ActiveState,SubState ${UNIT}`);
    expect(stop.stdout).toBe('inactive\nrc=3\nMainPID=0\nActiveState=inactive\nSubState=dead\n');
    expect(livePids([pid])).toEqual([]);
    expect((await httpOnHost(lab, 'host1', 'http://127.0.0.1:8000/health')).status).toBe(-1);
    // and start brings it back
    const start = await ssh(`systemctl start ${UNIT} && systemctl is-active ${UNIT}`);
    expect(start.stdout).toBe('active\n');
    started.push(await mainPid());
  }, 30_000);

  it('start fails (exit 1, log tail) when the server dies at once: a missing model', async () => {
    const unit = 'bad-model';
    await client.ssh(host(1), `cat > /etc/systemd/system/${unit}.service`, { input: unitText({ served: 'x', model: '/srv/models/missing', port: 8001 }) });
    const t0 = Date.now();
    const r = await ssh(`systemctl daemon-reload && systemctl start ${unit}`);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Job for ${unit}.service failed because the control process exited with error code`);
    expect(r.stderr).toContain('ERROR: model path /srv/models/missing does not exist');
    const st = await ssh(`systemctl is-active ${unit}; echo "rc=$?"; systemctl status ${unit}; echo "rc=$?"`);
    const [state, rc] = st.stdout.split('\n');
    expect(['failed', 'activating']).toContain(state); // Restart=on-failure keeps trying, as systemd would
    expect(rc).toBe('rc=3');
    expect(st.stdout).toMatch(/Active: (failed|activating \(auto-restart\)) \(Result: exit-code\)/);
    expect(st.stdout).toMatch(/rc=3\n$/);
    const stop = await ssh(`systemctl stop ${unit}; systemctl reset-failed ${unit}; systemctl is-active ${unit}`);
    expect(stop.stdout.trim()).toMatch(/^(inactive|failed)$/);
  }, 30_000);

  it('applies Environment=, EnvironmentFile=, WorkingDirectory= and systemd command-line quoting', async () => {
    const unit = [
      '[Service]',
      'Environment="GREETING=hello world" PLAIN=x SPLIT="a b"',
      'EnvironmentFile=/etc/default/env-probe',
      'EnvironmentFile=-/etc/default/not-there',
      'WorkingDirectory=/srv',
      'User=nobody',
      `ExecStart=/bin/sh -c 'echo "$GREETING|$PLAIN|$FROMFILE|$(pwd)|$1|$2|$3|%n" > /tmp/env-probe.out; exec sleep 600' sh $SPLIT \${GREETING}`,
      '',
    ].join('\n');
    await client.ssh(host(1), 'cat > /etc/systemd/system/env-probe.service', { input: unit });
    await ssh(`printf '# a comment\\nFROMFILE="from file"\\n' > /etc/default/env-probe`);
    const r = await ssh('systemctl start env-probe && cat /tmp/env-probe.out && systemctl is-active env-probe');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hello world|x|from file|/srv|a|b|hello world|env-probe.service\nactive\n');
    const pid = await mainPid('env-probe');
    started.push(pid);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+0\s/m); // User= is ignored in the lab
  }, 30_000);

  it('a package with a unit: dpkg\'s maintainer scripts enable and start it through the simulator', async () => {
    // What debhelper generates for a service package, cut down: deb-systemd-helper + deb-systemd-invoke.
    const pkg = 'airlock-lab-svc-probe';
    const root = await mkdtemp(path.join(tmpdir(), 'airlock-lab-svcpkg-'));
    try {
      await mkdir(path.join(root, 'DEBIAN'), { recursive: true });
      await mkdir(path.join(root, 'lib', 'systemd', 'system'), { recursive: true });
      await mkdir(path.join(root, 'usr', 'bin'), { recursive: true });
      await writeFile(path.join(root, 'DEBIAN', 'control'), `Package: ${pkg}\nVersion: 1.0\nArchitecture: all\nMaintainer: Airlock lab <lab@invalid>\nDescription: service probe\n`);
      await writeFile(path.join(root, 'usr', 'bin', pkg), '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
      await writeFile(path.join(root, 'lib', 'systemd', 'system', `${pkg}.service`), `[Unit]\nDescription=service probe\n[Service]\nExecStart=/usr/bin/${pkg}\n[Install]\nWantedBy=multi-user.target\n`);
      await writeFile(
        path.join(root, 'DEBIAN', 'postinst'),
        [
          '#!/bin/sh',
          'set -e',
          `if [ "$1" = configure ]; then`,
          `  if deb-systemd-helper --quiet was-enabled '${pkg}.service'; then deb-systemd-helper enable '${pkg}.service' >/dev/null || true;`,
          `  else deb-systemd-helper update-state '${pkg}.service' >/dev/null || true; fi`,
          '  if [ -d /run/systemd/system ]; then',
          '    systemctl --system daemon-reload >/dev/null || true',
          `    deb-systemd-invoke start '${pkg}.service' >/dev/null || true`,
          '  fi',
          'fi',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
      const deb = path.join(host(1).dir, 'fs', 'tmp', `${pkg}.deb`);
      const built = await exec('dpkg-deb', ['--root-owner-group', '--build', root, deb]);
      expect(built.code, built.stderr).toBe(0);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
    const r = await ssh(`dpkg -i /tmp/${pkg}.deb >/dev/null 2>&1; systemctl is-enabled ${pkg}; systemctl is-active ${pkg}`);
    expect(r.stdout).toBe('enabled\nactive\n');
    started.push(await mainPid(pkg));
    expect(existsSync(`/lib/systemd/system/${pkg}.service`)).toBe(false);
  }, 30_000);

  it('labDown ends every service it started', async () => {
    expect(livePids(started).length).toBeGreaterThanOrEqual(2);
    await labDown({ id: ID });
    expect(livePids(started)).toEqual([]);
  }, 30_000);
});

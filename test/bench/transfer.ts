/**
 * Transfer benchmark: a 1 GiB random file pushed to one lab host with Airlock's uploadFile (1, 2
 * and 4 connections, each with uploadFile's default 2 SFTP channels) against OpenSSH's `sftp put` of the same file to the same host over the same
 * link, in the same run, runs interleaved. Both sides are timed from nothing to done: connecting
 * (sftp starts ssh; Airlock opens its connections) through the file being on the host; Airlock's
 * figure also includes what sftp does not do: free-space check, SHA-256 verification on the host,
 * fsync and the atomic rename. CPU: Airlock's own process (process.cpuUsage) against the sftp child
 * and its ssh (this process's reaped-children time), and the whole machine (the lab's sshd and
 * sftp-server run on the same cores). The anchor is sftp as users run it (OpenSSH's default cipher,
 * chacha20-poly1305 with these OpenSSH versions); a context row gives sftp with ssh2's AES-GCM.
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type SshConnection } from '../../electron/core/ssh/connection';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import { uploadFile } from '../../electron/core/ssh/sftp';
import { authorizeKey, labDown, labUp, runOnHost, type Lab, type LabHost } from '../lab/lab';

export interface BenchRow {
  figure: string;
  value: string;
  anchor: string;
  anchorValue: string;
  ratio: string;
  goal: string;
}

const LAB_ID = 'ssh-bench';
const SIZE = 1024 * 1024 * 1024;
const REPS = 5;
const CONNECTIONS = [1, 2, 4];
/** uploadFile's default: each connection carries this many SFTP channels. */
const CHANNELS = 2;
const REMOTE = '/srv/bench/transfer.bin';
/** The cipher ssh2 negotiates with OpenSSH (AES-NI); sftp's default is chacha20-poly1305. */
const GCM = 'aes128-gcm@openssh.com';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (seconds: number) => SIZE / 1e6 / seconds;

/** CPU seconds of this process's reaped children (cutime + cstime; USER_HZ = 100). */
function childrenCpu(): number {
  const s = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** CPU seconds the whole machine has been busy. */
function machineCpu(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return (f.reduce((x, y) => x + y, 0) - idle) / 100;
}

function run(cmd: string, args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

interface Sample {
  seconds: number;
  ownCpu: number;
  machineCpu: number;
}

/** A 1 GiB file of random bytes, and its SHA-256 (the caller's part of an upload). */
function makeFile(file: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < SIZE; done += buf.length) {
      randomFillSync(buf);
      hash.update(buf);
      fs.writeSync(fd, buf);
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** A known_hosts line for the host, checked against the fingerprint the lab reports (sftp runs with StrictHostKeyChecking=yes). */
async function knownHosts(host: LabHost, file: string): Promise<void> {
  const scan = await run('ssh-keyscan', ['-t', 'ed25519', '-p', String(host.port), host.address]);
  const line = scan.stdout.split('\n').find((l) => l.includes('ssh-ed25519'));
  if (!line) throw new Error(`transfer bench: ssh-keyscan found no key: ${scan.stderr}`);
  fs.writeFileSync(file, line + '\n');
  const fp = (await run('ssh-keygen', ['-lf', file])).stdout.split(' ')[1];
  if (fp !== host.fingerprint) throw new Error(`transfer bench: ${host.address} presents ${fp}, the lab says ${host.fingerprint}`);
}

export async function benchTransfer(rows: BenchRow[]): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-transfer-'));
  let lab: Lab | null = null;
  try {
    lab = await labUp({ id: LAB_ID, hosts: 1, replace: true });
    const host = lab.hosts[0]!;
    const identity = generateIdentity('airlock-bench-transfer');
    await authorizeKey(lab, identity.publicKey);
    const keyFile = path.join(dir, 'id_ed25519');
    fs.writeFileSync(keyFile, identity.privateKey, { mode: 0o600 });
    const known = path.join(dir, 'known_hosts');
    await knownHosts(host, known);
    const local = path.join(dir, 'transfer.bin');
    const sha256 = makeFile(local);
    const onHost = async (script: string) => {
      const r = await runOnHost(lab!, host.name, ['/bin/sh', '-c', script], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`transfer bench: ${script}: ${r.stderr}`);
      return r.stdout;
    };
    const clean = () => onHost(`mkdir -p /srv/bench && rm -f ${REMOTE} ${REMOTE}.airlock-part ${REMOTE}.airlock-part.json`);

    const sshOpts = ['-i', keyFile, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`, '-o', 'LogLevel=ERROR'];
    /**
     * OpenSSH's sftp put, as users run it (OpenSSH's default cipher order); `cipher`: with that
     * cipher instead (context: ssh2's choice, AES-GCM); `verified`: then, over ssh, what uploadFile
     * does beyond it: sha256sum and a sync of the file.
     */
    const sftp = async (verified: boolean, cipher?: string): Promise<Sample> => {
      await clean();
      const c0 = childrenCpu();
      const m0 = machineCpu();
      const t0 = performance.now();
      const opts = cipher ? [...sshOpts, '-o', `Ciphers=${cipher}`] : sshOpts;
      const r = await run('sftp', ['-q', '-b', '-', ...opts, '-P', String(host.port), `${host.user}@${host.address}`], `put ${local} ${REMOTE}\n`);
      if (r.code !== 0) throw new Error(`transfer bench: sftp failed (${r.code}): ${r.stderr}`);
      if (verified) {
        const v = await run('ssh', [...sshOpts, '-p', String(host.port), `${host.user}@${host.address}`, `sha256sum -b ${REMOTE} && sync ${REMOTE}`]);
        if (v.code !== 0 || !v.stdout.startsWith(sha256)) throw new Error(`transfer bench: sha256sum after sftp: ${v.stdout} ${v.stderr}`);
      }
      const seconds = (performance.now() - t0) / 1000;
      const sample = { seconds, ownCpu: childrenCpu() - c0, machineCpu: machineCpu() - m0 };
      if ((await onHost(`stat -c %s ${REMOTE}`)).trim() !== String(SIZE)) throw new Error('transfer bench: sftp left a file of the wrong size');
      return sample;
    };

    let cipher = '';
    const airlock = async (n: number): Promise<Sample> => {
      await clean();
      const u0 = process.cpuUsage();
      const m0 = machineCpu();
      const t0 = performance.now();
      const conns: SshConnection[] = await Promise.all(
        Array.from({ length: n }, () =>
          connect({ address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint, hostName: host.name }, { privateKey: identity.privateKey }, { timeoutMs: 30_000 }),
        ),
      );
      try {
        const r = await uploadFile({ connections: conns, localPath: local, remotePath: REMOTE, sha256, timeoutMs: 120_000 });
        if (r.skipped || r.bytesSent !== SIZE || r.sha256 !== sha256) throw new Error(`transfer bench: unexpected result ${JSON.stringify(r)}`);
        cipher ||= negotiatedCipher(conns[0]!);
      } finally {
        for (const c of conns) c.close();
      }
      const seconds = (performance.now() - t0) / 1000;
      const u = process.cpuUsage(u0);
      return { seconds, ownCpu: (u.user + u.system) / 1e6, machineCpu: machineCpu() - m0 };
    };

    // The cipher sftp negotiates by default (ssh -v names it), for the summary line.
    const probe = await run('ssh', [...sshOpts, '-v', '-p', String(host.port), `${host.user}@${host.address}`, 'true']);
    const sftpCipher = /kex: client->server cipher: (\S+)/.exec(probe.stderr)?.[1] ?? '?';

    // Warm-up (page cache of the local file, sshd's first-connection costs), not counted.
    await sftp(false);
    await airlock(1);
    const order = ['sftp', 'sftpVerified', 'sftpGcm', ...CONNECTIONS.map((n) => `airlock${n}`)];
    const samples: Record<string, Sample[]> = Object.fromEntries(order.map((k) => [k, []]));
    for (let rep = 0; rep < REPS; rep++) {
      // Rotate the order, so no variant always runs right after the same other one.
      for (const key of [...order.slice(rep % order.length), ...order.slice(0, rep % order.length)]) {
        samples[key]!.push(
          key.startsWith('sftp') ? await sftp(key === 'sftpVerified', key === 'sftpGcm' ? GCM : undefined) : await airlock(Number(key.slice('airlock'.length))),
        );
      }
    }
    await clean();

    const stat = (key: string) => {
      const s = samples[key]!;
      return { seconds: median(s.map((x) => x.seconds)), ownCpu: median(s.map((x) => x.ownCpu)), machineCpu: median(s.map((x) => x.machineCpu)) };
    };
    const base = stat('sftp');
    const best = CONNECTIONS.map((n) => ({ n, ...stat(`airlock${n}`) })).sort((a, b) => a.seconds - b.seconds)[0]!;
    const rate = (s: number) => `${mbps(s).toFixed(0)} MB/s`;
    const connsLabel = (n: number) => `${n} conn${n > 1 ? 's' : ''} × ${CHANNELS} channels`;
    const anchor = 'OpenSSH sftp put (same file, host, link)';
    rows.push({
      figure: `push 1 GiB, uploadFile best (${connsLabel(best.n)}, verified)`,
      value: rate(best.seconds),
      anchor,
      anchorValue: rate(base.seconds),
      ratio: `${(base.seconds / best.seconds).toFixed(2)}×`,
      goal: '≥ 1.0× (aim 1.5×)',
    });
    for (const n of CONNECTIONS) {
      const s = stat(`airlock${n}`);
      rows.push({ figure: `(context) uploadFile, ${connsLabel(n)}`, value: rate(s.seconds), anchor, anchorValue: rate(base.seconds), ratio: `${(base.seconds / s.seconds).toFixed(2)}×`, goal: 'report' });
    }
    const gcm = stat('sftpGcm');
    rows.push({
      figure: `(context) uploadFile best (${connsLabel(best.n)})`,
      value: rate(best.seconds),
      anchor: `sftp put with -o Ciphers=${GCM} (ssh2's cipher)`,
      anchorValue: rate(gcm.seconds),
      ratio: `${(gcm.seconds / best.seconds).toFixed(2)}×`,
      goal: 'report',
    });
    const verified = stat('sftpVerified');
    rows.push({
      figure: `(context) uploadFile best (${connsLabel(best.n)})`,
      value: rate(best.seconds),
      anchor: 'sftp put, then sha256sum + sync over ssh',
      anchorValue: rate(verified.seconds),
      ratio: `${(verified.seconds / best.seconds).toFixed(2)}×`,
      goal: 'report',
    });
    rows.push({
      figure: `(context) Airlock process CPU, 1 GiB (${connsLabel(best.n)})`,
      value: `${best.ownCpu.toFixed(2)} s`,
      anchor: 'sftp + ssh child CPU, 1 GiB',
      anchorValue: `${base.ownCpu.toFixed(2)} s`,
      ratio: `${(best.ownCpu / base.ownCpu).toFixed(2)}×`,
      goal: 'report',
    });
    rows.push({
      figure: `(context) machine CPU, 1 GiB uploadFile (${connsLabel(best.n)}; host shares the cores)`,
      value: `${best.machineCpu.toFixed(2)} s`,
      anchor: 'machine CPU, 1 GiB sftp put',
      anchorValue: `${base.machineCpu.toFixed(2)} s`,
      ratio: `${(best.machineCpu / base.machineCpu).toFixed(2)}×`,
      goal: 'report',
    });
    console.error(
      `transfer bench: ssh2 cipher ${cipher}, sftp's default ${sftpCipher}; ${REPS} runs each, medians; ` +
        Object.entries(samples)
          .map(([k, v]) => `${k}: ${v.map((x) => x.seconds.toFixed(2)).join('/')} s`)
          .join('; '),
    );
  } finally {
    if (lab) await labDown({ id: LAB_ID });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The client-to-server cipher ssh2 negotiated (private ssh2 state; '?' if it moved). */
function negotiatedCipher(conn: SshConnection): string {
  const c = conn as unknown as { client?: { _protocol?: { _kex?: { negotiated?: { cs?: { cipher?: string } } } } } };
  return c.client?._protocol?._kex?.negotiated?.cs?.cipher ?? '?';
}

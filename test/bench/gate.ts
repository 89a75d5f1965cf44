/**
 * The gate's cost (issue 13): requests/s and latency through the gate (airlock-gate.py on a lab GPU
 * host, installed by install.ts, a signed policy with one invoke grant) against straight to the
 * same inference simulator on the same host, same run, rounds interleaved, medians.
 *
 * For the direct path the simulator listens on the host's lab address as well as its loopback
 * (0.0.0.0; in production it binds loopback only and the gate is the one way in). The client is this
 * process (node http, keep-alive), on the same 2 cores as the simulator and the gate, so the
 * throughput ratio includes the gate's CPU competing with both.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import { installGate, pushGatePolicy, waitForGatePolicy, writeGateFiles } from '../../electron/core/models/gate/install';
import { connect } from '../../electron/core/ssh/connection';
import { authorizeKey, labDown, labUp } from '../lab/lab';
import { newCredential, TestPolicySigner } from '../support/gate-policy';
import type { BenchRow } from './transfer';

const LAB_ID = 'gate-bench';
const ROUNDS = 3;
const LATENCY_REQUESTS = 400;
const THROUGHPUT_REQUESTS = 2000;
const CONCURRENCY = 16;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

function request(agent: http.Agent, url: URL, body: string, cred: string | null): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const r = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(cred ? { authorization: `Bearer ${cred}` } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t) : reject(new Error(`status ${res.statusCode}`))));
    });
    r.on('error', reject);
    r.end(body);
  });
}

async function latency(url: URL, body: string, cred: string | null, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 20; i++) await request(agent, url, body, cred); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await request(agent, url, body, cred));
  agent.destroy();
  return out;
}

/** CPU seconds (user + system) a process has used, from /proc (the lab shares this machine's pid namespace). */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in USER_HZ (100)
}

async function throughput(url: URL, body: string, cred: string | null): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let left = THROUGHPUT_REQUESTS;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) await request(agent, url, body, cred);
    }),
  );
  const s = (performance.now() - t) / 1000;
  agent.destroy();
  return THROUGHPUT_REQUESTS / s;
}

export async function benchGate(rows: BenchRow[]): Promise<void> {
  const lab = await labUp({ id: LAB_ID, hosts: 1, replace: true });
  const me = generateIdentity('airlock-gate-bench');
  await authorizeKey(lab, me.publicKey);
  const h = lab.hosts[0]!;
  const conn = await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: me.privateKey }, { timeoutMs: 30_000 });
  try {
    const out = async (cmd: string) => {
      const r = await conn.exec(cmd, { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`${cmd}: ${r.stderr}`);
      return r.stdout;
    };
    const exec = async (cmd: string) => void (await out(cmd));
    await exec('mkdir -p /srv/models/triage/1.2.0 && echo weights > /srv/models/triage/1.2.0/model.safetensors');
    const simulator = async (latencyMs: number) => {
      await writeGateFiles(conn, [{ path: '/etc/systemd/system/inference-bench.service', data: `[Service]\nExecStart=/usr/local/bin/airlock-inference-sim --model /srv/models/triage/1.2.0 --served-model-name triage:1.2.0 --host 0.0.0.0 --port 8000 --sim-latency-ms ${latencyMs}\n`, mode: 0o644 }]);
      await exec('systemctl daemon-reload && systemctl restart inference-bench.service');
      for (let i = 0; i < 100; i++) {
        if (await fetch(`http://${h.address}:8000/health`).then((r) => r.ok, () => false)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the simulator did not start');
    };
    await simulator(0);
    const signer = new TestPolicySigner();
    const cred = newCredential();
    await installGate(conn, { config: { host: h.name, roles: ['invoke'], listen: `${h.address}:8443`, upstream: '127.0.0.1:8000', metricsListen: `${h.address}:9464` }, policySigningKeyPem: signer.publicPem });
    const p = signer.policy({ version: 1, hosts: { [h.name]: { enclave: 'general', phi: false } }, principals: { 'app:bench': cred }, grants: [{ id: 'g', principal: 'app:bench', model: 'triage', version: '1.2.0', actions: ['invoke'] }] });
    await pushGatePolicy(conn, p);
    await waitForGatePolicy(conn, 1);

    const prompt = Array.from({ length: 60 }, () => crypto.randomBytes(3).toString('hex')).join(' ');
    const body = JSON.stringify({ model: 'triage:1.2.0', prompt, max_tokens: 16 });
    const direct = new URL(`http://${h.address}:8000/v1/completions`);
    const gated = new URL(`http://${h.address}:8443/v1/completions`);
    const ms = (x: number) => `${x.toFixed(2)} ms`;
    // 0 ms: the simulator answers in ~0.1 ms, so this is the proxy's whole cost laid bare (worst case).
    // 20 ms: a short completion on a real server, where the gate's CPU competes with nothing it waits for.
    for (const simMs of [0, 20]) {
      await simulator(simMs);
      const lat = { direct: [] as number[][], gate: [] as number[][] };
      const rps = { direct: [] as number[], gate: [] as number[] };
      const cpu = { sim: [] as number[], gate: [] as number[] };
      const n = simMs ? 100 : LATENCY_REQUESTS;
      const simPid = Number(await out('systemctl show -p MainPID --value inference-bench.service'));
      const gatePid = Number(await out('cat /run/airlock-gate/gate.pid'));
      for (let i = 0; i < ROUNDS; i++) {
        lat.direct.push(await latency(direct, body, null, n));
        lat.gate.push(await latency(gated, body, cred, n));
        let s0 = cpuSeconds(simPid);
        rps.direct.push(await throughput(direct, body, null));
        cpu.sim.push((cpuSeconds(simPid) - s0) / THROUGHPUT_REQUESTS);
        const g0 = cpuSeconds(gatePid);
        rps.gate.push(await throughput(gated, body, cred));
        cpu.gate.push((cpuSeconds(gatePid) - g0) / THROUGHPUT_REQUESTS);
      }
      const p50 = (xs: number[][]) => median(xs.map((x) => pct(x, 50)));
      const p99 = (xs: number[][]) => median(xs.map((x) => pct(x, 99)));
      const rd = median(rps.direct);
      const rg = median(rps.gate);
      const sim = `simulator ${simMs} ms`;
      rows.push({ figure: `gate: invoke throughput, ${CONCURRENCY} concurrent, ${sim}`, value: `${rg.toFixed(0)} req/s`, anchor: 'straight to the simulator, same run', anchorValue: `${rd.toFixed(0)} req/s`, ratio: `${(rg / rd).toFixed(2)}×`, goal: simMs ? '≥ 0.9×' : 'report (worst case)' });
      rows.push({ figure: `gate: invoke latency p50, one client, ${sim}`, value: ms(p50(lat.gate)), anchor: 'straight to the simulator, same run', anchorValue: ms(p50(lat.direct)), ratio: `+${(p50(lat.gate) - p50(lat.direct)).toFixed(2)} ms`, goal: '≤ 2 ms added' });
      if (simMs === 0) {
        const us = (x: number) => `${(x * 1e6).toFixed(0)} µs`;
        rows.push({ figure: '(context) gate CPU per request (its own process)', value: us(median(cpu.gate)), anchor: 'simulator CPU per request, direct', anchorValue: us(median(cpu.sim)), ratio: `${(median(cpu.gate) / median(cpu.sim)).toFixed(2)}×`, goal: 'report' });
      }
      rows.push({ figure: `gate: invoke latency p99, one client, ${sim}`, value: ms(p99(lat.gate)), anchor: 'straight to the simulator, same run', anchorValue: ms(p99(lat.direct)), ratio: `+${(p99(lat.gate) - p99(lat.direct)).toFixed(2)} ms`, goal: 'report' });
    }
  } catch (e) {
    // What the host saw, for the person reading the failed run.
    const r = await conn.exec('tail -n 5 /var/log/airlock-gate/gate.log; journalctl -u inference-bench.service -n 5', { timeoutMs: 10_000 }).catch(() => null);
    console.error(`gate bench failed: ${String(e)}\n${r?.stdout ?? ''}`);
    throw e;
  } finally {
    conn.close();
    await labDown({ id: LAB_ID });
  }
}

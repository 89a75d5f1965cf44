import fs from 'node:fs';
import os from 'node:os';
import { authorizeKey, labDown, labUp } from '../lab/lab';
import { ADMIN, testCore } from '../support/core';

type Row = { figure: string; value: string; anchor: string; anchorValue: string; ratio: string; goal: string };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

/**
 * Provisioning plan (every step's read-only check) on 20 lab hosts versus 1 host, same playbook,
 * same run, connections kept between operations as in use (the warm-up plan makes them).
 * Wall time includes the hosts' own work (sshd, nvidia-smi emulator, nft, sshd -T), which runs on
 * the same 2 cores as Airlock; the CPU split is printed for context, and so is the floor those
 * 2 cores set (machine CPU / 2): a 20-host wall at that floor means nothing waits on Airlock, and
 * the ratio is what 20 simulated hosts sharing 2 cores cost, not what the pool adds. (Delaying the
 * links to let host waits dominate, as they do when every host has CPUs of its own, needs tc
 * netem, which this kernel lacks.)
 */
export async function benchPlan(rows: Row[]) {
  const lab = await labUp({ id: 'bench-plan', hosts: 20, gpuProfiles: ['a100', 'h100', 't4'] });
  const t = await testCore({ sshTimeoutMs: 20_000, provisionConcurrency: 20, stepUpMinutes: 600 });
  try {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
    for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
    // GPU check, sshd hardening and egress lockdown need nothing from the offline store.
    const pb = {
      format: 'airlock.playbook/v1',
      name: 'bench-plan',
      version: '1',
      steps: [
        { id: 'gpu', type: 'gpu-driver-check', params: { minCount: 0 } },
        { id: 'egress', type: 'egress-lockdown', params: { allowCidrs: [lab.subnet] } },
        { id: 'sshd', type: 'ssh-hardening', params: {} },
      ],
    };
    await c.ok('provision:importPlaybook', { text: JSON.stringify(pb) });
    const all = lab.hosts.map((h) => h.name);
    // Whole-machine CPU (/proc/stat): the lab hosts' sshd sessions, shells and tools share the 2 cores.
    const machineBusyMs = () => {
      const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      return ((f.reduce((x, y) => x + y, 0) - (f[3] ?? 0) - (f[4] ?? 0)) * 1000) / 100;
    };
    const plan = async (hosts: string[]) => {
      const u0 = process.cpuUsage();
      const m0 = machineBusyMs();
      const s = performance.now();
      const r = await c.ok('provision:plan', { playbook: 'bench-plan', hosts, params: {} });
      if (r.status !== 'succeeded') throw new Error(`plan failed: ${JSON.stringify(r.hosts.filter((h) => h.status !== 'succeeded').map((h) => h.message))}`);
      const u = process.cpuUsage(u0);
      return { wall: performance.now() - s, cpu: (u.user + u.system) / 1000, machine: machineBusyMs() - m0 };
    };
    const measure = async () => {
      await plan(all); // warm-up (and the kept connections)
      const one: Array<{ wall: number; cpu: number; machine: number }> = [];
      const twenty: Array<{ wall: number; cpu: number; machine: number }> = [];
      for (let i = 0; i < 3; i++) {
        one.push(await plan([all[0]!]));
        twenty.push(await plan(all));
      }
      const a = median(one.map((x) => x.wall));
      const b = median(twenty.map((x) => x.wall));
      rows.push({ figure: 'provisioning plan, 20 hosts', value: ms(b), anchor: 'provisioning plan, 1 host', anchorValue: ms(a), ratio: `${(b / a).toFixed(2)}×`, goal: '≤ 1.5×' });
      return { one, twenty, b };
    };
    const lan = await measure();
    const ca = median(lan.one.map((x) => x.cpu));
    const cb = median(lan.twenty.map((x) => x.cpu));
    const ma = median(lan.one.map((x) => x.machine));
    const mb = median(lan.twenty.map((x) => x.machine));
    const cores = os.availableParallelism?.() ?? os.cpus().length;
    rows.push({ figure: '(context) 20-host plan wall', value: ms(lan.b), anchor: `its CPU floor: machine CPU / ${cores} cores`, anchorValue: ms(mb / cores), ratio: `${(lan.b / (mb / cores)).toFixed(2)}×`, goal: 'report' });
    rows.push({ figure: '(context) machine CPU, 20-host plan', value: ms(mb), anchor: 'machine CPU, 1-host plan (hosts share 2 cores)', anchorValue: ms(ma), ratio: `${(mb / ma).toFixed(2)}×`, goal: 'report' });
    rows.push({ figure: '(context) Airlock CPU, 20-host plan', value: ms(cb), anchor: 'Airlock CPU, 1-host plan', anchorValue: ms(ca), ratio: `${(cb / ca).toFixed(2)}×`, goal: 'report' });
  } finally {
    await t.close();
    await labDown({ id: 'bench-plan' });
  }
}

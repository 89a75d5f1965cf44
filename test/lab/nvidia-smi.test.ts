/**
 * The lab's nvidia-smi emulator on its own (no lab needed): the real tool's formats and errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HOSTILE_ERROR_TEXT, HOSTILE_WARNING } from './gpu/hostile';
import { GPU_PROFILE_NAMES, makeGpuProfile, type GpuProfile } from './gpu/profiles';

const emulator = fileURLToPath(new URL('./gpu/nvidia-smi.mjs', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'airlock-smi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function smi(profile: string | GpuProfile, ...args: string[]): { code: number; out: string; err: string } {
  const p = typeof profile === 'string' ? makeGpuProfile(profile, `test/${profile}`) : profile;
  const file = path.join(dir, `${p.profile}.json`);
  writeFileSync(file, JSON.stringify(p));
  const r = spawnSync(process.execPath, [emulator, ...args], { env: { ...process.env, AIRLOCK_LAB_GPU_PROFILE: file }, encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('nvidia-smi emulator', () => {
  it('lists GPUs like -L', () => {
    const r = smi('h100', '-L');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').filter(Boolean)).toHaveLength(4);
    expect(r.out).toMatch(/^GPU 0: NVIDIA H100 80GB HBM3 \(UUID: GPU-[0-9a-f-]{36}\)\n/);
  });

  it('prints real headers with units, and strips units with nounits', () => {
    const q = '--query-gpu=index,memory.total,memory.used,memory.free,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,clocks.sm';
    const r = smi('a100', q, '--format=csv');
    const [header, row] = r.out.split('\n');
    expect(header).toBe(
      'index, memory.total [MiB], memory.used [MiB], memory.free [MiB], utilization.gpu [%], utilization.memory [%], temperature.gpu, power.draw [W], power.limit [W], clocks.current.sm [MHz]',
    );
    expect(row).toMatch(/^0, 81920 MiB, \d+ MiB, \d+ MiB, \d+ %, \d+ %, \d+, \d+\.\d\d W, 400\.00 W, \d+ MHz$/);
    const bare = smi('a100', q, '--format', 'csv,noheader,nounits');
    expect(bare.out.split('\n')[0]).toMatch(/^0, 81920, \d+, \d+, \d+, \d+, \d+, \d+\.\d\d, 400\.00, \d+$/);
  });

  it('accepts aliases, -i, and every field the inventory needs', () => {
    const fields = [
      'index', 'name', 'uuid', 'driver_version', 'pci.bus_id', 'memory.total', 'memory.used', 'memory.free',
      'utilization.gpu', 'utilization.memory', 'temperature.gpu', 'power.draw', 'power.limit', 'ecc.mode.current',
      'persistence_mode', 'clocks_event_reasons.active', 'gpu_name', 'gpu_uuid', 'gpu_bus_id', 'count', 'compute_cap',
    ];
    const r = smi('a100', `--query-gpu=${fields.join(',')}`, '--format=csv,noheader', '-i', '1,3');
    expect(r.code, r.out).toBe(0);
    const rows = r.out.trim().split('\n').map((l) => l.split(', '));
    expect(rows.map((x) => x[0])).toEqual(['1', '3']);
    expect(rows[0]![4]).toBe('00000000:0F:00.0');
    expect(rows[0]![13]).toBe('Enabled');
    expect(rows[0]![19]).toBe('8');
  });

  it('knows which fields each driver generation has', () => {
    expect(smi('t4', '--query-gpu=compute_cap', '--format=csv').out).toBe('Field "compute_cap" is not a valid field to query.\n\n');
    expect(smi('t4', '--query-gpu=clocks_throttle_reasons.active,ecc.mode.current,persistence_mode', '--format=csv,noheader').out).toMatch(
      /^0x[0-9A-F]{16}, Disabled, Disabled\n/,
    );
    const r = smi('h100', '--query-gpu=clocks_throttle_reasons.active', '--format=csv');
    expect([r.code, r.out, r.err]).toEqual([2, 'Field "clocks_throttle_reasons.active" is not a valid field to query.\n\n', '']);
  });

  it('reports [N/A] for what a board does not support', () => {
    const r = smi('t4', '--query-gpu=power.draw,power.limit,temperature.memory,mig.mode.current', '--format=csv,noheader,nounits');
    expect(r.out.trim().split('\n')).toEqual(Array(2).fill('[N/A], [N/A], [N/A], [N/A]'));
  });

  it('fails like a host whose driver is not loaded', () => {
    for (const args of [['-L'], ['--query-gpu=name', '--format=csv'], []]) {
      const r = smi('none', ...args);
      expect(r.code).toBe(9);
      expect(r.out).toBe(
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n",
      );
    }
  });

  it('lists compute processes and prints the plain table', () => {
    const apps = smi('a100', '--query-compute-apps=pid,process_name,used_memory', '--format=csv');
    expect(apps.out.split('\n')[0]).toBe('pid, process_name, used_gpu_memory [MiB]');
    expect(apps.out.split('\n')[1]).toMatch(/^\d+, \/usr\/bin\/python3, \d+ MiB$/);
    const table = smi('t4');
    expect(table.code).toBe(0);
    expect(table.out).toContain('Driver Version: 470.182.03');
    expect(table.out).toContain('Tesla T4');
    expect(table.out).toMatch(/N\/A \/\s+N\/A/);
  });

  it('rejects bad usage with exit 2', () => {
    expect(smi('a100', '--bogus').code).toBe(2);
    expect(smi('a100', '--query-gpu=name').code).toBe(2);
    expect(smi('a100', '--query-gpu=name', '--format=xml').code).toBe(2);
  });

  it('hostile: attack text in every text field, a warning on stderr first, rows that still parse', () => {
    const r = smi('hostile', '--query-gpu=index,name,uuid,driver_version', '--format=csv,noheader,nounits');
    expect(r.code).toBe(0);
    expect(r.err).toBe(`${HOSTILE_WARNING}\n`);
    const rows = r.out.split('\n').filter(Boolean);
    expect(rows).toHaveLength(2);
    // No comma and no newline inside a payload: each row has its four fields.
    for (const row of rows) expect(row.split(', ')).toHaveLength(4);
    for (const s of ['\x1b[31m', '\x1b]0;pwned\x07', '\x1b]8;;', '\x1b]52;c;', '\u009b', '\u202e', '\u0000', '\r', '<img src=x', '<script>', '<b>bold</b>']) {
      expect(r.out, JSON.stringify(s)).toContain(s);
    }
    expect(rows[1]!.length).toBeGreaterThan(65536);
  });

  it('hostile, switched to failure "error": prints its hostile message and exits 15', () => {
    const p = makeGpuProfile('hostile', 'x');
    p.failure = 'error';
    const r = smi(p, '--query-gpu=name', '--format=csv');
    expect([r.code, r.out]).toEqual([15, `${HOSTILE_ERROR_TEXT}\n\n`]);
  });

  it('has every profile name buildable', () => {
    for (const p of GPU_PROFILE_NAMES) expect(makeGpuProfile(p, 'x').profile).toBe(p);
  });
});

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../../shared/contract/hosts';
import { AirlockError } from '../../../shared/domain/errors';
import { INVENTORY_COMMAND, parseGpuNumber, parseInventory, sanitizeHostText, splitCsvLine } from './inventory';

const NOW = new Date('2025-03-01T12:00:00.000Z');
const dir = mkdtempSync(join(tmpdir(), 'airlock-inv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Output in exactly the shape INVENTORY_COMMAND prints. */
function out(p: { hostname?: string; kernel?: string; os?: string; gpu: string; gpuRc: number; fallback?: boolean }): string {
  const sec = (name: string, body: string, rc: number) => `@@AIRLOCK:BEGIN:${name}@@\n${body}\n@@AIRLOCK:END:${name}:${rc}@@\n`;
  return (
    '@@AIRLOCK:INVENTORY:1@@\n' +
    sec('hostname', p.hostname ?? 'gpu-a01', 0) +
    sec('kernel', p.kernel ?? 'Linux 5.15.0-97-generic', 0) +
    sec('os', p.os ?? '"Ubuntu 22.04.4 LTS"', 0) +
    (p.fallback ? sec('gpu-fallback', 'clocks_throttle_reasons.active', 0) : '') +
    sec('gpu', p.gpu, p.gpuRc) +
    '@@AIRLOCK:DONE@@\n'
  );
}

const A100 = [
  '0, NVIDIA A100-SXM4-80GB, GPU-4f7c0b5e-2e0b-0c41-8d5c-2b1f0c9e7a11, 535.129.03, 81920, 4, 0, 31, 62.15, Enabled, Enabled, 0x0000000000000000',
  '1, NVIDIA A100-SXM4-80GB, GPU-9a1d3c77-51e2-8b0f-1c2d-77aa00bb11cc, 535.129.03, 81920, 40123, 97, 58, 351.20, Enabled, Enabled, 0x0000000000000001',
].join('\n');

const H100 = [
  '0, NVIDIA H100 80GB HBM3, GPU-1b2c3d4e-0000-1111-2222-333344445555, 550.54.15, 81559, 0, 0, 29, 70.43, Enabled, Enabled, 0x0000000000000000',
  '1, NVIDIA H100 80GB HBM3, GPU-1b2c3d4e-0000-1111-2222-333344445556, 550.54.15, 81559, 1024, 12, 33, 120.01, Enabled, Enabled, 0x0000000000000004',
].join('\n');

const T4_OLD = [
  '0, Tesla T4, GPU-e3a1b2c4-aaaa-bbbb-cccc-ddddeeeeffff, 470.182.03, 15109, 0, 0, 36, 9.71, Enabled, Disabled, 0x0000000000000001',
  '1, Tesla T4, GPU-e3a1b2c4-aaaa-bbbb-cccc-ddddeeeeff00, 470.182.03, 15109, 0, [N/A], 35, [N/A], [N/A], Disabled, [Not Supported]',
].join('\n');

describe('parseInventory', () => {
  it('reads an A100 host on a current driver', () => {
    const inv = parseInventory(out({ gpu: A100, gpuRc: 0 }), NOW);
    expect(Inventory.parse(inv)).toEqual(inv);
    expect(inv).toMatchObject({
      scannedAt: '2025-03-01T12:00:00.000Z',
      hostname: 'gpu-a01',
      os: 'Ubuntu 22.04.4 LTS',
      kernel: 'Linux 5.15.0-97-generic',
      driverVersion: '535.129.03',
      gpuError: null,
    });
    expect(inv.gpus[1]).toEqual({
      index: 1,
      name: 'NVIDIA A100-SXM4-80GB',
      uuid: 'GPU-9a1d3c77-51e2-8b0f-1c2d-77aa00bb11cc',
      memoryTotalMiB: 81920,
      memoryUsedMiB: 40123,
      utilizationPct: 97,
      temperatureC: 58,
      powerDrawW: 351.2,
      eccMode: 'Enabled',
      persistenceMode: 'Enabled',
      throttleReasons: '0x0000000000000001',
    });
  });

  it('reads an H100 host', () => {
    const inv = parseInventory(out({ gpu: H100, gpuRc: 0, os: 'Rocky Linux 9.3 (Blue Onyx)' }), NOW);
    expect(inv.gpus.map((g) => [g.index, g.name, g.memoryTotalMiB])).toEqual([
      [0, 'NVIDIA H100 80GB HBM3', 81559],
      [1, 'NVIDIA H100 80GB HBM3', 81559],
    ]);
    expect(inv.driverVersion).toBe('550.54.15');
    expect(inv.os).toBe('Rocky Linux 9.3 (Blue Onyx)');
  });

  it('reads a T4 host on an older driver (throttle field fallback, [N/A] and [Not Supported])', () => {
    const inv = parseInventory(out({ gpu: T4_OLD, gpuRc: 0, fallback: true }), NOW);
    expect(inv.gpuError).toBeNull();
    expect(inv.driverVersion).toBe('470.182.03');
    expect(inv.gpus[1]).toMatchObject({ utilizationPct: null, powerDrawW: null, eccMode: null, throttleReasons: null, temperatureC: 35 });
  });

  it('reads output with units and quoted fields', () => {
    const gpu = '0, "NVIDIA A100, 80GB ""SXM""", GPU-x, 535.1, 81920 MiB, 4 MiB, 3 %, 31, 62.15 W, Enabled, Disabled, Not Active';
    const inv = parseInventory(out({ gpu, gpuRc: 0 }), NOW);
    expect(inv.gpus[0]).toMatchObject({ name: 'NVIDIA A100, 80GB "SXM"', memoryTotalMiB: 81920, utilizationPct: 3, powerDrawW: 62.15, throttleReasons: 'Not Active' });
  });

  it('reports a host without nvidia-smi, a failed driver and no GPU as gpuError', () => {
    const missing = parseInventory(out({ gpu: 'sh: 1: nvidia-smi: not found', gpuRc: 127 }), NOW);
    expect(missing.gpus).toEqual([]);
    expect(missing.gpuError).toBe('nvidia-smi is not installed on this host (no NVIDIA driver?).');
    const driver = parseInventory(
      out({
        gpu: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
        gpuRc: 9,
      }),
      NOW,
    );
    expect(driver.gpuError).toMatch(/^nvidia-smi could not talk to the NVIDIA driver: NVIDIA-SMI has failed because it couldn't communicate/);
    expect(parseInventory(out({ gpu: 'No devices were found', gpuRc: 6 }), NOW).gpuError).toBe('nvidia-smi found no GPU on this host.');
    expect(parseInventory(out({ gpu: '', gpuRc: 124 }), NOW).gpuError).toMatch(/did not answer within 20 s/);
    expect(parseInventory(out({ gpu: 'weird', gpuRc: 3 }), NOW).gpuError).toBe('nvidia-smi failed (exit 3): weird');
  });

  it('neutralises ANSI/OSC-laden hostile output', () => {
    const esc = '\u001b';
    const inv = parseInventory(
      out({
        hostname: `gpu${esc}]0;you are pwned${esc}\\-01${esc}[2J${esc}[H`,
        kernel: `Linux${esc}]52;c;ZXZpbA==\u0007 6.1`,
        os: `"Debian${esc}[31m 12\u202e\u0000"`,
        gpu: `0, NVIDIA${esc}[8m hidden${esc}[0m A100\u009b2J, GPU-${esc}]8;;http://evil${esc}\\x, 535.1, 1, 1, 1, 1, 1, En${esc}[5mabled, \r\u0007Enabled, 0x0`,
        gpuRc: 0,
      }),
      NOW,
    );
    const all = JSON.stringify(inv);
    expect(all).not.toMatch(/\\u001b|\\u0007|\\u0000|\\r|\u009b|\u202e/);
    expect(inv.hostname).toBe('gpu-01');
    expect(inv.kernel).toBe('Linux 6.1');
    // Escape sequences go; a bidi override or control left over is shown, not silently dropped.
    expect(inv.os).toBe('Debian 12\\u{202E}\\u{0}');
    expect(inv.gpus[0]).toMatchObject({ name: 'NVIDIA hidden A100', uuid: 'GPU-x', eccMode: 'Enabled', persistenceMode: '\\u{7}Enabled' });
  });

  it('caps lengths of host strings', () => {
    const inv = parseInventory(out({ hostname: 'h'.repeat(5000), os: 'o'.repeat(5000), gpu: `0, ${'n'.repeat(5000)}, u, d, 1, 1, 1, 1, 1, a, b, c`, gpuRc: 0 }), NOW);
    expect(inv.hostname.length).toBe(253);
    expect(inv.os.length).toBe(200);
    expect(inv.gpus[0]!.name.length).toBe(128);
  });

  it('reports truncated GPU output, keeping the complete rows', () => {
    const full = out({ gpu: A100, gpuRc: 0 });
    const cut = full.slice(0, full.indexOf('0x0000000000000001') - 10);
    const inv = parseInventory(cut, NOW);
    expect(inv.hostname).toBe('gpu-a01');
    expect(inv.gpus.map((g) => g.index)).toEqual([0]);
    expect(inv.gpuError).toMatch(/cut off/);
    const noGpu = parseInventory(full.slice(0, full.indexOf('@@AIRLOCK:BEGIN:gpu')), NOW);
    expect(noGpu.gpus).toEqual([]);
    expect(noGpu.gpuError).toMatch(/no output/);
  });

  it('reports rows it does not understand without dropping the good ones', () => {
    const gpu = `${A100}\nWARNING: infoROM is corrupted at gpu 0000:3B:00.0\nx, y\n1, duplicate index, u, d, 1, 1, 1, 1, 1, a, b, c`;
    const inv = parseInventory(out({ gpu, gpuRc: 0 }), NOW);
    expect(inv.gpus).toHaveLength(2);
    expect(inv.gpuError).toBe('3 line(s) of nvidia-smi output were not understood (first: "WARNING: infoROM is corrupted at gpu 0000:3B:00.0").');
  });

  it('refuses output that is not an inventory with PARSE_ERROR', () => {
    for (const garbage of ['', 'Welcome to the jungle\n', '\u0000\u0001\u0002', '@@AIRLOCK:BEGIN:hostname@@\nx', 'Permission denied\n'.repeat(1000)]) {
      let err: unknown;
      try {
        parseInventory(garbage, NOW);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AirlockError);
      expect((err as AirlockError).code).toBe('PARSE_ERROR');
      expect((err as AirlockError).message).not.toMatch(/[\u0000-\u001f]/);
    }
  });

  it('never throws anything but PARSE_ERROR, and whatever it returns fits the contract', () => {
    const body = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('[N/A]', 'N/A', ',', '"', '\n', '\u001b[', '@@AIRLOCK:END:gpu:0@@', '0', '1.5 W')), { maxLength: 40 }).map((a) => a.join('')),
    );
    fc.assert(
      fc.property(body, body, fc.integer({ min: 0, max: 255 }), fc.nat(400), (host, gpu, rc, cut) => {
        const text = out({ hostname: host, gpu, gpuRc: rc });
        for (const t of [text, text.slice(0, text.length - cut), gpu]) {
          try {
            const inv = parseInventory(t, NOW);
            expect(Inventory.safeParse(inv).success).toBe(true);
          } catch (e) {
            expect(e).toBeInstanceOf(AirlockError);
            expect((e as AirlockError).code).toBe('PARSE_ERROR');
          }
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('stays fast on a huge hostile output', () => {
    const huge = out({ gpu: `${'0, '.repeat(50)}\n`.repeat(20_000), gpuRc: 0 }) + '@@AIRLOCK:BEGIN:x@@\n'.repeat(50_000);
    const t = Date.now();
    const inv = parseInventory(huge, NOW);
    expect(Date.now() - t).toBeLessThan(2000);
    expect(inv.gpus).toEqual([]);
  });
});

describe('helpers', () => {
  it('parseGpuNumber', () => {
    expect(parseGpuNumber('81920')).toBe(81920);
    expect(parseGpuNumber('62.15 W')).toBe(62.15);
    expect(parseGpuNumber('0 %')).toBe(0);
    for (const s of ['[N/A]', 'N/A', '[Not Supported]', '[Unknown Error]', 'ERR!', '', 'abc', '1e400', 'Infinity', '0x10']) expect(parseGpuNumber(s)).toBeNull();
  });

  it('splitCsvLine', () => {
    expect(splitCsvLine('a, "b, c", d')).toEqual(['a', 'b, c', 'd']);
    expect(splitCsvLine('"unterminated, x')).toEqual(['unterminated, x']);
  });

  it('re-exports sanitizeHostText', () => {
    expect(sanitizeHostText('\u001b[1mx', 5)).toBe('x');
  });
});

describe('INVENTORY_COMMAND', () => {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const run = (path: string) =>
    execFileSync('/bin/bash', ['-c', INVENTORY_COMMAND], { encoding: 'utf8', env: { PATH: path, HOME: dir } });
  const fake = (script: string) => {
    writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\n${script}\n`);
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
  };

  it('holds no single quote (it is wrapped in one) and is read-only', () => {
    const inner = INVENTORY_COMMAND.slice("/bin/sh -c '".length, -1);
    expect(inner).not.toContain("'");
    expect(inner).not.toMatch(/\brm\b|>\s*\/(?!dev\/null)|\bdd\b|\bmv\b|\btee\b/);
  });

  it('runs in a real shell: no nvidia-smi is a gpuError, the rest is read', () => {
    const inv = parseInventory(run('/usr/bin:/bin'), NOW);
    expect(inv.hostname).toBe(execFileSync('uname', ['-n'], { encoding: 'utf8' }).trim());
    expect(inv.kernel).toBe(execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim());
    expect(inv.os).not.toBe('unknown');
    expect(inv.gpuError).toBe('nvidia-smi is not installed on this host (no NVIDIA driver?).');
  });

  it('falls back to clocks_throttle_reasons.active on a driver that rejects the new name', () => {
    fake(`case "$*" in
  *clocks_event_reasons*) echo 'Field "clocks_event_reasons.active" is not a valid field to query.'; echo; echo "Please run 'nvidia-smi --help-query-gpu' for more info."; exit 2;;
  *"--query-gpu=index,name,uuid,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,ecc.mode.current,persistence_mode,clocks_throttle_reasons.active --format=csv,noheader,nounits") cat <<'EOF'
${T4_OLD}
EOF
  ;;
  *) echo "unexpected: $*"; exit 1;;
esac`);
    const raw = run(`${bin}:/usr/bin:/bin`);
    expect(raw).toContain('@@AIRLOCK:BEGIN:gpu-fallback@@');
    const inv = parseInventory(raw, NOW);
    expect(inv.gpuError).toBeNull();
    expect(inv.gpus.map((g) => g.name)).toEqual(['Tesla T4', 'Tesla T4']);
  });

  it('uses the new field name on a current driver', () => {
    fake(`case "$*" in *clocks_event_reasons.active*) cat <<'EOF'
${A100}
EOF
  ;;
  *) exit 1;;
esac`);
    const raw = run(`${bin}:/usr/bin:/bin`);
    expect(raw).not.toContain('gpu-fallback');
    expect(parseInventory(raw, NOW).gpus).toHaveLength(2);
  });

  it('records a driver failure (exit 9) as gpuError', () => {
    fake(`echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."; exit 9`);
    expect(parseInventory(run(`${bin}:/usr/bin:/bin`), NOW).gpuError).toMatch(/could not talk to the NVIDIA driver/);
  });
});

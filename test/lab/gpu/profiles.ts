/**
 * GPU profiles for the lab's `nvidia-smi` emulator (test/lab/gpu/nvidia-smi.mjs).
 *
 * A profile is written as JSON into each lab host's directory and read by the emulator on every
 * call, so a test may rewrite it (e.g. raise utilization) between two scans. Values are shaped like
 * what the real tool reports for that card and driver; `null` is printed as `[N/A]`.
 */
import { createHash } from 'node:crypto';
import { hostileProfile } from './hostile';

/** One emulated GPU. `null` in a numeric or mode field means the driver reports `[N/A]`. */
export interface EmulatedGpu {
  index: number;
  name: string;
  uuid: string;
  serial: string | null;
  pciBusId: string;
  vbiosVersion: string;
  computeCap: string;
  memoryTotalMiB: number;
  /** Newer drivers subtract a reserved amount from free memory. */
  memoryReservedMiB: number;
  memoryUsedMiB: number;
  utilizationGpu: number | null;
  utilizationMemory: number | null;
  temperatureGpu: number | null;
  temperatureMemory: number | null;
  powerDrawW: number | null;
  powerLimitW: number | null;
  powerDefaultLimitW: number | null;
  powerMaxLimitW: number | null;
  eccEnabled: boolean | null;
  persistenceMode: boolean;
  migMode: boolean | null;
  pstate: string;
  fanSpeed: number | null;
  clocksSmMHz: number;
  clocksMemMHz: number;
  clocksMaxSmMHz: number;
  clocksMaxMemMHz: number;
  /** Bitmask of active clock event (formerly "throttle") reasons, e.g. 0x1 = GPU idle. */
  clockReasonsActive: number;
  clockReasonsSupported: number;
  pcieGen: number;
  pcieWidth: number;
  computeMode: string;
}

/** A process using a GPU, as listed by `--query-compute-apps` and the plain table. */
export interface EmulatedGpuProcess {
  gpuIndex: number;
  pid: number;
  processName: string;
  usedMemoryMiB: number;
}

/** What one host's `nvidia-smi` knows: the driver, its quirks, and the cards. */
export interface GpuProfile {
  /** Profile name (`a100`, `h100`, `t4`, `none`, `absent`, `hostile`). */
  profile: string;
  /**
   * `no-driver`: every call fails like a host whose kernel module is not loaded (exit 9).
   * `absent`: no `nvidia-smi` is installed on the host at all.
   * `error`: every call prints `errorText` and exits with `errorExitCode` (a driver in a bad state).
   */
  failure: null | 'no-driver' | 'absent' | 'error';
  driverVersion: string;
  cudaVersion: string;
  nvmlVersion: string;
  /**
   * Field names (exact, or prefixes ending in `.`) this driver rejects with
   * `Field "x" is not a valid field to query.` — e.g. an older driver knows only
   * `clocks_throttle_reasons.*`, a newer one only `clocks_event_reasons.*`.
   */
  unsupportedFields: string[];
  gpus: EmulatedGpu[];
  processes: EmulatedGpuProcess[];
  /** Lines printed to stderr before every answer, like the real tool's `WARNING: infoROM …`. */
  warnings?: string[];
  /** For `failure: 'error'`: what is printed (to stdout, as the real tool does) and the exit code (default 15). */
  errorText?: string;
  errorExitCode?: number;
  /**
   * What the host says about itself besides its GPUs, applied by the lab when the host's sshd
   * starts (isolated hosts only; not re-read on every call like the rest of the profile):
   * `hostname` is written straight into the host's UTS namespace, so `uname -n` and `hostname`
   * return any bytes the kernel takes (at most 64, no NUL or newline); `osPrettyName` becomes
   * PRETTY_NAME in the host's own /etc/os-release.
   */
  system?: { hostname?: string; osPrettyName?: string };
}

/** Built-in profile names, in the round-robin order hosts receive them. */
export const GPU_PROFILE_ROTATION = ['a100', 'h100', 't4', 'none'] as const;
/**
 * Every built-in profile name. Not in the rotation: `absent` (no nvidia-smi binary) and `hostile`
 * (escape sequences, control and bidi characters, NUL, HTML and very long strings in every text
 * field, a hostile hostname and os-release: see hostile.ts).
 */
export const GPU_PROFILE_NAMES = ['a100', 'h100', 't4', 'none', 'absent', 'hostile'] as const;
export type GpuProfileName = (typeof GPU_PROFILE_NAMES)[number];

/** A stable, GPU-looking UUID derived from the lab, host and index, so every host differs. */
function gpuUuid(seed: string, index: number): string {
  const h = createHash('sha256').update(`${seed}/${index}`).digest('hex');
  return `GPU-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function serialFor(seed: string, index: number): string {
  const h = createHash('sha256').update(`serial/${seed}/${index}`).digest();
  return `${1320000000000 + (h.readUInt32BE(0) % 999999999)}`;
}

/**
 * Builds profile `name` for one host. `seed` (lab id + host name) makes UUIDs and serials unique
 * per host while staying reproducible.
 */
export function makeGpuProfile(name: string, seed: string): GpuProfile {
  switch (name) {
    case 'a100': {
      // DGX A100-like node: 8 cards, a model server occupying the first four.
      const buses = ['07', '0F', '47', '4E', '87', '90', 'B7', 'BD'];
      const busy = [true, true, true, true, false, false, false, false];
      const gpus = buses.map((bus, index): EmulatedGpu => {
        const b = busy[index] ?? false;
        return {
          index,
          name: 'NVIDIA A100-SXM4-80GB',
          uuid: gpuUuid(seed, index),
          serial: serialFor(seed, index),
          pciBusId: `00000000:${bus}:00.0`,
          vbiosVersion: '92.00.45.00.03',
          computeCap: '8.0',
          memoryTotalMiB: 81920,
          memoryReservedMiB: 868,
          memoryUsedMiB: b ? 61234 + index * 3 : 1,
          utilizationGpu: b ? 35 + index * 7 : 0,
          utilizationMemory: b ? 21 + index * 2 : 0,
          temperatureGpu: b ? 52 + index : 31 + index,
          temperatureMemory: b ? 58 + index : 38 + index,
          powerDrawW: b ? 212.37 + index * 11 : 61.18 + index,
          powerLimitW: 400,
          powerDefaultLimitW: 400,
          powerMaxLimitW: 400,
          eccEnabled: true,
          persistenceMode: true,
          migMode: false,
          pstate: 'P0',
          fanSpeed: null,
          clocksSmMHz: b ? 1410 : 210,
          clocksMemMHz: 1593,
          clocksMaxSmMHz: 1410,
          clocksMaxMemMHz: 1593,
          clockReasonsActive: b ? 0x0 : 0x1,
          clockReasonsSupported: 0x1ff,
          pcieGen: 4,
          pcieWidth: 16,
          computeMode: 'Default',
        };
      });
      return {
        profile: 'a100',
        failure: null,
        driverVersion: '550.54.15',
        cudaVersion: '12.4',
        nvmlVersion: '12.550.54.15',
        unsupportedFields: ['clocks_throttle_reasons.'],
        gpus,
        processes: [0, 1, 2, 3].map((gpuIndex) => ({
          gpuIndex,
          pid: 4242 + gpuIndex,
          processName: '/usr/bin/python3',
          usedMemoryMiB: 61222 + gpuIndex * 3,
        })),
      };
    }
    case 'h100': {
      const buses = ['18', '2A', '3A', '5D'];
      const gpus = buses.map((bus, index): EmulatedGpu => ({
        index,
        name: 'NVIDIA H100 80GB HBM3',
        uuid: gpuUuid(seed, index),
        serial: serialFor(seed, index),
        pciBusId: `00000000:${bus}:00.0`,
        vbiosVersion: '96.00.99.00.01',
        computeCap: '9.0',
        memoryTotalMiB: 81559,
        memoryReservedMiB: 574,
        memoryUsedMiB: index === 0 ? 72011 : 0,
        utilizationGpu: index === 0 ? 88 : 0,
        utilizationMemory: index === 0 ? 47 : 0,
        temperatureGpu: index === 0 ? 61 : 29 + index,
        temperatureMemory: index === 0 ? 66 : 36 + index,
        powerDrawW: index === 0 ? 612.4 : 71.92 + index,
        powerLimitW: 700,
        powerDefaultLimitW: 700,
        powerMaxLimitW: 700,
        eccEnabled: true,
        persistenceMode: true,
        migMode: false,
        pstate: 'P0',
        fanSpeed: null,
        clocksSmMHz: index === 0 ? 1980 : 345,
        clocksMemMHz: 2619,
        clocksMaxSmMHz: 1980,
        clocksMaxMemMHz: 2619,
        clockReasonsActive: index === 0 ? 0x4 : 0x1,
        clockReasonsSupported: 0x1ff,
        pcieGen: 5,
        pcieWidth: 16,
        computeMode: 'Default',
      }));
      return {
        profile: 'h100',
        failure: null,
        driverVersion: '560.35.03',
        cudaVersion: '12.6',
        nvmlVersion: '12.560.35.03',
        unsupportedFields: ['clocks_throttle_reasons.'],
        gpus,
        processes: [{ gpuIndex: 0, pid: 5150, processName: 'python3', usedMemoryMiB: 71998 }],
      };
    }
    case 't4': {
      // An older inference box: driver 470 predates compute_cap, memory.reserved and the
      // clocks_event_reasons names, and this board reports no power readings.
      const buses = ['3B', '86'];
      const gpus = buses.map((bus, index): EmulatedGpu => ({
        index,
        name: 'Tesla T4',
        uuid: gpuUuid(seed, index),
        serial: serialFor(seed, index),
        pciBusId: `00000000:${bus}:00.0`,
        vbiosVersion: '90.04.96.00.02',
        computeCap: '7.5',
        memoryTotalMiB: 15360,
        memoryReservedMiB: 0,
        memoryUsedMiB: index === 0 ? 9872 : 0,
        utilizationGpu: index === 0 ? 63 : 0,
        utilizationMemory: index === 0 ? 30 : 0,
        temperatureGpu: index === 0 ? 57 : 38,
        temperatureMemory: null,
        powerDrawW: null,
        powerLimitW: null,
        powerDefaultLimitW: null,
        powerMaxLimitW: null,
        eccEnabled: false,
        persistenceMode: false,
        migMode: null,
        pstate: index === 0 ? 'P0' : 'P8',
        fanSpeed: null,
        clocksSmMHz: index === 0 ? 1590 : 300,
        clocksMemMHz: index === 0 ? 5000 : 405,
        clocksMaxSmMHz: 1590,
        clocksMaxMemMHz: 5001,
        clockReasonsActive: index === 0 ? 0x0 : 0x1,
        clockReasonsSupported: 0x1ff,
        pcieGen: 3,
        pcieWidth: 16,
        computeMode: 'Default',
      }));
      return {
        profile: 't4',
        failure: null,
        driverVersion: '470.182.03',
        cudaVersion: '11.4',
        nvmlVersion: '11.470.182.03',
        unsupportedFields: ['clocks_event_reasons.', 'compute_cap', 'memory.reserved'],
        gpus,
        processes: [{ gpuIndex: 0, pid: 3131, processName: 'tritonserver', usedMemoryMiB: 9868 }],
      };
    }
    case 'hostile':
      return hostileProfile();
    case 'none':
    case 'absent':
      return {
        profile: name,
        failure: name === 'none' ? 'no-driver' : 'absent',
        driverVersion: '',
        cudaVersion: '',
        nvmlVersion: '',
        unsupportedFields: [],
        gpus: [],
        processes: [],
      };
    default:
      throw new Error(`unknown GPU profile "${name}" (known: ${GPU_PROFILE_NAMES.join(', ')})`);
  }
}

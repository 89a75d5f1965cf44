import type { Gpu, Host } from '../../../shared/contract/hosts';
import { formatAgo, parseTime } from '../../components/time';

/**
 * How long a "reachable" stays believable without a successful scan. After this the status is
 * shown as "unknown" (grey) with its age: nothing has been heard from the host since. A constant,
 * not a setting: a setting would need a new channel (docs/architecture.md, issue 11).
 */
export const STALE_AFTER_MS = 15 * 60_000;

/**
 * NVIDIA's clock event (formerly "throttle") reason bits, as nvml.h's nvmlClocksEventReason*
 * and nvidia-smi's `clocks_event_reasons.*` fields define them.
 */
export const CLOCK_EVENT_REASONS: ReadonlyArray<readonly [bit: number, words: string]> = [
  [0x1, 'GPU idle'],
  [0x2, 'applications clocks setting'],
  [0x4, 'software power cap'],
  [0x8, 'hardware slowdown'],
  [0x10, 'sync boost'],
  [0x20, 'software thermal slowdown'],
  [0x40, 'hardware thermal slowdown'],
  [0x80, 'hardware power brake slowdown'],
  [0x100, 'display clock setting'],
];

/**
 * `0x0000000000000024` → ["software power cap", "software thermal slowdown"]; 0 → ["none"];
 * bits nvml does not name → "other (0x200)"; null (not reported) → []. A value that is not a
 * hex mask (a driver printing `[Not Supported]`) is returned as given, for the caller to sanitise.
 */
export function clockEventReasons(raw: Gpu['throttleReasons']): string[] {
  if (raw === null) return [];
  const m = /^\s*0x([0-9a-f]{1,16})\s*$/i.exec(raw);
  if (!m) return [raw];
  const v = BigInt(`0x${m[1]}`);
  if (v === 0n) return ['none'];
  const words: string[] = [];
  let rest = v;
  for (const [bit, w] of CLOCK_EVENT_REASONS) {
    if ((v & BigInt(bit)) !== 0n) {
      words.push(w);
      rest &= ~BigInt(bit);
    }
  }
  if (rest !== 0n) words.push(`other (0x${rest.toString(16)})`);
  return words;
}

export interface ShownStatus {
  /** What the badge says. */
  label: string;
  /** The badge's class: badge-<status> for the core's status, or a display state of its own. */
  className: string;
  /** Why the badge differs from the core's status (its title and the hint beside it). */
  note: string | null;
}

/**
 * What the Hosts view shows for a host's status. The core's word, except that a "reachable" is
 * not green when it is stale (no successful scan within `staleAfterMs`: "unknown", grey) or when
 * the host answered but its GPU inventory failed (nvidia-smi error: "GPU error", amber).
 * `now` is the core's clock (see `coreNow`).
 */
export function shownStatus(host: Pick<Host, 'status' | 'lastSeenAt' | 'inventory'>, now: number, staleAfterMs = STALE_AFTER_MS): ShownStatus {
  if (host.status !== 'reachable') return { label: host.status, className: `badge-${host.status}`, note: null };
  const seen = parseTime(host.lastSeenAt);
  if (seen === null || now - seen > staleAfterMs) {
    return {
      label: 'unknown',
      className: 'badge-stale',
      note: seen === null ? 'No successful scan on record.' : `Last successful scan ${formatAgo(host.lastSeenAt, now)}: scan again to know.`,
    };
  }
  if (host.inventory?.gpuError) return { label: 'GPU error', className: 'badge-gpu-error', note: host.inventory.gpuError };
  return { label: 'reachable', className: 'badge-reachable', note: null };
}

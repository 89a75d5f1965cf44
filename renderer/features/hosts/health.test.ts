import { describe, expect, it } from 'vitest';
import type { Host } from '../../../shared/contract/hosts';
import { clockEventReasons, shownStatus, STALE_AFTER_MS } from './health';

describe('clock event reasons in words', () => {
  it('names every bit nvml defines', () => {
    expect(clockEventReasons('0x0000000000000001')).toEqual(['GPU idle']);
    expect(clockEventReasons('0x0000000000000004')).toEqual(['software power cap']);
    expect(clockEventReasons('0x00000000000001FF')).toEqual([
      'GPU idle',
      'applications clocks setting',
      'software power cap',
      'hardware slowdown',
      'sync boost',
      'software thermal slowdown',
      'hardware thermal slowdown',
      'hardware power brake slowdown',
      'display clock setting',
    ]);
    expect(clockEventReasons('0x0000000000000060')).toEqual(['software thermal slowdown', 'hardware thermal slowdown']);
  });
  it('none, unnamed bits, not reported, not a mask', () => {
    expect(clockEventReasons('0x0000000000000000')).toEqual(['none']);
    expect(clockEventReasons('0x0000000000000208')).toEqual(['hardware slowdown', 'other (0x200)']);
    expect(clockEventReasons('0x8000000000000000')).toEqual(['other (0x8000000000000000)']);
    expect(clockEventReasons(null)).toEqual([]);
    expect(clockEventReasons('[Not Supported]')).toEqual(['[Not Supported]']);
  });
});

describe('the status the Hosts view shows', () => {
  const now = Date.parse('2026-12-03T13:00:00Z');
  const at = (msAgo: number) => new Date(now - msAgo).toISOString();
  const inv = (gpuError: string | null) => ({ gpuError }) as unknown as Host['inventory'];

  it('a fresh reachable is green', () => {
    expect(shownStatus({ status: 'reachable', lastSeenAt: at(60_000), inventory: inv(null) }, now)).toEqual({ label: 'reachable', className: 'badge-reachable', note: null });
  });
  it('a reachable older than the limit is "unknown", grey, with its age', () => {
    const s = shownStatus({ status: 'reachable', lastSeenAt: at(37 * 60_000), inventory: inv(null) }, now);
    expect(s.label).toBe('unknown');
    expect(s.className).toBe('badge-stale');
    expect(s.note).toContain('37 min ago');
    expect(shownStatus({ status: 'reachable', lastSeenAt: at(STALE_AFTER_MS - 1000), inventory: null }, now).label).toBe('reachable');
    expect(shownStatus({ status: 'reachable', lastSeenAt: at(5 * 60_000), inventory: null }, now, 60_000).label).toBe('unknown');
    expect(shownStatus({ status: 'reachable', lastSeenAt: null, inventory: null }, now).label).toBe('unknown');
  });
  it('a reachable host whose GPU driver fails is not green', () => {
    const s = shownStatus({ status: 'reachable', lastSeenAt: at(1000), inventory: inv('nvidia-smi could not talk to the NVIDIA driver.') }, now);
    expect(s).toEqual({ label: 'GPU error', className: 'badge-gpu-error', note: 'nvidia-smi could not talk to the NVIDIA driver.' });
  });
  it('other statuses are the core’s own', () => {
    expect(shownStatus({ status: 'unreachable', lastSeenAt: at(99 * 60_000), inventory: null }, now)).toEqual({ label: 'unreachable', className: 'badge-unreachable', note: null });
  });
});

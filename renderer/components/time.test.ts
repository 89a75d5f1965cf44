import { afterEach, describe, expect, it, vi } from 'vitest';
import { clockOffset, formatAgo, formatDuration, formatTime, isoTime, runningFor } from './time';

const WINTER = '2026-12-03T13:05:09.000Z';
const SUMMER = '2026-07-03T13:05:09.000Z';

describe('formatTime: local time with its zone', () => {
  // The zone is the process's (TZ), as the browser's is the machine's.
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('in Europe/Berlin: CET in winter, CEST in summer', () => {
    vi.stubEnv('TZ', 'Europe/Berlin');
    expect(formatTime(WINTER)).toBe('2026-12-03 14:05:09 CET');
    expect(formatTime(SUMMER)).toBe('2026-07-03 15:05:09 CEST');
  });

  it('in UTC, and across midnight', () => {
    vi.stubEnv('TZ', 'UTC');
    expect(formatTime(WINTER)).toBe('2026-12-03 13:05:09 UTC');
    expect(formatTime('2026-12-31T23:59:59.999Z')).toBe('2026-12-31 23:59:59 UTC');
    vi.stubEnv('TZ', 'Europe/Berlin');
    expect(formatTime('2026-12-31T23:59:59.999Z')).toBe('2027-01-01 00:59:59 CET');
  });

  it('midnight is 00, not 24; zones without a short name get their offset', () => {
    expect(formatTime('2026-12-03T00:00:00Z', 'UTC')).toBe('2026-12-03 00:00:00 UTC');
    expect(formatTime(WINTER, 'America/New_York')).toBe('2026-12-03 08:05:09 EST');
    expect(formatTime(WINTER, 'Asia/Kolkata')).toBe('2026-12-03 18:35:09 GMT+5:30');
  });

  it('absent is a dash, garbage is shown as given (sanitised)', () => {
    expect(formatTime(null)).toBe('—');
    expect(formatTime('')).toBe('—');
    expect(formatTime('not a time\u202e')).toBe('not a time\\u{202E}');
  });
});

describe('isoTime: the exact instant for titles and exports', () => {
  it('normalises to UTC ISO 8601 whatever the offset written', () => {
    expect(isoTime('2026-12-03T14:05:09+01:00')).toBe(WINTER);
    expect(isoTime(WINTER)).toBe(WINTER);
    expect(isoTime(null)).toBe('');
    expect(isoTime('soon')).toBe('soon');
  });
});

describe('formatAgo', () => {
  const now = Date.parse(WINTER);
  it('says how long ago, in one unit', () => {
    expect(formatAgo(WINTER, now + 2000)).toBe('just now');
    expect(formatAgo(WINTER, now + 42_000)).toBe('42 s ago');
    expect(formatAgo(WINTER, now + 37 * 60_000 + 10_000)).toBe('37 min ago');
    expect(formatAgo(WINTER, now + 5 * 3_600_000)).toBe('5 h ago');
    expect(formatAgo(WINTER, now + 3 * 86_400_000)).toBe('3 d ago');
  });
  it('a time ahead of now (clock skew) is "just now", never negative', () => {
    expect(formatAgo(WINTER, now - 38_448)).toBe('just now');
    expect(formatAgo(null, now)).toBe('—');
  });
});

describe('formatDuration: readable units', () => {
  it('ms, s with a tenth, min and s, h and min, d and h', () => {
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1234)).toBe('1.2 s');
    expect(formatDuration(59_940)).toBe('59.9 s');
    expect(formatDuration(59_960)).toBe('1 min 0 s');
    expect(formatDuration(184_000)).toBe('3 min 4 s');
    expect(formatDuration(3_599_600)).toBe('1 h 0 min');
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe('2 h 5 min');
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe('3 d 4 h');
  });
  it('never negative; null is a dash', () => {
    expect(formatDuration(-38_448)).toBe('0 ms');
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(Number.NaN)).toBe('—');
  });
});

describe('runningFor and the core clock', () => {
  it('"just started" under a second and when the clocks disagree', () => {
    expect(runningFor(1000, 1500)).toBe('just started');
    expect(runningFor(40_000, 1552)).toBe('just started');
    expect(runningFor(0, 184_000)).toBe('running for 3 min 4 s');
  });
  it('the offset is the core clock minus the browser clock at receipt', () => {
    expect(clockOffset(WINTER, Date.parse(WINTER) - 38_448)).toBe(38_448);
    expect(clockOffset(null, 5)).toBe(0);
  });
});

import { safeLine } from './safeText';

/**
 * The console's one way of showing a time (issue 11): local time with its zone,
 * `2026-12-03 14:05:09 CET`; the exact ISO 8601 instant goes in the hover title and in exports.
 * Relative ages ("37 min ago") and durations ("3 min 4 s") have one function each, here too.
 * Pure functions: the zone and "now" are parameters, so tests fix both.
 */

const DASH = '—';

/** Milliseconds since the epoch, or null for a missing or unparsable value. */
export function parseTime(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

const formatters = new Map<string, { parts: Intl.DateTimeFormat; zones: Intl.DateTimeFormat[] }>();

function formattersFor(timeZone: string | undefined) {
  // Keyed by the resolved zone: a test (or the OS) changing TZ gets fresh formatters.
  const key = timeZone ?? new Intl.DateTimeFormat().resolvedOptions().timeZone;
  let f = formatters.get(key);
  if (!f) {
    f = {
      parts: new Intl.DateTimeFormat('en-US', {
        timeZone: key,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      }),
      // en-US knows EST/PST, en-GB knows CET/BST; where neither has a name, both say GMT+5:30.
      zones: ['en-US', 'en-GB'].map((l) => new Intl.DateTimeFormat(l, { timeZone: key, timeZoneName: 'short' })),
    };
    formatters.set(key, f);
  }
  return f;
}

/** The zone's short name at that instant ("CET", "CEST", "UTC", "EST", else "GMT+5:30"). */
export function zoneName(t: number, timeZone?: string): string {
  const names = formattersFor(timeZone).zones.map((z) => z.formatToParts(t).find((p) => p.type === 'timeZoneName')?.value ?? '');
  return names.find((n) => n !== '' && !/^GMT[+-]/.test(n)) ?? names[0] ?? '';
}

/** `2026-12-03 14:05:09 CET` in the viewer's zone (or `timeZone`); "—" when absent. */
export function formatTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return DASH;
  const t = parseTime(iso);
  if (t === null) return safeLine(iso);
  const p = Object.fromEntries(formattersFor(timeZone).parts.formatToParts(t).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${zoneName(t, timeZone)}`;
}

/** The exact instant as ISO 8601 UTC (hover titles, exports); the input itself when unparsable. */
export function isoTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const t = parseTime(iso);
  return t === null ? safeLine(iso) : new Date(t).toISOString();
}

/**
 * "37 min ago" relative to `now` (ms; pass the core's clock, see `coreNow`). A time in the
 * future by clock skew is "just now", never "-3 s ago".
 */
export function formatAgo(iso: string | null | undefined, now: number): string {
  if (!iso) return DASH;
  const t = parseTime(iso);
  if (t === null) return safeLine(iso);
  const s = Math.round((now - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/**
 * A duration in readable units: `850 ms`, `1.2 s`, `3 min 4 s`, `2 h 5 min`, `3 d 4 h`.
 * Negative (clock skew) counts as 0; null is "—".
 */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return DASH;
  const v = Math.max(0, ms);
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 59_950) return `${(v / 1000).toFixed(1)} s`;
  const s = Math.round(v / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const m = Math.floor(s / 60);
  if (m < 1440) return `${Math.floor(m / 60)} h ${m % 60} min`;
  const h = Math.floor(m / 60);
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A running timer's label: "just started" under a second (or when the clocks disagree), else "running for 1.2 s". */
export function runningFor(startedAt: number, now: number): string {
  const ms = now - startedAt;
  return ms < 1000 ? 'just started' : `running for ${formatDuration(ms)}`;
}

/**
 * How far the core's clock is ahead of this browser's (ms), from session:status's `now`,
 * taken when that status arrived. Ages of core timestamps are measured on the core's clock
 * (`Date.now() + offset`), so a skewed client clock shows no negative or inflated ages.
 */
export function clockOffset(coreNowIso: string | null | undefined, receivedAt: number): number {
  const t = parseTime(coreNowIso);
  return t === null ? 0 : t - receivedAt;
}

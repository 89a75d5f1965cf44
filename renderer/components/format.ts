import { safeLine } from './safeText';

export const DASH = '—';

/** null/undefined/empty → "—", otherwise a sanitised single line. */
export function orDash(v: unknown): string {
  if (v === null || v === undefined) return DASH;
  const s = safeLine(v);
  return s === '' ? DASH : s;
}

// Times have one home (time.ts); these names stay importable from here.
export { formatAgo, formatDuration, formatTime, isoTime } from './time';

export function formatMiB(v: number | null): string {
  if (v === null) return DASH;
  if (v >= 1024) return `${(v / 1024).toFixed(v % 1024 === 0 ? 0 : 1)} GiB`;
  return `${v} MiB`;
}

export function withUnit(v: number | null, unit: string, digits = 0): string {
  if (v === null) return DASH;
  return `${v.toFixed(digits)}${unit}`;
}

/** "SHA256:abcd…wxyz" for narrow cells; the full value goes in the title. */
export function shortFingerprint(fp: string | null): string {
  if (!fp) return DASH;
  const body = fp.startsWith('SHA256:') ? fp.slice(7) : fp;
  return body.length <= 14 ? fp : `SHA256:${body.slice(0, 8)}…${body.slice(-4)}`;
}

export function shortHash(h: string, n = 12): string {
  return h.length > n ? `${h.slice(0, n)}…` : h;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

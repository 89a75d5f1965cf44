import { useEffect, useState } from 'react';
import { useApp } from '../context';
import { DASH } from './format';
import { formatAgo, formatTime, isoTime } from './time';

/**
 * A point in time, shown the one way (`2026-12-03 14:05:09 CET`, see time.ts) with the exact
 * ISO 8601 instant in `dateTime` and on hover. Absent → "—".
 */
export function Time({ iso, testId, className }: { iso: string | null | undefined; testId?: string; className?: string }) {
  if (!iso) return <>{DASH}</>;
  const exact = isoTime(iso);
  return (
    <time dateTime={exact} title={exact} className={className} data-testid={testId}>
      {formatTime(iso)}
    </time>
  );
}

/** "37 min ago" on the core's clock; the local time and ISO instant on hover. */
export function Ago({ iso, now, testId }: { iso: string | null | undefined; now: number; testId?: string }) {
  if (!iso) return <>{DASH}</>;
  const exact = isoTime(iso);
  return (
    <time dateTime={exact} title={`${formatTime(iso)} · ${exact}`} data-testid={testId}>
      {formatAgo(iso, now)}
    </time>
  );
}

/** The core's clock now (ms), refreshed every `everyMs` while mounted. */
export function useCoreNow(everyMs = 15_000): number {
  const { coreNow } = useApp();
  const [now, setNow] = useState(coreNow);
  useEffect(() => {
    setNow(coreNow());
    const t = setInterval(() => setNow(coreNow()), everyMs);
    return () => clearInterval(t);
  }, [coreNow, everyMs]);
  return now;
}

import { useCallback, useEffect, useRef, useState } from 'react';
import type { AirlockErrorShape, Result } from '../../shared/domain/errors';

/**
 * Data a panel shows from one channel: loaded whenever the panel becomes active, again on
 * `refresh()`; an error keeps the last data shown beside it. An answer that arrives after the
 * panel went away is dropped.
 */
export function useLoaded<T>(active: boolean, load: () => Promise<Result<T>>) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const latest = useRef(load);
  latest.current = load;
  const mounted = useRef(true);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const refresh = useCallback(async () => {
    const r = await latest.current();
    if (!mounted.current) return;
    if (r.ok) {
      setData(r.value);
      setError(null);
    } else setError(r.error);
  }, []);

  useEffect(() => {
    if (active) void refresh();
  }, [active, refresh]);

  return { data, error, refresh };
}

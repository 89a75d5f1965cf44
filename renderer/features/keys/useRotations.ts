import { useCallback, useEffect, useRef, useState } from 'react';
import type { SshRotation } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { useApp } from '../../context';
import { rotationLive } from './history';

/** How often the list is read again while a rotation runs and the page shows it. */
export const LIVE_MS = 2000;

/**
 * The SSH identity rotations for the Keys page's history (keys:sshRotations, newest first). A
 * rotation is recorded before its first step, so one started in this console or another shows
 * at once; while one runs the list is read again every {@link LIVE_MS} until it ends, so its
 * per-host progress moves on screen. `track(id)` reads again at once (a rotation just started here).
 */
export function useRotations(active: boolean) {
  const { client, can } = useApp();
  const allowed = can('keys:sshRotations');
  const [rotations, setRotations] = useState<SshRotation[]>([]);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const refresh = useCallback(async () => {
    if (!allowed) return;
    const r = await client.keys.sshRotations({ limit: 50 });
    if (!alive.current) return;
    if (!r.ok) return setError(r.error);
    setError(null);
    setRotations(r.value);
  }, [allowed, client]);

  const track = useCallback(() => void refresh(), [refresh]);

  useEffect(() => {
    if (active) void refresh();
  }, [active, refresh]);

  const live = rotations.some(rotationLive);
  useEffect(() => {
    if (!active || !live) return;
    const t = setInterval(() => void refresh(), LIVE_MS);
    return () => clearInterval(t);
  }, [active, live, refresh]);

  return { rotations, error, refresh, track, allowed };
}

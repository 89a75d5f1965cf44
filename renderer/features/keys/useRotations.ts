import { useCallback, useEffect, useRef, useState } from 'react';
import type { SshRotation } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { useApp } from '../../context';
import { rotationLive, rotationsFromAudit, type RotationStarting } from './history';

/** How often a running rotation is read again while the page shows it. */
export const LIVE_MS = 2000;
/** A start in the trail without its outcome is shown as running for this long at most. */
const STARTING_MAX_MS = 30 * 60_000;

/**
 * The SSH identity rotations for the Keys page's history. The core has no list of them, so they
 * are found where they are recorded: the audit trail names each rotation (keys:rotateSshIdentity's
 * outcome, keys:resumeSshRotation's target); each is then read with keys:sshRotation. While one
 * runs (or a start is in the trail without its outcome yet), it is read again every {@link LIVE_MS}
 * until it ends, so the per-host progress moves on screen. `track(id)` adds one this page knows.
 */
export function useRotations(active: boolean) {
  const { client, can } = useApp();
  const allowed = can('audit:list') && can('keys:sshRotation');
  const [rotations, setRotations] = useState<SshRotation[]>([]);
  const [starting, setStarting] = useState<RotationStarting[]>([]);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const known = useRef<string[]>([]);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const readOne = useCallback(
    async (id: string) => {
      const r = await client.keys.sshRotation({ id });
      if (!alive.current || !r.ok) return;
      setRotations((cur) => [...cur.filter((x) => x.id !== id), r.value]);
    },
    [client],
  );

  const refresh = useCallback(async () => {
    if (!allowed) return;
    const [started, resumed] = await Promise.all([
      client.audit.list({ channel: 'keys:rotateSshIdentity', limit: 200 }),
      client.audit.list({ channel: 'keys:resumeSshRotation', limit: 200 }),
    ]);
    if (!alive.current) return;
    if (!started.ok) return setError(started.error);
    if (!resumed.ok) return setError(resumed.error);
    setError(null);
    const found = rotationsFromAudit([...started.value.events, ...resumed.value.events]);
    known.current = [...new Set([...known.current, ...found.ids])];
    // A start whose outcome never came (its console stopped) is not waited for forever: the sweep marks such a rotation interrupted.
    setStarting(found.starting.filter((s) => Date.now() - Date.parse(s.ts) < STARTING_MAX_MS));
    await Promise.all(known.current.map(readOne));
  }, [allowed, client, readOne]);

  const track = useCallback(
    (id: string) => {
      if (!known.current.includes(id)) known.current = [...known.current, id];
      void readOne(id);
    },
    [readOne],
  );

  useEffect(() => {
    if (active) void refresh();
  }, [active, refresh]);

  // Live progress: read the running ones again (and the trail, while a start has no outcome yet).
  const running = rotations.filter(rotationLive).map((r) => r.id);
  const runningKey = running.join(',');
  const waiting = starting.length > 0;
  useEffect(() => {
    if (!active || (!runningKey && !waiting)) return;
    const t = setInterval(() => {
      if (waiting) void refresh();
      else for (const id of runningKey.split(',')) void readOne(id);
    }, LIVE_MS);
    return () => clearInterval(t);
  }, [active, runningKey, waiting, refresh, readOne]);

  return { rotations, starting, error, refresh, track, allowed };
}

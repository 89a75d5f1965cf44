import type { StepContext } from './types';

/**
 * After a change cut Airlock off, the host's dead-man switch puts the previous state back when its
 * timer fires. Keep trying to get in until a little after that, then read the marker the switch
 * writes: the time of the rollback, or null when Airlock still cannot get in (or the marker is
 * missing, which the caller reports as an unproven rollback).
 */
export async function awaitRollback(ctx: StepContext, deadManSeconds: number, marker: string): Promise<string | null> {
  const until = Date.now() + (deadManSeconds + 20) * 1000;
  while (Date.now() < until && !ctx.signal.aborted) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const fresh = await ctx.freshConnection(5000);
      try {
        const r = await fresh.exec(`${ctx.remote.asRoot ? '' : 'sudo -n '}cat ${marker}`, { timeoutMs: 5000 });
        if (r.code === 0 && r.stdout.trim()) return r.stdout.trim().slice(0, 40);
        // In again, but the switch has not written its marker yet: keep waiting for it.
      } finally {
        fresh.close();
      }
    } catch {
      // still cut off; keep waiting for the timer
    }
  }
  return null;
}

import { z } from 'zod';
import { INVENTORY_COMMAND, INVENTORY_MAX_BYTES, parseInventory } from '../../hosts/inventory';
import { StepFailure } from '../remote';
import { defineStep, type StepContext } from './types';

const Params = z
  .object({
    /** Lowest acceptable driver version (dotted numbers, compared numerically). */
    minDriver: z.string().regex(/^\d+(\.\d+)*$/).optional(),
    /** Every GPU's name must contain one of these (e.g. "A100", "H100"). */
    models: z.array(z.string().min(1).max(64)).max(32).optional(),
    minCount: z.number().int().min(0).max(1024).default(1),
    /** Required ECC mode ("Enabled"/"Disabled"); omitted = not checked. */
    ecc: z.enum(['Enabled', 'Disabled']).optional(),
    persistence: z.enum(['Enabled', 'Disabled']).optional(),
  })
  .strict();
type Params = z.infer<typeof Params>;

export function compareDotted(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

async function inventory(ctx: StepContext) {
  const r = await ctx.remote.conn.exec(INVENTORY_COMMAND, { timeoutMs: ctx.timeoutMs, signal: ctx.signal, maxOutputBytes: INVENTORY_MAX_BYTES });
  if (r.code !== 0) throw new StepFailure(`the inventory command failed (exit ${r.code ?? r.signal})`, r.code, r.stderr);
  return parseInventory(r.stdout, new Date());
}

/** What the host has against what the playbook requires: one line per violation. */
function problems(inv: Awaited<ReturnType<typeof inventory>>, p: Params): string[] {
  const out: string[] = [];
  if (inv.gpuError) out.push(`GPU inventory: ${inv.gpuError}`);
  if (inv.gpus.length < p.minCount) out.push(`${inv.gpus.length} GPU(s), at least ${p.minCount} required`);
  if (p.minDriver) {
    if (!inv.driverVersion) out.push(`no NVIDIA driver version reported, ${p.minDriver} or later required`);
    else if (!/^\d+(\.\d+)*$/.test(inv.driverVersion) || compareDotted(inv.driverVersion, p.minDriver) < 0) {
      out.push(`driver ${inv.driverVersion}, ${p.minDriver} or later required`);
    }
  }
  for (const g of inv.gpus) {
    if (p.models?.length && !p.models.some((m) => g.name.includes(m))) out.push(`GPU ${g.index} is "${g.name}", not one of ${p.models.join(', ')}`);
    if (p.ecc && g.eccMode !== p.ecc) out.push(`GPU ${g.index} ECC mode is ${g.eccMode ?? 'N/A'}, ${p.ecc} required`);
    if (p.persistence && g.persistenceMode !== p.persistence) out.push(`GPU ${g.index} persistence mode is ${g.persistenceMode ?? 'N/A'}, ${p.persistence} required`);
  }
  return out;
}

function facts(inv: Awaited<ReturnType<typeof inventory>>) {
  return {
    driverVersion: inv.driverVersion,
    count: inv.gpus.length,
    gpus: inv.gpus.map((g) => ({ index: g.index, name: g.name, uuid: g.uuid, memoryTotalMiB: g.memoryTotalMiB, ecc: g.eccMode, persistence: g.persistenceMode })),
  };
}

/** GPU and driver check: read-only; a host that does not meet the requirement fails here, with every reason. */
export const gpuCheck = defineStep<Params>({
  type: 'gpu-driver-check',
  title: 'GPU and driver check',
  params: Params,
  needs: { root: false, store: () => [] },
  async check(ctx, p) {
    const inv = await inventory(ctx);
    const bad = problems(inv, p);
    ctx.log(`driver ${inv.driverVersion ?? 'none'}, ${inv.gpus.length} GPU(s): ${inv.gpus.map((g) => g.name).join(', ') || '-'}\n`);
    if (bad.length === 0) return { state: 'ok', changes: [] };
    return {
      state: 'fail',
      message: bad.join('; '),
      changes: bad.map((b) => ({ kind: 'check' as const, target: 'gpu', from: b, to: null, diff: null })),
    };
  },
  async apply() {
    // Nothing to change: drivers and GPUs are installed by other means; check failing stops the host.
  },
  async verify(ctx, p) {
    const inv = await inventory(ctx);
    const bad = problems(inv, p);
    return { ok: bad.length === 0, facts: facts(inv), message: bad.join('; ') || undefined };
  },
});

import crypto from 'node:crypto';
import { z } from 'zod';
import type { ExecOptions } from '../../ssh/connection';
import { GATE_PATHS, GATE_UNIT, GateConfig, gateProgram, gateUnit, installGate, readGateStatus, waitForGatePolicy } from '../../models/gate/install';
import { HostPath, q, StepFailure } from '../remote';
import { defineStep, type StepContext } from './types';

const Ipv4 = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}$/, 'an IPv4 address');
const Params = z
  .object({
    /** Where applications reach the gate: the host's cluster address (default: the address Airlock enrolled it under). */
    bind: Ipv4.optional(),
    port: z.number().int().min(1024).max(65535).default(8443),
    /** The inference server behind it, on the host's loopback (the inference-service step's port). */
    upstreamPort: z.number().int().min(1024).max(65535).default(8000),
    /** Prometheus counters, on the loopback (scraped through an SSH tunnel). */
    metricsPort: z.number().int().min(1024).max(65535).default(9464),
    /** The host's Python 3 (stock Debian's). */
    python: HostPath.default('/usr/bin/python3'),
  })
  .strict();
type Params = z.infer<typeof Params>;

/** The gate's config for this host, as the step writes it. */
function configOf(ctx: StepContext, p: Params): GateConfig {
  const bind = p.bind ?? (/^(\d{1,3}\.){3}\d{1,3}$/.test(ctx.host.address) ? ctx.host.address : '0.0.0.0');
  return GateConfig.parse({ host: ctx.host.name, roles: ['invoke'], listen: `${bind}:${p.port}`, upstream: `127.0.0.1:${p.upstreamPort}`, metricsListen: `127.0.0.1:${p.metricsPort}` });
}
const configText = (c: GateConfig) => `${JSON.stringify(c, null, 2)}\n`;
const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

/** The gate's commands as root, through the step's own connection (sudo -n when the login is not root). */
const hostExec = (ctx: StepContext) => ({
  exec: (cmd: string, o: ExecOptions) => ctx.remote.sh(cmd, { ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), ...(typeof o.stdin === 'string' ? { stdin: o.stdin } : {}), ...(o.maxOutputBytes !== undefined ? { maxOutputBytes: o.maxOutputBytes } : {}) }),
});

function policyOf(ctx: StepContext, issue: boolean) {
  if (!ctx.gatePolicy) throw new StepFailure('This console has no access area to sign a gate policy with: the gate cannot be installed from here.', null, '');
  return ctx.gatePolicy({ issue });
}

/** What is on the host, against what the step wants (one read each; the program compared by hash). */
async function found(ctx: StepContext, p: Params) {
  const want = configOf(ctx, p);
  const [program, unit, config, key, active] = await Promise.all([
    ctx.remote.readFile(GATE_PATHS.program, 4 * 1024 * 1024),
    ctx.remote.readFile(GATE_PATHS.unit),
    ctx.remote.readFile(GATE_PATHS.config),
    ctx.remote.readFile(GATE_PATHS.pinnedKey),
    ctx.remote.sh(`systemctl is-active --quiet ${q(GATE_UNIT)}`),
  ]);
  const status = await readGateStatus(hostExec(ctx)).catch(() => null);
  return { want, program, unit, config, key, active: active.code === 0, status };
}

/**
 * The gate in front of the inference server (issue 13, docs/gate.md): the program, its confined
 * unit, its config (invoke role: listen on the cluster address, forward to the loopback
 * inference server), the console's pinned policy key and the current signed policy, started and
 * proven to enforce that policy version. Install it after the inference-service step, whose
 * server binds to 127.0.0.1 so that the gate is the only way in.
 */
export const inferenceGate = defineStep<Params>({
  type: 'inference-gate',
  title: 'Inference gate (grants enforced per application)',
  params: Params,
  needs: { root: true, store: () => [] },
  async check(ctx, p) {
    const { keyPem, policy } = policyOf(ctx, false);
    const f = await found(ctx, p);
    const changes = [];
    const file = (target: string, have: string | null, want: string) => (have === want ? null : { kind: 'file' as const, target, from: have === null ? null : `${have.length} bytes`, to: `${want.length} bytes`, diff: null });
    for (const c of [
      f.program === null || sha(f.program) !== sha(gateProgram()) ? { kind: 'file' as const, target: GATE_PATHS.program, from: f.program === null ? null : `sha256 ${sha(f.program).slice(0, 12)}…`, to: `sha256 ${sha(gateProgram()).slice(0, 12)}…`, diff: null } : null,
      file(GATE_PATHS.unit, f.unit, gateUnit(p.python)),
      file(GATE_PATHS.config, f.config, configText(f.want)),
      keyPem === null ? { kind: 'file' as const, target: GATE_PATHS.pinnedKey, from: f.key === null ? null : 'a key', to: 'the console policy key (minted at apply)', diff: null } : file(GATE_PATHS.pinnedKey, f.key, keyPem),
    ]) {
      if (c) changes.push(c);
    }
    if (!f.active) changes.push({ kind: 'service' as const, target: GATE_UNIT, from: 'inactive', to: 'active', diff: null });
    const enforcing = f.status?.policyVersion ?? null;
    if (policy === null || enforcing !== policy.version) changes.push({ kind: 'file' as const, target: GATE_PATHS.policy, from: enforcing === null ? 'no policy enforced' : `policy v${enforcing}`, to: policy ? `policy v${policy.version}` : 'the first policy (issued at apply)', diff: null });
    return { state: changes.length ? 'change' : 'ok', changes };
  },
  async apply(ctx, p) {
    const { keyPem, policy } = policyOf(ctx, true);
    if (!keyPem || !policy) throw new StepFailure('The console could not issue a gate policy (sign in again).', null, '');
    const st = await installGate(hostExec(ctx), { config: configOf(ctx, p), policySigningKeyPem: keyPem, policy: { bytes: policy.bytes, sig: policy.sig }, python: p.python, signal: ctx.signal, startTimeoutMs: 60_000 });
    ctx.log(`gate started: policy v${st.policyVersion ?? 'none'}\n`);
    if (st.policyVersion !== policy.version) {
      const after = await waitForGatePolicy(hostExec(ctx), policy.version, { signal: ctx.signal, waitMs: 60_000 }).catch((e: unknown) => {
        throw new StepFailure(`The gate did not take policy v${policy.version}: ${e instanceof Error ? e.message : String(e)}`, null, '');
      });
      ctx.log(`gate enforces policy v${after.policyVersion}\n`);
    }
  },
  async verify(ctx, p) {
    const { keyPem, policy } = policyOf(ctx, false);
    const f = await found(ctx, p);
    const problems: string[] = [];
    if (f.program === null || sha(f.program) !== sha(gateProgram())) problems.push('the gate program is not the one Airlock ships');
    if (f.config !== configText(f.want)) problems.push(`${GATE_PATHS.config} is not what Airlock wrote`);
    if (keyPem === null || f.key !== keyPem) problems.push('the pinned policy key is not the console policy key');
    if (!f.active) problems.push(`${GATE_UNIT} is not active`);
    if (!policy || f.status?.policyVersion !== policy.version) problems.push(`the gate enforces ${f.status?.policyVersion ? `policy v${f.status.policyVersion}` : 'no policy'}, not v${policy?.version ?? '?'}`);
    const facts = {
      listen: f.want.listen,
      upstream: f.want.upstream,
      programSha256: f.program === null ? null : sha(f.program),
      pinnedKeySha256: f.key === null ? null : sha(f.key),
      policyVersion: f.status?.policyVersion ?? null,
      policySha256: f.status?.policySha256 ?? null,
    };
    return { ok: problems.length === 0, facts, ...(problems.length ? { message: problems.join('; ') } : {}) };
  },
});

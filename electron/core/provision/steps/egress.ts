import crypto from 'node:crypto';
import net from 'node:net';
import { createTwoFilesPatch } from 'diff';
import { z } from 'zod';
import { q, Remote, StepFailure } from '../remote';
import { awaitRollback } from './deadman';
import { defineStep, type StepContext } from './types';

const Cidr4 = z.string().refine((s) => parseCidr(s) !== null, 'an IPv4 address or CIDR (a.b.c.d/n)');
const Target = z.object({ host: z.string().refine((s) => net.isIPv4(s), 'an IPv4 address'), port: z.number().int().min(1).max(65535) }).strict();

const Params = z
  .object({
    /** Destinations the host may still reach (the cluster subnets). Airlock's own address is added unless allowAirlock is false. */
    allowCidrs: z.array(Cidr4).max(256).default([]),
    allowAirlock: z.boolean().default(true),
    /** When set, inbound SSH is accepted only from these (and from established connections). */
    managementCidrs: z.array(Cidr4).max(256).optional(),
    /** Probes run from the host by verify: outside targets must be unreachable, inside ones reachable. */
    probes: z
      .object({ outside: z.array(Target).max(32).default([]), inside: z.array(Target).max(32).default([]) })
      .strict()
      .default({ outside: [], inside: [] }),
    /** Seconds after which the host restores its previous ruleset unless Airlock, connecting anew, confirms. */
    deadManSeconds: z.number().int().min(5).max(3600).default(30),
    probeTimeoutSeconds: z.number().int().min(1).max(30).default(3),
  })
  .strict();
type Params = z.infer<typeof Params>;

export const TABLE = 'airlock_egress';
const STATE = '/var/lib/airlock/egress';
const SOURCE = '/etc/airlock/egress.nft';

/** Parse a.b.c.d or a.b.c.d/n into its network form, or null. */
export function parseCidr(s: string): string | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(s);
  if (!m || !net.isIPv4(m[1]!)) return null;
  const bits = m[2] === undefined ? 32 : Number(m[2]);
  if (bits > 32) return null;
  const n = m[1]!.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const netw = (n & mask) >>> 0;
  const ip = [24, 16, 8, 0].map((sh) => (netw >>> sh) & 255).join('.');
  return bits === 32 ? ip : `${ip}/${bits}`;
}

/** The [first, last] addresses of a normalised CIDR. */
function range(c: string): [number, number] {
  const [ip, bits] = c.split('/');
  const n = ip!.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - (bits === undefined ? 32 : Number(bits)));
  return [n, n + size - 1];
}

/**
 * CIDR blocks are nested or disjoint: drop duplicates and blocks inside another (nft refuses
 * overlapping elements in an interval set), keep the order stable.
 */
export function minimalCidrs(cidrs: string[]): string[] {
  const uniq = [...new Set(cidrs)];
  return uniq.filter((c) => {
    const [a, b] = range(c);
    return !uniq.some((o) => {
      if (o === c) return false;
      const [x, y] = range(o);
      return x <= a && b <= y && (x < a || b < y);
    });
  });
}

/** The ruleset, replacing only Airlock's own table, atomically (`nft -f`). */
export function renderRuleset(p: Params, airlock: string | null): string {
  const allow = minimalCidrs([...p.allowCidrs.map((c) => parseCidr(c)!), ...(p.allowAirlock && airlock ? [airlock] : [])]);
  const lines = [
    '# Written by Airlock: egress lockdown. Changes here are drift and will be reported.',
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
  ];
  if (allow.length) lines.push(`\tset allow4 {`, `\t\ttype ipv4_addr`, `\t\tflags interval`, `\t\telements = { ${allow.join(', ')} }`, `\t}`, '');
  lines.push(
    '\tchain output {',
    '\t\ttype filter hook output priority filter; policy drop;',
    '\t\toif "lo" accept',
    '\t\tct state established,related accept',
    ...(allow.length ? ['\t\tip daddr @allow4 accept'] : []),
    '\t\tcounter comment "airlock: egress denied"',
    '\t}',
  );
  if (p.managementCidrs) {
    const mgmt = [...new Set(p.managementCidrs.map((c) => parseCidr(c)!))];
    lines.push(
      '',
      '\tchain input {',
      '\t\ttype filter hook input priority filter; policy accept;',
      '\t\tiif "lo" accept',
      '\t\tct state established,related accept',
      mgmt.length ? `\t\ttcp dport 22 ip saddr != { ${mgmt.join(', ')} } drop` : '\t\ttcp dport 22 drop',
      '\t}',
    );
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** Airlock's address as the host sees it (the client end of this SSH connection). */
async function airlockAddress(ctx: StepContext): Promise<string | null> {
  const r = await ctx.remote.sh('printf "%s" "${SSH_CONNECTION%% *}"');
  const a = r.stdout.trim();
  return net.isIPv4(a) ? a : null;
}

async function listing(ctx: StepContext): Promise<string | null> {
  const r = await ctx.remote.sh(`nft -s list table inet ${TABLE}`);
  return r.code === 0 ? r.stdout : null;
}

const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

async function probe(ctx: StepContext, p: Params) {
  const all = [...p.probes.outside.map((t) => ({ ...t, expect: 'blocked' as const })), ...p.probes.inside.map((t) => ({ ...t, expect: 'open' as const }))];
  if (all.length === 0) return [];
  const first = await probeOnce(ctx, p, all);
  // An inside target that did not answer gets a second chance (a service restarting is not a lockdown
  // failure); an outside target that answered never does.
  const retry = first.filter((x) => x.expect === 'open' && !x.pass);
  if (retry.length === 0) return first;
  await new Promise((r) => setTimeout(r, 1000));
  const second = await probeOnce(ctx, p, retry.map((x) => ({ host: x.target.split(':')[0]!, port: Number(x.target.split(':')[1]), expect: 'open' as const })));
  return first.map((x) => second.find((y) => y.target === x.target) ?? x);
}

async function probeOnce(ctx: StepContext, p: Params, all: Array<{ host: string; port: number; expect: 'open' | 'blocked' }>) {
  const t = p.probeTimeoutSeconds;
  // bash's /dev/tcp opens a real TCP connection from the host; `timeout` bounds a dropped SYN.
  const script = all
    .map((x) => `if timeout ${t} bash -c ${q(`exec 3<>/dev/tcp/${x.host}/${x.port}`)} 2>/dev/null; then echo ${q(`${x.host}:${x.port}`)} open; else echo ${q(`${x.host}:${x.port}`)} blocked; fi`)
    .join('\n');
  const r = await ctx.remote.sh(script, { timeoutMs: (t + 5) * all.length * 1000 });
  const seen = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && (v === 'open' || v === 'blocked')) seen.set(k, v);
  }
  return all.map((x) => {
    const result = seen.get(`${x.host}:${x.port}`) ?? 'error';
    return { target: `${x.host}:${x.port}`, expect: x.expect, result, pass: result === x.expect };
  });
}

/**
 * Egress lockdown: an nftables table of Airlock's own that drops all outbound traffic except the
 * cluster subnets and Airlock's address, loaded atomically, behind a dead-man switch (the host puts
 * the previous ruleset back unless Airlock, connecting anew, confirms in time), and actively probed.
 */
export const egressLockdown = defineStep<Params>({
  type: 'egress-lockdown',
  title: 'Egress lockdown (nftables)',
  params: Params,
  needs: { root: true, store: () => [] },
  async check(ctx, p) {
    // One session on the host for all four facts.
    const [addr, src, list, app] = await ctx.remote.batch([
      'printf "%s" "${SSH_CONNECTION%% *}"',
      Remote.cat(SOURCE),
      `nft -s list table inet ${TABLE}`,
      Remote.cat(`${STATE}/applied.sha256`),
    ]);
    const airlock = net.isIPv4(addr!.stdout.trim()) ? addr!.stdout.trim() : null;
    const want = renderRuleset(p, airlock);
    const source = src!.code === 0 ? src!.stdout : null;
    const now = list!.code === 0 ? list!.stdout : null;
    const applied = app!.code === 0 ? app!.stdout.trim() : null;
    if (source === want && now !== null && applied === sha(now)) return { state: 'ok', changes: [] };
    return {
      state: 'change',
      changes: [
        {
          kind: 'firewall',
          target: `nft table inet ${TABLE}`,
          from: now === null ? null : source === want ? 'the ruleset was changed on the host' : 'a different ruleset',
          to: 'egress locked down',
          diff: createTwoFilesPatch(`table inet ${TABLE}`, `table inet ${TABLE}`, now ?? '', want, now === null ? '(absent)' : 'now (nft list)', 'wanted'),
        },
      ],
    };
  },
  async apply(ctx, p) {
    const want = renderRuleset(p, await airlockAddress(ctx));
    const nonce = crypto.randomBytes(12).toString('hex');
    const s = q(STATE);
    await ctx.remote.must(`mkdir -p ${s} /etc/airlock && chmod 0700 ${s}`, 'creating the lockdown state directory');
    await ctx.remote.writeFile(`${STATE}/new.nft`, want, '0600');
    await ctx.remote.must(`nft -c -f ${s}/new.nft`, 'checking the ruleset (nft -c)', { onOutput: (x) => ctx.log(x) });
    // Arm the dead-man switch, then load atomically.
    await ctx.remote.must(
      [
        'set -e',
        `cd ${s}`,
        `printf 'table inet ${TABLE}\\ndelete table inet ${TABLE}\\n' > rollback.nft`,
        `nft list table inet ${TABLE} >> rollback.nft 2>/dev/null || printf 'table inet ${TABLE}\\ndelete table inet ${TABLE}\\n' > rollback.nft`,
        `rm -f rolled-back`,
        `echo ${nonce} > pending`,
        `setsid sh -c 'sleep ${p.deadManSeconds}; if [ "$(cat ${STATE}/pending 2>/dev/null)" = ${nonce} ]; then nft -f ${STATE}/rollback.nft && date -u +%Y-%m-%dT%H:%M:%SZ > ${STATE}/rolled-back; rm -f ${STATE}/pending; fi' </dev/null >/dev/null 2>&1 &`,
        `nft -f new.nft`,
      ].join('\n'),
      'loading the ruleset (nft -f)',
    );
    ctx.log(`ruleset loaded; dead-man switch armed for ${p.deadManSeconds} s; connecting anew to confirm Airlock still gets in\n`);
    const confirm = `cd ${s} && [ "$(cat pending 2>/dev/null)" = ${nonce} ] && rm -f pending && mv -f new.nft ${q(SOURCE)} && nft -s list table inet ${TABLE} | sha256sum | cut -d' ' -f1 > applied.sha256`;
    try {
      const fresh = await ctx.freshConnection(Math.min(10_000, (p.deadManSeconds * 1000) / 2));
      try {
        const r = await fresh.exec(`${ctx.remote.asRoot ? '' : 'sudo -n '}/bin/sh -c ${q(confirm)}`, { timeoutMs: 10_000, signal: ctx.signal });
        if (r.code !== 0) throw new StepFailure('confirming the lockdown failed (the dead-man switch may have fired already)', r.code, r.stderr);
      } finally {
        fresh.close();
      }
      ctx.log('a new SSH connection got in: lockdown confirmed, dead-man switch disarmed\n');
      return;
    } catch (e) {
      if (e instanceof StepFailure) throw e;
      ctx.log(`a new SSH connection failed (${(e as Error).message}); waiting for the dead-man switch\n`);
    }
    // Airlock was cut off: the host restores the previous ruleset when the timer fires. Prove it did.
    const rolledBack = await awaitRollback(ctx, p.deadManSeconds, `${STATE}/rolled-back`);
    throw new StepFailure(
      rolledBack
        ? `the new ruleset cut Airlock off; the host's dead-man switch restored the previous ruleset (at ${rolledBack}) — nothing was locked down`
        : `the new ruleset cut Airlock off and Airlock could not get back in after the dead-man switch was due (${p.deadManSeconds} s)`,
      null,
      '',
      'LOCKDOWN_ROLLED_BACK',
    );
  },
  async verify(ctx, p) {
    const want = renderRuleset(p, await airlockAddress(ctx));
    const now = await listing(ctx);
    const source = await ctx.remote.readFile(SOURCE);
    const probes = await probe(ctx, p);
    const problems = [
      now === null ? `table inet ${TABLE} is not loaded` : null,
      source !== want ? `${SOURCE} is not the wanted ruleset` : null,
      p.probes.outside.length === 0 ? 'no outside probe target is configured for this site: the lockdown cannot be proven' : null,
      ...probes.filter((x) => !x.pass).map((x) => `probe ${x.target}: ${x.result}, expected ${x.expect}`),
    ].filter((x): x is string => x !== null);
    return {
      ok: problems.length === 0,
      message: problems.join('; ') || undefined,
      facts: { table: `inet ${TABLE}`, rulesetSha256: now === null ? null : sha(now), sourceSha256: source === null ? null : sha(source), probes },
    };
  },
});

/**
 * Remove Airlock's egress table from a host, and the files that record it (the two-person rule
 * guards the channel, `provision:disableEgressLockdown`). True when a table was there.
 */
export async function disableEgress(remote: Remote): Promise<boolean> {
  const r = await remote.must(
    `if nft list table inet ${TABLE} >/dev/null 2>&1; then nft delete table inet ${TABLE} && echo removed; fi; rm -f /etc/airlock/egress.nft /var/lib/airlock/egress/applied.sha256`,
    'removing the egress lockdown',
  );
  return r.stdout.includes('removed');
}

import crypto from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { z } from 'zod';
import type { Change } from '../../../../shared/contract/provision';
import { shellQuoteScript } from '../../ssh/quote';
import { HostPath, q, Remote, StepFailure } from '../remote';
import { awaitRollback } from './deadman';
import { defineStep, type StepContext } from './types';

const Algo = z.string().regex(/^[a-z0-9@.+-]+$/);
const Params = z
  .object({
    permitRootLogin: z.enum(['no', 'prohibit-password', 'forced-commands-only', 'yes']).default('prohibit-password'),
    passwordAuthentication: z.boolean().default(false),
    kbdInteractiveAuthentication: z.boolean().default(false),
    x11Forwarding: z.boolean().default(false),
    maxAuthTries: z.number().int().min(1).max(20).default(3),
    ciphers: z.array(Algo).min(1).max(16).default(['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes128-ctr']),
    macs: z.array(Algo).max(16).optional(),
    kexAlgorithms: z.array(Algo).max(16).optional(),
    /** Drop-in file (Debian's sshd_config includes sshd_config.d/*.conf first, so it takes precedence). */
    dropIn: HostPath.regex(/^\/etc\/ssh\/sshd_config\.d\/[A-Za-z0-9_.-]+\.conf$/).default('/etc/ssh/sshd_config.d/50-airlock.conf'),
    deadManSeconds: z.number().int().min(5).max(3600).default(30),
  })
  .strict();
type Params = z.infer<typeof Params>;

const yn = (b: boolean) => (b ? 'yes' : 'no');

/** The settings we manage, as `sshd -T` prints them (lower-case keys). */
export function wanted(p: Params): Record<string, string> {
  const w: Record<string, string> = {
    permitrootlogin: p.permitRootLogin === 'prohibit-password' ? 'without-password' : p.permitRootLogin,
    passwordauthentication: yn(p.passwordAuthentication),
    kbdinteractiveauthentication: yn(p.kbdInteractiveAuthentication),
    x11forwarding: yn(p.x11Forwarding),
    maxauthtries: String(p.maxAuthTries),
    ciphers: p.ciphers.join(','),
  };
  if (p.macs) w.macs = p.macs.join(',');
  if (p.kexAlgorithms) w.kexalgorithms = p.kexAlgorithms.join(',');
  return w;
}

export function renderDropIn(p: Params): string {
  return [
    '# Written by Airlock: SSH hardening. Changes here are drift and will be reported.',
    `PermitRootLogin ${p.permitRootLogin}`,
    `PasswordAuthentication ${yn(p.passwordAuthentication)}`,
    `KbdInteractiveAuthentication ${yn(p.kbdInteractiveAuthentication)}`,
    `X11Forwarding ${yn(p.x11Forwarding)}`,
    `MaxAuthTries ${p.maxAuthTries}`,
    `Ciphers ${p.ciphers.join(',')}`,
    ...(p.macs ? [`MACs ${p.macs.join(',')}`] : []),
    ...(p.kexAlgorithms ? [`KexAlgorithms ${p.kexAlgorithms.join(',')}`] : []),
    '',
  ].join('\n');
}

/** The effective configuration, read from sshd itself. */
async function effective(ctx: StepContext): Promise<Record<string, string>> {
  const r = await ctx.remote.must('sshd -T', 'reading the effective sshd configuration (sshd -T)');
  return parseEffective(r.stdout, r.code);
}

function parseEffective(stdout: string, code: number | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) {
      const k = line.slice(0, i).toLowerCase();
      if (!(k in out)) out[k] = line.slice(i + 1).trim();
    }
  }
  if (!out.port) throw new StepFailure(`sshd -T printed no configuration (exit ${code ?? '?'})`, code, stdout);
  return out;
}

function differences(eff: Record<string, string>, p: Params) {
  const w = wanted(p);
  // `prohibit-password` is printed as `without-password` by older sshd; accept both spellings.
  const same = (k: string) => eff[k] === w[k] || (k === 'permitrootlogin' && [eff[k], w[k]].every((v) => v === 'without-password' || v === 'prohibit-password'));
  return Object.keys(w)
    .filter((k) => !same(k))
    .map((k) => ({ key: k, now: eff[k] ?? null, want: w[k]! }));
}

/**
 * SSH hardening: a drop-in with the wanted sshd settings, tested with `sshd -t`, reloaded (SIGHUP
 * to the listener, as systemd's ssh.service does), behind a dead-man switch that puts the old
 * drop-in back unless Airlock gets in anew, and verified by reading the effective config (`sshd -T`).
 */
export const sshHardening = defineStep<Params>({
  type: 'ssh-hardening',
  title: 'SSH hardening',
  params: Params,
  needs: { root: true, store: () => [] },
  async check(ctx, p) {
    const [t, d] = await ctx.remote.batch(['sshd -T', Remote.cat(p.dropIn)]);
    const diff = differences(parseEffective(t!.stdout, t!.code), p);
    const have = d!.code === 0 ? d!.stdout : null;
    const want = renderDropIn(p);
    const changes: Change[] = diff.map((d) => ({ kind: 'config' as const, target: `sshd ${d.key}`, from: d.now, to: d.want, diff: null }));
    if (have !== want) {
      changes.push({ kind: 'file', target: p.dropIn, from: have === null ? null : `${have.length} bytes`, to: `${want.length} bytes`, diff: createTwoFilesPatch(p.dropIn, p.dropIn, have ?? '', want, have === null ? '(absent)' : 'now', 'wanted') });
    }
    return { state: changes.length ? 'change' : 'ok', changes };
  },
  async apply(ctx, p) {
    const nonce = crypto.randomBytes(12).toString('hex');
    const f = q(p.dropIn);
    const st = '/var/lib/airlock/sshd';
    await ctx.remote.writeFile(`${st}/new.conf`, renderDropIn(p), '0644');
    // Keep the old drop-in (or its absence), put the new one in place, and let sshd judge the whole config.
    await ctx.remote.must(
      [
        'set -e',
        `cd ${st}`,
        `if [ -f ${f} ]; then cp -p ${f} old.conf; echo present > old.state; else rm -f old.conf; echo absent > old.state; fi`,
        `mkdir -p /etc/ssh/sshd_config.d`,
        `cp new.conf ${f}.airlock-tmp && mv -f ${f}.airlock-tmp ${f}`,
        `if ! sshd -t; then if [ "$(cat old.state)" = present ]; then cp -p old.conf ${f}; else rm -f ${f}; fi; echo 'sshd -t refused the new configuration; the old one is back' >&2; exit 3; fi`,
      ].join('\n'),
      'installing the sshd drop-in (sshd -t)',
      { onOutput: (x) => ctx.log(x) },
    );
    const restore = `if [ "$(cat ${st}/old.state)" = present ]; then cp -p ${st}/old.conf ${f}; else rm -f ${f}; fi`;
    const hup = `kill -HUP "$(cat "$(sshd -T | awk '$1=="pidfile"{print $2}')")"`;
    await ctx.remote.must(
      [
        'set -e',
        `cd ${st}`,
        `rm -f rolled-back; echo ${nonce} > pending`,
        `setsid sh -c ${shellQuoteScript(`sleep ${p.deadManSeconds}; if [ "$(cat ${st}/pending 2>/dev/null)" = ${nonce} ]; then ${restore}; ${hup}; date -u +%Y-%m-%dT%H:%M:%SZ > ${st}/rolled-back; rm -f ${st}/pending; fi`)} </dev/null >/dev/null 2>&1 &`,
        hup,
      ].join('\n'),
      'reloading sshd',
    );
    // sshd re-executes on SIGHUP: give the listener a moment, then prove a new login works.
    let lastErr = '';
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 300 * (i + 1)));
      try {
        const fresh = await ctx.freshConnection(8000);
        try {
          // Disarm the switch; if it already fired (this login came in on the restored settings: a
          // lockout, or a confirmation slower than the switch), say so from its own marker.
          const r = await fresh.exec(
            `${ctx.remote.asRoot ? '' : 'sudo -n '}/bin/sh -c ${q(`if [ "$(cat ${st}/pending 2>/dev/null)" = ${nonce} ]; then rm -f ${st}/pending; else cat ${st}/rolled-back 2>/dev/null; exit 4; fi`)}`,
            { timeoutMs: 8000 },
          );
          const firedAt = r.code === 4 ? r.stdout.trim().slice(0, 40) : '';
          if (firedAt) {
            throw new StepFailure(
              `the host's dead-man switch restored the previous settings (at ${firedAt}) before a new login could confirm the new ones (${lastErr || 'the confirmation came too late'})`,
              null,
              '',
              'LOCKDOWN_ROLLED_BACK',
            );
          }
          if (r.code !== 0) throw new StepFailure('confirming the sshd change failed (the dead-man switch may have fired)', r.code, r.stderr);
        } finally {
          fresh.close();
        }
        ctx.log('a new SSH login works with the hardened settings; dead-man switch disarmed\n');
        return;
      } catch (e) {
        if (e instanceof StepFailure) throw e;
        lastErr = (e as Error).message;
      }
    }
    ctx.log(`a new SSH login failed (${lastErr}); waiting for the dead-man switch\n`);
    const rolledBack = await awaitRollback(ctx, p.deadManSeconds, `${st}/rolled-back`);
    throw new StepFailure(
      rolledBack
        ? `the new sshd settings locked Airlock out (${lastErr}); the host's dead-man switch restored the previous settings (at ${rolledBack})`
        : `the new sshd settings locked Airlock out (${lastErr}) and Airlock could not get back in after the dead-man switch was due (${p.deadManSeconds} s)`,
      null,
      '',
      'LOCKDOWN_ROLLED_BACK',
    );
  },
  async verify(ctx, p) {
    const eff = await effective(ctx);
    const diff = differences(eff, p);
    const keys = Object.keys(wanted(p));
    return {
      ok: diff.length === 0,
      message: diff.map((d) => `${d.key} is ${d.now ?? 'unset'}, ${d.want} wanted`).join('; ') || undefined,
      facts: { effective: Object.fromEntries(keys.map((k) => [k, eff[k] ?? null])) },
    };
  },
});

import { EnclaveName, GrantId, PrincipalId, PrincipalKind, PrincipalName, type Grant, type HostPolicy, type IssuedCredential, type PolicyPush, type Principal } from '../../../shared/contract/access';
import { HostName, UserName } from '../../../shared/contract/common';
import { clean } from './io';
import { arg, call, command, opt, type AreaTable } from './spec';

/**
 * Model access from the command line (issue 13): principals, grants, enclaves and the signed
 * policy. Four areas of one feature, in one file (their contract is shared/contract/access.ts).
 * A credential is printed once, at creation or rotation, and never again: the console keeps only
 * its SHA-256.
 */

const REASON = opt.string('R', 'why (recorded with the change)', { required: true });

function formatCredentials(creds: IssuedCredential[]): string {
  if (creds.length === 0) return '';
  return (
    creds.map((c) => `Credential for ${c.principal}: ${c.credential}\n`).join('') +
    'Store it now: it is shown this once and cannot be shown again (rotate-credential issues a new one).\n'
  );
}

function formatPrincipal(p: Principal): string {
  const extra = p.kind === 'team' ? ` members ${p.members.join(', ') || '-'}` : p.teams.length ? ` teams ${p.teams.join(', ')}` : '';
  return `${p.id}\t${p.kind}\t${p.disabled ? `disabled ${p.disabledAt}` : 'enabled'}\tcredential ${p.credentialIssuedAt ? `#${p.credentialGeneration} of ${p.credentialIssuedAt}` : '-'}${extra}\n`;
}

function formatHost(h: HostPolicy): string {
  const v = (n: number | null) => (n === null ? '-' : `v${n}`);
  return `  ${h.host}\t${h.enclave}${h.phi ? ' (phi)' : ''}\t${h.state}${h.since ? ` since ${h.since}` : ''}\tdelivered ${v(h.deliveredVersion)}\tenforcing ${v(h.enforcingVersion)}${h.lastError ? `\t${clean(h.lastError, 300)}` : ''}\n`;
}

const formatPush = (p: PolicyPush) => `${clean(p.summary, 500)}${p.changed ? ' (new version)' : ''}\n${p.hosts.map(formatHost).join('')}`;

function formatGrant(g: Grant): string {
  const sel = g.selector === 'latest-approved' ? 'latest-approved' : g.selector.exact;
  const resolved = g.resolved ? ` → ${g.resolved.version} (${g.resolved.classification})` : '';
  const exp = g.expiresAt ? ` expires ${g.expiresAt}${g.expiresInDays !== null && g.expiresInDays >= 0 && g.expiresInDays < 14 ? ` (in ${g.expiresInDays} days)` : ''}` : ' no expiry';
  const rpm = g.requestsPerMinute ? ` ${g.requestsPerMinute}/min` : '';
  return `${g.id}\t${g.principal}\t${g.model} ${sel}${resolved}\t${g.actions.join(',')}\t${g.status}${exp}${rpm}${g.why ? `\t${clean(g.why, 300)}` : ''}\n`;
}

/** Exit 1 when a host did not take the policy (a retry happens at the next push). */
const pushExit = (p: PolicyPush): 0 | 1 => (p.hosts.every((h) => h.state === 'ok') ? 0 : 1);

export const principals: AreaTable = {
  area: 'principals',
  about: 'applications and teams that may pull or invoke models (credentials shown once)',
  commands: [
    command({
      words: 'principals create',
      channel: 'principals:create',
      args: { name: arg.one('NAME', 'the application (or, with --team, the team) name', { schema: PrincipalName }) },
      options: {
        team: opt.flag('create a team of people instead of an application'),
        member: opt.strings('USER', 'a member of the team (repeat; each new member gets a credential)', { schema: UserName }),
        description: opt.string('TEXT', 'what it is for'),
      },
      notes: ['an application is app:NAME; a team team:NAME and its members user:NAME'],
      async run(c) {
        const o = c.opts;
        if (!o.team && o.member.length) c.usage('--member is for a team (--team)');
        const r = await c.call(
          'principals:create',
          o.team ? { kind: 'team', name: c.args.name, members: o.member, ...(o.description ? { description: o.description } : {}) } : { kind: 'application', name: c.args.name, ...(o.description ? { description: o.description } : {}) },
        );
        if (!r.ok) return c.fail(r);
        c.out(`Created ${r.value.principal.id}\n${formatCredentials(r.value.credentials)}`, r.value);
        return 0;
      },
    }),
    call({
      words: 'principals list',
      channel: 'principals:list',
      options: { kind: opt.string('KIND', 'application, team or user', { schema: PrincipalKind }), 'include-disabled': opt.flag('also disabled ones') },
      input: (c) => ({ ...(c.opts.kind ? { kind: c.opts.kind as Principal['kind'] } : {}), ...(c.opts['include-disabled'] ? { includeDisabled: true } : {}) }),
      human: (v) => v.map(formatPrincipal).join('') || 'No principals.\n',
    }),
    call({
      words: 'principals rotate-credential',
      channel: 'principals:rotateCredential',
      args: { id: arg.one('ID', 'app:NAME or user:NAME', { schema: PrincipalId }) },
      failsWhen: 'a host did not take the new policy',
      input: (c) => ({ id: c.args.id }),
      human: (v) => `${formatCredentials([v.credential])}The old credential stops working with policy v${v.policy.version}.\n${formatPush(v.policy)}`,
      exit: (v) => pushExit(v.policy),
    }),
    call({
      words: 'principals disable',
      channel: 'principals:disable',
      args: { id: arg.one('ID', 'app:NAME, team:NAME or user:NAME', { schema: PrincipalId }) },
      options: { reason: REASON },
      failsWhen: 'a host did not take the new policy',
      input: (c) => ({ id: c.args.id, reason: c.opts.reason }),
      human: (v) => `Disabled ${v.principal.id}\n${formatPush(v.policy)}`,
      exit: (v) => pushExit(v.policy),
    }),
  ],
};

export const grants: AreaTable = {
  area: 'grants',
  about: 'who may pull or invoke which model version, until when',
  commands: [
    command({
      words: 'grants add',
      channel: 'grants:add',
      options: {
        principal: opt.string('ID', 'app:NAME, team:NAME or user:NAME', { required: true, schema: PrincipalId }),
        model: opt.string('MODEL', 'the catalog model', { required: true }),
        'model-version': opt.string('V', 'this exact version'),
        'latest-approved': opt.flag('whatever version is the latest approved at each policy'),
        action: opt.strings('ACTION', 'pull or invoke (repeat for both)', { required: true }),
        expires: opt.string('ISO', 'when the grant ends (ISO 8601, e.g. 2027-06-30T00:00:00Z); none if omitted'),
        rpm: opt.int('N', 'at most N requests per minute (invoke)'),
        reason: opt.string('R', 'why; for a phi version the two-person rule files the grant as an approval request (exit 3), a second person approves, then `approvals execute`'),
      },
      notes: ['a phi version (or latest-approved of a model with one) needs a second person (policy models:grantPhi)'],
      failsWhen: 'a host did not take the new policy',
      async run(c) {
        const o = c.opts;
        if (!!o['model-version'] === o['latest-approved']) c.usage('give exactly one of --model-version V and --latest-approved');
        const actions = o.action.map((a) => (a === 'pull' || a === 'invoke' ? a : c.usage(`--action is pull or invoke, not ${JSON.stringify(a)}`)));
        const input = {
          principal: o.principal,
          model: o.model,
          version: o['latest-approved'] ? ('latest-approved' as const) : { exact: o['model-version']! },
          actions,
          expiresAt: o.expires ?? null,
          ...(o.rpm !== undefined ? { requestsPerMinute: o.rpm } : {}),
          ...(o.reason ? { reason: o.reason } : {}),
        };
        let exit = 0;
        const code = await c.guarded('grants:add', input, (v) => {
          c.out(`Granted ${v.grant.id}: ${formatGrant(v.grant)}${formatPush(v.policy)}`, v);
          exit = pushExit(v.policy);
        });
        return code === 0 ? exit : code;
      },
    }),
    call({
      words: 'grants list',
      channel: 'grants:list',
      options: { principal: opt.string('ID', 'only this principal’s', { schema: PrincipalId }), model: opt.string('MODEL', 'only grants on this model'), 'include-revoked': opt.flag('also revoked grants') },
      input: (c) => ({ ...(c.opts.principal ? { principal: c.opts.principal } : {}), ...(c.opts.model ? { model: c.opts.model } : {}), ...(c.opts['include-revoked'] ? { includeRevoked: true } : {}) }),
      human: (v) => v.map(formatGrant).join('') || 'No grants.\n',
    }),
    call({
      words: 'grants revoke',
      channel: 'grants:revoke',
      args: { id: arg.one('ID', 'the grant (gr-…)', { schema: GrantId }) },
      options: { reason: REASON },
      failsWhen: 'a host did not take the new policy',
      input: (c) => ({ id: c.args.id, reason: c.opts.reason }),
      human: (v) => `Revoked ${v.grant.id}\n${formatPush(v.policy)}`,
      exit: (v) => pushExit(v.policy),
    }),
  ],
};

export const enclaves: AreaTable = {
  area: 'enclaves',
  about: 'groups of hosts; a PHI enclave may serve phi model versions',
  commands: [
    call({
      words: 'enclaves create',
      channel: 'enclaves:create',
      args: { name: arg.one('NAME', 'the enclave', { schema: EnclaveName }) },
      options: { phi: opt.flag('hosts in it may serve phi versions'), description: opt.string('TEXT', 'what it is for') },
      input: (c) => ({ name: c.args.name, phi: c.opts.phi, ...(c.opts.description ? { description: c.opts.description } : {}) }),
      human: (v) => `Created enclave ${v.name}${v.phi ? ' (PHI)' : ''}\n`,
    }),
    call({
      words: 'enclaves list',
      channel: 'enclaves:list',
      input: () => ({}),
      human: (v) => v.map((e) => `${e.name}\t${e.phi ? 'phi' : 'non-phi'}\t${e.hosts.join(', ') || '-'}\n`).join(''),
    }),
    call({
      words: 'enclaves assign',
      channel: 'enclaves:assign',
      args: { host: arg.one('HOST', 'the host', { schema: HostName }), enclave: arg.one('ENCLAVE', 'the enclave', { schema: EnclaveName }) },
      failsWhen: 'a host did not take the new policy',
      input: (c) => ({ host: c.args.host, enclave: c.args.enclave }),
      human: (v) => `${v.host} is in ${v.enclave}\n${formatPush(v.policy)}`,
      exit: (v) => pushExit(v.policy),
    }),
  ],
};

export const policy: AreaTable = {
  area: 'policy',
  about: 'the signed gate policy and where it is enforced',
  commands: [
    call({
      words: 'policy status',
      channel: 'policy:status',
      options: { check: opt.flag('read every host now (policy file, signature, the gate’s status) instead of the last record') },
      input: (c) => (c.opts.check ? { check: true } : {}),
      human: (v) => `${clean(v.summary, 500)}${v.version ? `\nissued ${v.issuedAt} by ${v.issuer}; ${v.principals} principals, ${v.grants} grants` : ''}\n${v.hosts.map(formatHost).join('')}`,
    }),
    call({
      words: 'policy push',
      channel: 'policy:push',
      options: { repin: opt.strings('HOST', 'replace the pinned policy signing key on this host (repeat); otherwise a different pinned key is refused') },
      failsWhen: 'a host did not take the policy',
      input: (c) => (c.opts.repin.length ? { repin: c.opts.repin } : {}),
      human: formatPush,
      exit: pushExit,
    }),
  ],
};

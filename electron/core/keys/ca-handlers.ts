import { AirlockError } from '../../../shared/domain/errors';
import type { AreaHandlers, CallContext } from '../dispatch';
import { DEFAULT_RENEWAL_WINDOW_DAYS, certificateRow, type CaOps, type RenewalSchedule } from './ca-ops';
import type { CertRenewal } from '../../../shared/contract/keys';
import type { CertRenewals } from './cert-renewal';
import type { CertStore, StoredCertificate } from './cert-store';

/** The keys channels that are the CA's operations (the rest are handlers.ts's). */
export type CaChannel = 'keys:certificates' | 'keys:issueHostCertificate' | 'keys:revokeCertificate' | 'keys:renewCertificates' | 'keys:crl' | 'keys:certRenewals' | 'keys:certRenewal' | 'keys:resumeCertRenewal';

export interface CaHandlerDeps {
  certs: CertStore;
  /** Null when the core was built without a host inventory: the channels that reach hosts say so. */
  ops: CaOps | null;
  schedule: RenewalSchedule | null;
  /** Journaled renewals (keys/cert-renewal.ts); null without a host inventory, as `ops`. */
  renewals: CertRenewals | null;
  now: () => Date;
}

/**
 * The CA's channels (issue #12): certificates by expiry, host certificates, revocation with CRL
 * publication, renewal, the CRL itself. A call by an administrator or officer arms the renewal
 * schedule with that session's credentials (as getters: they stop working when it ends), so a
 * timer never acts on credentials no one signed in with.
 */
export function caHandlers(d: CaHandlerDeps): Pick<AreaHandlers<'keys'>, CaChannel> {
  const ops = () => {
    if (!d.ops) throw new AirlockError('INTERNAL', 'This core was built without a host inventory: the CA cannot reach hosts.');
    return d.ops;
  };
  const renewals = () => {
    if (!d.renewals) throw new AirlockError('INTERNAL', 'This core was built without a host inventory: the CA cannot reach hosts.');
    return d.renewals;
  };
  // What the audit trail keeps of a renewal: ids, serials, pending hosts; never a key (the console holds none of the hosts').
  const renewalDetail = (r: CertRenewal) => ({
    renewal: r.id,
    status: r.status,
    hosts: r.hosts.map((h) => ({ host: h.host, oldSerial: h.oldSerial, newSerial: h.newSerial, status: h.status })),
    pendingHosts: r.pendingHosts,
  });
  const arm = (ctx: CallContext) => {
    const s = ctx.requireSession();
    if (!d.schedule || !s.roles.some((r) => r === 'admin' || r === 'officer')) return;
    d.schedule.arm({ vaultKey: () => ctx.actor().vaultKey, auth: () => ctx.sshAuth() });
  };
  const cred = (ctx: CallContext) => {
    arm(ctx);
    return { vaultKey: ctx.actor().vaultKey, auth: ctx.sshAuth(), signal: ctx.signal };
  };
  const row = (c: StoredCertificate) => certificateRow(c, d.now(), d.schedule?.status().windowDays);
  return {
    'keys:certificates': (ctx, i) => {
      arm(ctx);
      const list = d.certs.listByExpiry({ ...(i.includeRevoked ? { includeRevoked: true } : {}), ...(i.host !== undefined ? { host: i.host } : {}) });
      const schedule = d.schedule?.status() ?? { intervalMinutes: 0, windowDays: DEFAULT_RENEWAL_WINDOW_DAYS, lastCheckAt: null, lastRunAt: null, due: [], blocked: null, lastError: null };
      return { certificates: list.map(row), crlPending: d.ops?.pendingCrls() ?? [], schedule };
    },
    'keys:issueHostCertificate': async (ctx, i) => {
      const c = await ops().issueHostCertificate(cred(ctx), i.host);
      ctx.auditDetail({ serial: c.serial, sha256: c.sha256, notAfter: c.notAfter });
      return row(c);
    },
    'keys:revokeCertificate': async (ctx, i) => {
      const r = await ops().revokeCertificate(cred(ctx), i.serial, i.reason);
      ctx.auditDetail({ subject: r.certificate.subject, host: r.certificate.host, crlNumber: r.crl.crlNumber, published: r.crl.published, pending: r.crl.pending.map((p) => p.host) });
      return { certificate: row(r.certificate), crl: r.crl };
    },
    'keys:renewCertificates': async (ctx, i) => {
      const r = await renewals().renewDue(cred(ctx), ctx.actor().name, i.windowDays ?? DEFAULT_RENEWAL_WINDOW_DAYS);
      ctx.auditDetail({
        renewals: r.renewals.map((x) => x.id),
        renewed: r.renewed,
        failed: r.failed.map((f) => ({ host: f.host, serial: f.serial })),
        crls: r.crls.map((c) => ({ issuer: c.issuerSerial, crlNumber: c.crlNumber, pending: c.pending.map((p) => p.host) })),
      });
      return r;
    },
    'keys:certRenewals': (ctx, i) => {
      arm(ctx);
      return renewals().list(i.limit ?? 50);
    },
    'keys:certRenewal': (ctx, i) => {
      arm(ctx);
      return renewals().get(i.id);
    },
    'keys:resumeCertRenewal': async (ctx, i) => {
      const r = await renewals().resume(cred(ctx), i.id);
      ctx.auditDetail(renewalDetail(r));
      return r;
    },
    'keys:crl': (_ctx, i) => {
      const issuer = i.issuer ?? d.certs.listByExpiry({ profile: 'issuing-ca' }).at(-1)?.serial;
      if (!issuer) throw new AirlockError('NOT_FOUND', 'There is no issuing CA yet: run the genesis ceremony first.');
      const ca = d.certs.get(issuer);
      if (!ca || (ca.profile !== 'issuing-ca' && ca.profile !== 'root-ca')) throw new AirlockError('NOT_FOUND', `No CA certificate with serial ${issuer} is on record.`);
      const crl = d.certs.latestCrl(issuer);
      return { issuerSerial: issuer, crlNumber: crl?.crlNumber ?? null, pem: crl?.crlPem ?? null };
    },
  };
}

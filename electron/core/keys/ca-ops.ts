import net from 'node:net';
import * as x509 from '@peculiar/x509';
import type { CertRenewal } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import { Remote, q } from '../provision/remote';
import type { SshAuth, SshConnection } from '../ssh/connection';
import { createCrl, issueCertificate, needsRenewal, type RevocationReason } from './ca';
import type { CertStore, StoredCertificate, StoredCrl } from './cert-store';
import { installScript, ISSUE_STAGE, parseMarker } from './cert-renewal-scripts';
import type { ConsoleCa } from './console-ca';

/** Where a host keeps what the CA gives it (docs/keys-ca.md). The key is made there and never leaves. */
export const HOST_TLS = {
  dir: '/etc/airlock/tls',
  key: '/etc/airlock/tls/host.key',
  cert: '/etc/airlock/tls/host.crt',
  chain: '/etc/airlock/tls/chain.pem',
  crl: '/etc/airlock/tls/crl.pem',
} as const;

/** Validity (days) of a host certificate, and the default renewal window before its end. */
export const HOST_CERT_DAYS = 90;
export const DEFAULT_RENEWAL_WINDOW_DAYS = 30;
/** A CRL is good for this long; hosts refuse an expired one (`openssl verify -crl_check`), so the schedule re-signs it at half-life. */
export const CRL_VALIDITY_DAYS = 30;
const DAY_MS = 86_400_000;
/** A CSR of a P-256 key is a few hundred bytes; anything larger is not one `openssl req` printed. */
const MAX_CSR_BYTES = 4096;

/** The slice of the host inventory the CA needs: a host's address and user, and a connection to it. */
export interface CaHosts {
  get(name: string): { name: string; address: string; user: string };
  lease(name: string, auth: SshAuth, signal: AbortSignal): Promise<SshConnection>;
}

/** What a caller brings for an operation that touches hosts: the session's vault key (CA keys) and SSH credentials. */
export interface CaCredentials {
  vaultKey: Buffer;
  auth: SshAuth;
  signal: AbortSignal;
}

/** Where a CRL went: hosts that have it now, hosts still to be sent it (unreachable: retried later). */
export interface CrlPublication {
  issuerSerial: string;
  crlNumber: number;
  published: string[];
  pending: { host: string; message: string }[];
}

export interface RenewalOutcome {
  renewed: { host: string | null; oldSerial: string; newSerial: string }[];
  failed: { host: string | null; serial: string; message: string }[];
  crls: CrlPublication[];
  /** The journaled renewals (keys/cert-renewal.ts) the run started or resumed. */
  renewals: CertRenewal[];
}

const CSR_PEM = /^-----BEGIN CERTIFICATE REQUEST-----\n(?:[A-Za-z0-9+/=]{1,76}\n)+-----END CERTIFICATE REQUEST-----\n?$/;

/**
 * Reads what a host printed as its certificate request, strictly: exactly one PEM CSR and nothing
 * else, small, its self-signature valid (the host holds the private key: proof of possession), and
 * an ECDSA P-256 key. Returns the SPKI DER: the only thing Airlock takes from it (the subject and
 * names are the inventory's, never the host's).
 */
export async function hostPublicKeyFromCsr(text: string): Promise<Buffer> {
  const bad = (why: string) => new AirlockError('PARSE_ERROR', `The host's certificate request ${why}; nothing was issued.`);
  if (text.length > MAX_CSR_BYTES) throw bad('is too large to be one P-256 request');
  if (!CSR_PEM.test(text)) throw bad('is not exactly one PEM "CERTIFICATE REQUEST"');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(text);
  } catch {
    throw bad('could not be decoded');
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw bad('is not for an ECDSA P-256 key');
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw bad('is not signed by its own key');
  return Buffer.from(csr.publicKey.rawData);
}

const isIp = (s: string) => net.isIP(s) !== 0;

/**
 * The internal CA's day-to-day work on hosts (issue #12, docs/keys-ca.md): host TLS certificates
 * whose keys are generated on the host, CRLs published to every host that holds one of the
 * issuer's certificates, revocation and renewal. Signing needs the issuing CA's key, which opens
 * only with the hierarchy unsealed and a session's vault key ({@link ConsoleCa.openCaKey}); the key
 * is zeroed after each use.
 *
 * CRL hosts that could not be reached are kept pending in memory and sent the issuer's newest CRL
 * on the next {@link CaOps.retryPending} (the schedule, or any renewal run); a console restart
 * forgets the list, so the first run after a start sends every host its issuer's newest CRL.
 */
export class CaOps {
  private readonly pending = new Map<string, { issuers: Set<string>; message: string }>();
  /** False until the first retry after this process started: then every holder is sent its CRL. */
  private resynced = false;

  constructor(
    private readonly d: {
      ca: ConsoleCa;
      certs: CertStore;
      hosts: CaHosts;
      random: (n: number) => Buffer;
      now: () => Date;
      timeoutMs?: number;
    },
  ) {}

  /** Hosts whose newest CRL is still to be sent, with the last reason it was not. */
  pendingCrls(): { host: string; issuers: string[]; message: string }[] {
    return [...this.pending.entries()].map(([host, p]) => ({ host, issuers: [...p.issuers].sort(), message: p.message })).sort((a, b) => a.host.localeCompare(b.host));
  }

  /** The issuing CA that signs host certificates: the newest unrevoked one. */
  issuing(): StoredCertificate {
    const c = this.d.certs.listByExpiry({ profile: 'issuing-ca' }).at(-1);
    if (!c) throw new AirlockError('KEY_UNAVAILABLE', 'There is no issuing CA yet: run the genesis ceremony first.');
    return c;
  }

  async onHost<T>(name: string, cred: Pick<CaCredentials, 'auth' | 'signal'>, fn: (r: Remote) => Promise<T>): Promise<T> {
    const host = this.d.hosts.get(name);
    const conn = await this.d.hosts.lease(name, cred.auth, cred.signal);
    try {
      return await fn(new Remote(conn, host.user === 'root', cred.signal, this.d.timeoutMs ?? 15_000));
    } finally {
      conn.close();
    }
  }

  /** Signs a CRL of `issuerSerial` listing everything it revoked, and records it. */
  async signCrl(vaultKey: Buffer, issuerSerial: string): Promise<StoredCrl> {
    const issuer = this.d.certs.get(issuerSerial);
    if (!issuer) throw new AirlockError('NOT_FOUND', `No CA certificate with serial ${issuerSerial} is on record.`);
    const key = this.d.ca.openCaKey(vaultKey, issuerSerial);
    try {
      const now = this.d.now();
      const crlNumber = this.d.certs.nextCrlNumber(issuerSerial);
      const nextUpdate = new Date(now.getTime() + CRL_VALIDITY_DAYS * DAY_MS);
      const crlPem = await createCrl({ certPem: issuer.certPem, privateKeyPkcs8: key }, this.d.certs.revokedBy(issuerSerial), { thisUpdate: now, nextUpdate, crlNumber });
      return this.d.certs.recordCrl({ issuerSerial, crlNumber, crlPem, thisUpdate: now, nextUpdate });
    } finally {
      key.fill(0);
    }
  }

  /** The issuer's newest CRL, signing the first one (or a fresh one at half-life) when needed. */
  async currentCrl(vaultKey: Buffer, issuerSerial: string): Promise<StoredCrl> {
    const latest = this.d.certs.latestCrl(issuerSerial);
    if (latest && !this.crlStale(latest)) return latest;
    return this.signCrl(vaultKey, issuerSerial);
  }

  crlStale(crl: StoredCrl): boolean {
    const start = Date.parse(crl.thisUpdate);
    const end = Date.parse(crl.nextUpdate);
    return this.d.now().getTime() >= start + (end - start) / 2;
  }

  /** The PEM of the issuing CA and the root above it: what a host verifies a peer's certificate with. */
  chainPem(issuing: StoredCertificate): string {
    const root = this.d.certs.get(issuing.issuerSerial);
    if (!root) throw new AirlockError('INTERNAL', `The root CA ${issuing.issuerSerial} of ${issuing.subject} is not on record.`);
    return issuing.certPem + root.certPem;
  }

  /**
   * Issues a host-tls certificate to an enrolled host: the host generates a new P-256 key (0600,
   * beside the current one until installed) and prints a CSR; the issuing CA certifies that public
   * key with the host's inventory name and address as SANs; certificate, chain and CRL are staged
   * on the host, checked there with the host's own openssl (chain verifies, key matches), then
   * renamed into place. Returns the certificate on record.
   */
  async issueHostCertificate(cred: CaCredentials, hostName: string): Promise<StoredCertificate> {
    const host = this.d.hosts.get(hostName);
    const issuing = this.issuing();
    const chain = this.chainPem(issuing);
    const crl = await this.currentCrl(cred.vaultKey, issuing.serial);
    return this.onHost(host.name, cred, async (r) => {
      const csr = await r.must(
        [
          'set -e',
          'umask 077',
          `mkdir -p ${q(HOST_TLS.dir)}`,
          `chmod 0755 ${q(HOST_TLS.dir)}`,
          `rm -f ${q(`${HOST_TLS.dir}/${ISSUE_STAGE.key}`)}`,
          `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${q(`${HOST_TLS.dir}/${ISSUE_STAGE.key}`)} 2>/dev/null`,
          `chmod 0600 ${q(`${HOST_TLS.dir}/${ISSUE_STAGE.key}`)}`,
          `openssl req -new -key ${q(`${HOST_TLS.dir}/${ISSUE_STAGE.key}`)} -subj ${q('/CN=airlock-host')} -outform PEM`,
        ].join('\n'),
        `making a key on ${host.name}`,
        { maxOutputBytes: MAX_CSR_BYTES + 1 },
      );
      const spki = await hostPublicKeyFromCsr(csr.stdout);
      const certPem = await this.signHostCertificate(cred.vaultKey, host.name, spki, issuing);
      // On record before it is installed: a certificate a host may hold is always one the CA can revoke.
      const rec = this.d.certs.record({ certPem, issuerSerial: issuing.serial, host: host.name, keyRef: null });
      await r.writeFile(`${HOST_TLS.dir}/${ISSUE_STAGE.crt}`, certPem, '0644');
      await r.writeFile(`${HOST_TLS.dir}/${ISSUE_STAGE.chain}`, chain, '0644');
      await r.writeFile(`${HOST_TLS.dir}/${ISSUE_STAGE.crl}`, crl.crlPem, '0644');
      // The same pair switch as a renewal's install (cert-renewal-scripts.ts): key and certificate never mismatched.
      parseMarker(await r.sh(installScript(rec.serial, { dir: HOST_TLS.dir, stage: ISSUE_STAGE, removeStaged: true }), { maxOutputBytes: 4096 }), ['installed']);
      return rec;
    });
  }

  /**
   * A host-tls certificate for a public key a host made (from its checked CSR): CN and a DNS SAN of
   * the host's inventory name, its address as an IP (or DNS) SAN, 90 days, signed by `issuing` (by
   * default the newest issuing CA). Not recorded: the caller records it with what it needs beside it.
   */
  async signHostCertificate(vaultKey: Buffer, hostName: string, spki: Buffer, issuing: StoredCertificate = this.issuing()): Promise<string> {
    const host = this.d.hosts.get(hostName);
    const ip = isIp(host.address);
    const dnsNames = [...new Set([host.name.toLowerCase(), ...(ip ? [] : [host.address.toLowerCase()])])];
    const key = this.d.ca.openCaKey(vaultKey, issuing.serial);
    try {
      return (
        await issueCertificate(
          { certPem: issuing.certPem, privateKeyPkcs8: key },
          { profile: 'host-tls', commonName: host.name, dnsNames, ipAddresses: ip ? [host.address] : [], publicKey: spki, validityDays: HOST_CERT_DAYS, now: this.d.now(), random: this.d.random },
        )
      ).certPem;
    } finally {
      key.fill(0);
    }
  }

  /**
   * Revokes a certificate and publishes its issuer's new CRL to every enrolled host that holds one
   * of that issuer's certificates (the revoked host too). Unreachable hosts are marked pending.
   */
  async revokeCertificate(cred: CaCredentials, serial: string, reason: RevocationReason): Promise<{ certificate: StoredCertificate; crl: CrlPublication }> {
    const c = this.d.certs.get(serial);
    if (!c) throw new AirlockError('NOT_FOUND', `No certificate with serial ${serial} is on record.`);
    if (c.profile === 'root-ca') throw new AirlockError('INVALID_INPUT', 'The root CA cannot be revoked by a CRL it signs itself: rotate the CA instead.');
    const certificate = this.d.certs.revoke(serial, reason);
    return { certificate, crl: await this.publishCrl(cred, certificate.issuerSerial) };
  }

  /** Hosts in the inventory that hold a certificate of `issuerSerial` (revoked ones included: they still need the CRL). */
  holders(issuerSerial: string): string[] {
    const names = new Set<string>();
    for (const c of this.d.certs.listByExpiry({ includeRevoked: true, profile: 'host-tls' })) {
      if (c.issuerSerial !== issuerSerial || c.host === null) continue;
      try {
        this.d.hosts.get(c.host);
        names.add(c.host);
      } catch {
        // Removed from the inventory since: nothing to send it to.
      }
    }
    return [...names].sort();
  }

  /** Signs a new CRL of the issuer and sends it to every holder; failures are pending, not errors. */
  async publishCrl(cred: CaCredentials, issuerSerial: string): Promise<CrlPublication> {
    const crl = await this.signCrl(cred.vaultKey, issuerSerial);
    return this.sendCrl(cred, crl, this.holders(issuerSerial));
  }

  async sendCrl(cred: Pick<CaCredentials, 'auth' | 'signal'>, crl: StoredCrl, hosts: string[]): Promise<CrlPublication> {
    const out: CrlPublication = { issuerSerial: crl.issuerSerial, crlNumber: crl.crlNumber, published: [], pending: [] };
    await Promise.all(
      hosts.map(async (h) => {
        try {
          await this.onHost(h, cred, (r) => r.writeFile(HOST_TLS.crl, crl.crlPem, '0644'));
          out.published.push(h);
          const p = this.pending.get(h);
          p?.issuers.delete(crl.issuerSerial);
          if (p && p.issuers.size === 0) this.pending.delete(h);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          out.pending.push({ host: h, message });
          const p = this.pending.get(h) ?? { issuers: new Set<string>(), message };
          p.issuers.add(crl.issuerSerial);
          p.message = message;
          this.pending.set(h, p);
        }
      }),
    );
    out.published.sort();
    out.pending.sort((a, b) => a.host.localeCompare(b.host));
    return out;
  }

  /**
   * Sends each pending host its issuers' newest CRLs (no signing: only SSH credentials are
   * needed). The first run in a process sends every holder its CRL, since pending is not kept
   * across restarts. With a vault key, a CRL at half its life is re-signed first.
   */
  async retryPending(cred: Pick<CaCredentials, 'auth' | 'signal'> & { vaultKey?: Buffer }): Promise<CrlPublication[]> {
    const byIssuer = new Map<string, Set<string>>();
    const want = (issuer: string, host: string) => byIssuer.set(issuer, (byIssuer.get(issuer) ?? new Set()).add(host));
    for (const [host, p] of this.pending) for (const i of p.issuers) want(i, host);
    for (const ca of this.d.certs.listByExpiry({ profile: 'issuing-ca' })) {
      const latest = this.d.certs.latestCrl(ca.serial);
      const resign = cred.vaultKey !== undefined && (!latest || this.crlStale(latest)) && this.holders(ca.serial).length > 0;
      if (!this.resynced || resign) for (const h of this.holders(ca.serial)) want(ca.serial, h);
    }
    this.resynced = true;
    const out: CrlPublication[] = [];
    for (const [issuer, hosts] of byIssuer) {
      let crl = this.d.certs.latestCrl(issuer);
      if (cred.vaultKey !== undefined && (!crl || this.crlStale(crl))) crl = await this.signCrl(cred.vaultKey, issuer);
      if (!crl) continue;
      out.push(await this.sendCrl(cred, crl, [...hosts].sort()));
    }
    return out;
  }

  /** Issuers whose newest CRL is at half its life (or missing) while hosts hold their certificates: to re-sign and send. */
  staleCrls(): string[] {
    return this.d.certs
      .listByExpiry({ profile: 'issuing-ca' })
      .filter((ca) => {
        const latest = this.d.certs.latestCrl(ca.serial);
        return (!latest || this.crlStale(latest)) && this.holders(ca.serial).length > 0;
      })
      .map((ca) => ca.serial);
  }

  /** Whether a run has anything to do: certificates due, CRLs pending or stale. */
  hasWork(windowDays: number): boolean {
    return this.due(windowDays).length > 0 || this.pending.size > 0 || this.staleCrls().length > 0;
  }

  /** Certificates within `windowDays` of their end that this console can renew by itself (host-tls on an enrolled host). */
  due(windowDays: number): StoredCertificate[] {
    return this.d.certs.dueForRenewal(windowDays).filter((c) => c.profile === 'host-tls' && c.host !== null);
  }
}

/** A certificate as the contract lists it: days left (negative once expired) and whether it is in the renewal window. */
export function certificateRow(c: StoredCertificate, now: Date, windowDays = DEFAULT_RENEWAL_WINDOW_DAYS) {
  const end = new Date(c.notAfter);
  return {
    serial: c.serial,
    profile: c.profile,
    subject: c.subject,
    issuerSerial: c.issuerSerial,
    host: c.host,
    sha256: c.sha256,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    daysLeft: Math.floor((end.getTime() - now.getTime()) / DAY_MS),
    renewalDue: c.revokedAt === null && needsRenewal({ notAfter: end }, now, windowDays),
    revokedAt: c.revokedAt,
    revokeReason: c.revokeReason,
    renewal: c.renewalId,
  };
}

/** Why a scheduled renewal did not run, when it did not. */
export type RenewalBlock = 'sealed' | 'no-session' | null;

/** Credentials the schedule may use: getters, so a session that ends stops them working (they throw). */
export interface ArmedCredentials {
  vaultKey(): Buffer;
  auth(): SshAuth;
}

/**
 * Renewal on a timer (docs/keys-ca.md, "Renewal schedule"). The console holds no CA key at rest
 * it can open alone: signing needs the hierarchy unsealed and a signed-in session's vault key. So
 * the schedule acts only when both are there — it is armed by the last administrator or officer
 * session that used the CA channels (their getters stop working when that session ends) — and
 * otherwise records what is due and why it waited, which `keys:certificates` shows.
 */
export class RenewalSchedule {
  private timer: ReturnType<typeof setInterval> | null = null;
  private armed: ArmedCredentials | null = null;
  private running: Promise<void> | null = null;
  private readonly state: { lastCheckAt: string | null; lastRunAt: string | null; lastError: string | null } = { lastCheckAt: null, lastRunAt: null, lastError: null };

  constructor(
    private readonly d: {
      ops: CaOps;
      sealed: () => boolean;
      now: () => Date;
      intervalMs: number;
      windowDays: number;
      /** One renewal run (keys/cert-renewal.ts `renewDue`: unfinished renewals resumed, what is due started, CRLs sent). */
      renew: (cred: CaCredentials, windowDays: number) => Promise<RenewalOutcome>;
      /** Whether a journaled renewal has hosts still pending (work for the schedule even when nothing new is due). */
      unfinished?: () => boolean;
    },
  ) {}

  private hasWork(): boolean {
    return this.d.ops.hasWork(this.d.windowDays) || (this.d.unfinished?.() ?? false);
  }

  /** Starts the timer (unref'd: it never keeps a process alive). Idempotent. */
  start(): void {
    if (this.timer || !(this.d.intervalMs > 0)) return;
    this.timer = setInterval(() => void this.tick(), this.d.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.armed = null;
  }

  arm(c: ArmedCredentials): void {
    this.armed = c;
  }

  /** The console locked or sealed: the schedule forgets the session it was given. */
  disarm(): void {
    this.armed = null;
  }

  /**
   * What the schedule would do now, computed when asked (so it is true between ticks): what is
   * due, and what it waits for — an unseal, or an administrator or officer session — when there
   * is work (certificates due, CRLs pending or at half their life).
   */
  status() {
    let due: string[] = [];
    let blocked: RenewalBlock = null;
    try {
      due = this.d.ops.due(this.d.windowDays).map((c) => c.serial);
      if (this.hasWork()) blocked = this.d.sealed() ? 'sealed' : this.armed ? null : 'no-session';
    } catch (e) {
      this.state.lastError = e instanceof Error ? e.message : String(e);
    }
    return { intervalMinutes: this.d.intervalMs / 60_000, windowDays: this.d.windowDays, lastCheckAt: this.state.lastCheckAt, lastRunAt: this.state.lastRunAt, due, blocked, lastError: this.state.lastError };
  }

  /** One check; concurrent ticks share the one in flight. Never rejects: a failure is recorded in the status. */
  tick(): Promise<void> {
    this.running ??= this.check()
      .catch((e: unknown) => {
        this.state.lastError = e instanceof Error ? e.message : String(e);
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async check(): Promise<void> {
    this.state.lastCheckAt = this.d.now().toISOString();
    if (!this.hasWork()) return;
    // Waiting for an unseal or a session: status() says which, computed when asked.
    if (this.d.sealed() || !this.armed) return;
    let cred: CaCredentials;
    try {
      cred = { vaultKey: this.armed.vaultKey(), auth: this.armed.auth(), signal: AbortSignal.timeout(30 * 60_000) };
    } catch {
      // The session that armed it has ended.
      this.armed = null;
      return;
    }
    const r = await this.d.renew(cred, this.d.windowDays);
    this.state.lastRunAt = this.d.now().toISOString();
    this.state.lastError = r.failed.length ? r.failed.map((f) => `${f.host ?? f.serial}: ${f.message}`).join('; ') : null;
  }
}

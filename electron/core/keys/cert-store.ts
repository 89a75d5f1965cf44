import type { Db } from '../db/db';
import { AirlockError } from '../../../shared/domain/errors';
import { REVOCATION_REASONS, certInfo, needsRenewal, type CertKind, type RevocationReason, type RevokedEntry } from './ca';

/** A certificate as the store keeps it (migration 0008): what the UI lists by expiry. */
export interface StoredCertificate {
  serial: string;
  profile: CertKind;
  subject: string;
  issuerSerial: string;
  host: string | null;
  certPem: string;
  sha256: string;
  keyRef: string | null;
  notBefore: string;
  notAfter: string;
  revokedAt: string | null;
  revokeReason: RevocationReason | null;
  createdAt: string;
  /** Issued for this renewal and not yet promoted (keys/cert-renewal.ts): on record, revocable, not the host's current certificate. */
  renewalId: string | null;
}

export interface StoredCrl {
  issuerSerial: string;
  crlNumber: number;
  crlPem: string;
  thisUpdate: string;
  nextUpdate: string;
}

interface Row {
  serial: string;
  profile: CertKind;
  subject: string;
  issuer_serial: string;
  host: string | null;
  cert_pem: string;
  sha256: string;
  key_ref: string | null;
  not_before: string;
  not_after: string;
  revoked_at: string | null;
  revoke_reason: RevocationReason | null;
  created_at: string;
  renewal_id?: string | null;
}

const fromRow = (r: Row): StoredCertificate => ({
  serial: r.serial,
  profile: r.profile,
  subject: r.subject,
  issuerSerial: r.issuer_serial,
  host: r.host,
  certPem: r.cert_pem,
  sha256: r.sha256,
  keyRef: r.key_ref,
  notBefore: r.not_before,
  notAfter: r.not_after,
  revokedAt: r.revoked_at,
  revokeReason: r.revoke_reason,
  createdAt: r.created_at,
  renewalId: r.renewal_id ?? null,
});

/**
 * The internal CA's record of what it issued and revoked, and the CRLs it published. The facts it
 * lists (serial, names, profile, validity, fingerprint) are read from the certificate itself at
 * `record`, never taken from the caller, so the list cannot disagree with what hosts hold.
 * Stateless over the database; the composition root owns one.
 */
export class CertStore {
  constructor(private readonly deps: { db: Db; now: () => Date }) {}

  /**
   * Records an issued certificate. Its issuer must be on record and be the CA whose name it bears
   * (a root names itself); a certificate this CA's profiles do not describe is refused.
   */
  record(input: { certPem: string; issuerSerial?: string; host?: string | null; keyRef?: string | null; renewalId?: string | null }): StoredCertificate {
    const info = certInfo(input.certPem);
    if (info.kind === null) throw new AirlockError('INVALID_INPUT', `${info.subject} has no profile this CA issues (its key usages match none); it was not recorded.`);
    const issuerSerial = info.kind === 'root-ca' ? info.serial : input.issuerSerial;
    if (issuerSerial === undefined) throw new AirlockError('INVALID_INPUT', `Record ${info.subject} with the serial of the CA that issued it.`);
    if (info.kind === 'root-ca' && input.issuerSerial !== undefined && input.issuerSerial !== info.serial) {
      throw new AirlockError('INVALID_INPUT', `${info.subject} is a root CA: it is its own issuer.`);
    }
    if (info.kind !== 'root-ca') {
      const issuer = this.get(issuerSerial);
      if (!issuer) throw new AirlockError('NOT_FOUND', `The issuer ${issuerSerial} of ${info.subject} is not on record; record the CA first.`);
      if (issuer.profile !== 'root-ca' && issuer.profile !== 'issuing-ca') throw new AirlockError('INVALID_INPUT', `${issuer.subject} is not a CA.`);
      if (issuer.subject !== info.issuer) throw new AirlockError('INVALID_INPUT', `${info.subject} was issued by ${info.issuer}, not by ${issuer.subject} (${issuerSerial}).`);
    }
    const row: Row = {
      serial: info.serial,
      profile: info.kind,
      subject: info.subject,
      issuer_serial: issuerSerial,
      host: input.host ?? null,
      cert_pem: input.certPem,
      sha256: info.sha256,
      key_ref: input.keyRef ?? null,
      not_before: info.notBefore.toISOString(),
      not_after: info.notAfter.toISOString(),
      revoked_at: null,
      revoke_reason: null,
      created_at: this.deps.now().toISOString(),
      renewal_id: input.renewalId ?? null,
    };
    try {
      this.deps.db
        .prepare(
          `INSERT INTO certificates (serial, profile, subject, issuer_serial, host, cert_pem, sha256, key_ref, not_before, not_after, revoked_at, revoke_reason, created_at, renewal_id)
           VALUES (@serial, @profile, @subject, @issuer_serial, @host, @cert_pem, @sha256, @key_ref, @not_before, @not_after, @revoked_at, @revoke_reason, @created_at, @renewal_id)`,
        )
        .run(row);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new AirlockError('CONFLICT', `A certificate with serial ${info.serial} (or the same fingerprint) is already on record.`);
      }
      throw e;
    }
    return fromRow(row);
  }

  get(serial: string): StoredCertificate | null {
    const r = this.deps.db.prepare('SELECT * FROM certificates WHERE serial = ?').get(serial.toLowerCase()) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  /** Soonest expiry first (the UI's list); revoked ones only when asked, as history. */
  listByExpiry(opts: { includeRevoked?: boolean; profile?: CertKind; host?: string } = {}): StoredCertificate[] {
    const where: string[] = [];
    const args: string[] = [];
    if (!opts.includeRevoked) where.push('revoked_at IS NULL');
    if (opts.profile !== undefined) {
      where.push('profile = ?');
      args.push(opts.profile);
    }
    if (opts.host !== undefined) {
      where.push('host = ?');
      args.push(opts.host);
    }
    const sql = `SELECT * FROM certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY not_after, serial`;
    return (this.deps.db.prepare(sql).all(...args) as Row[]).map(fromRow);
  }

  /**
   * Certificates to renew: not revoked, within `windowDays` of their end (or past it), and not
   * already followed by a newer certificate of the same profile, subject and host (its successor).
   * A certificate issued for a renewal not yet promoted is neither due nor a successor: until the
   * renewal promotes it, the one it replaces is the host's current certificate.
   */
  dueForRenewal(windowDays: number): StoredCertificate[] {
    const now = this.deps.now();
    const live = this.listByExpiry().filter((c) => c.renewalId === null);
    return live.filter(
      (c) =>
        needsRenewal({ notAfter: new Date(c.notAfter) }, now, windowDays) &&
        !live.some((n) => n !== c && n.profile === c.profile && n.subject === c.subject && n.host === c.host && n.notAfter > c.notAfter),
    );
  }

  /** Marks a certificate revoked; the next CRL of its issuer lists it. Revoking twice is a CONFLICT (the first reason stands). */
  revoke(serial: string, reason: RevocationReason): StoredCertificate {
    if (!REVOCATION_REASONS.includes(reason)) throw new AirlockError('INVALID_INPUT', `Unknown revocation reason ${JSON.stringify(reason)}; one of ${REVOCATION_REASONS.join(', ')}.`);
    return this.deps.db.transaction(() => {
      const c = this.get(serial);
      if (!c) throw new AirlockError('NOT_FOUND', `No certificate with serial ${serial} is on record.`);
      if (c.revokedAt !== null) throw new AirlockError('CONFLICT', `${c.subject} (${c.serial}) was already revoked at ${c.revokedAt} (${c.revokeReason}).`);
      const revokedAt = this.deps.now().toISOString();
      this.deps.db.prepare('UPDATE certificates SET revoked_at = ?, revoke_reason = ? WHERE serial = ?').run(revokedAt, reason, c.serial);
      return { ...c, revokedAt, revokeReason: reason };
    })();
  }

  /**
   * A host's current certificate: the newest live host-tls certificate of that host that is not
   * waiting for its renewal to promote it. Null when it has none.
   */
  currentForHost(host: string): StoredCertificate | null {
    return this.listByExpiry({ profile: 'host-tls', host }).filter((c) => c.renewalId === null).at(-1) ?? null;
  }

  /**
   * A renewal's promotion, in one transaction: `next` becomes current (its renewal mark cleared)
   * and `old` is revoked as superseded (unless it already is revoked). Done already: nothing changes.
   */
  promote(nextSerial: string, oldSerial: string): { next: StoredCertificate; old: StoredCertificate } {
    return this.deps.db.transaction(() => {
      const next = this.get(nextSerial);
      const old = this.get(oldSerial);
      if (!next || !old) throw new AirlockError('NOT_FOUND', `Certificate ${next ? oldSerial : nextSerial} is not on record.`);
      if (next.revokedAt !== null) throw new AirlockError('CONFLICT', `${next.subject} (${next.serial}) was revoked (${next.revokeReason}) before it could become current.`);
      if (next.renewalId !== null) this.deps.db.prepare('UPDATE certificates SET renewal_id = NULL WHERE serial = ?').run(next.serial);
      const retired = old.revokedAt === null ? this.revoke(old.serial, 'superseded') : old;
      return { next: { ...next, renewalId: null }, old: retired };
    })();
  }

  /** What `createCrl` lists for an issuer: every certificate it issued that is revoked (expired ones too: RFC 5280 allows it, and it is simplest). */
  revokedBy(issuerSerial: string): RevokedEntry[] {
    const rows = this.deps.db
      .prepare('SELECT serial, revoked_at, revoke_reason FROM certificates WHERE issuer_serial = ? AND serial <> issuer_serial AND revoked_at IS NOT NULL ORDER BY revoked_at, serial')
      .all(issuerSerial.toLowerCase()) as Array<{ serial: string; revoked_at: string; revoke_reason: RevocationReason }>;
    return rows.map((r) => ({ serial: r.serial, revokedAt: new Date(r.revoked_at), reason: r.revoke_reason }));
  }

  /** The number the issuer's next CRL carries: one more than the last published (CRL numbers only grow, RFC 5280 §5.2.3). */
  nextCrlNumber(issuerSerial: string): number {
    const r = this.deps.db.prepare('SELECT MAX(crl_number) AS n FROM ca_crls WHERE issuer_serial = ?').get(issuerSerial.toLowerCase()) as { n: number | null };
    return r.n === null ? 1 : r.n + 1;
  }

  /** Records a published CRL; its number must be above every earlier one of the same issuer. */
  recordCrl(crl: { issuerSerial: string; crlNumber: number; crlPem: string; thisUpdate: Date; nextUpdate: Date }): StoredCrl {
    const issuerSerial = crl.issuerSerial.toLowerCase();
    return this.deps.db.transaction(() => {
      const issuer = this.get(issuerSerial);
      if (!issuer) throw new AirlockError('NOT_FOUND', `The CRL's issuer ${issuerSerial} is not on record.`);
      const next = this.nextCrlNumber(issuerSerial);
      if (!Number.isSafeInteger(crl.crlNumber) || crl.crlNumber < next) {
        throw new AirlockError('CONFLICT', `CRL number ${crl.crlNumber} of ${issuer.subject} is not above the last published; use ${next}.`);
      }
      const row = { issuerSerial, crlNumber: crl.crlNumber, crlPem: crl.crlPem, thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString() };
      this.deps.db
        .prepare('INSERT INTO ca_crls (issuer_serial, crl_number, crl_pem, this_update, next_update) VALUES (@issuerSerial, @crlNumber, @crlPem, @thisUpdate, @nextUpdate)')
        .run(row);
      return row;
    })();
  }

  /** The issuer's newest CRL (highest number), what hosts are sent; null before the first. */
  latestCrl(issuerSerial: string): StoredCrl | null {
    const r = this.deps.db
      .prepare('SELECT issuer_serial, crl_number, crl_pem, this_update, next_update FROM ca_crls WHERE issuer_serial = ? ORDER BY crl_number DESC LIMIT 1')
      .get(issuerSerial.toLowerCase()) as { issuer_serial: string; crl_number: number; crl_pem: string; this_update: string; next_update: string } | undefined;
    return r ? { issuerSerial: r.issuer_serial, crlNumber: r.crl_number, crlPem: r.crl_pem, thisUpdate: r.this_update, nextUpdate: r.next_update } : null;
  }
}

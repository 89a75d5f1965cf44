import { useEffect, useRef, useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import type { CertificateRow } from '../../../shared/contract/keys';
import { RevocationReason } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { DASH } from '../../components/format';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { useLoaded } from '../../components/useLoaded';
import { useApp } from '../../context';
import { CertRenewals } from './CertRenewals';
import { byExpiry, CERT_STATE_LABELS, certState, daysLeftText, mayRevoke, PROFILE_LABELS, type CertState } from './history';

type Listing = Out<'keys:certificates'>;
type Renewal = Out<'keys:renewCertificates'>;
type Reason = CertificateRow['revokeReason'] & string;

const TONE: Record<CertState, string> = { revoked: 'badge-error', expired: 'badge-error', expiring: 'badge-unconfirmed', valid: 'badge-reachable' };

/** The reasons as an officer says them (RFC 5280 names in the audit trail and the CRL). */
const REASON_LABELS: Record<Reason, string> = {
  unspecified: 'No reason given',
  keyCompromise: 'The key was compromised',
  cACompromise: 'The CA key was compromised',
  affiliationChanged: 'The host changed owner or purpose',
  superseded: 'Replaced by a new certificate',
  cessationOfOperation: 'The host is taken out of service',
  certificateHold: 'On hold',
  privilegeWithdrawn: 'Its privileges were withdrawn',
};

/**
 * The internal CA's certificates by expiry (keys:certificates): soonest first, days left, revoked,
 * expired or due for renewal inside the schedule's window, and the host each one is installed on.
 * Revocation (with a reason, after a confirmation) publishes the issuer's new CRL to the hosts;
 * "Renew due certificates now" runs what the renewal schedule would run (a journaled renewal, whose
 * per-host steps show live below the list, and which can be resumed on hosts left pending). The
 * CRLs still pending for unreachable hosts and the schedule's last run are shown under the list.
 */
export function CertificatesPanel({ active, reload = 0 }: { active: boolean; /** Bumped by the page when a ceremony changed the hierarchy (genesis creates the CA). */ reload?: number }) {
  const { client, can } = useApp();
  const [showRevoked, setShowRevoked] = useState(false);
  const list = useLoaded<Listing>(active, () => client.keys.certificates({ includeRevoked: showRevoked }));
  const [revoking, setRevoking] = useState<CertificateRow | null>(null);
  const [renewing, setRenewing] = useState(false);
  const [renewal, setRenewal] = useState<Renewal | null>(null);
  const [renewError, setRenewError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);

  // The listing is read again with the new choice (the loader above sees it once rendered).
  const { refresh } = list;
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    void refresh();
  }, [showRevoked, reload, refresh]);

  const rows = byExpiry(list.data?.certificates ?? []);
  const mayRevokeAny = can('keys:revokeCertificate');
  const due = rows.filter((r) => certState(r) === 'expiring').length;

  async function renewNow() {
    setRenewing(true);
    setRenewError(null);
    setRenewal(null);
    setNote(null);
    const r = await client.keys.renewCertificates({});
    setRenewing(false);
    if (!r.ok) return setRenewError(r.error);
    setRenewal(r.value);
    void list.refresh();
  }

  return (
    <div className="card keys-card" data-testid="keys-certs">
      <div className="panel-head">
        <h2>Certificates by expiry</h2>
        <div className="form-actions">
          <label className="check">
            <input
              type="checkbox"
              checked={showRevoked}
              onChange={(e) => setShowRevoked(e.target.checked)}
              data-testid="keys-certs-show-revoked"
            />{' '}
            Show revoked certificates
          </label>
          <button type="button" onClick={() => void list.refresh()} data-testid="keys-certs-refresh">
            Refresh
          </button>
          {can('keys:renewCertificates') ? (
            <button type="button" onClick={() => void renewNow()} disabled={renewing} data-testid="keys-certs-renew">
              {renewing ? 'Renewing…' : 'Renew due certificates now'}
            </button>
          ) : null}
        </div>
      </div>
      <ErrorLine error={list.error} testId="keys-certs-error" />
      {list.data ? (
        <p className="hint" data-testid="keys-certs-schedule">
          Host certificates are renewed {list.data.schedule.windowDays} days before they expire, checked every {list.data.schedule.intervalMinutes} minutes
          {list.data.schedule.blocked === 'sealed' ? ' — waiting: the hierarchy is sealed' : list.data.schedule.blocked === 'no-session' ? ' — waiting: nobody who may renew is signed in' : ''}. Last run:{' '}
          <Time iso={list.data.schedule.lastRunAt} />.
          {due ? <span className="strong"> {due} due now.</span> : null}
          {list.data.schedule.lastError ? <span className="warn-line"> Last error: {safeLine(list.data.schedule.lastError)}</span> : null}
        </p>
      ) : null}
      <div className="table-wrap">
        <table className="grid grid-compact" data-testid="keys-certs-table">
          <thead>
            <tr>
              <th>Expires</th>
              <th>Days left</th>
              <th>Status</th>
              <th>Certificate</th>
              <th>Host</th>
              <th>Serial</th>
              <th className="col-actions">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data && rows.length === 0 ? (
              <tr>
                <td colSpan={7} className="empty">
                  No certificate yet: the genesis ceremony creates the CA; host certificates are issued from the Keys CLI (keys issue-host-cert HOST).
                </td>
              </tr>
            ) : null}
            {rows.map((c) => {
              const state = certState(c);
              return (
                <tr key={c.serial} data-testid={`keys-cert-${c.serial}`} data-state={state} data-profile={c.profile} data-days={c.daysLeft} data-not-after={c.notAfter}>
                  <td className="nowrap">
                    <Time iso={c.notAfter} />
                  </td>
                  <td className="nowrap">{daysLeftText(c.daysLeft)}</td>
                  <td>
                    <span className={`badge ${TONE[state]}`}>{CERT_STATE_LABELS[state]}</span>
                    {c.renewal && !c.revokedAt ? (
                      <span className="muted" data-testid={`keys-cert-renewal-${c.serial}`}>
                        {' '}
                        issued for renewal <span className="mono">{c.renewal}</span>, not yet current
                      </span>
                    ) : null}
                    {c.revokedAt ? (
                      <span className="muted">
                        {' '}
                        {REASON_LABELS[c.revokeReason ?? 'unspecified']}, <Time iso={c.revokedAt} />
                      </span>
                    ) : null}
                  </td>
                  <td>
                    <span className="strong">{PROFILE_LABELS[c.profile]}</span> <span className="muted">{safeLine(c.subject)}</span>
                  </td>
                  <td>{c.host ? safeLine(c.host) : DASH}</td>
                  <td className="mono">{c.serial}</td>
                  <td className="col-actions">
                    {mayRevokeAny && mayRevoke(c) ? (
                      <button type="button" className="small danger-outline" onClick={() => setRevoking(c)} data-testid={`keys-cert-revoke-${c.serial}`}>
                        Revoke…
                      </button>
                    ) : (
                      <span className="muted">{DASH}</span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {list.data?.crlPending.length ? (
        <div className="panel panel-warn" data-testid="keys-certs-crl-pending">
          <p className="strong">The newest revocation list has not reached every host yet (it is sent again when they are back):</p>
          <ul>
            {list.data.crlPending.map((p) => (
              <li key={p.host}>
                {safeLine(p.host)}: {safeLine(p.message)}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <ErrorLine error={renewError} testId="keys-certs-renew-error" />
      {renewal ? <RenewalResult r={renewal} /> : null}
      <CertRenewals active={active} busy={renewing} reload={reload + (renewal ? 1 : 0)} onChanged={() => void list.refresh()} />
      {note ? (
        <p className="info-line" role="status" data-testid="keys-certs-note">
          {note}
        </p>
      ) : null}
      {revoking ? (
        <RevokeDialog
          cert={revoking}
          onClose={() => setRevoking(null)}
          onRevoked={(r) => {
            setRevoking(null);
            setNote(
              `Certificate ${r.certificate.serial} is revoked. CRL ${r.crl.crlNumber} was sent to ${r.crl.published.length} host${r.crl.published.length === 1 ? '' : 's'}${
                r.crl.pending.length ? `; ${r.crl.pending.length} host${r.crl.pending.length === 1 ? ' is' : 's are'} pending (unreachable)` : ''
              }.`,
            );
            void list.refresh();
          }}
        />
      ) : null}
    </div>
  );
}

function RenewalResult({ r }: { r: Renewal }) {
  return (
    <div className={r.failed.length ? 'panel panel-bad' : 'panel panel-ok'} role="status" data-testid="keys-certs-renewal" data-renewed={r.renewed.length} data-failed={r.failed.length}>
      <p className="strong">
        {r.renewed.length === 0 && r.failed.length === 0 ? 'No certificate was due for renewal.' : `${r.renewed.length} renewed, ${r.failed.length} pending.`}
      </p>
      {r.renewed.length || r.failed.length ? (
        <ul>
          {r.renewed.map((x) => (
            <li key={x.oldSerial}>
              {safeLine(x.host ?? DASH)}: <span className="mono">{x.oldSerial}</span> replaced by <span className="mono">{x.newSerial}</span> (the old one is revoked as superseded)
            </li>
          ))}
          {r.failed.map((x) => (
            <li key={x.serial}>
              {safeLine(x.host ?? DASH)}: <span className="mono">{x.serial}</span> kept for now (pending) — {safeLine(x.message)}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** Revoking cannot be undone: the reason is chosen, the certificate named, and the officer confirms. */
function RevokeDialog({ cert, onClose, onRevoked }: { cert: CertificateRow; onClose(): void; onRevoked(r: Out<'keys:revokeCertificate'>): void }) {
  const { client } = useApp();
  const [reason, setReason] = useState<Reason | ''>('');
  const [confirmed, setConfirmed] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function revoke() {
    if (!reason || !confirmed || busy) return;
    setBusy(true);
    setError(null);
    const r = await client.keys.revokeCertificate({ serial: cert.serial, reason });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onRevoked(r.value);
  }

  return (
    <Modal
      title={`Revoke the ${PROFILE_LABELS[cert.profile]} certificate`}
      onClose={onClose}
      busy={busy}
      testId="keys-revoke-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} disabled={busy} data-testid="keys-revoke-cancel">
            Keep the certificate
          </button>
          <button type="button" className="danger" onClick={() => void revoke()} disabled={!reason || !confirmed || busy} data-testid="keys-revoke-confirm">
            {busy ? 'Revoking…' : 'Revoke it now'}
          </button>
        </>
      }
    >
      <dl className="kv">
        <dt>Subject</dt>
        <dd>{safeLine(cert.subject)}</dd>
        <dt>Host</dt>
        <dd>{cert.host ? safeLine(cert.host) : DASH}</dd>
        <dt>Serial</dt>
        <dd className="mono">{cert.serial}</dd>
        <dt>Expires</dt>
        <dd>
          <Time iso={cert.notAfter} /> ({daysLeftText(cert.daysLeft)})
        </dd>
      </dl>
      <p>
        A revocation cannot be undone. The issuer&apos;s new revocation list is sent to every host holding one of its certificates; a host that is unreachable gets
        it when it is back.
        {cert.host ? ' The host needs a new certificate afterwards (keys issue-host-cert).' : ''}
      </p>
      <label className="field">
        <span>Reason</span>
        <select value={reason} onChange={(e) => setReason(e.target.value as Reason | '')} data-testid="keys-revoke-reason" data-autofocus>
          <option value="">Choose the reason…</option>
          {RevocationReason.options.map((r) => (
            <option key={r} value={r}>
              {REASON_LABELS[r]}
            </option>
          ))}
        </select>
      </label>
      <label className="check">
        <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} data-testid="keys-revoke-confirmed" /> I checked the serial:
        revoke <span className="mono">{cert.serial}</span>
      </label>
      <ErrorLine error={error} testId="keys-revoke-error" />
    </Modal>
  );
}

import { useState, type FormEvent } from 'react';
import type { Ceremony, CeremonyKind, KeyDomain } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { useApp } from '../../context';
import { issuing, KIND_LABELS, parseNames } from './model';

export interface BeginRequest {
  kind: CeremonyKind;
  domain?: KeyDomain;
}

const WHAT: Record<CeremonyKind, string> = {
  genesis: 'Creates the root key, splits it among the officers below, creates every domain’s KEK and the internal CA. It happens once.',
  unseal: 'Officers give their shares one by one until the threshold is reached; the hierarchy then opens (the root key is held in memory only).',
  'verify-shares': 'Officers give their shares; each is checked to be this hierarchy’s, current and readable, and the set is tried against the root, which stays sealed.',
  'rotate-kek': 'Creates a new version of the domain’s KEK and rewraps every data key of the domain to it.',
  reshare: 'Splits the same root key among the officers below (a new m of n); every earlier share stops working. Needs a second person’s approval.',
  'rotate-root': 'Creates a new root key, rewraps every KEK under it and splits it among the officers below; every earlier share stops working. Needs a second person’s approval.',
};

/**
 * Opens a ceremony: who takes part (officers and a threshold for the kinds that make shares,
 * witnesses for all) and, for a KEK rotation, the domain. The administrator is the signed-in
 * account. Reshare and root rotation go through the two-person rule: the console files the
 * request (the approval prompt), and the ceremony opens when it is executed from Approvals.
 */
export function BeginDialog({ request, onClose, onBegun, onApprovals }: { request: BeginRequest; onClose(): void; onBegun(c: Ceremony): void; onApprovals(): void }) {
  const { client, user } = useApp();
  const { kind, domain } = request;
  const makesShares = issuing(kind);
  const [officers, setOfficers] = useState('');
  const [witnesses, setWitnesses] = useState('');
  const [threshold, setThreshold] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  const officerList = parseNames(officers);
  const witnessList = parseNames(witnesses);
  const m = Number.parseInt(threshold, 10);
  const ready = makesShares ? officerList.length >= 2 && witnessList.length >= 1 && Number.isInteger(m) && m >= 2 : true;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy || !ready) return;
    setBusy(true);
    setError(null);
    const r =
      kind === 'reshare'
        ? await client.keys.beginReshare({ officers: officerList, witnesses: witnessList, threshold: m })
        : kind === 'rotate-root'
          ? await client.keys.beginRotateRoot({ officers: officerList, witnesses: witnessList, threshold: m })
          : await client.keys.begin({
              kind,
              witnesses: witnessList,
              ...(makesShares ? { officers: officerList, threshold: m } : {}),
              ...(domain ? { domain } : {}),
            });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onBegun(r.value);
  }

  const title = `${KIND_LABELS[kind]}${domain ? ` (${domain})` : ''}: open the ceremony`;
  return (
    <Modal
      title={title}
      onClose={onClose}
      busy={busy}
      testId="keys-begin-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} disabled={busy} data-testid="keys-begin-cancel">
            Close
          </button>
          <button type="submit" form="keys-begin-form" className="primary" disabled={!ready || busy} data-testid="keys-begin-submit">
            {busy ? 'Opening…' : 'Open the ceremony'}
          </button>
        </>
      }
    >
      <form id="keys-begin-form" onSubmit={(e) => void submit(e)}>
        <p>{WHAT[kind]}</p>
        <p className="hint">
          You (<span className="strong">{user.name}</span>) are the ceremony administrator. Participants are named as people say their names; each acknowledges
          their own steps on this screen.
        </p>
        {makesShares ? (
          <>
            <label className="field">
              <span>Officers, one per line (each receives one share)</span>
              <textarea rows={5} value={officers} onChange={(e) => setOfficers(e.target.value)} spellCheck={false} data-autofocus data-testid="keys-begin-officers" />
            </label>
            <label className="field field-narrow">
              <span>Threshold (officers needed to unseal)</span>
              <input type="number" min={2} max={16} value={threshold} onChange={(e) => setThreshold(e.target.value)} data-testid="keys-begin-threshold" />
            </label>
            {officerList.length >= 2 && Number.isInteger(m) ? (
              <p className="info-line" data-testid="keys-begin-quorum">
                {m} of {officerList.length}: any {m} of these officers together can open the root key; {m - 1} cannot.
              </p>
            ) : null}
          </>
        ) : null}
        <label className="field">
          <span>Witnesses, one per line{makesShares ? ' (at least one)' : ' (optional; the first one closes the ceremony)'}</span>
          <textarea rows={2} value={witnesses} onChange={(e) => setWitnesses(e.target.value)} spellCheck={false} data-testid="keys-begin-witnesses" {...(makesShares ? {} : { 'data-autofocus': true })} />
        </label>
        <ErrorLine error={error} testId="keys-begin-error" />
        {error?.code === 'APPROVAL_REQUIRED' ? (
          <p className="hint" data-testid="keys-begin-approval">
            Once another person approved it, execute the request from{' '}
            <button type="button" className="link-button" onClick={onApprovals} data-testid="keys-begin-go-approvals">
              Approvals
            </button>
            : the ceremony then opens on this page, with whoever executed it as its administrator.
          </p>
        ) : null}
      </form>
    </Modal>
  );
}

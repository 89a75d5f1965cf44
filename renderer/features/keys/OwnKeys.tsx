import { useState } from 'react';
import type { KeyStatus, OwnKeyRotation, RotatableOwnKey } from '../../../shared/contract/keys';
import { RotatableOwnKeys } from '../../../shared/contract/keys';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { DASH } from '../../components/format';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { useApp } from '../../context';

type OwnKey = KeyStatus['ownKeys'][number];

const PURPOSE: Record<OwnKey['purpose'], string> = {
  'ssh.identity': 'SSH identity (logs in to every host)',
  'audit.signing': 'Audit checkpoint signing',
  'audit.hmac': 'Audit redaction HMAC',
  'attest.signing': 'Attestation signing',
  'policy.signing': 'Gate policy signing',
};

/** What rotating each key means, said before the officer confirms (docs/keys.md "Rotating Airlock's own keys"). */
const CONSEQUENCE: Record<RotatableOwnKey, string> = {
  'audit.signing':
    'A new signing key becomes current. The handover is recorded in the audit trail and signed by the current key, so a verifier that trusts today\u2019s fingerprint follows it to the new one; checkpoints signed so far keep verifying with the retired key\u2019s public part. The retired key\u2019s private part is destroyed.',
  'audit.hmac':
    'A new HMAC key tags secret parameters from the handover event on. The old key is destroyed: values recorded before can no longer be compared with values recorded after, and nobody can test guesses against the old tags any more.',
  'attest.signing':
    'A new attestation key signs the attestations made from now on. Attestations signed so far still verify with the retired version\u2019s public key, which stays on record; its private part is destroyed.',
};

const rotatable = (p: OwnKey['purpose']): p is RotatableOwnKey => (RotatableOwnKeys as readonly string[]).includes(p);

/**
 * Airlock's own keys as entries of the `console` domain (keys:status .ownKeys): every version of
 * each key, the current one first, with algorithm, fingerprint, the console KEK version sealing
 * it, and when it was made and retired. Shown before any genesis too — they exist from first-run
 * setup — and never more than fingerprints. An officer or administrator rotates the audit and
 * attestation keys here (keys:rotateOwnKey, with step-up); the SSH identity has its fleet rotation.
 */
export function OwnKeys({ keys, onRotated }: { keys: KeyStatus['ownKeys']; onRotated?: () => void }) {
  const { client, can } = useApp();
  const [confirm, setConfirm] = useState<RotatableOwnKey | null>(null);
  const [busy, setBusy] = useState<RotatableOwnKey | null>(null);
  const [done, setDone] = useState<OwnKeyRotation | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  if (keys.length === 0) return null;
  const rows = [...keys].sort((a, b) => a.purpose.localeCompare(b.purpose) || b.version - a.version);
  const mayRotate = can('keys:rotateOwnKey');

  async function rotate(purpose: RotatableOwnKey) {
    setConfirm(null);
    setBusy(purpose);
    setError(null);
    setDone(null);
    const r = await client.keys.rotateOwnKey({ purpose });
    setBusy(null);
    if (!r.ok) return setError(r.error);
    setDone(r.value);
    onRotated?.();
  }

  return (
    <div className="keys-own" data-testid="keys-own">
      <h3>Airlock&apos;s own keys (console domain)</h3>
      <ErrorLine error={error} testId="keys-own-error" />
      {done ? (
        <p className="panel panel-ok" data-testid="keys-own-rotated">
          {PURPOSE[done.purpose]} rotated: version {done.oldVersion} → {done.newVersion}
          {done.newFingerprint ? (
            <>
              {' '}
              (<span className="mono">{safeLine(done.newFingerprint)}</span>)
            </>
          ) : null}
          ; the handover is audit event {done.handoverSeq}
          {done.hmacFromSeq ? `, and events from ${done.hmacFromSeq} on carry the new HMAC` : ''}.
        </p>
      ) : null}
      <table className="table">
        <thead>
          <tr>
            <th>Key</th>
            <th>Version</th>
            <th>Algorithm</th>
            <th>Fingerprint</th>
            <th>Console KEK</th>
            <th>Created</th>
            <th>State</th>
            {mayRotate ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {rows.map((k) => {
            const current = !k.stagedFor && !k.retiredAt;
            return (
              <tr
                key={`${k.purpose}-${k.version}`}
                className={current ? undefined : 'muted'}
                data-testid={current ? `keys-own-${k.purpose}` : `keys-own-${k.purpose}-v${k.version}`}
                data-version={k.version}
              >
                <td>{PURPOSE[k.purpose]}</td>
                <td>v{k.version}</td>
                <td>{k.algorithm}</td>
                <td className="mono">{k.fingerprint ? safeLine(k.fingerprint) : DASH}</td>
                <td>v{k.kekVersion}</td>
                <td>
                  <Time iso={k.createdAt} />
                </td>
                <td>
                  {k.stagedFor ? (
                    `staged (rotation ${safeLine(k.stagedFor)})`
                  ) : k.retiredAt ? (
                    <>
                      retired <Time iso={k.retiredAt} />
                    </>
                  ) : (
                    'current'
                  )}
                </td>
                {mayRotate ? (
                  <td>
                    {current && rotatable(k.purpose) ? (
                      <button type="button" onClick={() => setConfirm(k.purpose as RotatableOwnKey)} disabled={busy !== null} data-testid={`keys-own-rotate-${k.purpose}`}>
                        {busy === k.purpose ? 'Rotating…' : 'Rotate…'}
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
      {confirm ? (
        <Modal
          title={`Rotate: ${PURPOSE[confirm]}`}
          onClose={() => setConfirm(null)}
          testId="keys-own-rotate-dialog"
          footer={
            <>
              <button type="button" onClick={() => setConfirm(null)} data-testid="keys-own-rotate-cancel">
                Keep the current key
              </button>
              <button type="button" className="primary" onClick={() => void rotate(confirm)} data-testid="keys-own-rotate-confirm">
                Rotate now
              </button>
            </>
          }
        >
          <p>{CONSEQUENCE[confirm]}</p>
          <p className="hint">You will be asked to confirm your password (step-up) if you have not just done so.</p>
        </Modal>
      ) : null}
    </div>
  );
}

import './keys.css';
import { useCallback, useState } from 'react';
import type { KeyDomain, ShareMade } from '../../../shared/contract/keys';
import type { z } from 'zod';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { CopyButton } from '../../components/CopyButton';
import { downloadText } from '../../components/download';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { useLoaded } from '../../components/useLoaded';
import { useApp } from '../../context';
import type { FeatureProps } from '../feature';
import { useCommand } from '../palette/commands';
import { BeginDialog, type BeginRequest } from './BeginDialog';
import { CeremoniesPanel } from './CeremoniesPanel';
import { CeremonyScreen } from './CeremonyScreen';
import { Hierarchy } from './Hierarchy';
import { KIND_LABELS, progressText, statusText } from './model';
import { TranscriptVerifier } from './TranscriptVerifier';

type Made = z.infer<typeof ShareMade>;

/**
 * Customer-managed keys: the hierarchy (root, officers, seal state, KEKs and their versions), the
 * ceremonies that change it (each opened here and run on the full-screen ceremony screen), the
 * root CA certificate auditors verify transcripts with, and a transcript verifier. Which
 * ceremonies are offered follows the hierarchy's state; the core refuses the others anyway.
 */
export function KeysView({ active, open }: FeatureProps) {
  const { client, can } = useApp();
  const status = useLoaded(active, () => client.keys.status({}));
  const ceremonies = useLoaded(active, () => client.keys.ceremonies({ limit: 100 }));
  const ca = useLoaded(active, () => client.keys.caCertificate({}));
  const [begin, setBegin] = useState<BeginRequest | null>(null);
  const [screen, setScreen] = useState<string | null>(null);
  // Fingerprints of the shares each ceremony made, as its key operation returned them on this page.
  const [made, setMade] = useState<Record<string, Made[]>>({});
  const [sealing, setSealing] = useState(false);

  const refresh = useCallback(() => {
    void status.refresh();
    void ceremonies.refresh();
    void ca.refresh();
  }, [status.refresh, ceremonies.refresh, ca.refresh]);

  const st = status.data;
  const mayRun = can('keys:begin');
  const openOne = ceremonies.data?.find((c) => c.status === 'open') ?? null;
  useCommand('keys.seal', st && st.initialised && !st.sealed && can('keys:seal') ? () => setSealing(true) : null);

  return (
    <section className="view" data-testid="keys-view">
      <ErrorLine error={status.error} testId="keys-error" />

      {openOne ? (
        <div className="panel panel-warn keys-open-banner" data-testid="keys-open-ceremony" data-id={openOne.id}>
          <span>
            <span className="strong">{KIND_LABELS[openOne.kind]}</span> ceremony {openOne.id} is open ({statusText(openOne)})
            {openOne.kind === 'unseal' && st?.unsealing ? `: ${progressText(st.unsealing.collected, st.unsealing.threshold)} collected` : ''}.
          </span>
          {mayRun ? (
            <button type="button" className="primary" onClick={() => setScreen(openOne.id)} data-testid="keys-open-resume">
              Open the ceremony screen
            </button>
          ) : null}
        </div>
      ) : null}

      <div className="card keys-card">
        <div className="panel-head">
          <h2>Key hierarchy</h2>
          {st && mayRun ? (
            <div className="form-actions" data-testid="keys-actions">
              {!st.initialised ? (
                <button type="button" className="primary" onClick={() => setBegin({ kind: 'genesis' })} data-testid="keys-begin-genesis">
                  Begin the genesis ceremony…
                </button>
              ) : null}
              {st.initialised && st.sealed ? (
                <button type="button" className="primary" onClick={() => setBegin({ kind: 'unseal' })} data-testid="keys-begin-unseal">
                  Unseal…
                </button>
              ) : null}
              {st.initialised ? (
                <button type="button" onClick={() => setBegin({ kind: 'verify-shares' })} data-testid="keys-begin-verify-shares">
                  Verify shares…
                </button>
              ) : null}
              {st.initialised && !st.sealed ? (
                <>
                  <button type="button" onClick={() => setBegin({ kind: 'reshare' })} data-testid="keys-begin-reshare">
                    Reshare the root…
                  </button>
                  <button type="button" onClick={() => setBegin({ kind: 'rotate-root' })} data-testid="keys-begin-rotate-root">
                    Rotate the root key…
                  </button>
                </>
              ) : null}
              {st.initialised && !st.sealed && can('keys:seal') ? (
                <button type="button" className="danger-outline" onClick={() => setSealing(true)} data-testid="keys-seal">
                  Seal
                </button>
              ) : null}
            </div>
          ) : null}
        </div>
        {st ? (
          <Hierarchy status={st} canRotate={mayRun && st.initialised && !st.sealed} onRotate={(domain: KeyDomain) => setBegin({ kind: 'rotate-kek', domain })} />
        ) : !status.error ? (
          <p className="muted">Loading…</p>
        ) : null}
      </div>

      <div className="card keys-card">
        <h2>Ceremonies</h2>
        <ErrorLine error={ceremonies.error} testId="keys-ceremonies-error" />
        <CeremoniesPanel ceremonies={ceremonies.data ?? []} onResume={(id) => setScreen(id)} />
      </div>

      <div className="keys-columns">
        <RootCa pem={ca.data?.pem ?? null} fingerprint={ca.data?.fingerprint ?? null} error={ca.error} />
        <TranscriptVerifier />
      </div>

      {begin ? (
        <BeginDialog
          request={begin}
          onClose={() => setBegin(null)}
          onApprovals={() => {
            setBegin(null);
            open('approvals');
          }}
          onBegun={(c) => {
            setBegin(null);
            setScreen(c.id);
            refresh();
          }}
        />
      ) : null}
      {sealing ? (
        <SealDialog
          threshold={st?.threshold ?? null}
          onClose={() => setSealing(false)}
          onSealed={() => {
            setSealing(false);
            refresh();
          }}
        />
      ) : null}
      {screen ? (
        <CeremonyScreen
          id={screen}
          made={made[screen]}
          onMade={(shares) => setMade((cur) => ({ ...cur, [screen]: shares }))}
          onChanged={refresh}
          onClose={() => {
            setScreen(null);
            refresh();
          }}
        />
      ) : null}
    </section>
  );
}

/** The root CA certificate: all an auditor needs to verify transcripts offline. */
function RootCa({ pem, fingerprint, error }: { pem: string | null; fingerprint: string | null; error: AirlockErrorShape | null }) {
  return (
    <div className="card keys-card" data-testid="keys-ca">
      <h3>Root CA certificate</h3>
      <ErrorLine error={error} testId="keys-ca-error" />
      {pem ? (
        <>
          <p>
            Fingerprint <span className="mono keys-fingerprint" data-testid="keys-ca-fingerprint">{fingerprint}</span>
          </p>
          <p className="hint">
            Give it to auditors with the transcripts: <span className="mono">airlock keys verify-transcript FILE</span> checks a transcript against it offline.
          </p>
          <div className="form-actions">
            <button type="button" onClick={() => downloadText('airlock-root-ca.pem', pem, 'application/x-pem-file')} data-testid="keys-ca-download">
              Download (PEM)
            </button>
            <CopyButton text={pem} testId="keys-ca-copy" />
          </div>
        </>
      ) : (
        <p className="muted" data-testid="keys-ca-none">
          No root CA yet: the genesis ceremony creates it.
        </p>
      )}
    </div>
  );
}

/** Sealing drops the root key and the KEKs from memory; opening again needs a quorum of officers. */
function SealDialog({ threshold, onClose, onSealed }: { threshold: number | null; onClose(): void; onSealed(): void }) {
  const { client } = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function seal() {
    setBusy(true);
    setError(null);
    const r = await client.keys.seal({});
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onSealed();
  }

  return (
    <Modal
      title="Seal the key hierarchy"
      onClose={onClose}
      busy={busy}
      testId="keys-seal-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} disabled={busy} data-testid="keys-seal-cancel">
            Keep it unsealed
          </button>
          <button type="button" className="danger" onClick={() => void seal()} disabled={busy} data-testid="keys-seal-confirm">
            {busy ? 'Sealing…' : 'Seal now'}
          </button>
        </>
      }
    >
      <p>
        The root key and the KEKs leave memory. Rotations, reshares and unlocking a rebooted host&apos;s models stop until {threshold ?? 'the threshold of'} officers
        unseal it again with their shares.
      </p>
      <ErrorLine error={error} testId="keys-seal-error" />
    </Modal>
  );
}

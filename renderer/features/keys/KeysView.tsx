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
import { CertificatesPanel } from './CertificatesPanel';
import { CeremonyScreen } from './CeremonyScreen';
import { Hierarchy } from './Hierarchy';
import { OwnKeys } from './OwnKeys';
import { KIND_LABELS, progressText, statusText } from './model';
import { ModelsHosts } from './ModelsHosts';
import { TranscriptVerifier } from './TranscriptVerifier';
import { useRotations } from './useRotations';

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
  const rot = useRotations(active);
  const [reload, setReload] = useState(0);
  const [sshRotating, setSshRotating] = useState(false);
  const [resuming, setResuming] = useState<string | null>(null);
  const [rotError, setRotError] = useState<AirlockErrorShape | null>(null);

  const [sshRunning, setSshRunning] = useState(false);
  async function startSshRotation() {
    setSshRunning(true);
    setRotError(null);
    const call = client.keys.rotateSshIdentity({ hosts: ['all'] });
    // The rotation is recorded before its first step: the history shows it running, then its hosts.
    setTimeout(() => void rot.refresh(), 500);
    const r = await call;
    setSshRunning(false);
    if (!r.ok) setRotError(r.error);
    void rot.refresh();
  }

  async function resumeRotation(id: string) {
    setResuming(id);
    setRotError(null);
    setTimeout(() => rot.track(), 500);
    // The call returns when the rotation stops again; meanwhile the row is read every few seconds.
    const r = await client.keys.resumeSshRotation({ id });
    setResuming(null);
    if (!r.ok) setRotError(r.error);
    rot.track();
  }

  const refresh = useCallback(() => {
    void status.refresh();
    void ceremonies.refresh();
    void ca.refresh();
    void rot.refresh();
    setReload((n) => n + 1);
  }, [status.refresh, ceremonies.refresh, ca.refresh, rot.refresh]);

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
        {st ? <OwnKeys keys={st.ownKeys} onRotated={refresh} /> : null}
        {st?.initialised && can('keys:modelsStatus') ? (
          <ModelsHosts active={active} versions={st.domains.find((d) => d.domain === 'models')?.versions.map((v) => v.version) ?? []} />
        ) : null}
      </div>

      <div className="card keys-card">
        <div className="panel-head">
          <h2>Ceremonies and rotations</h2>
          <div className="form-actions">
            <button type="button" onClick={refresh} data-testid="keys-history-refresh">
              Refresh
            </button>
            {can('keys:rotateSshIdentity') ? (
              <button type="button" onClick={() => setSshRotating(true)} disabled={sshRunning} data-testid="keys-ssh-rotate">
                {sshRunning ? 'Rotating the SSH identity…' : 'Rotate Airlock\u2019s SSH identity…'}
              </button>
            ) : null}
          </div>
        </div>
        <ErrorLine error={ceremonies.error} testId="keys-ceremonies-error" />
        <ErrorLine error={rot.error ?? rotError} testId="keys-rotations-error" />
        <CeremoniesPanel
          ceremonies={ceremonies.data ?? []}
          onResume={(id) => setScreen(id)}
          rotations={rot.rotations}
          onResumeRotation={can('keys:resumeSshRotation') ? (id) => void resumeRotation(id) : null}
          resumingRotation={resuming}
        />
      </div>

      <CertificatesPanel active={active} reload={reload} />

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
      {sshRotating ? (
        <SshRotateDialog
          onClose={() => setSshRotating(false)}
          onConfirm={() => {
            setSshRotating(false);
            void startSshRotation();
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

/**
 * Asks before rotating Airlock's own SSH identity on every enrolled host: add the new key, log in
 * with it, remove the old one, then retire the old key. The rotation then runs from the page (the
 * dialog closes) and the history list shows each host's progress.
 */
function SshRotateDialog({ onClose, onConfirm }: { onClose(): void; onConfirm(): void }) {
  return (
    <Modal
      title="Rotate Airlock's SSH identity"
      onClose={onClose}
      testId="keys-ssh-rotate-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} data-testid="keys-ssh-rotate-cancel">
            Keep the current key
          </button>
          <button type="button" className="primary" onClick={onConfirm} data-testid="keys-ssh-rotate-confirm">
            Rotate on every host
          </button>
        </>
      }
    >
      <p>
        On every enrolled host, Airlock adds a new SSH key, logs in with it alone, then removes the old key. A host that cannot be reached keeps the old key and is
        shown as pending; the old key stays in the vault until that host is done too (resume the rotation from the history once it is back).
      </p>
    </Modal>
  );
}

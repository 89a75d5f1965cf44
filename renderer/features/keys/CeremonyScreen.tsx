import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { createPortal } from 'react-dom';
import type { Out } from '../../../shared/contract/index';
import type { Ceremony, CeremonyStep, ShareMade } from '../../../shared/contract/keys';
import type { z } from 'zod';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { Modal } from '../../components/Modal';
import { safeLine } from '../../components/safeText';
import { Time } from '../../components/Time';
import { useApp } from '../../context';
import { acknowledgers, currentStep, groupNonce, issuing, KIND_LABELS, officerOfStep, progressText, ROLE_LABELS, statusText } from './model';
import { OperationPanel, VerifyReport, type Progress, type VerifyReportValue } from './OperationPanel';
import { SharePanel } from './SharePanel';
import { TranscriptButton } from './TranscriptButton';

type Made = z.infer<typeof ShareMade>;
type IssuedShare = Out<'keys:issueShare'>;

/**
 * While the screen is up, the console behind it (#root: nav, top bar, the Keys page) is inert: a
 * room follows one script, and Tab must not wander to controls it cannot see. A dialog opened over
 * the screen (step-up, cancel) lifts and restores #root's inert flag itself (components/Modal.tsx),
 * so the flag is put back whenever it is lifted while the screen is still up.
 */
function useInertRoot(): void {
  useEffect(() => {
    const root = document.getElementById('root');
    if (!root) return;
    root.inert = true;
    const observer = new MutationObserver(() => {
      if (!root.inert) root.inert = true;
    });
    observer.observe(root, { attributes: true, attributeFilter: ['inert'] });
    return () => {
      observer.disconnect();
      root.inert = false;
    };
  }, []);
}

/**
 * A ceremony, full-screen, for a room of people reading one screen: the nonce in large grouped
 * digits (read aloud, compared), the numbered script with the current step highlighted, who must
 * acknowledge it (chosen among the participants of its role), the key operation when its turn
 * comes, each officer's fingerprint before their share and the share after. Everything the screen
 * shows is read back from the core; leaving it leaves the ceremony open, to come back to from the
 * Keys page (shares made stay in the core's memory until the ceremony ends).
 */
export function CeremonyScreen({
  id,
  made,
  onMade,
  onClose,
  onChanged,
}: {
  id: string;
  /** The shares this ceremony's key operation made, as this page saw them (fingerprints only). */
  made: Made[] | undefined;
  onMade(shares: Made[]): void;
  onClose(): void;
  /** The ceremony moved on: the Keys page reads the hierarchy and the ceremonies again. */
  onChanged(): void;
}) {
  const { client } = useApp();
  useInertRoot();
  const titleId = useId();
  const heading = useRef<HTMLHeadingElement>(null);
  const [c, setC] = useState<Ceremony | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [ackBy, setAckBy] = useState('');
  const [busy, setBusy] = useState(false);
  const [shown, setShown] = useState<IssuedShare | null>(null);
  const [shareError, setShareError] = useState<AirlockErrorShape | null>(null);
  const [report, setReport] = useState<VerifyReportValue | null>(null);
  const [unsealed, setUnsealed] = useState<Progress | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const [officerPrints, setOfficerPrints] = useState<Record<string, string>>({});
  const nowRef = useRef<HTMLDivElement>(null);

  const load = useCallback(async () => {
    const r = await client.keys.ceremony({ ceremony: id });
    if (r.ok) {
      setC(r.value);
      setError(null);
    } else setError(r.error);
  }, [client, id]);

  useEffect(() => {
    void load();
    heading.current?.focus();
  }, [load]);

  // The fingerprints an officer checks: those the key operation returned on this page, else the
  // hierarchy's record of each holder's passphrase sealing fingerprint (the screen was left and
  // reopened; a share not sealed to a passphrase has none there).
  const kind = c?.kind;
  useEffect(() => {
    if (!kind || !issuing(kind) || made || c?.shares) return;
    let live = true;
    void client.keys.status({}).then((r) => {
      if (live && r.ok) setOfficerPrints(Object.fromEntries(r.value.officers.flatMap((o) => (o.fingerprint ? [[o.name, o.fingerprint]] : []))));
    });
    return () => {
      live = false;
    };
  }, [client, id, kind, made, c?.shares]);

  const next = c ? currentStep(c) : null;
  const candidates = c && next ? acknowledgers(c, next) : [];
  // The one person who can acknowledge is chosen already; among several, nobody is until someone says who they are.
  useEffect(() => {
    setAckBy(candidates.length === 1 ? candidates[0]! : '');
  }, [next?.n, candidates.length === 1 ? candidates[0] : '']);

  // What the room must do now replaced what it just did (a button that went busy and away takes
  // the keyboard focus with it): focus moves to the new step, the share shown, or the outcome.
  const stepKey = `${c?.status}:${next?.n}:${shown?.officer ?? ''}`;
  useEffect(() => {
    const a = document.activeElement;
    const screen = nowRef.current?.closest('.keys-screen');
    if (a && a !== document.body && screen?.contains(a) && !(a as HTMLButtonElement).disabled) return;
    nowRef.current?.querySelector<HTMLElement>('.keys-focus')?.focus();
  }, [stepKey]);

  function changed(updated: Ceremony) {
    setC(updated);
    onChanged();
  }

  // The ceremony itself names each share's fingerprint while it is open (keys:ceremony), so an
  // officer sees theirs again after the screen was left; what the key operation returned on this
  // page comes first, the hierarchy's sealing fingerprints last (another console process ran it).
  const madeHere = made ?? c?.shares;
  const sealingOf = (officer: string) => madeHere?.find((s) => s.officer === officer)?.sealing ?? null;
  const fingerprintOf = (officer: string) => madeHere?.find((s) => s.officer === officer)?.fingerprint ?? officerPrints[officer] ?? null;

  async function showShare(officer: string) {
    setShareError(null);
    const r = await client.keys.issueShare({ ceremony: id, officer });
    if (r.ok) setShown(r.value);
    else setShareError(r.error);
  }

  async function acknowledge(e: FormEvent) {
    e.preventDefault();
    if (!c || !next || !ackBy || busy) return;
    setBusy(true);
    setError(null);
    setShown(null);
    const officer = officerOfStep(c, next.n);
    const r = await client.keys.acknowledge({ ceremony: id, step: next.n, by: ackBy });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    changed(r.value);
    // The officer checked their fingerprint: now, and only now, their share is shown to them.
    if (officer) await showShare(officer);
  }

  const officer = c && next ? officerOfStep(c, next.n) : null;
  const fingerprint = officer ? fingerprintOf(officer) : null;

  return createPortal(
    <div className="keys-screen" role="dialog" aria-modal="true" aria-labelledby={titleId} data-testid="keys-ceremony-screen" data-status={c?.status ?? 'loading'} data-kind={c?.kind}>
      <header className="keys-screen-head">
        <h1 id={titleId} ref={heading} tabIndex={-1}>
          {c ? `${KIND_LABELS[c.kind]} ceremony${c.params.domain ? `: ${c.params.domain}` : ''}` : 'Ceremony'}
        </h1>
        {c ? (
          <span className={`badge keys-status-${c.status}`} data-testid="keys-screen-status">
            {statusText(c)}
          </span>
        ) : null}
        <span className="mono muted">{id}</span>
        <span className="toolbar-spacer" />
        {c?.status === 'open' ? (
          <button type="button" className="danger-outline" onClick={() => setCancelling(true)} data-testid="keys-screen-cancel">
            Cancel the ceremony…
          </button>
        ) : null}
        <button type="button" onClick={onClose} data-testid="keys-screen-close">
          {c?.status === 'open' ? 'Leave this screen (the ceremony stays open)' : 'Close'}
        </button>
      </header>

      <ErrorLine error={error} testId="keys-screen-error" />
      {c ? (
        <>
          <div className="keys-nonce" data-testid="keys-nonce" data-nonce={c.nonce}>
            <div className="keys-nonce-label">Nonce — read it aloud; everyone checks it against their own screen</div>
            <div className="keys-nonce-groups" aria-hidden="true">
              {groupNonce(c.nonce).map((g, i) => (
                <span key={i} className="keys-nonce-group">
                  {g}
                </span>
              ))}
            </div>
            {/* Read to a screen reader digit by digit, group by group. */}
            <span className="sr-only">{groupNonce(c.nonce).map((g) => g.split('').join(' ')).join(', ')}</span>
          </div>

          <div className="keys-screen-body">
            <ol className="keys-script" data-testid="keys-script" aria-label="Script">
              {c.steps.map((s) => (
                <ScriptStep
                  key={s.n}
                  step={s}
                  current={next?.n === s.n && c.status === 'open'}
                  officer={officerOfStep(c, s.n)}
                  onShowShare={c.status === 'open' && s.at !== null && officerOfStep(c, s.n) ? () => void showShare(officerOfStep(c, s.n)!) : null}
                />
              ))}
            </ol>

            <div className="keys-now" ref={nowRef}>
              {shown ? (
                // One person at the screen at a time: the next step waits until this officer holds their share and hides it.
                <>
                  <SharePanel share={shown} ceremony={c.id} onHide={() => setShown(null)} />
                  {next && c.status === 'open' ? (
                    <p className="hint" data-testid="keys-next-waits">
                      Step {next.n} comes next, once {safeLine(shown.officer)} holds the share and has hidden it.
                    </p>
                  ) : null}
                </>
              ) : c.status !== 'open' ? (
                <Finished c={c} />
              ) : next?.automatic ? (
                <section className="keys-now-card" aria-label="Airlock's step" data-testid="keys-now" data-step={next.n} data-auto="true">
                  <h2 tabIndex={-1} className="keys-focus">
                    Step {next.n}: {next.title}
                  </h2>
                  <OperationPanel ceremony={c} onCeremony={changed} onMade={onMade} onReport={setReport} onUnsealed={setUnsealed} />
                </section>
              ) : next ? (
                <form className="keys-now-card" onSubmit={(e) => void acknowledge(e)} aria-label="The step to acknowledge" data-testid="keys-now" data-step={next.n} data-auto="false">
                  <h2 tabIndex={-1} className="keys-focus">
                    Step {next.n}: {next.title}
                  </h2>
                  <p>
                    For: <span className="strong">{officer ? `${officer} (officer)` : ROLE_LABELS[next.by]}</span>
                  </p>
                  {c.message ? (
                    <p className="info-line" data-testid="keys-result">
                      {safeLine(c.message)}
                    </p>
                  ) : null}
                  {report ? <VerifyReport report={report} /> : null}
                  {unsealed ? (
                    <p className="panel panel-ok strong" data-testid="keys-unseal-done">
                      The hierarchy is unsealed: {progressText(unsealed.collected, unsealed.threshold)}, from {unsealed.contributors.map((n) => safeLine(n)).join(', ')}.
                    </p>
                  ) : null}
                  {officer ? (
                    <div className="keys-fp-check" data-testid="keys-fp-check">
                      <div>Fingerprint of {safeLine(officer)}&apos;s share</div>
                      <div className="mono keys-fingerprint keys-fingerprint-big" data-testid="keys-officer-fingerprint">
                        {fingerprint ? safeLine(fingerprint) : 'not known on this screen'}
                      </div>
                      {fingerprint ? null : (
                        <p className="warn-line" data-testid="keys-fingerprint-unknown">
                          Another console process made these shares, and this share is not sealed to a passphrase: its fingerprint (the start of the file&apos;s SHA-256)
                          is shown with the share there. Compare it with sha256sum of the saved file before the ceremony closes.
                        </p>
                      )}
                      <p className="hint">
                        {safeLine(officer)}:{' '}
                        {sealingOf(officer) === 'none'
                          ? 'your share is a file not sealed to a passphrase; this is the start of its SHA-256 (sha256sum of the saved file begins with it).'
                          : 'this is the fingerprint of your passphrase sealing key; your share file names it on its Sealing line.'}{' '}
                        Write it down now. Only then acknowledge: the share is shown after that, to you.
                      </p>
                    </div>
                  ) : null}
                  <label className="field keys-ack-field">
                    <span>Acknowledged by</span>
                    <select value={ackBy} onChange={(e) => setAckBy(e.target.value)} data-testid="keys-ack-by">
                      {candidates.length > 1 ? <option value="">Who is acknowledging?</option> : null}
                      {candidates.map((n) => (
                        <option key={n} value={n}>
                          {n}
                        </option>
                      ))}
                    </select>
                  </label>
                  <button type="submit" className="primary keys-big-button" disabled={!ackBy || busy} data-testid="keys-ack">
                    {busy ? 'Recording…' : officer ? `I, ${ackBy || officer}, checked the fingerprint: acknowledge step ${next.n}` : `Acknowledge step ${next.n}${ackBy ? ` as ${ackBy}` : ''}`}
                  </button>
                </form>
              ) : null}

              <ErrorLine error={shareError} testId="keys-share-error" />
              {c.status === 'open' && c.shares?.length ? <ShareFingerprints shares={c.shares} /> : null}
              <Participants c={c} />
            </div>
          </div>
        </>
      ) : null}

      {cancelling && c ? (
        <CancelDialog
          c={c}
          onClose={() => setCancelling(false)}
          onDone={(updated) => {
            setCancelling(false);
            setShown(null);
            changed(updated);
          }}
        />
      ) : null}
    </div>,
    document.body,
  );
}

function ScriptStep({ step, current, officer, onShowShare }: { step: CeremonyStep; current: boolean; officer: string | null; onShowShare: (() => void) | null }) {
  const state = step.at !== null ? 'done' : current ? 'current' : 'pending';
  return (
    <li className={`keys-step keys-step-${state}`} aria-current={current ? 'step' : undefined} data-testid={`keys-step-${step.n}`} data-state={state}>
      <span className="keys-step-n">{step.n}</span>
      <div className="keys-step-body">
        <div className="keys-step-title">{step.title}</div>
        <div className="keys-step-who">
          {step.automatic ? 'Airlock (the key operation)' : officer ? `${officer} (officer)` : ROLE_LABELS[step.by]}
          {step.at !== null ? (
            <>
              {' '}
              · done{step.acknowledgedBy ? ` by ${step.acknowledgedBy}` : ''}
              {step.recordedBy ? `, recorded by ${step.recordedBy}` : ''} at <Time iso={step.at} />
            </>
          ) : null}
          {onShowShare ? (
            <>
              {' '}
              <button type="button" className="small" onClick={onShowShare} data-testid={`keys-step-${step.n}-share`}>
                Show {officer}&apos;s share again
              </button>
            </>
          ) : null}
        </div>
      </div>
    </li>
  );
}

/**
 * The fingerprint of every share this open ceremony made, read from the ceremony itself: an
 * officer who took a file not sealed to a passphrase checks it against sha256sum of the saved file
 * (or a passphrase-sealed share's Sealing line) at any time until the ceremony closes — never the share.
 */
function ShareFingerprints({ shares }: { shares: NonNullable<Ceremony['shares']> }) {
  return (
    <section className="keys-participants" aria-label="Share fingerprints">
      <h3>Share fingerprints</h3>
      <ul data-testid="keys-share-prints">
        {shares.map((s) => (
          <li key={s.index} data-testid={`keys-share-print-${s.officer}`} data-fingerprint={s.fingerprint}>
            <span className="strong">{safeLine(s.officer)}</span> share {s.index}: <span className="mono keys-fingerprint">{safeLine(s.fingerprint)}</span>{' '}
            <span className="muted">{s.sealing === 'passphrase' ? '(passphrase sealing key)' : '(start of the file’s SHA-256)'}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Participants({ c }: { c: Ceremony }) {
  return (
    <section className="keys-participants" aria-label="Participants">
      <h3>Participants</h3>
      <ul data-testid="keys-participants">
        {c.participants.map((p) => (
          <li key={`${p.role}-${p.name}`}>
            <span className="strong">{safeLine(p.name)}</span> <span className="muted">{ROLE_LABELS[p.role]}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Finished({ c }: { c: Ceremony }) {
  const done = c.status === 'completed';
  return (
    <section className={done ? 'keys-now-card panel-ok' : 'keys-now-card panel-bad'} aria-label="Outcome" data-testid="keys-finished" data-status={c.status}>
      <h2 tabIndex={-1} className="keys-focus">
        {done ? 'Completed' : c.status === 'cancelled' ? 'Cancelled' : 'Failed'}
      </h2>
      {c.finishedAt ? (
        <p>
          at <Time iso={c.finishedAt} />
        </p>
      ) : null}
      {c.message ? <p data-testid="keys-finished-message">{safeLine(c.message)}</p> : null}
      {done && c.hasTranscript ? (
        <>
          <p>The transcript is signed: participants, steps, who acknowledged them, the key fingerprints before and after — never a share.</p>
          <TranscriptButton ceremony={c} className="primary keys-big-button" testId="keys-screen-transcript" />
        </>
      ) : null}
    </section>
  );
}

function CancelDialog({ c, onClose, onDone }: { c: Ceremony; onClose(): void; onDone(c: Ceremony): void }) {
  const { client } = useApp();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function cancel() {
    if (busy || reason.trim() === '') return;
    setBusy(true);
    setError(null);
    const r = await client.keys.cancel({ ceremony: c.id, reason: reason.trim() });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onDone(r.value);
  }

  return (
    <Modal
      title="Cancel the ceremony"
      onClose={onClose}
      busy={busy}
      testId="keys-cancel-dialog"
      footer={
        <>
          <button type="button" onClick={onClose} disabled={busy}>
            Keep it open
          </button>
          <button type="button" className="danger" onClick={() => void cancel()} disabled={busy || reason.trim() === ''} data-testid="keys-cancel-confirm">
            {busy ? 'Cancelling…' : 'Cancel the ceremony'}
          </button>
        </>
      }
    >
      <p>
        {c.kind === 'unseal'
          ? 'The shares collected so far are forgotten; an unseal starts again from none.'
          : issuing(c.kind) && c.steps.some((s) => s.automatic && s.at !== null)
            ? 'The key operation has already run: an officer who has not taken their share yet never will (the shares are in memory only). Cancel only if the ceremony must start again.'
            : 'The ceremony ends here; nothing more is done.'}{' '}
        The reason goes in the audit trail.
      </p>
      <label className="field">
        <span>Reason</span>
        <textarea rows={3} value={reason} maxLength={500} onChange={(e) => setReason(e.target.value)} data-testid="keys-cancel-reason" />
      </label>
      <ErrorLine error={error} testId="keys-cancel-error" />
    </Modal>
  );
}

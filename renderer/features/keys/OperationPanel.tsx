import { useEffect, useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import type { Ceremony, ShareMade } from '../../../shared/contract/keys';
import type { z } from 'zod';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { ErrorLine } from '../../components/ErrorLine';
import { safeLine } from '../../components/safeText';
import { useApp } from '../../context';
import { progressText } from './model';

type Made = z.infer<typeof ShareMade>;
export type Progress = { collected: number; threshold: number; contributors: string[] };

/**
 * The ceremony's key operation, the step Airlock does itself once every step before it was
 * acknowledged: create and split the root (with optional per-officer passphrases), collect shares
 * for an unseal, verify shares, rotate a KEK. Each answers with the ceremony as it now is.
 */
export function OperationPanel({
  ceremony,
  onCeremony,
  onMade,
  onReport,
  onUnsealed,
}: {
  ceremony: Ceremony;
  onCeremony(c: Ceremony): void;
  onMade(shares: Made[]): void;
  /** A verify-shares report, kept by the screen: the next step (confirm the result) reads it. */
  onReport(r: VerifyReportValue): void;
  /** The unseal reached its threshold: the screen says so on the closing step. */
  onUnsealed(p: Progress): void;
}) {
  switch (ceremony.kind) {
    case 'genesis':
    case 'reshare':
    case 'rotate-root':
      return <IssuePanel ceremony={ceremony} onCeremony={onCeremony} onMade={onMade} />;
    case 'unseal':
      return <UnsealPanel ceremony={ceremony} onCeremony={onCeremony} onUnsealed={onUnsealed} />;
    case 'verify-shares':
      return <VerifyPanel ceremony={ceremony} onCeremony={onCeremony} onReport={onReport} />;
    case 'rotate-kek':
      return <RotatePanel ceremony={ceremony} onCeremony={onCeremony} />;
  }
}

/**
 * Genesis, reshare, root rotation: an officer may seal their share with a passphrase of their own
 * (typed twice: a mistyped one would make the share unopenable). Empty means the share is
 * protected by its storage only (the armored file, the paper copy).
 */
function IssuePanel({ ceremony, onCeremony, onMade }: { ceremony: Ceremony; onCeremony(c: Ceremony): void; onMade(shares: Made[]): void }) {
  const { client } = useApp();
  const officers = ceremony.participants.filter((p) => p.role === 'officer').map((p) => p.name);
  const [pass, setPass] = useState<Record<string, { a: string; b: string }>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const mismatch = officers.filter((o) => (pass[o]?.a ?? '') !== (pass[o]?.b ?? ''));
  const set = (o: string, k: 'a' | 'b', v: string) => setPass((cur) => ({ ...cur, [o]: { a: cur[o]?.a ?? '', b: cur[o]?.b ?? '', [k]: v } }));

  async function run() {
    if (busy || mismatch.length) return;
    setBusy(true);
    setError(null);
    const passphrases: Record<string, string> = {};
    for (const o of officers) if (pass[o]?.a) passphrases[o] = pass[o].a;
    const input = { ceremony: ceremony.id, passphrases };
    const r =
      ceremony.kind === 'genesis' ? await client.keys.genesis(input) : ceremony.kind === 'reshare' ? await client.keys.reshare(input) : await client.keys.rotateRoot(input);
    setBusy(false);
    if (!r.ok) return setError(r.error);
    // The passphrases leave the page's state as soon as the shares are made.
    setPass({});
    onMade(r.value.shares);
    onCeremony(r.value.ceremony);
  }

  const action = ceremony.kind === 'genesis' ? 'Create the root key and the shares' : ceremony.kind === 'reshare' ? 'Reshare the root key' : 'Create the new root key and the shares';
  return (
    <div data-testid="keys-op-issue">
      <p>Each officer may seal their share with a passphrase of their own, typed by them, twice. Leave both fields empty for a share protected by its storage only.</p>
      <div className="keys-pass-grid">
        {officers.map((o) => (
          <fieldset key={o} className="roles-field" data-testid={`keys-pass-${o}`}>
            <legend>{safeLine(o)}</legend>
            <label className="field">
              <span>Passphrase (optional)</span>
              <input type="password" autoComplete="off" value={pass[o]?.a ?? ''} onChange={(e) => set(o, 'a', e.target.value)} data-testid={`keys-pass-${o}-a`} />
            </label>
            <label className="field">
              <span>Again</span>
              <input type="password" autoComplete="off" value={pass[o]?.b ?? ''} onChange={(e) => set(o, 'b', e.target.value)} data-testid={`keys-pass-${o}-b`} />
            </label>
            {mismatch.includes(o) ? <div className="warn-line">The two passphrases differ.</div> : null}
          </fieldset>
        ))}
      </div>
      <ErrorLine error={error} testId="keys-op-error" />
      <button type="button" className="primary keys-big-button" onClick={() => void run()} disabled={busy || mismatch.length > 0} data-testid="keys-op-run">
        {busy ? 'Working…' : action}
      </button>
    </div>
  );
}

/** A share typed, pasted or read from a file in the page, and the passphrase that opens it, if any. */
function ShareInput({ value, onChange, passphrase, onPassphrase, testId }: { value: string; onChange(v: string): void; passphrase: string; onPassphrase(v: string): void; testId: string }) {
  const [readError, setReadError] = useState<string | null>(null);
  return (
    <div className="keys-share-input">
      <label className="field">
        <span>Share (paste the armored text, or choose its file)</span>
        <textarea className="mono keys-paste" rows={6} value={value} onChange={(e) => onChange(e.target.value)} spellCheck={false} autoComplete="off" data-testid={`${testId}-text`} />
      </label>
      <div className="form-row">
        <input
          type="file"
          accept=".txt,text/plain"
          aria-label="Share file"
          data-testid={`${testId}-file`}
          onChange={(e) => {
            const f = e.target.files?.[0];
            setReadError(null);
            if (f) f.text().then(onChange, (err: unknown) => setReadError(`Could not read ${f.name}: ${err instanceof Error ? err.message : String(err)}`));
            e.target.value = '';
          }}
        />
        <label className="field">
          <span>Passphrase (if the share is sealed with one)</span>
          <input type="password" autoComplete="off" value={passphrase} onChange={(e) => onPassphrase(e.target.value)} data-testid={`${testId}-passphrase`} />
        </label>
      </div>
      {readError ? <div className="warn-line">{readError}</div> : null}
    </div>
  );
}

/**
 * Unseal: officers give their shares one by one. A refused share (wrong, duplicated, of another
 * hierarchy or an earlier split, or of another ceremony's nonce) is said in the core's words, and
 * what was already collected stays collected: the count shown is read back from the core.
 */
function UnsealPanel({ ceremony, onCeremony, onUnsealed }: { ceremony: Ceremony; onCeremony(c: Ceremony): void; onUnsealed(p: Progress): void }) {
  const { client } = useApp();
  const [progress, setProgress] = useState<Progress>({ collected: 0, threshold: ceremony.params.threshold ?? 0, contributors: [] });
  const [share, setShare] = useState('');
  const [passphrase, setPassphrase] = useState('');
  const [busy, setBusy] = useState(false);
  const [refusal, setRefusal] = useState<AirlockErrorShape | null>(null);
  const [accepted, setAccepted] = useState<string | null>(null);

  async function readBack() {
    const r = await client.keys.status({});
    if (r.ok && r.value.unsealing) setProgress(r.value.unsealing);
  }
  useEffect(() => {
    void readBack();
    // Once, for the ceremony shown.
  }, [ceremony.id]);

  async function add() {
    if (busy || share.trim() === '') return;
    setBusy(true);
    setRefusal(null);
    setAccepted(null);
    // Once the hierarchy opens, the console delivers the models keys again to locked hosts (a rack that rebooted while sealed).
    const r = await client.keys.addShare({ ceremony: ceremony.id, share, unlockModels: true, ...(passphrase ? { passphrase } : {}) });
    setBusy(false);
    // A passphrase is typed again for each try. A refused share leaves the screen too, unless it
    // only failed to parse (a character mistyped from paper is corrected in place).
    setPassphrase('');
    if (!r.ok) {
      if (r.error.code !== 'PARSE_ERROR') setShare('');
      setRefusal(r.error);
      await readBack();
      return;
    }
    // The share leaves the page's state once the core has it.
    setShare('');
    setProgress(r.value);
    const who = r.value.contributors[r.value.contributors.length - 1];
    const unlocking = r.value.unlocking ?? [];
    setAccepted(`Accepted${who ? ` the share of ${who}` : ''}.${unlocking.length ? ` Unlocking the models directories of ${unlocking.length === 1 ? '1 host' : `${unlocking.length} hosts`} (${unlocking.map((h) => safeLine(h)).join(', ')}) in the background: see the hosts' models state below and the audit trail.` : ''}`);
    if (r.value.done) onUnsealed(r.value);
    onCeremony(r.value.ceremony);
  }

  return (
    <div data-testid="keys-op-unseal">
      <div className="keys-progress" data-testid="keys-unseal-progress" data-collected={progress.collected} data-threshold={progress.threshold}>
        <span className="keys-progress-count">{progressText(progress.collected, progress.threshold)}</span>
        <progress max={progress.threshold || 1} value={progress.collected} aria-label="Shares collected" />
        {progress.contributors.length ? <span>from {progress.contributors.map((n) => safeLine(n)).join(', ')}</span> : <span className="muted">none yet</span>}
      </div>
      <ShareInput value={share} onChange={setShare} passphrase={passphrase} onPassphrase={setPassphrase} testId="keys-unseal-share" />
      {refusal ? (
        <div className="keys-refusal" data-testid="keys-unseal-refusal">
          <ErrorLine error={refusal} testId="keys-unseal-error" />
          <p className="strong">
            Refused. Nothing already collected was lost: still {progressText(progress.collected, progress.threshold)}.
          </p>
        </div>
      ) : null}
      {accepted ? (
        <div className="info-line" role="status" data-testid="keys-unseal-accepted">
          {safeLine(accepted)}
        </div>
      ) : null}
      <button type="button" className="primary keys-big-button" onClick={() => void add()} disabled={busy || share.trim() === ''} data-testid="keys-unseal-add">
        {busy ? 'Checking…' : 'Give this share'}
      </button>
    </div>
  );
}

/** Verify shares: every share given is checked, and the set tried against the root, which stays sealed. */
function VerifyPanel({ ceremony, onCeremony, onReport }: { ceremony: Ceremony; onCeremony(c: Ceremony): void; onReport(r: VerifyReportValue): void }) {
  const { client } = useApp();
  const [entries, setEntries] = useState<Array<{ share: string; passphrase: string }>>([{ share: '', passphrase: '' }]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const given = entries.filter((e) => e.share.trim() !== '');
  const set = (i: number, k: 'share' | 'passphrase', v: string) => setEntries((cur) => cur.map((e, j) => (j === i ? { ...e, [k]: v } : e)));

  async function verify() {
    if (busy || !given.length) return;
    setBusy(true);
    setError(null);
    const r = await client.keys.verifyShares({ ceremony: ceremony.id, shares: given.map((e) => ({ share: e.share, ...(e.passphrase ? { passphrase: e.passphrase } : {}) })) });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setEntries([{ share: '', passphrase: '' }]);
    onReport(r.value.report);
    onCeremony(r.value.ceremony);
  }

  return (
    <div data-testid="keys-op-verify">
      {entries.map((e, i) => (
        <fieldset key={i} className="roles-field">
          <legend>Share {i + 1}</legend>
          <ShareInput value={e.share} onChange={(v) => set(i, 'share', v)} passphrase={e.passphrase} onPassphrase={(v) => set(i, 'passphrase', v)} testId={`keys-verify-share-${i}`} />
        </fieldset>
      ))}
      <div className="form-actions">
        <button type="button" onClick={() => setEntries((cur) => [...cur, { share: '', passphrase: '' }])} disabled={entries.length >= 16} data-testid="keys-verify-share-more">
          Another share
        </button>
        <button type="button" className="primary keys-big-button" onClick={() => void verify()} disabled={busy || !given.length} data-testid="keys-verify-shares-run">
          {busy ? 'Checking…' : `Verify ${given.length} share${given.length === 1 ? '' : 's'}`}
        </button>
      </div>
      <ErrorLine error={error} testId="keys-op-error" />
    </div>
  );
}

export type VerifyReportValue = Out<'keys:verifyShares'>['report'];

/** What verify-shares found: each share's verdict and whether the set opens the root. */
export function VerifyReport({ report }: { report: VerifyReportValue }) {
  return (
    <div className={report.combines ? 'panel panel-ok' : 'panel panel-warn'} data-testid="keys-verify-report" data-combines={String(report.combines)}>
      <p className="strong">
        {report.combines === null ? 'Too few valid shares to try the set.' : report.combines ? 'The set opens the root key.' : 'The set does NOT open the root key.'}
      </p>
      <ul>
        {report.shares.map((s, i) => (
          <li key={i}>
            {s.ok ? 'valid' : 'refused'}: share {s.index ?? '?'} of {safeLine(s.officer ?? 'unknown officer')}
            {s.problem ? ` — ${safeLine(s.problem)}` : ''}
          </li>
        ))}
      </ul>
    </div>
  );
}

function RotatePanel({ ceremony, onCeremony }: { ceremony: Ceremony; onCeremony(c: Ceremony): void }) {
  const { client } = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AirlockErrorShape | null>(null);

  async function run() {
    if (busy) return;
    setBusy(true);
    setError(null);
    const r = await client.keys.rotateKek({ ceremony: ceremony.id });
    setBusy(false);
    if (!r.ok) return setError(r.error);
    onCeremony(r.value.ceremony);
  }

  return (
    <div data-testid="keys-op-rotate">
      <ErrorLine error={error} testId="keys-op-error" />
      <button type="button" className="primary keys-big-button" onClick={() => void run()} disabled={busy} data-testid="keys-op-run">
        {busy ? 'Rotating…' : `Rotate the ${ceremony.params.domain ?? ''} KEK and rewrap its data keys`}
      </button>
    </div>
  );
}

import { useEffect, useState } from 'react';
import type { Out } from '../../../shared/contract/index';
import { CopyButton } from '../../components/CopyButton';
import { downloadText } from '../../components/download';
import { safeLine, safeText } from '../../components/safeText';
import { useApp } from '../../context';
import { shareFileName } from './model';

type IssuedShare = Out<'keys:issueShare'>;

/** The class the print stylesheet (keys.css) keys on: while it is on <body>, only the share prints. */
const PRINTING = 'keys-printing';

/**
 * One officer's share, shown to that officer only after they acknowledged their step (checked
 * the fingerprint): the armored text as a monospace block, to copy, save as a .txt file on their
 * removable media, or print for a paper backup. Printing prints this block alone. The officer
 * hides it once they hold it, so that the next person at the screen does not see it.
 */
export function SharePanel({ share, ceremony, onHide }: { share: IssuedShare; ceremony: string; onHide(): void }) {
  const { api } = useApp();
  const [note, setNote] = useState<string | null>(null);
  const file = shareFileName(share.officer, share.index, ceremony);

  useEffect(() => {
    const done = () => document.body.classList.remove(PRINTING);
    window.addEventListener('afterprint', done);
    return () => {
      window.removeEventListener('afterprint', done);
      done();
    };
  }, []);

  function print() {
    document.body.classList.add(PRINTING);
    try {
      window.print();
    } finally {
      // Chromium's print() returns once the dialog is closed; afterprint covers the others.
      document.body.classList.remove(PRINTING);
    }
  }

  return (
    <section className="keys-share" aria-label={`Share of ${share.officer}`} data-testid={`keys-share-${share.officer}`} data-officer={share.officer}>
      <div className="keys-share-print">
        <h3 tabIndex={-1} className="keys-focus">
          Share {share.index} for <span className="strong">{safeLine(share.officer)}</span>
        </h3>
        <p>
          Fingerprint <span className="mono keys-fingerprint" data-testid="keys-share-fingerprint">{safeLine(share.fingerprint)}</span> ·{' '}
          {share.sealing === 'passphrase' ? 'sealed with your passphrase' : 'not sealed by a passphrase: keep it offline and locked away'}
        </p>
        {/* Focusable: it scrolls, and the keyboard must reach it (axe: scrollable-region-focusable). */}
        <pre className="mono keys-armor" tabIndex={0} aria-label={`Armored share of ${share.officer}`} data-testid="keys-share-armor">
          {safeText(share.armored)}
        </pre>
      </div>
      <div className="form-actions">
        <CopyButton text={share.armored} testId="keys-share-copy" />
        <button
          type="button"
          onClick={() => {
            downloadText(file, share.armored, 'text/plain');
            setNote(`Saved as ${file}.`);
          }}
          data-testid="keys-share-download"
        >
          Download as .txt
        </button>
        <button type="button" onClick={print} data-testid="keys-share-print">
          Print
        </button>
        <button type="button" className="primary" onClick={onHide} data-testid="keys-share-hide">
          I hold my share: hide it
        </button>
        {note ? (
          <span className="muted" role="status" data-testid="keys-share-note">
            {note}
          </span>
        ) : null}
      </div>
      {api.shell === 'electron' ? (
        <p className="hint">The desktop window does not save downloads (hardening): use Copy or Print, or run the ceremony with the CLI (`airlock keys genesis --share-dir DIR`).</p>
      ) : null}
    </section>
  );
}

import { useState } from 'react';
import type { SignInLink } from '../../../shared/contract/session';
import type { AirlockErrorShape } from '../../../shared/domain/errors';
import { copyText } from '../../components/clipboard';
import { ErrorLine } from '../../components/ErrorLine';
import { Time } from '../../components/Time';
import { useApp } from '../../context';

/**
 * The browser console's hand-over for the two-person rule: a new one-time link (session:signInLink,
 * audited) for someone else to open in another window or browser and sign in with their own
 * account, while this person stays signed in here. The link works once, for 5 minutes.
 */
export function SignInLinkCard() {
  const { client } = useApp();
  const [link, setLink] = useState<SignInLink | null>(null);
  const [error, setError] = useState<AirlockErrorShape | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function mint() {
    if (busy) return;
    setBusy(true);
    setError(null);
    setNote(null);
    const r = await client.session.signInLink({});
    setBusy(false);
    if (!r.ok) return setError(r.error);
    setLink(r.value);
  }

  async function copy() {
    if (!link) return;
    setNote((await copyText(link.url)) ? 'Copied.' : 'The clipboard is not available here: select the link and copy it by hand.');
  }

  return (
    <div className="card form-card" data-testid="signin-link-card">
      <h3>Let someone else sign in here</h3>
      <p className="hint">
        A second person (to approve a request, say) signs in beside you with their own account: open the link in another window
        or another browser on this machine. It works once, for 5 minutes; you stay signed in here.
      </p>
      <ErrorLine error={error} testId="signin-link-error" />
      {link ? (
        <>
          <div className="form-row">
            <input
              className="mono"
              readOnly
              value={link.url}
              aria-label="One-time sign-in link"
              spellCheck={false}
              onFocus={(e) => e.currentTarget.select()}
              data-testid="signin-link-url"
            />
            <button type="button" onClick={() => void copy()} data-testid="signin-link-copy">
              Copy
            </button>
          </div>
          <p className="hint" data-testid="signin-link-expiry">
            Works once, until <Time iso={link.expiresAt} />.
          </p>
          {note ? (
            <div className="info-line" role="status" data-testid="signin-link-note">
              {note}
            </div>
          ) : null}
        </>
      ) : null}
      <button type="button" className="primary" onClick={() => void mint()} disabled={busy} data-testid="signin-link-new">
        {link ? 'Another link' : 'Make a sign-in link'}
      </button>
    </div>
  );
}

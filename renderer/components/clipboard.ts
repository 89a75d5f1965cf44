/**
 * Copy text: the async Clipboard API where the shell allows it, else the legacy
 * execCommand path on a temporary off-screen textarea. Returns whether it worked.
 */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // permission denied or unavailable: fall through to the legacy path
  }
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.className = 'offscreen';
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

/** How long a copy button says "Copied" (or "Copy failed") before it reads as before. */
export const COPY_FEEDBACK_MS = 2000;

export type CopyState = 'idle' | 'copied' | 'failed';

/**
 * What a copy button shows and announces in each state: the label changes (seen) and the
 * message goes to an aria-live region (heard); a failure stays visible as a line beside the
 * button, since the person then has to copy by hand.
 */
export function copyFeedback(state: CopyState, label: string): { label: string; message: string } {
  switch (state) {
    case 'copied':
      return { label: 'Copied', message: 'Copied to the clipboard.' };
    case 'failed':
      return { label: 'Copy failed', message: 'Copy failed: select the text and copy it.' };
    default:
      return { label, message: '' };
  }
}

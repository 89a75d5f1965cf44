import './copy.css';
import { useEffect, useRef, useState } from 'react';
import { COPY_FEEDBACK_MS, copyFeedback, copyText, type CopyState } from './clipboard';

/**
 * A copy button with feedback (issue 11): its label says "Copied" (or "Copy failed") for
 * COPY_FEEDBACK_MS, an aria-live region announces it, and a failure is also written beside the
 * button. `text` may be a function, read at the click (a terminal's selection); returning null
 * means there is nothing to copy and `onNothing` says why.
 */
export function CopyButton({
  text,
  label = 'Copy',
  className,
  disabled,
  title,
  testId,
  onNothing,
  onResult,
}: {
  text: string | (() => string | null);
  label?: string;
  className?: string;
  disabled?: boolean;
  title?: string;
  testId?: string;
  onNothing?: () => void;
  /** After each copy: whether it worked, and what was copied. */
  onResult?: (ok: boolean, copied: string) => void;
}) {
  const [state, setState] = useState<CopyState>('idle');
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );

  async function copy() {
    const value = typeof text === 'function' ? text() : text;
    if (value === null || value === '') return onNothing?.();
    const ok = await copyText(value);
    setState(ok ? 'copied' : 'failed');
    onResult?.(ok, value);
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => setState('idle'), COPY_FEEDBACK_MS);
  }

  const shown = copyFeedback(state, label);
  return (
    <span className="copy-wrap">
      <button type="button" className={className} disabled={disabled} title={title} onClick={() => void copy()} data-testid={testId} data-state={state}>
        {shown.label}
      </button>
      <span role="status" aria-live="polite" className={state === 'failed' ? 'copy-failed' : 'sr-only'} data-testid={testId ? `${testId}-status` : undefined}>
        {shown.message}
      </span>
    </span>
  );
}

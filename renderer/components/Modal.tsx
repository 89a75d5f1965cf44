import { useEffect, useId, useLayoutEffect, useRef, type ReactNode } from 'react';
import { createPortal } from 'react-dom';

/**
 * The one modal dialog of the console. While it is open:
 * - it is rendered into `document.body` (a portal) and everything else — the app root (`#root`)
 *   and any dialog under it — is `inert`: no click, Tab or screen reader reaches the page behind;
 * - focus moves into it (an element marked `data-autofocus`, else the body's first control, else
 *   the footer's) and stays in it: Tab and Shift+Tab wrap, and when the focused element goes away
 *   or is disabled (a button that turns busy, a step that replaces the content) focus returns to the
 *   last element focused in the dialog, or its first control, or the dialog itself;
 * - Escape closes it, unless it is `busy` (then the Close button is disabled too);
 * - on close, focus returns to the element that had it when the dialog opened.
 */
export function Modal({
  title,
  onClose,
  children,
  footer,
  testId,
  wide,
  busy,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
  testId?: string;
  wide?: boolean;
  busy?: boolean;
}) {
  const layer = useRef<HTMLDivElement>(null);
  const ref = useRef<HTMLDivElement>(null);
  const busyRef = useRef(!!busy);
  busyRef.current = !!busy;
  const titleId = useId();

  useLayoutEffect(() => {
    const dialog = ref.current;
    const backdrop = layer.current;
    if (!dialog || !backdrop) return;
    const opener = currentOpener();
    stack.push(backdrop);
    applyInert();
    let last: HTMLElement | null = null;
    const restore = () => {
      if (stack[stack.length - 1] !== backdrop) return;
      const a = document.activeElement;
      if (a instanceof HTMLElement && a !== document.body && dialog.contains(a) && !isDisabled(a)) return;
      if (!busyRef.current && last && last !== dialog && dialog.contains(last) && isTabbable(last)) return last.focus();
      const first = busyRef.current ? null : initialFocus(dialog);
      (first ?? dialog).focus();
    };
    const onFocusIn = (e: FocusEvent) => {
      if (e.target instanceof HTMLElement && dialog.contains(e.target)) last = e.target;
    };
    // Focus that leaves (to nowhere) or is lost without an event (an element removed or disabled
    // while focused fires no blur in Chromium): checked after each change of the dialog's content.
    const onFocusOut = (e: FocusEvent) => {
      if (e.relatedTarget === null) setTimeout(restore, 0);
    };
    const observer = new MutationObserver(() => restore());
    observer.observe(dialog, { subtree: true, childList: true, attributes: true, attributeFilter: ['disabled', 'hidden', 'inert'] });
    dialog.addEventListener('focusin', onFocusIn);
    dialog.addEventListener('focusout', onFocusOut);
    (initialFocus(dialog) ?? dialog).focus();
    return () => {
      observer.disconnect();
      dialog.removeEventListener('focusin', onFocusIn);
      dialog.removeEventListener('focusout', onFocusOut);
      const i = stack.indexOf(backdrop);
      if (i >= 0) stack.splice(i, 1);
      applyInert();
      // Back to the opener, once the page behind is no longer inert (inert elements take no focus).
      const top = stack[stack.length - 1];
      if (opener?.isConnected && (top === undefined || top.contains(opener))) returnFocus(opener);
      else if (top) (initialFocus(top) ?? top.querySelector<HTMLElement>('[role="dialog"]'))?.focus();
    };
  }, []);

  // A step that ends busy with focus parked on the dialog itself: to its first control.
  useEffect(() => {
    const dialog = ref.current;
    if (!busy && dialog && document.activeElement === dialog) initialFocus(dialog)?.focus();
  }, [busy]);

  return createPortal(
    <div className="modal-backdrop" ref={layer}>
      <div
        ref={ref}
        className={wide ? 'modal modal-wide' : 'modal'}
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-busy={busy ? true : undefined}
        tabIndex={-1}
        data-testid={testId}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.stopPropagation();
            e.preventDefault();
            if (!busy) onClose();
            return;
          }
          if (e.key === 'Tab' && ref.current) trapTab(ref.current, e);
        }}
      >
        <div className="modal-head">
          <h2 id={titleId}>{title}</h2>
          <button type="button" className="icon-button" aria-label="Close" onClick={onClose} disabled={busy}>
            ×
          </button>
        </div>
        <div className="modal-body">{children}</div>
        {footer ? <div className="modal-foot">{footer}</div> : null}
      </div>
    </div>,
    document.body,
  );
}

/** The open dialogs' backdrops, the top one last. */
const stack: HTMLElement[] = [];

/**
 * The element focused last anywhere in the page. A dialog opened by a call (the step-up and
 * approval prompts) opens after the button that made the call went busy (disabled) and dropped
 * focus to <body>: that button is still its opener.
 */
let lastFocused: HTMLElement | null = null;
if (typeof document !== 'undefined') {
  document.addEventListener(
    'focusin',
    (e) => {
      if (e.target instanceof HTMLElement && e.target !== document.body) lastFocused = e.target;
    },
    true,
  );
}

function currentOpener(): HTMLElement | null {
  const a = document.activeElement;
  if (a instanceof HTMLElement && a !== document.body) return a;
  return lastFocused?.isConnected ? lastFocused : null;
}

/** Everything but the top dialog is inert: the app root, and dialogs opened under the top one. */
function applyInert(): void {
  const top = stack[stack.length - 1] ?? null;
  const root = document.getElementById('root');
  if (root) root.inert = top !== null;
  for (const b of stack) b.inert = b !== top;
}

/**
 * Focus back on the opener. An opener still disabled by the call the dialog answered (a submit
 * button busy until the step-up or approval prompt is done) takes focus once it is enabled again,
 * unless focus went somewhere else meanwhile.
 */
function returnFocus(opener: HTMLElement): void {
  opener.focus();
  if (document.activeElement === opener || !isDisabled(opener)) return;
  const observer = new MutationObserver(() => {
    if (!opener.isConnected) return observer.disconnect();
    if (isDisabled(opener)) return;
    observer.disconnect();
    const a = document.activeElement;
    const top = stack[stack.length - 1];
    if ((top === undefined || top.contains(opener)) && (a === null || a === document.body)) opener.focus();
  });
  observer.observe(opener, { attributes: true, attributeFilter: ['disabled'] });
  setTimeout(() => observer.disconnect(), 10_000);
}

const TABBABLE =
  'a[href], button, input:not([type="hidden"]), select, textarea, summary, [tabindex]:not([tabindex="-1"]), [contenteditable="true"]';

function isDisabled(el: Element): boolean {
  return el.matches(':disabled');
}

function isTabbable(el: HTMLElement): boolean {
  return el.isConnected && !isDisabled(el) && el.tabIndex >= 0 && el.closest('[inert]') === null && el.getClientRects().length > 0;
}

/** In Tab order's terms: of a radio group, only the checked radio (or the first, when none is). */
function tabbables(dialog: HTMLElement): HTMLElement[] {
  const all = Array.from(dialog.querySelectorAll<HTMLElement>(TABBABLE)).filter(isTabbable);
  return all.filter((el) => {
    if (!(el instanceof HTMLInputElement) || el.type !== 'radio' || !el.name || el.checked) return true;
    const group = all.filter((o): o is HTMLInputElement => o instanceof HTMLInputElement && o.type === 'radio' && o.name === el.name);
    return !group.some((o) => o.checked) && group[0] === el;
  });
}

/** `data-autofocus`, else the body's first control, else the footer's, else the header's (Close). */
function initialFocus(dialog: HTMLElement): HTMLElement | null {
  const all = tabbables(dialog);
  return (
    all.find((el) => el.hasAttribute('data-autofocus')) ??
    all.find((el) => el.closest('.modal-body')) ??
    all.find((el) => el.closest('.modal-foot')) ??
    all[0] ??
    null
  );
}

/** Tab from the last control goes to the first, Shift+Tab from the first (or the dialog) to the last. */
function trapTab(dialog: HTMLElement, e: { shiftKey: boolean; preventDefault(): void }): void {
  const all = tabbables(dialog);
  const a = document.activeElement as HTMLElement | null;
  if (all.length === 0) {
    e.preventDefault();
    dialog.focus();
    return;
  }
  const first = all[0]!;
  const last = all[all.length - 1]!;
  const inside = a !== null && a !== dialog && all.includes(a);
  if (e.shiftKey && (!inside || a === first)) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && (!inside || a === last)) {
    e.preventDefault();
    first.focus();
  }
}

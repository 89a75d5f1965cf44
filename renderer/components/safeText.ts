import { revealHidden } from '../../shared/domain/visible-text';

/**
 * Text that comes from managed hosts (hostname, OS string, GPU names, error
 * messages quoting host output) is untrusted. React already escapes it as text;
 * this also neutralises what could still mislead an operator on screen:
 * terminal escape sequences are removed; C0/C1 control characters, Unicode bidi
 * overrides ("Trojan Source" style reordering of what is displayed) and every
 * invisible character (zero-width, tag characters, Hangul fillers, soft hyphen,
 * variation selectors…) are shown as `\u{XXXX}` (shared/domain/visible-text.ts):
 * dropping them would make `gpu\u200b1` read as `gpu1`.
 * The terminal view is the one place where escape sequences are interpreted.
 */

// In both their 7-bit (ESC …) and 8-bit (C1) forms: CSI … final byte; OSC … BEL/ST (titles,
// hyperlinks, clipboard writes); DCS, SOS, PM, APC … ST; then any other two-byte ESC sequence.
// Whole strings go, so an 8-bit OSC does not leave its payload ("0;pwned") behind as text.
const ANSI =
  /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]|(?:\u001b\]|\u009d)[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)?|(?:\u001b[PX^_]|[\u0090\u0098\u009e\u009f])[^\u001b\u009c]*(?:\u001b\\|\u009c)?|\u001b[@-Z\\-_]/g;

/**
 * Remove escape sequences; show every other control, bidi and invisible character as a visible
 * escape; keep TAB and LF (multi-line views). Text the core never sanitised (audit parameters,
 * imported files echoed back) relies on this alone.
 */
export function safeText(value: unknown): string {
  if (value === null || value === undefined) return '';
  const s = typeof value === 'string' ? value : String(value);
  return revealHidden(s.replace(ANSI, ''), { keep: '\t\n' });
}

/** safeText for a single-line cell: whitespace runs (including newlines) become one space. */
export function safeLine(value: unknown, max = 2000): string {
  if (value === null || value === undefined) return '';
  // Layout whitespace becomes spaces before the rest is made visible (U+2028 stays visible).
  const raw = (typeof value === 'string' ? value : String(value)).replace(ANSI, '').replace(/[\t\n\r\v\f]/g, ' ');
  const s = revealHidden(raw).replace(/ {2,}/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

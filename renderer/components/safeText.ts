/**
 * Text that comes from managed hosts (hostname, OS string, GPU names, error
 * messages quoting host output) is untrusted. React already escapes it as text;
 * this also removes what could still mislead an operator on screen:
 * terminal escape sequences, C0/C1 control characters and Unicode bidi
 * overrides ("Trojan Source" style reordering of what is displayed).
 * The terminal view is the one place where escape sequences are interpreted.
 */

// In both their 7-bit (ESC …) and 8-bit (C1) forms: CSI … final byte; OSC … BEL/ST (titles,
// hyperlinks, clipboard writes); DCS, SOS, PM, APC … ST; then any other two-byte ESC sequence.
// Whole strings go, so an 8-bit OSC does not leave its payload ("0;pwned") behind as text.
const ANSI =
  /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]|(?:\u001b\]|\u009d)[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)?|(?:\u001b[PX^_]|[\u0090\u0098\u009e\u009f])[^\u001b\u009c]*(?:\u001b\\|\u009c)?|\u001b[@-Z\\-_]/g;
// C0 except TAB and LF, DEL, C1.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// Bidi controls (ALM, LRM/RLM, embeddings, overrides, isolates) and invisible format characters
// (zero-width space/joiners, word joiner, invisible operators and separators, BOM): the same set
// the core removes (electron/core/ssh/sanitize.ts) plus ALM. Text the core never sanitised (audit
// parameters, imported files echoed back) relies on this list alone.
const BIDI = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

/** Remove escape sequences, control and bidi-control characters; keeps TAB and LF. */
export function safeText(value: unknown): string {
  if (value === null || value === undefined) return '';
  const s = typeof value === 'string' ? value : String(value);
  return s.replace(ANSI, '').replace(CONTROL, '').replace(BIDI, '');
}

/** safeText for a single-line cell: whitespace runs (including newlines) become one space. */
export function safeLine(value: unknown, max = 2000): string {
  const s = safeText(value).replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

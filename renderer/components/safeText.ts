/**
 * Text that comes from managed hosts (hostname, OS string, GPU names, error
 * messages quoting host output) is untrusted. React already escapes it as text;
 * this also removes what could still mislead an operator on screen:
 * terminal escape sequences, C0/C1 control characters and Unicode bidi
 * overrides ("Trojan Source" style reordering of what is displayed).
 * The terminal view is the one place where escape sequences are interpreted.
 */

// CSI … final byte, OSC … BEL/ST, and two-byte ESC sequences.
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]|\u009b[0-?]*[ -/]*[@-~]/g;
// C0 except TAB and LF, DEL, C1.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// Bidi embeddings/overrides/isolates and other invisible format characters.
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u200b-\u200d\u2060\ufeff]/g;

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

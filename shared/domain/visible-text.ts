/**
 * Characters that draw nothing, or steer how the text around them is drawn, let one name pass
 * for another: `gpu1` and `gpu\u200b1` look the same, a right-to-left override reorders what an
 * approver reads ("Trojan Source"), a tag character or a Hangul filler hides text inside a name,
 * U+2028 breaks a "single" line, ESC starts a terminal command. Removing them is no defence (it
 * *makes* the two names identical on screen), so text Airlock did not write itself is shown with
 * each of them replaced by a visible `\u{XXXX}` escape, and names Airlock accepts as identifiers
 * refuse them at the schema.
 *
 * The set is Unicode's Default_Ignorable_Code_Point (zero-width characters, joiners, soft hyphen,
 * Hangul fillers, variation selectors, tag characters, the BOM…) plus every control (Cc), format
 * character (Cf: bidi embeddings, overrides, isolates and marks), line and paragraph separator
 * (Zl, Zp) and lone surrogate (Cs). Shared by the core, the CLI and the renderer.
 */
const HIDDEN_CLASS = String.raw`\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}`;
const HIDDEN = new RegExp(`[${HIDDEN_CLASS}]`, 'u');
const HIDDEN_ALL = new RegExp(`[${HIDDEN_CLASS}]`, 'gu');

/** True when `s` holds a character of the hidden set (see the module comment). */
export function hasHiddenChars(s: string): boolean {
  return HIDDEN.test(s);
}

/** `\u{200B}` for U+200B: the code point, in the form JavaScript and Rust use, upper-case hex. */
export function visibleEscape(c: string): string {
  return `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`;
}

/**
 * `s` with every hidden character replaced by its visible escape (`gpu\u{200B}1`); everything else,
 * printable ASCII included, unchanged. `keep` lists characters to leave as they are (a multi-line
 * view keeps "\n", a table keeps "\t"); `escape` writes another form (JSON's `\uXXXX`). Never throws;
 * a non-string gives ''.
 */
export function revealHidden(s: unknown, opts: { keep?: string; escape?: (c: string) => string } = {}): string {
  if (typeof s !== 'string') return '';
  const keep = opts.keep ?? '';
  const escape = opts.escape ?? visibleEscape;
  return s.replace(HIDDEN_ALL, (c) => (keep.includes(c) ? c : escape(c)));
}

/**
 * A zod-free check for schemas (shared/contract refines with it): the message names the first
 * hidden character so the person who typed or pasted it can find it.
 */
export function hiddenCharProblem(s: string, opts: { allow?: string } = {}): string | null {
  for (const m of s.matchAll(HIDDEN_ALL)) {
    if (opts.allow?.includes(m[0])) continue;
    return `contains an invisible or control character (U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at position ${m.index})`;
  }
  return null;
}

/**
 * Text that came from a host (command output, server messages, file contents) is shown in the UI,
 * written to audit records and printed by the CLI. A hostile host could otherwise repaint an
 * operator's terminal, hide text, or spoof what a name says; everything but the xterm.js terminal
 * goes through here.
 */

// Applied only after the input has been capped, so none of these can be made to run long.
const OSC = /(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c|$)/g; // window titles, hyperlinks, clipboard writes
const DCS_SOS_PM_APC = /(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c|$)/g;
const CSI = /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?/g; // colours, cursor moves, screen clears
const ESC_OTHER = /\x1b[\x20-\x2f]*[\x30-\x7e]?/g;
// Bidi overrides and isolates reorder what is displayed ("Trojan Source"); zero-width characters and
// the BOM make two different names look identical.
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/**
 * One line of displayable text: escape sequences removed, control characters removed (tabs become
 * spaces), trimmed, at most `maxLen` code points. Never throws.
 */
export function sanitizeHostText(s: unknown, maxLen: number): string {
  if (typeof s !== 'string' || maxLen <= 0) return '';
  // Escape sequences can be long, so allow some slack before the final cap, but bound the work.
  let t = s.length > maxLen * 4 + 4096 ? s.slice(0, maxLen * 4 + 4096) : s;
  t = t
    .replace(OSC, '')
    .replace(DCS_SOS_PM_APC, '')
    .replace(CSI, '')
    .replace(ESC_OTHER, '')
    .replace(/\t/g, ' ')
    .replace(CONTROL, '')
    .replace(INVISIBLE, '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .trim();
  const cps = Array.from(t);
  return cps.length > maxLen ? cps.slice(0, maxLen).join('') : t;
}

/**
 * Multi-line host output (command output shown in a run's log): like {@link sanitizeHostText} per
 * line, but newlines are kept (CR LF and lone CR become LF) and at most `maxLen` code points of the
 * *end* are kept, since the tail of a log is what explains a failure. Never throws.
 */
export function sanitizeHostLines(s: unknown, maxLen: number): string {
  if (typeof s !== 'string' || maxLen <= 0) return '';
  const t = s.length > maxLen * 4 + 4096 ? s.slice(s.length - (maxLen * 4 + 4096)) : s;
  const lines = t.replace(/\r\n?/g, '\n').split('\n').map((l) => sanitizeHostText(l, maxLen).replace(/\s+$/, ''));
  const out = lines.join('\n');
  const cps = Array.from(out);
  return cps.length > maxLen ? cps.slice(cps.length - maxLen).join('') : out;
}

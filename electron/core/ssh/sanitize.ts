import { revealHidden } from '../../../shared/domain/visible-text';

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
// What is left of the controls, and every invisible or format character (bidi overrides reorder what
// is displayed, zero-width characters, tag characters and Hangul fillers make two different names
// look identical): shown as visible `\u{XXXX}` escapes (shared/domain/visible-text.ts). Removing
// them would itself make `gpu\u200b1` read as `gpu1`.

/**
 * One line of displayable text: escape sequences removed, TAB, CR and LF become spaces, every other
 * control or invisible character is shown as a `\u{XXXX}` escape, trimmed, at most `maxLen` code
 * points. Never throws.
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
    .replace(/[\t\r\n]/g, ' ')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .trim();
  t = revealHidden(t);
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

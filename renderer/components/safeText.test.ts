import { describe, expect, it } from 'vitest';
import { safeLine, safeText } from './safeText';
import { formatMiB, orDash, shortFingerprint } from './format';

describe('safeText', () => {
  it('removes terminal escape sequences and shows control and bidi characters as escapes', () => {
    expect(safeText('\u001b[31mred\u001b[0m')).toBe('red');
    expect(safeText('title\u001b]0;pwned\u0007 ok')).toBe('title ok');
    expect(safeText('a\u0000b\u0007c\u007fd\u0085e')).toBe('a\\u{0}b\\u{7}c\\u{7F}d\\u{85}e');
    expect(safeText('x\u009b31my')).toBe('xy');
    expect(safeText('abc\u202edcba')).toBe('abc\\u{202E}dcba');
    expect(safeText('tab\tand\nnewline')).toBe('tab\tand\nnewline');
  });

  it('removes 8-bit (C1) and string sequences whole, not only their introducer', () => {
    expect(safeText('a\u009d0;pwned\u009cb')).toBe('ab');
    expect(safeText('a\u001b]8;;https://evil.example/\u001b\\link\u001b]8;;\u001b\\b')).toBe('alinkb');
    expect(safeText('a\u001b]52;c;cHduZWQ=\u0007b')).toBe('ab');
    expect(safeText('a\u001bP+q544e\u001b\\b')).toBe('ab');
    expect(safeText('a\u0090+q\u009cb\u009e pm \u009cc\u009f apc \u009cd')).toBe('abcd');
  });

  it('shows every invisible character a name could hide behind, so a look-alike never reads as gpu1', () => {
    const hidden = ['\u061c', '\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u2060', '\u2061', '\u2062', '\u2063', '\u2064', '\u2066', '\u2069', '\ufeff',
      '\u{e0041}', '\u{e007f}', '\u2028', '\u2029', '\u00ad', '\u115f', '\u1160', '\u3164', '\uffa0', '\ufe0f', '\u{e0100}'];
    for (const c of hidden) {
      const shown = safeText(`gpu${c}1`);
      expect(shown, `U+${c.codePointAt(0)!.toString(16)}`).toBe(`gpu\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}1`);
      expect(safeLine(`gpu${c}1`)).toBe(shown);
    }
  });

  it('keeps ordinary text, including non-ASCII', () => {
    expect(safeText('NVIDIA A100-SXM4-80GB — 80 GiB, 52 °C')).toBe('NVIDIA A100-SXM4-80GB — 80 GiB, 52 °C');
    expect(safeText(null)).toBe('');
    expect(safeText(42)).toBe('42');
  });

  it('collapses whitespace and bounds length for single-line cells', () => {
    expect(safeLine('  line one\r\n line\ttwo ')).toBe('line one line two');
    expect(safeLine('x'.repeat(10), 4)).toBe('xxxx…');
  });

  it('leaves markup as inert text (React renders it escaped)', () => {
    expect(safeText('<img src=x onerror=alert(1)>')).toBe('<img src=x onerror=alert(1)>');
  });
});

describe('format', () => {
  it('shows null as a dash', () => {
    expect(orDash(null)).toBe('—');
    expect(orDash('')).toBe('—');
    expect(formatMiB(null)).toBe('—');
  });
  it('formats memory and fingerprints compactly', () => {
    expect(formatMiB(81920)).toBe('80 GiB');
    expect(formatMiB(512)).toBe('512 MiB');
    expect(shortFingerprint('SHA256:xb8qmh6APF/7zAEm5jOhL4XHDRIhOQsqZxf8rgCb/Qo')).toBe('SHA256:xb8qmh6A…b/Qo');
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sanitizeHostText } from './sanitize';

describe('sanitizeHostText', () => {
  it('removes CSI, OSC, DCS and other escape sequences', () => {
    expect(sanitizeHostText('\u001b[31mred\u001b[0m', 100)).toBe('red');
    expect(sanitizeHostText('a\u001b]0;pwned title\u0007b', 100)).toBe('ab');
    expect(sanitizeHostText('a\u001b]8;;http://evil\u001b\\link\u001b]8;;\u001b\\b', 100)).toBe('alinkb');
    expect(sanitizeHostText('a\u001b]52;c;ZXZpbA==\u0007b', 100)).toBe('ab'); // clipboard write
    expect(sanitizeHostText('a\u001bP1$r\u001b\\b', 100)).toBe('ab');
    expect(sanitizeHostText('a\u009b2Jb\u009d0;t\u009cc', 100)).toBe('abc'); // 8-bit C1 forms
    expect(sanitizeHostText('a\u001bcb\u001b(Bc', 100)).toBe('abc');
    expect(sanitizeHostText('unterminated \u001b]0;title', 100)).toBe('unterminated');
  });

  it('shows control characters, bidi overrides and zero-width characters as visible escapes', () => {
    expect(sanitizeHostText('a\u0000b\u0007c\rd\ne\u007ff\u0085g', 100)).toBe('a\\u{0}b\\u{7}c d e\\u{7F}f\\u{85}g');
    expect(sanitizeHostText('tab\there', 100)).toBe('tab here');
    expect(sanitizeHostText('ab\u202ecd\u2066e\u200bf\ufeffg', 100)).toBe('ab\\u{202E}cd\\u{2066}e\\u{200B}f\\u{FEFF}g');
  });

  it('never lets a spoofed host name read as the real one (tag characters, fillers, soft hyphen, separators)', () => {
    for (const c of ['\u{e0041}', '\u3164', '\u115f', '\uffa0', '\u00ad', '\u2028', '\u2029', '\ufe0f', '\u200d']) {
      const shown = sanitizeHostText(`gpu${c}1`, 100);
      expect(shown).not.toBe('gpu1');
      expect(shown).toBe(`gpu\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}1`);
    }
  });

  it('caps length without splitting a surrogate pair', () => {
    expect(sanitizeHostText('x'.repeat(100), 10)).toBe('x'.repeat(10));
    expect(sanitizeHostText('😀😀😀', 2)).toBe('😀😀');
    expect(sanitizeHostText('a\ud800b', 10)).toBe('a\ufffdb');
  });

  it('keeps ordinary text and Unicode', () => {
    expect(sanitizeHostText('  NVIDIA A100-SXM4-80GB  ', 100)).toBe('NVIDIA A100-SXM4-80GB');
    expect(sanitizeHostText('Ubuntu 22.04.4 LTS — ü', 100)).toBe('Ubuntu 22.04.4 LTS — ü');
  });

  it('tolerates non-strings', () => {
    expect(sanitizeHostText(undefined, 10)).toBe('');
    expect(sanitizeHostText(42 as unknown, 10)).toBe('');
  });

  it('never leaves an escape or control character, and respects the cap', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 0, max: 200 }), (s, max) => {
        const out = sanitizeHostText(s, max);
        expect(out).not.toMatch(/[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
        expect(Array.from(out).length).toBeLessThanOrEqual(max);
      }),
      { numRuns: 3000 },
    );
  });

  it('stays fast on hostile input', () => {
    const evil = '\u001b['.repeat(200_000) + '\u001b]'.repeat(200_000);
    const t = Date.now();
    sanitizeHostText(evil, 1000);
    expect(Date.now() - t).toBeLessThan(500);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasHiddenChars, hiddenCharProblem, revealHidden } from './visible-text';

/** Every character the issue names, each one a way to hide or reorder text. */
const NAMED = [
  0xe0000, 0xe0001, 0xe0041, 0xe007f, // tag characters
  0x2028, 0x2029, // line and paragraph separators
  0x00ad, // soft hyphen
  0x115f, 0x1160, 0x3164, 0xffa0, // Hangul fillers
  0x200b, 0x200c, 0x200d, 0x200e, 0x200f, // zero-width and marks
  0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, // bidi controls
  0xfe00, 0xfe0f, 0xe0100, 0xe01ef, // variation selectors
  0x034f, 0x061c, 0x180e, 0x2060, 0x2064, 0xfeff, // other default-ignorables
  0x00, 0x07, 0x09, 0x0a, 0x0d, 0x1b, 0x7f, 0x85, 0x9b, 0x9d, // C0, DEL, C1
].map((c) => String.fromCodePoint(c));

/** The property the CLI, the core and the renderer rely on, checked independently of the module. */
const ANY_HIDDEN = /[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

describe('revealHidden', () => {
  it('shows each named character as a visible escape, so two look-alike names differ on screen', () => {
    for (const c of NAMED) {
      const out = revealHidden(`gpu${c}1`);
      expect(out, `U+${c.codePointAt(0)!.toString(16)}`).toBe(`gpu\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}1`);
      expect(out).not.toBe('gpu1');
    }
    expect(revealHidden('a\ud800b')).toBe('a\\u{D800}b'); // a lone surrogate
  });

  it('keeps what the caller keeps (line breaks of a multi-line view, tabs of a table)', () => {
    expect(revealHidden('a\tb\nc\u202ed', { keep: '\t\n' })).toBe('a\tb\nc\\u{202E}d');
    expect(revealHidden('a\tb\nc')).toBe('a\\u{9}b\\u{A}c');
  });

  it('leaves ordinary text unchanged, non-ASCII included', () => {
    for (const s of ['NVIDIA A100-SXM4-80GB', 'Ubuntu 22.04.4 LTS — ü', '한국어', 'emoji 😀', '<img src=x>', 'a\u00a0b']) expect(revealHidden(s)).toBe(s);
    expect(revealHidden(undefined)).toBe('');
  });

  it('never outputs a hidden character (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        expect(revealHidden(s)).not.toMatch(ANY_HIDDEN);
        expect(hasHiddenChars(revealHidden(s))).toBe(false);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...NAMED, 'a', 'Z', '1', ' ')), (parts) => {
        expect(revealHidden(parts.join(''))).not.toMatch(ANY_HIDDEN);
      }),
    );
  });

  it('leaves printable ASCII unchanged (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 200 }), (s) => {
        expect(revealHidden(s)).toBe(s);
        expect(hasHiddenChars(s)).toBe(false);
        expect(hiddenCharProblem(s)).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  it('hiddenCharProblem names the first hidden character and its position', () => {
    expect(hiddenCharProblem('ab\u200bc')).toBe('contains an invisible or control character (U+200B at position 2)');
    expect(hiddenCharProblem('line one\nline two', { allow: '\n' })).toBeNull();
    expect(hiddenCharProblem('x\u{e0041}')).toMatch(/U\+E0041/);
  });
});

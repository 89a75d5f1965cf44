import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonical, wellFormed } from './canonical';

describe('canonical JSON (RFC 8785)', () => {
  it('matches the reference implementation (the canonicalize package) on arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(canonical(v)).toBe(canonicalize(v));
      }),
      { numRuns: 3000 },
    );
  });

  it('matches it on objects with undefined members, nested arrays with undefined, and Dates', () => {
    const v = { b: undefined, a: [1, undefined, { z: new Date(0), y: 'é\u2028"\\\n' }], c: -0, d: 1e21, e: 5e-7 };
    expect(canonical(v)).toBe(canonicalize(v));
  });

  it('sorts keys by UTF-16 code units, as RFC 8785 §3.2.3 requires', () => {
    // RFC 8785's own example: "\u20ac" (€) sorts before "\ud83d\ude00" (😀), and "\r" before "1".
    const v = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    const out = canonical(v);
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) => out.indexOf(JSON.stringify(k) + ':'));
    expect(order.every((pos, i) => pos >= 0 && (i === 0 || pos > order[i - 1]!))).toBe(true);
  });

  it('refuses what has no canonical form', () => {
    expect(() => canonical(NaN)).toThrow(/NaN/);
    expect(() => canonical({ x: Infinity })).toThrow(/Infinity/);
    expect(() => canonical('\ud800')).toThrow(/surrogate/);
    expect(() => canonical(undefined)).toThrow(/no canonical/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => canonical(loop)).toThrow(/Circular/);
  });

  it('wellFormed replaces lone surrogates and keeps pairs', () => {
    expect(wellFormed('a\ud800b\udc00c\ud83d\ude00')).toBe('a\ufffdb\ufffdc\ud83d\ude00');
    expect(() => canonical(wellFormed('\udfff'))).not.toThrow();
  });
});

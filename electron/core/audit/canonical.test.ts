import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonical, canonicalEvent, wellFormed } from './canonical';

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

  it('canonicalEvent(input, seq, ts) is canonical({ ...input, seq, ts }), for event-shaped inputs and any other', () => {
    const member = fc.oneof(fc.jsonValue(), fc.constant(undefined));
    const members = { actor: member, roles: member, session: member, shell: member, channel: member, phase: member, target: member, params: member, outcome: member, errorCode: member };
    const anyInput = fc.oneof(fc.record(members), fc.record(members, { requiredKeys: [] }), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 12 }));
    fc.assert(
      fc.property(anyInput, fc.integer({ min: 1 }), fc.string(), (i, seq, ts) => {
        const ev = i as Record<string, unknown>;
        let expected: string | Error;
        try {
          expected = canonical({ ...ev, seq, ts });
        } catch (e) {
          expected = e as Error;
        }
        if (expected instanceof Error) expect(() => canonicalEvent(ev, seq, ts)).toThrow(expected.message);
        else expect(canonicalEvent(ev, seq, ts)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
    const ok = { actor: 'a', roles: ['admin'], session: null, shell: 'cli', channel: 'hosts:add', phase: 'request', target: null, params: { b: 1, a: [2] }, outcome: 'pending', errorCode: null };
    // Keys in another insertion order, a member left undefined, a foreign key, a toJSON, a cycle.
    const reordered = Object.fromEntries(Object.entries(ok).reverse());
    const cases: Array<Record<string, unknown>> = [ok, reordered, { ...ok, target: undefined }, { ...ok, seq: 9 }, { ...ok, extra: 1 }, { ...ok, toJSON: () => 'x' }];
    for (const c of cases) expect(canonicalEvent(c, 7, 'T')).toBe(canonical({ ...c, seq: 7, ts: 'T' }));
    const loop: Record<string, unknown> = { ...ok };
    loop.params = loop;
    expect(() => canonicalEvent(loop, 1, 'T')).toThrow(/Circular/);
    expect(() => canonicalEvent({ ...ok, params: { n: NaN } }, 1, 'T')).toThrow(/NaN/);
  });

  it('wellFormed replaces lone surrogates and keeps pairs', () => {
    expect(wellFormed('a\ud800b\udc00c\ud83d\ude00')).toBe('a\ufffdb\ufffdc\ud83d\ude00');
    expect(() => canonical(wellFormed('\udfff'))).not.toThrow();
  });
});

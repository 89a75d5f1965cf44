import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shCommand, shellQuote, shellQuoteScript } from './quote';

/** What a real /bin/sh makes of `printf %s <quoted>`: the value must come back byte for byte. */
const echoed = (quoted: string) => execFileSync('/bin/sh', ['-c', `printf %s ${quoted}`], { encoding: 'utf8' });

describe('shell quoting (the one place)', () => {
  it('gives /bin/sh back every value exactly, whatever it holds', () => {
    for (const v of ["it's", "'", "''", '$(id)', '`id`', '"; rm -rf / #', '\\', '*', '-n', 'a b\tc', '$HOME', '!']) {
      expect(echoed(shellQuote(v))).toBe(v);
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !/[\0\r\n]/.test(s)), (v) => {
        expect(echoed(shellQuote(v))).toBe(v);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses NUL, CR and LF in values; scripts keep their newlines, refuse NUL', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\0b']) expect(() => shellQuote(bad)).toThrow(/NUL, CR or newline/);
    expect(() => shellQuoteScript('a\0b')).toThrow(/NUL/);
    expect(echoed(shellQuoteScript("line 1\nit's line 2"))).toBe("line 1\nit's line 2");
  });

  it('runs a script under /bin/sh as one command', () => {
    const out = execFileSync('/bin/sh', ['-c', shCommand(`x=${shellQuote("it's")}; printf '%s|' "$x"; printf 'second line'`)], { encoding: 'utf8' });
    expect(out).toBe("it's|second line");
  });
});

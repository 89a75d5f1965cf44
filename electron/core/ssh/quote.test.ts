import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
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

describe('one place', () => {
  it('no other source file quotes for the shell by hand', () => {
    const root = path.resolve(__dirname, '../../..');
    const idiom = "'\\\\''"; // the close-escape-reopen of a single quote, as written in source
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|tsx|mjs)$/.test(e.name) && !/\.test\.ts$/.test(e.name) && p !== __filename.replace(/\.test\.ts$/, '.ts')) {
          if (fs.readFileSync(p, 'utf8').includes(idiom)) found.push(path.relative(root, p));
        }
      }
    };
    for (const d of ['electron', 'shared', 'renderer', 'test', 'scripts']) walk(path.join(root, d));
    expect(found).toEqual([]);
  });
});

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { shellQuote } from './quote';

/** What /bin/sh makes of a quoted word: the bytes `printf %s` receives. */
function throughShell(word: string): string {
  return execFileSync('/bin/sh', ['-c', `printf %s ${word}`], { encoding: 'utf8' });
}

describe('shellQuote', () => {
  it('gives the shell back exactly the value, whatever quotes, expansions and operators it holds', () => {
    const values = [
      '',
      'plain',
      "it's",
      "''",
      '$(touch /tmp/pwned) `id` ${HOME} $HOME',
      'a b\tc',
      '; rm -rf / #',
      '"double" \\back\\slash',
      '*?[a-z]~',
      '-n',
      'ünïcödé ✓ 模型',
    ];
    for (const v of values) expect(throughShell(shellQuote(v))).toBe(v);
  });

  it('round-trips random printable strings', () => {
    for (let i = 0; i < 200; i++) {
      const v = Array.from(randomBytes(24), (b) => String.fromCharCode(0x20 + (b % 95))).join('');
      expect(throughShell(shellQuote(v))).toBe(v);
    }
  });

  it('refuses NUL, CR and LF', () => {
    for (const bad of ['a\0b', 'a\nb', 'a\rb']) {
      expect(() => shellQuote(bad)).toThrow(AirlockError);
      try {
        shellQuote(bad);
      } catch (e) {
        expect((e as AirlockError).code).toBe('INVALID_INPUT');
      }
    }
  });
});

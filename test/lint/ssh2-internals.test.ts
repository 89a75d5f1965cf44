import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * ssh2's internals are reached only in electron/core/ssh/ssh2-internals.ts: elsewhere in ssh/,
 * lint refuses `._private` members, a channel's `outgoing`/`incoming`, and the casts and
 * destructuring that reach them. Each case lints a small source as if it sat at the given path.
 */
const eslint = new ESLint({ cwd: process.cwd() });

async function errorsFor(filePath: string, code: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath });
  return (res?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId ?? ''}: ${m.message}`);
}

const reachIn: string[] = [
  'const sock = (client as any)._sock;',
  "const proto = raw['_protocol'];",
  'raw._writeReqid = raw._writeReqid + 1;',
  'const id = ch.outgoing.id;',
  "const w = ch['incoming'].window;",
  'const s = client as unknown as { _sock?: unknown };',
  "type T = { '_extensions': Record<string, string> };",
  'const { _maxWriteLen } = raw;',
];

describe('ssh2 internals lint', () => {
  for (const file of ['electron/core/ssh/x.ts', 'electron/core/ssh/sftp/fast-path.ts', 'electron/core/ssh/connection/channels.ts', 'electron/core/ssh/sftp.integration.test.ts']) {
    it.each(reachIn)(`refuses in ${file}: %s`, async (code) => {
      const errs = await errorsFor(file, code);
      expect(errs.length).toBeGreaterThan(0);
      expect(errs.every((e) => e.startsWith('no-restricted-syntax:') && e.includes('ssh2-internals.ts'))).toBe(true);
    });
  }

  it.each(reachIn)('allows it in electron/core/ssh/ssh2-internals.ts: %s', async (code) => {
    expect(await errorsFor('electron/core/ssh/ssh2-internals.ts', code)).toEqual([]);
  });

  it('allows ssh2\'s public API and our own fields in ssh/', async () => {
    const code = "ch.signal('KILL'); raw.write(h, b, 0, 1, 0, cb); this.raw.end(); const sock = clientSocket(this.client); const { fingerprint } = conn;";
    expect(await errorsFor('electron/core/ssh/connection/channels.ts', code)).toEqual([]);
  });

  it('keeps the syntax rules every file has (untrusted HTML) inside ssh/, where its own rule replaces the list', async () => {
    const errs = await errorsFor('electron/core/ssh/x.tsx', 'export const X = () => <div dangerouslySetInnerHTML={{ __html: "x" }} />;');
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('render text, never HTML');
  });
});

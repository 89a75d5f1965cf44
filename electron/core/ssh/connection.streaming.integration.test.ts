/**
 * Streaming exec (onStdout/onStderr as output arrives, stdin from a stream) against a real lab host.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, labDown, labUp, type Lab } from '../../../test/lab/lab';
import { connect } from './connection/connect';
import type { SshConnection } from './connection/types';
import { generateIdentity } from '../identity/ssh-key';

const LAB_ID = 'ssh-exec';
const T = 20_000;
let lab: Lab;
let conn: SshConnection;
const identity = generateIdentity('airlock-exec-test');

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  lab = await labUp({ id: LAB_ID, hosts: 1 });
  await authorizeKey(lab, identity.publicKey);
  const h = lab.hosts[0]!;
  conn = await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: identity.privateKey }, { timeoutMs: T });
});

afterAll(async () => {
  conn?.close();
  await labDown({ id: LAB_ID });
});

describe('exec with streamed output', () => {
  it('calls onStdout and onStderr as output arrives, and still returns the whole result', async () => {
    const seen: Array<{ at: number; stream: 'out' | 'err'; text: string }> = [];
    const t0 = Date.now();
    const r = await conn.exec('echo first; sleep 1; echo second >&2; sleep 1; echo third', {
      timeoutMs: T,
      onStdout: (b) => seen.push({ at: Date.now() - t0, stream: 'out', text: b.toString() }),
      onStderr: (b) => seen.push({ at: Date.now() - t0, stream: 'err', text: b.toString() }),
    });
    const done = Date.now() - t0;
    expect(r).toEqual({ code: 0, signal: null, stdout: 'first\nthird\n', stderr: 'second\n', truncated: false });
    expect(seen.map((s) => [s.stream, s.text])).toEqual([
      ['out', 'first\n'],
      ['err', 'second\n'],
      ['out', 'third\n'],
    ]);
    // The first line came while the command still had two seconds to run.
    expect(done - seen[0]!.at).toBeGreaterThan(1500);
    expect(seen[2]!.at - seen[1]!.at).toBeGreaterThan(700);
  });

  it('hands the callbacks everything while the result keeps only the cap; a throwing callback changes nothing', async () => {
    let streamed = 0;
    let calls = 0;
    const r = await conn.exec('head -c 300000 /dev/zero | tr "\\0" a; echo tail >&2', {
      timeoutMs: T,
      maxOutputBytes: 1000,
      onStdout: (b) => {
        streamed += b.length;
        calls++;
        throw new Error('a listener that fails');
      },
    });
    expect(r).toMatchObject({ code: 0, truncated: true, stderr: 'tail\n' });
    expect(r.stdout).toBe('a'.repeat(1000));
    expect(streamed).toBe(300000);
    expect(calls).toBeGreaterThan(1);
  });

  it('takes stdin from a stream, so a command can be fed while it runs', async () => {
    const input = new PassThrough();
    let out = '';
    const p = conn.exec('while IFS= read -r l; do echo "got $l"; done; echo end', { timeoutMs: T, stdin: input, onStdout: (b) => (out += b.toString()) });
    input.write('a\n');
    await waitFor(() => out.includes('got a'), T, 'the first answer');
    expect(out).toBe('got a\n');
    input.write('b\n');
    await waitFor(() => out.includes('got b'), T, 'the second answer');
    input.end();
    expect((await p).stdout).toBe('got a\ngot b\nend\n');
  });
});

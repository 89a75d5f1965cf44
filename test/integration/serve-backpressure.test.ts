/**
 * Issue 10: a page that stops reading its event socket never makes `airlock serve` buffer without
 * bound. The console runs as its own process, the terminal is a real PTY on a lab host over real
 * SSH, and the page is a WebSocket client whose socket is paused (it reads nothing, so TCP and
 * then the server's `bufferedAmount` fill up). The server must pause the SSH channel: its RSS stays
 * bounded while the host has 50 MB to say, and once the page reads again every byte arrives.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, labDown, labUp, type Lab } from '../lab/lab';
import { ADMIN } from '../support/core';
import { callWith, startServeProcess, type ServeProcess } from '../support/serve';

const LAB_ID = 'ibackp';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LINES = 25_000_000; // `yes | head -c 50000000`: 25 million lines "y"

let serve: ServeProcess;
let lab: Lab;

const call = <T>(channel: string, input: unknown): Promise<T> => serve.call<T>(channel, input);

/** The server's resident set, in bytes. */
function rss(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${serve.child.pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

beforeAll(async () => {
  expect(spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
  serve = await startServeProcess({ name: 'serve-backp', setup: ADMIN });
  const id = await call<{ publicKey: string }>('identity:show', {});
  lab = await labUp({ id: LAB_ID, hosts: 1 });
  await authorizeKey(lab, id.publicKey);
  const h = lab.hosts[0]!;
  await call('hosts:add', { name: 'gpu-1', address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
}, 300_000);

afterAll(async () => {
  await serve?.stop();
  await labDown({ id: LAB_ID });
});

describe('a page that stops reading', () => {
  it('pauses the terminal instead of growing the server, and gets every byte once it reads again', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${serve.port}/api/events`);
    let closed: number | null = null;
    ws.on('close', (code) => (closed = code));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify({ secret: serve.secret })));
      ws.once('error', reject);
      ws.once('message', (d) => (JSON.parse(String(d)).auth === 'ok' ? resolve() : reject(new Error(String(d)))));
    });

    const term = await call<{ id: string }>('terminal:open', { host: 'gpu-1', cols: 200, rows: 50 });
    // Counting lines "y" as they stream by (holding 75 MB of messages would measure the test, not the server).
    let lines = 0;
    let carry = '';
    let done = false;
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { event: string; payload: { id: string; data: string } };
      if (m.event !== 'terminal:data' || m.payload.id !== term.id) return;
      const parts = (carry + m.payload.data).split('\n');
      carry = parts.pop()!;
      for (const p of parts) {
        const l = p.replace(/\r$/, '');
        if (l === 'y') lines++;
        else if (l.includes('END-42')) done = true;
      }
    });
    await call('terminal:input', { id: term.id, data: 'stty -echo\n' });
    await new Promise((r) => setTimeout(r, 500));
    const before = rss();

    // The page stops reading, and the host starts talking.
    ws.pause();
    await call('terminal:input', { id: term.id, data: 'yes | head -c 50000000; echo END-$((6*7))\n' });
    let most = before;
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 250));
      most = Math.max(most, rss());
    }
    // Paused: the host's 75 MB (with the PTY's CRs) stay on the host; the server holds its bounded
    // queue, the socket's buffer and one SSH window, not the output.
    expect(done).toBe(false);
    expect(most - before, `RSS grew from ${before} to ${most}`).toBeLessThan(48 * 1024 * 1024);
    expect(closed).toBeNull();
    // Still answering calls while its page is stuck.
    expect((await callWith(serve.port, serve.secret, 'hosts:list', {})).status).toBe(200);

    // The page reads again: output resumes, and no line is lost.
    ws.resume();
    const deadline = Date.now() + 240_000;
    while (!done && Date.now() < deadline && closed === null) await new Promise((r) => setTimeout(r, 200));
    expect(closed, serve.stderr()).toBeNull();
    expect(done).toBe(true);
    expect(lines).toBe(LINES);
    ws.close();
  }, 360_000);
});

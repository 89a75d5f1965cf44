import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from '@playwright/test';
import { startServe } from '../../electron/shells/serve';
import { authorizeKey, labDown, labUp } from '../lab/lab';
import { ADMIN, testCore } from '../support/core';

/**
 * Each figure is printed beside its anchor, measured in the same run on the same machine,
 * with the ratio. Medians of several runs; no figure is asserted anywhere.
 */
const root = path.resolve(import.meta.dirname, '../..');
const rows: Array<{ figure: string; value: string; anchor: string; anchorValue: string; ratio: string; goal: string }> = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function benchScan() {
  const lab = await labUp({ id: 'bench', hosts: 20 });
  const t = await testCore({ sshTimeoutMs: 15_000 });
  try {
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
    for (const h of lab.hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
    const time = async (names: string[]) => {
      const s = performance.now();
      const out = await c.ok('hosts:scan', { names });
      if (!out.every((o) => o.ok)) throw new Error(`scan failed: ${JSON.stringify(out.filter((o) => !o.ok))}`);
      return performance.now() - s;
    };
    const all = lab.hosts.map((h) => h.name);
    await time(all); // warm-up: ssh2 and sshd caches
    const one: number[] = [];
    const twenty: number[] = [];
    for (let i = 0; i < 5; i++) {
      one.push(await time([all[0]!]));
      twenty.push(await time(all));
    }
    const a = median(one);
    const b = median(twenty);
    rows.push({ figure: 'inventory scan, 20 hosts', value: ms(b), anchor: 'inventory scan, 1 host', anchorValue: ms(a), ratio: `${(b / a).toFixed(2)}×`, goal: '≤ 1.5×' });
  } finally {
    await t.close();
    await labDown({ id: 'bench' });
  }
}

async function benchRoundTrip() {
  const t = await testCore({ shell: 'browser' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-'));
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html>');
  const serve = await startServe(t.core, { rendererDir: dir });
  // Anchor: a bare Node HTTP server answering a JSON POST on loopback.
  const bare = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true,"value":{}}'));
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  const barePort = (bare.address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (port: number, cookie: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: '/api/call', method: 'POST', agent, headers: { 'Content-Type': 'application/json', Cookie: cookie, Host: `127.0.0.1:${port}` } },
        (res) => (res.resume(), res.on('end', resolve)),
      );
      req.on('error', reject);
      req.end(JSON.stringify({ channel: 'hosts:list', input: {} }));
    });
  try {
    const redeem = await new Promise<string>((resolve) =>
      http.get(serve.url, (res) => (res.resume(), resolve(String(res.headers['set-cookie']).split(';')[0]!))),
    );
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    // Sign the browser client in through the wire, as the page does.
    await new Promise<void>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: serve.port, path: '/api/call', method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: redeem } }, (res) => (res.resume(), res.on('end', resolve)));
      req.end(JSON.stringify({ channel: 'session:login', input: { name: ADMIN.admin, password: ADMIN.password } }));
    });
    const N = 2000;
    const measure = async (port: number) => {
      for (let i = 0; i < 200; i++) await post(port, redeem);
      const s = performance.now();
      for (let i = 0; i < N; i++) await post(port, redeem);
      return ((performance.now() - s) / N) * 1000;
    };
    const airlockUs = await measure(serve.port);
    const bareUs = await measure(barePort);
    rows.push({
      figure: 'serve round trip (hosts:list, audited)',
      value: `${airlockUs.toFixed(0)} µs`,
      anchor: 'bare Node HTTP JSON round trip',
      anchorValue: `${bareUs.toFixed(0)} µs`,
      ratio: `${(airlockUs / bareUs).toFixed(2)}×`,
      goal: 'report',
    });
  } finally {
    agent.destroy();
    bare.close();
    await serve.close();
    await t.close();
  }
}

async function benchColdStart() {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-data-'));
  const blank = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-blank-'));
  fs.writeFileSync(path.join(blank, 'index.html'), '<!doctype html><h1 data-testid="x">blank</h1>');
  const launch = () =>
    chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  const airlockRuns: number[] = [];
  const anchorRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    fs.rmSync(data, { recursive: true, force: true });
    // Airlock: process start → serve → Chromium → first render of the setup screen.
    const s = performance.now();
    const proc = spawn(process.execPath, [path.join(root, 'bin/airlock.mjs'), 'serve', '--json', '--data', data], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => readline.createInterface({ input: proc.stdout! }).once('line', resolve));
    const browser = await launch();
    const page = await browser.newPage();
    await page.goto(JSON.parse(line).url);
    await page.getByTestId('setup-form').waitFor();
    airlockRuns.push(performance.now() - s);
    await browser.close();
    proc.kill('SIGTERM');
    // Anchor: the same browser start and a static page from a bare Node file server.
    const s2 = performance.now();
    const srv = http.createServer((_q, r) => r.end(fs.readFileSync(path.join(blank, 'index.html'))));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const b2 = await launch();
    const p2 = await b2.newPage();
    await p2.goto(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/`);
    await p2.getByTestId('x').waitFor();
    anchorRuns.push(performance.now() - s2);
    await b2.close();
    srv.close();
  }
  const a = median(airlockRuns);
  const b = median(anchorRuns);
  rows.push({ figure: 'cold start → first render (browser shell)', value: ms(a), anchor: 'Chromium start + static page', anchorValue: ms(b), ratio: `${(a / b).toFixed(2)}×`, goal: 'report' });
}

const only = process.argv[2];
if (!only || only === 'scan') await benchScan();
if (!only || only === 'serve') await benchRoundTrip();
if (!only || only === 'start') await benchColdStart();

const cols = ['figure', 'value', 'anchor', 'anchorValue', 'ratio', 'goal'] as const;
const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log('\n' + line([...cols]));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(cols.map((c) => r[c])));
console.log(`\n${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);

/**
 * Models benchmark, registry half (issue 13): pushing a 1 GiB artifact layer to the lab's real
 * registry (Debian's docker-registry 2.8.2) with Airlock's client — digest first, then chunked
 * PATCHes following the latest Location, then the PUT — against the anchor: `sha256sum` and
 * `curl` doing the same upload of the same file to the same registry (POST, one streamed PATCH with `-T`,
 * PUT ?digest=), same run, runs interleaved, medians. Each run pushes to a fresh repository so
 * the registry really receives the bytes. Context row: Airlock's client with one PATCH (a chunk
 * as large as the file), to show what chunking costs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RegistryClient } from '../../electron/core/models/registry/client';
import { labDown, labUp } from '../lab/lab';
import type { BenchRow } from './transfer';

const LAB_ID = 'models-bench';
const REPS = 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mibs = (bytes: number, ms: number) => `${(bytes / 1024 / 1024 / (ms / 1000)).toFixed(0)} MiB/s`;

function curlPush(base: string, repo: string, file: string): void {
  const digest = `sha256:${execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]}`;
  const head = (args: string[]) => {
    const r = spawnSync('curl', ['-sS', '-o', '/dev/null', '-D', '-', ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`curl: ${r.stderr}`);
    return r.stdout;
  };
  const loc = (h: string) => {
    const m = /^location:\s*(\S+)/im.exec(h);
    if (!m) throw new Error(`curl anchor: no Location in\n${h}`);
    return new URL(m[1]!, base).toString();
  };
  const started = loc(head(['-X', 'POST', `${base}/v2/${repo}/blobs/uploads/`]));
  const patched = loc(head(['-X', 'PATCH', '-H', 'Content-Type: application/octet-stream', '-T', file, started]));
  const u = new URL(patched);
  u.searchParams.set('digest', digest);
  const done = head(['-X', 'PUT', '-H', 'Content-Length: 0', u.toString()]);
  if (!/^HTTP\/1\.1 201/m.test(done)) throw new Error(`curl anchor: PUT did not create the blob:\n${done}`);
}

export async function benchModels(rows: BenchRow[]): Promise<void> {
  const mib = Number(process.env.AIRLOCK_BENCH_MODELS_MIB ?? 1024);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-models-'));
  const lab = await labUp({ id: LAB_ID, hosts: 1, registry: true, replace: true });
  try {
    const file = path.join(dir, 'layer.bin');
    const fd = fs.openSync(file, 'w');
    const block = crypto.randomBytes(16 * 1024 * 1024);
    for (let i = 0; i < mib / 16; i++) fs.writeSync(fd, block.map((b, j) => b ^ ((i * 31 + j) & 0xff)));
    fs.closeSync(fd);
    const size = fs.statSync(file).size;
    const base = lab.registry!.url;
    const client = new RegistryClient({ baseUrl: base, timeoutMs: 600_000 });
    const ours: number[] = [];
    const onePatch: number[] = [];
    const curl: number[] = [];
    for (let i = 0; i < REPS; i++) {
      let t = performance.now();
      await client.pushBlob(`bench/ours-${i}`, file);
      ours.push(performance.now() - t);
      t = performance.now();
      curlPush(base, `bench/curl-${i}`, file);
      curl.push(performance.now() - t);
      t = performance.now();
      await client.pushBlob(`bench/one-${i}`, file, { chunkBytes: size });
      onePatch.push(performance.now() - t);
    }
    const a = median(ours);
    const c = median(curl);
    rows.push({ figure: `registry push ${mib} MiB, Airlock client (16 MiB chunks)`, value: mibs(size, a), anchor: 'sha256sum + curl upload, same registry', anchorValue: mibs(size, c), ratio: `${(c / a).toFixed(2)}×`, goal: '≥ 0.9×' });
    const o = median(onePatch);
    rows.push({ figure: `registry push ${mib} MiB, Airlock client, one PATCH`, value: mibs(size, o), anchor: 'sha256sum + curl upload, same registry', anchorValue: mibs(size, c), ratio: `${(c / o).toFixed(2)}×`, goal: 'context' });
  } finally {
    await labDown({ id: LAB_ID });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

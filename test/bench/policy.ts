/**
 * Models benchmark, policy half (issue 13): the time from a grant change to the signed policy
 * being on every host — compiled, signed, written (tmp + fsync + rename), read back and hashed —
 * for 20 lab hosts against 1 host, same run, same console code, runs interleaved, medians. The
 * push is parallel over the SSH pool, so the goal is a ratio bounded by the slowest host, not the
 * sum (20 hosts ≈ 1 host, far below 20×). Each measured call is a real grants:add or
 * grants:revoke through the dispatcher (audit events included) that returns once every host is
 * `ok`. Without a running gate on the lab hosts this is delivery, not enforcement; with the gate
 * installed the same call waits until each gate reports the version (propagate.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../electron/core/db/db';
import { Catalog } from '../../electron/core/models/catalog';
import { authorizeKey, labDown, labUp, type Lab } from '../lab/lab';
import { ADMIN, testCore, type TestClient } from '../support/core';
import type { BenchRow } from './transfer';

const LAB_ID = 'policy-bench';
const REPS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function consoleFor(lab: Lab, hosts: Lab['hosts'], work: string) {
  const t = await testCore({ sshTimeoutMs: 30_000, stepUpMinutes: 600 });
  const c = t.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  for (const h of hosts) await c.ok('hosts:add', { name: h.name, address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint });
  const db = openDatabase(path.join(t.dir, 'airlock.db'));
  try {
    const cat = new Catalog({ db, now: () => new Date() });
    cat.addModel({ name: 'triage', owner: 'ml' }, 'alice');
    const src = fs.mkdtempSync(path.join(work, 'media-'));
    fs.writeFileSync(path.join(src, 'weights.bin'), 'weights');
    await cat.importDirectory({ model: 'triage', version: '1.0.0', dir: src, classification: 'internal', license: 'mit', source: 'bench' }, 'alice');
    cat.setStatus('triage', '1.0.0', 'approved', 'alice');
  } finally {
    db.close();
  }
  await c.ok('principals:create', { kind: 'application', name: 'bench-bot' });
  // A first push pins the key and warms the pool: not measured.
  await c.ok('policy:push', {});
  return { t, c };
}

/** One grant change (added, then revoked next time) until the policy is ok on every host; ms. */
async function change(c: TestClient, state: { grant: string | null }): Promise<number> {
  const started = performance.now();
  const r = state.grant
    ? await c.ok('grants:revoke', { id: state.grant, reason: 'bench round' })
    : await c.ok('grants:add', { principal: 'app:bench-bot', model: 'triage', version: 'latest-approved', actions: ['invoke'], expiresAt: null });
  const ms = performance.now() - started;
  if (!r.policy.hosts.every((h) => h.state === 'ok')) throw new Error(`policy bench: not ok everywhere: ${r.policy.summary}`);
  state.grant = state.grant ? null : (r as { grant: { id: string } }).grant.id;
  return ms;
}

export async function benchPolicy(rows: BenchRow[]): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-policy-'));
  // 21 hosts: each console pins its own policy key, so the one-host console gets a host of its own.
  const lab = await labUp({ id: LAB_ID, hosts: 21, replace: true });
  const one = await consoleFor(lab, lab.hosts.slice(20), work);
  const all = await consoleFor(lab, lab.hosts.slice(0, 20), work);
  try {
    const s1 = { grant: null as string | null };
    const s20 = { grant: null as string | null };
    const t1: number[] = [];
    const t20: number[] = [];
    for (let i = 0; i < REPS; i++) {
      t1.push(await change(one.c, s1));
      t20.push(await change(all.c, s20));
    }
    const a = median(t20);
    const b = median(t1);
    rows.push({ figure: 'policy propagation, grant change → on 20 hosts', value: `${a.toFixed(0)} ms`, anchor: 'same change → on 1 host', anchorValue: `${b.toFixed(0)} ms`, ratio: `${(a / b).toFixed(2)}×`, goal: '≪ 20× (slowest host, not the sum)' });
  } finally {
    await one.t.close();
    await all.t.close();
    await labDown({ id: LAB_ID });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

#!/usr/bin/env node
// `npm test`: everything CI runs, in order, stopping at the first failure.
// type check → lint → unit → integration (real lab hosts, real SQLite) → e2e (Chromium).
//
// The suite touches only the labs it starts: this run gets an id of its own (AIRLOCK_LAB_RUN),
// which the lab puts in front of every lab id a test asks for and records, with this process
// (AIRLOCK_LAB_RUN_OWNER = pid:start time), in each lab's state (test/lab/lab/lifecycle.ts).
// Before the suite, labs whose recorded owner is dead (a crashed earlier run's) are reclaimed;
// after it, this run's labs are taken down. Other people's labs are never touched.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { build, ensureDebian, ensureNpmDeps, root, run } from './setup.mjs';

ensureNpmDeps();
ensureDebian();
build();

const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const procStart = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return null; // no /proc: labs then belong to the processes that start them only
  }
};
const runId = crypto.randomBytes(3).toString('hex');
process.env.AIRLOCK_LAB_RUN = runId;
const start = procStart(process.pid);
if (start) process.env.AIRLOCK_LAB_RUN_OWNER = `${process.pid}:${start}`;
const lab = (...args) => run(bin('tsx'), ['test/lab/cli.ts', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });

const steps = [
  ['type check (core, shells, tests)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']],
  ['type check (renderer)', bin('tsc'), ['-p', 'renderer/tsconfig.json', '--noEmit']],
  ['lint (layering and dangerous constructs)', bin('eslint'), ['--max-warnings', '0', '.']],
  ['unit tests', bin('vitest'), ['run', '--project', 'unit']],
  ['integration tests (lab hosts, SQLite files)', bin('vitest'), ['run', '--project', 'integration']],
  ['end-to-end tests (Chromium via airlock serve)', bin('playwright'), ['test']],
];

let status = 0;
console.error(`lab run ${runId}: this run's labs are ${runId}-<id>`);
lab('reclaim');
try {
  for (const [title, cmd, args] of steps) {
    const t = Date.now();
    console.error(`\n=== ${title}`);
    status = run(cmd, args);
    console.error(`=== ${title}: ${status === 0 ? 'passed' : 'FAILED'} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    if (status !== 0) break;
  }
} finally {
  // No namespace, veth or sshd of this run outlives it, even a failed one.
  lab('down', '--run', runId);
}
process.exit(status);

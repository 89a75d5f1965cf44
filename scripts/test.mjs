#!/usr/bin/env node
// `npm test`: everything CI runs, in order, stopping at the first failure.
// type check → lint → unit → integration (real lab hosts, real SQLite) → e2e (Chromium).
import path from 'node:path';
import { build, ensureDebian, ensureNpmDeps, root, run } from './setup.mjs';

ensureNpmDeps();
ensureDebian();
build();

const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const labDownAll = () => run(bin('tsx'), ['test/lab/cli.ts', 'down', '--all'], { stdio: ['ignore', 'ignore', 'inherit'] });

const steps = [
  ['type check (core, shells, tests)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']],
  ['type check (renderer)', bin('tsc'), ['-p', 'renderer/tsconfig.json', '--noEmit']],
  ['lint (layering and dangerous constructs)', bin('eslint'), ['--max-warnings', '0', '.']],
  ['unit tests', bin('vitest'), ['run', '--project', 'unit']],
  ['integration tests (lab hosts, SQLite files)', bin('vitest'), ['run', '--project', 'integration']],
  ['end-to-end tests (Chromium via airlock serve)', bin('playwright'), ['test']],
];

let status = 0;
labDownAll();
try {
  for (const [title, cmd, args] of steps) {
    const t = Date.now();
    console.error(`\n=== ${title}`);
    status = run(cmd, args);
    console.error(`=== ${title}: ${status === 0 ? 'passed' : 'FAILED'} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    if (status !== 0) break;
  }
} finally {
  // No namespace, veth or sshd outlives a run, even a failed one.
  labDownAll();
}
process.exit(status);

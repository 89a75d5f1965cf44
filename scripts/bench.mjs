#!/usr/bin/env node
// `npm run bench`: measured figures side by side with their anchors, as ratios, in one run.
// Not part of `npm test`: these machines are shared and noisy, so no test asserts a time.
import path from 'node:path';
import { build, ensureDebian, ensureNpmDeps, root, run } from './setup.mjs';

ensureNpmDeps();
ensureDebian();
build();
process.exit(run(path.join(root, 'node_modules', '.bin', 'tsx'), ['test/bench/run.ts', ...process.argv.slice(2)]));

#!/usr/bin/env node
// Builds what is stale: the CLI bundle, the Electron main + preload bundles, the renderer.
// `--force` rebuilds everything.
import { build as esbuild } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const force = process.argv.includes('--force');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

function newest(paths) {
  let t = 0;
  const walk = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p)) if (e !== 'node_modules' && !e.startsWith('.')) walk(path.join(p, e));
    } else if (!/\.test\.tsx?$/.test(p)) t = Math.max(t, st.mtimeMs);
  };
  paths.forEach((p) => walk(path.join(root, p)));
  return t;
}
const mtime = (p) => {
  try {
    return fs.statSync(path.join(root, p)).mtimeMs;
  } catch {
    return 0;
  }
};
const stale = (output, inputs) => force || mtime(output) < newest([...inputs, 'package.json']);

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  define: { __AIRLOCK_VERSION__: JSON.stringify(pkg.version) },
};

const jobs = [];
if (stale('dist/node/cli.mjs', ['electron/core', 'electron/shells', 'shared'])) {
  jobs.push(['cli', () => esbuild({ ...common, entryPoints: ['electron/shells/main-cli.ts'], outfile: 'dist/node/cli.mjs', format: 'esm', packages: 'external' })]);
}
// Heavy jobs (audit verify and body searches, ...) run in the worker pool (electron/core/workers): its one
// worker entry is a bundle of its own, beside each bundle that starts it. It bundles every area's jobs.
for (const dir of ['dist/node', 'dist/electron']) {
  const outfile = `${dir}/worker.mjs`;
  if (stale(outfile, ['electron/core', 'shared'])) {
    jobs.push([`worker (${dir})`, () => esbuild({ ...common, entryPoints: ['electron/core/workers/entry.ts'], outfile, format: 'esm', packages: 'external' })]);
  }
}
if (stale('dist/electron/main.mjs', ['electron', 'shared'])) {
  jobs.push(['electron main', () => esbuild({ ...common, entryPoints: ['electron/main/main.ts'], outfile: 'dist/electron/main.mjs', format: 'esm', packages: 'external' })]);
  // Sandboxed preloads must be a single CommonJS file with nothing to require but 'electron'.
  jobs.push(['electron preload', () => esbuild({ ...common, platform: 'browser', entryPoints: ['electron/preload/preload.ts'], outfile: 'dist/electron/preload.cjs', format: 'cjs', external: ['electron'] })]);
}
if (stale('dist/renderer/index.html', ['renderer', 'shared', 'vite.config.ts'])) {
  jobs.push(['renderer', async () => {
    // A build started from a test runner inherits NODE_ENV=test and would ship React's dev build.
    process.env.NODE_ENV = 'production';
    const { build } = await import('vite');
    await build({ configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn' });
  }]);
}

// Host-side programs read at run time from beside the bundle that ships them (import.meta.url):
// the gate (electron/core/models/gate/install.ts → gateProgram()).
for (const dir of ['dist/node', 'dist/electron']) {
  const from = 'electron/core/models/gate/airlock-gate.py';
  const to = `${dir}/airlock-gate.py`;
  if (force || mtime(to) < mtime(from)) {
    jobs.push([`gate program (${dir})`, () => {
      fs.mkdirSync(path.join(root, dir), { recursive: true });
      fs.copyFileSync(path.join(root, from), path.join(root, to));
    }]);
  }
}

process.chdir(root);
for (const [name, job] of jobs) {
  if (name.startsWith('electron') && !fs.existsSync(path.join(root, 'electron/main/main.ts'))) continue;
  const t = Date.now();
  await job();
  console.error(`built ${name} in ${Date.now() - t} ms`);
}
if (jobs.length === 0) console.error('build: everything is up to date');

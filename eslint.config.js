// Lint is here for what a reviewer cannot be trusted to catch every time: layering
// (which code may import what) and a few dangerous constructs. See docs/architecture.md.
import { builtinModules } from 'node:module';
import path from 'node:path';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const nodeOnlyPackages = ['electron', 'ssh2', 'better-sqlite3', 'node-forge', 'ws', '@node-rs/argon2', 'sshpk', 'ssh-config', 'shamir-secret-sharing', '@peculiar/x509', 'pkijs'];

const restrict = (paths, patterns, why) => ({
  'no-restricted-imports': [
    'error',
    {
      paths: paths.map((name) => ({ name, message: why })),
      patterns: patterns.map((group) => ({ group: [group], message: why })),
    },
  ],
});

/**
 * Where each package may run: a whitelist. A package imported anywhere must be in this table
 * (`airlock/dependency-layers` fails an unlisted one), and a package may only be imported by the
 * layers its class allows (see `layerAllows`). A new dependency is therefore a decision written
 * down here, not something the renderer silently gets. Classify conservatively: a package is
 * `renderer-safe` only when it is plain JavaScript that runs in a sandboxed page (no Node
 * built-ins, no native addon, no Electron).
 */
const dependencyLayers = {
  // Plain JavaScript, no Node: may run anywhere, the sandboxed renderer included.
  'renderer-safe': ['react', 'react-dom', '@tanstack/react-virtual', '@xterm/xterm', '@xterm/addon-fit', 'zod', 'canonicalize', 'diff'],
  // Needs Node (native addons, sockets, node:crypto, fs): the core, the shells, electron/main, tests, scripts.
  // otpauth and qrcode have browser builds, but their Node entries use node:crypto and fs; the
  // renderer uses neither, so they stay here until it needs one.
  'node-only': ['ssh2', 'sshpk', 'ssh-config', 'better-sqlite3', '@node-rs/argon2', 'node-forge', 'ws', 'otpauth', 'qrcode', 'shamir-secret-sharing', '@peculiar/x509', 'pkijs', 'tar'],
  // Electron's own API: electron/main and the preload only.
  'electron-main-only': ['electron'],
  // Build, lint and test tools: tests, fixtures, scripts and config files, never shipped code.
  // js-yaml, builder-util and app-builder-lib come with electron-builder (hardening.test.ts reads its config with them).
  'dev-only': ['vitest', '@playwright/test', '@axe-core/playwright', 'fast-check', 'esbuild', 'vite', '@vitejs/plugin-react', 'eslint', 'typescript-eslint', 'typescript', 'tsx', 'electron-builder', 'js-yaml', 'builder-util', 'app-builder-lib'],
};
const classOf = new Map(Object.entries(dependencyLayers).flatMap(([cls, pkgs]) => pkgs.map((p) => [p, cls])));

/** The layer a file is in, by its folder; everything else (test/, scripts/, config files) is `dev`. */
const layerOf = (rel) =>
  rel.startsWith('renderer/') ? 'renderer'
  : rel.startsWith('shared/') ? 'shared'
  : rel.startsWith('electron/preload/') ? 'preload'
  : rel.startsWith('electron/core/') ? 'core'
  : rel.startsWith('electron/shells/') || rel.startsWith('bin/') ? 'shells'
  : rel.startsWith('electron/main/') ? 'main'
  : 'dev';
const layerAllows = {
  renderer: ['renderer-safe'],
  shared: ['renderer-safe'],
  preload: ['renderer-safe', 'electron-main-only'],
  core: ['renderer-safe', 'node-only'],
  shells: ['renderer-safe', 'node-only'],
  main: ['renderer-safe', 'node-only', 'electron-main-only'],
  dev: ['renderer-safe', 'node-only', 'electron-main-only', 'dev-only'],
};
/** Tests and fixtures may also use the test tools, wherever they sit; the layer's other limits stay. */
const isTestCode = (rel) => /\.(test|spec)\.[cm]?[jt]sx?$/.test(rel) || /(^|\/)fixtures\//.test(rel) || layerOf(rel) === 'dev';
const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

/** Calls `check(node, specifier)` for every import, export-from, dynamic import() and require() with a literal name. */
const eachImport = (check) => {
  const lit = (node, src) => src && src.type === 'Literal' && typeof src.value === 'string' && check(node, src.value);
  return {
    ImportDeclaration: (n) => lit(n, n.source),
    ExportNamedDeclaration: (n) => lit(n, n.source),
    ExportAllDeclaration: (n) => lit(n, n.source),
    ImportExpression: (n) => lit(n, n.source),
    CallExpression: (n) => n.callee.type === 'Identifier' && n.callee.name === 'require' && lit(n, n.arguments[0]),
  };
};
const relPath = (context) => path.relative(context.cwd, context.filename).split(path.sep).join('/');

const airlock = {
  rules: {
    'dependency-layers': {
      meta: { type: 'problem', schema: [] },
      create(context) {
        const rel = relPath(context);
        const layer = layerOf(rel);
        const allowed = isTestCode(rel) ? [...layerAllows[layer], 'dev-only'] : layerAllows[layer];
        return eachImport((node, spec) => {
          if (spec.startsWith('.') || spec.startsWith('/') || nodeBuiltins.includes(spec)) return; // folders and built-ins: no-restricted-imports below
          const pkg = packageOf(spec);
          const cls = classOf.get(pkg);
          if (!cls) {
            context.report({ node, message: `'${pkg}' is not classified: add it to dependencyLayers in eslint.config.js (renderer-safe, node-only, electron-main-only or dev-only).` });
          } else if (!allowed.includes(cls)) {
            context.report({ node, message: `'${pkg}' is ${cls}: it may not be imported from ${layer === 'dev' ? rel : `${layer} code`}${isTestCode(rel) ? '' : ' (production code)'}.` });
          }
        });
      },
    },
    'no-fixtures-in-production': {
      meta: { type: 'problem', schema: [] },
      create(context) {
        if (isTestCode(relPath(context))) return {};
        return eachImport((node, spec) => {
          if (spec.startsWith('.') && spec.split('/').includes('fixtures')) {
            context.report({ node, message: 'Fakes and test data live in fixtures/ folders, which only tests (and other fixtures) may import.' });
          }
        });
      },
    },
  },
};

/** Syntax refused everywhere. */
const dangerousSyntax = [
  { selector: "JSXAttribute[name.name='dangerouslySetInnerHTML']", message: 'Host output is untrusted: render text, never HTML.' },
];

/**
 * ssh2's internals are reached only in electron/core/ssh/ssh2-internals.ts, which probes them
 * first. Elsewhere in ssh/ this refuses, on any object (lint cannot tell an ssh2 object from
 * another): a member starting with `_` (`x._sock`, `x['_protocol']`), a channel's `outgoing` /
 * `incoming` state, an object type declaring an `_` member (the `as unknown as { _sock?: … }`
 * cast that reaching in needs), and destructuring one (`const { _sock } = x`).
 */
const ssh2Why = "ssh2's internals are reached only through electron/core/ssh/ssh2-internals.ts (probed, typed, pinned to one ssh2 version).";
const ssh2PrivateSyntax = [
  "MemberExpression[computed=false][property.name=/^_/]",
  "MemberExpression[computed=true][property.value=/^_/]",
  "MemberExpression[property.name=/^(outgoing|incoming)$/]",
  "MemberExpression[property.value=/^(outgoing|incoming)$/]",
  "TSPropertySignature[key.name=/^_/]",
  "TSPropertySignature[key.value=/^_/]",
  "ObjectPattern > Property[key.name=/^_/]",
].map((selector) => ({ selector, message: ssh2Why }));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'release/**', 'test-results/**', 'playwright-report/**', '**/*.cjs'] },
  {
    files: ['**/*.{ts,tsx,js,mjs}'],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2023, sourceType: 'module' },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-debugger': 'error',
      'no-restricted-syntax': ['error', ...dangerousSyntax],
    },
  },
  // The dependency whitelist and the fixtures rule, everywhere (the layer comes from the file's folder).
  {
    files: ['**/*.{ts,tsx,js,mjs}'],
    plugins: { airlock },
    rules: {
      'airlock/dependency-layers': 'error',
      'airlock/no-fixtures-in-production': 'error',
    },
  },
  // ssh2's internals: one guarded module.
  {
    files: ['electron/core/ssh/**/*.{ts,tsx}'],
    ignores: ['electron/core/ssh/ssh2-internals.ts'],
    rules: { 'no-restricted-syntax': ['error', ...dangerousSyntax, ...ssh2PrivateSyntax] },
  },
  // The renderer is untrusted and sandboxed: browser code and shared/ only.
  {
    files: ['renderer/**/*.{ts,tsx}'],
    rules: restrict(
      [...nodeBuiltins, ...nodeOnlyPackages],
      ['node:*', '**/electron/**', '../electron', '../../electron'],
      'renderer/ runs sandboxed: no Node built-ins, no electron, ssh2, better-sqlite3, node-forge, and nothing from electron/. Ask the core through the contract.',
    ),
  },
  // The contract is shared by both sides, so it may import neither.
  {
    files: ['shared/**/*.ts'],
    rules: restrict(
      [...nodeBuiltins, ...nodeOnlyPackages],
      ['node:*', '**/electron/**', '**/renderer/**', '../electron', '../renderer', '../../electron', '../../renderer'],
      'shared/ is imported by the renderer and the core: it imports neither side, nor Node-only modules.',
    ),
  },
  // The core is plain Node: it never imports electron, and never the shells that host it.
  {
    files: ['electron/core/**/*.ts'],
    rules: restrict(
      ['electron'],
      ['**/electron/main/**', '**/electron/preload/**', '**/electron/shells/**', '**/main/**', '**/preload/**', '**/shells/**', '**/renderer/**'],
      'electron/core is plain Node shared by all three shells: no electron import, no shell code, no renderer code.',
    ),
  },
  // Only electron/main and electron/preload import electron.
  {
    files: ['electron/shells/**/*.ts', 'test/**/*.{ts,mjs}', 'scripts/**/*.mjs', 'bin/**/*.mjs', '*.ts'],
    rules: restrict(['electron'], ['**/renderer/**/*.tsx'], "Only electron/main and electron/preload import 'electron'."),
  },
  // The sandboxed preload can require nothing but electron: contract names only.
  {
    files: ['electron/preload/**/*.ts'],
    rules: restrict(
      nodeBuiltins,
      ['node:*', '**/electron/core/**', '**/electron/shells/**', '**/renderer/**', '../core/*', '../shells/*'],
      'The preload runs sandboxed: electron and shared/ only.',
    ),
  },
);

// Lint is here for what a reviewer cannot be trusted to catch every time: layering
// (which code may import what) and a few dangerous constructs. See docs/architecture.md.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const nodeOnlyPackages = ['electron', 'ssh2', 'better-sqlite3', 'node-forge', 'ws', '@node-rs/argon2', 'sshpk', 'ssh-config'];

const restrict = (paths, patterns, why) => ({
  'no-restricted-imports': [
    'error',
    {
      paths: paths.map((name) => ({ name, message: why })),
      patterns: patterns.map((group) => ({ group: [group], message: why })),
    },
  ],
});

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
      'no-restricted-syntax': [
        'error',
        { selector: "JSXAttribute[name.name='dangerouslySetInnerHTML']", message: 'Host output is untrusted: render text, never HTML.' },
      ],
    },
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

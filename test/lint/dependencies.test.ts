import { readFileSync } from 'node:fs';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The dependency whitelist (`airlock/dependency-layers`) and the fixtures rule
 * (`airlock/no-fixtures-in-production`) must fail bad code, not merely exist. Each case lints a
 * small source as if it sat at the given path, with the project's own config.
 */
const eslint = new ESLint({ cwd: process.cwd() });

async function errorsFor(filePath: string, code: string, rule?: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath });
  return (res?.messages ?? []).filter((m) => m.severity === 2 && (!rule || m.ruleId === rule)).map((m) => `${m.ruleId ?? ''}: ${m.message}`);
}

const LAYERS = 'airlock/dependency-layers';
const FIXTURES = 'airlock/no-fixtures-in-production';

describe('dependency whitelist', () => {
  const unclassified: Array<[string, string]> = [
    ['electron/core/x.ts', "import leftPad from 'left-pad';"],
    ['renderer/x.tsx', "import leftPad from 'left-pad';"],
    ['shared/contract/x.ts', "export { pad } from 'left-pad';"],
    ['electron/shells/x.ts', "const m = await import('@scope/new-thing');"],
    ['test/integration/x.ts', "const m = require('left-pad');"],
    ['scripts/x.mjs', "import 'left-pad/sub/path.js';"],
    // Type packages are never imported: the types come with the package itself.
    ['electron/core/x.ts', "import type { X } from '@types/ssh2';"],
  ];
  it.each(unclassified)('refuses an unclassified package in %s: %s', async (file, code) => {
    const errs = await errorsFor(file, code, LAYERS);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('is not classified');
  });

  const misplaced: Array<[string, string]> = [
    // node-only in the renderer and in shared/, however it is imported
    ['renderer/x.ts', "import { Client } from 'ssh2';"],
    ['renderer/features/x.tsx', "import Database from 'better-sqlite3';"],
    ['renderer/x.ts', "import { TOTP } from 'otpauth';"],
    ['renderer/x.ts', "import QRCode from 'qrcode';"],
    ['renderer/x.ts', "const { SFTP } = require('ssh2/lib/protocol/SFTP.js');"],
    ['renderer/x.ts', "const ws = await import('ws');"],
    ['shared/contract/x.ts', "export { parse } from 'ssh-config';"],
    ['shared/domain/x.ts', "import sshpk from 'sshpk';"],
    ['electron/preload/x.ts', "import forge from 'node-forge';"],
    // Electron outside electron/main and the preload
    ['electron/core/x.ts', "import { app } from 'electron';"],
    ['renderer/x.ts', "import { ipcRenderer } from 'electron';"],
    // test and build tools in shipped code
    ['electron/core/x.ts', "import { vi } from 'vitest';"],
    ['electron/shells/x.ts', "import fc from 'fast-check';"],
    ['electron/main/x.ts', "import { build } from 'esbuild';"],
    ['renderer/x.tsx', "import { expect } from '@playwright/test';"],
  ];
  it.each(misplaced)('refuses a package outside the layers its class allows, in %s: %s', async (file, code) => {
    const errs = await errorsFor(file, code, LAYERS);
    expect(errs).toHaveLength(1);
    expect(errs[0]).not.toContain('is not classified');
  });

  const fine: Array<[string, string]> = [
    ['renderer/x.tsx', "import { useState } from 'react'; import { createRoot } from 'react-dom/client';"],
    ['renderer/x.ts', "import { z } from 'zod'; import { Terminal } from '@xterm/xterm';"],
    ['shared/contract/x.ts', "import { z } from 'zod';"],
    ['electron/core/x.ts', "import ssh2 from 'ssh2'; import Database from 'better-sqlite3'; import { z } from 'zod';"],
    ['electron/core/x.test.ts', "import { describe } from 'vitest'; import fc from 'fast-check';"],
    ['renderer/x.test.tsx', "import { describe } from 'vitest'; import { useState } from 'react';"],
    ['electron/main/x.ts', "import { app } from 'electron'; import Database from 'better-sqlite3';"],
    ['electron/preload/x.ts', "import { contextBridge } from 'electron';"],
    ['test/e2e/x.spec.ts', "import { test } from '@playwright/test'; import { TOTP } from 'otpauth';"],
    ['scripts/x.mjs', "const { build } = await import('vite');"],
    ['electron/core/x.ts', "import fs from 'node:fs'; import path from 'path'; import { x } from './y';"],
  ];
  it.each(fine)('allows %s: %s', async (file, code) => {
    expect(await errorsFor(file, code, LAYERS)).toEqual([]);
  });

  it('classifies every dependency in package.json (an unclassified one fails here before it fails someone\'s import)', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const names = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)].filter((n) => !n.startsWith('@types/'));
    expect(names.length).toBeGreaterThan(20);
    const unlisted: string[] = [];
    for (const name of names) {
      // test/ may import every class, so the only possible complaint is a missing classification.
      if ((await errorsFor('test/x.ts', `import '${name}';`, LAYERS)).length) unlisted.push(name);
    }
    expect(unlisted).toEqual([]);
  });
});

describe('fixtures', () => {
  const bad: Array<[string, string]> = [
    ['electron/main/x.ts', "import { fakeCore } from './fixtures/electron-fakes';"],
    ['electron/core/hosts/x.ts', "import { fake } from '../fixtures/hosts';"],
    ['renderer/features/x.tsx', "export { data } from './fixtures/data';"],
    ['electron/shells/x.ts', "const f = await import('../main/fixtures/electron-fakes');"],
  ];
  it.each(bad)('refuses production code importing fixtures: %s: %s', async (file, code) => {
    expect(await errorsFor(file, code, FIXTURES)).toHaveLength(1);
  });

  const fine: Array<[string, string]> = [
    ['electron/main/x.test.ts', "import { fakeCore } from './fixtures/electron-fakes';"],
    ['electron/main/fixtures/more.ts', "import { fakeCore } from './electron-fakes';"],
    ['test/integration/x.ts', "import { fakeCore } from '../../electron/main/fixtures/electron-fakes';"],
    ['electron/main/x.ts', "import { startShell } from './shell';"],
  ];
  it.each(fine)('allows %s: %s', async (file, code) => {
    expect(await errorsFor(file, code, FIXTURES)).toEqual([]);
  });
});
